"""Cold-start and warm-path figures: our app against a bare Chalice app with boto3, side by side."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Each snippet runs in a fresh interpreter, as a Lambda cold start does, and prints its timings.
EVENT = """
import types
def event(path):
    return {"resource": path, "path": path, "httpMethod": "GET", "headers": {}, "multiValueHeaders": {},
            "queryStringParameters": None, "multiValueQueryStringParameters": None, "pathParameters": None,
            "stageVariables": None, "body": None, "isBase64Encoded": False,
            "requestContext": {"resourcePath": path, "httpMethod": "GET", "requestId": "bench", "stage": "api"}}
CONTEXT = types.SimpleNamespace(aws_request_id="bench", function_name="bench", memory_limit_in_mb=512,
                                invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:bench")
"""

BARE = EVENT + """
import json, time
t0 = time.perf_counter()
import boto3
from chalice import Chalice
app = Chalice(app_name="bare")
@app.route("/health")
def health():
    return {"status": "ok"}
t1 = time.perf_counter()
app(event("/health"), CONTEXT)
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "first_request": t2 - t1}))
"""

OURS = EVENT + """
import json, time
t0 = time.perf_counter()
import app
t1 = time.perf_counter()
response = app.app(event("/health"), CONTEXT)
assert response["statusCode"] == 200, response
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "first_request": t2 - t1}))
"""

AUTHORIZER_IMPORTS = """
import json, time
import app
t0 = time.perf_counter()
import jwt, jwt.algorithms
t1 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "first_request": 0.0}))
"""

WARM = """
import json, time, timeit
from scripts.token_issuer import TokenIssuer
from chalicelib.auth import JwksCache, verify_access_token
from chalicelib.config import get_settings
issuer = TokenIssuer("https://cognito-idp.us-east-1.amazonaws.com/us-east-1_bench")
import os
os.environ.update(TABLE_NAME="t", TOKEN_ISSUER=issuer.issuer, PAGINATION_SECRET="x" * 40)
jwks = JwksCache(issuer.jwks_url, fetch=lambda url: issuer.jwks())
token = issuer.issue("client1", ["tenant-api/catalog.read"])
settings = get_settings()
verify_access_token(token, settings, jwks)
n = 2000
seconds = timeit.timeit(lambda: verify_access_token(token, settings, jwks), number=n)
from chalicelib import pagination
secret = settings.pagination_secret
t = pagination.encode_token(secret, "tenant-a", "catalog", "PRODUCT#prod-001")
p = timeit.timeit(lambda: pagination.decode_token(secret, "tenant-a", "catalog", t, "PRODUCT#"), number=n)
print(json.dumps({"verify_token_us": seconds / n * 1e6, "pagination_decode_us": p / n * 1e6}))
"""


def run(snippet: str) -> dict[str, float]:
    """Run a snippet in a fresh interpreter from the project root and return what it printed."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AWS_DEFAULT_REGION": "us-east-1"}
    output = subprocess.run([sys.executable, "-c", snippet], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


def median_of(snippet: str, runs: int) -> dict[str, float]:
    """Median of each figure over several cold runs."""
    samples = [run(snippet) for _ in range(runs)]
    return {name: statistics.median(sample[name] for sample in samples) for name in samples[0]}


def main(argv: list[str] | None = None) -> int:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=9, help="cold starts per variant (median reported)")
    args = parser.parse_args(argv)
    bare = median_of(BARE, args.runs)
    ours = median_of(OURS, args.runs)
    auth = median_of(AUTHORIZER_IMPORTS, args.runs)
    warm = run(WARM)
    bare_total = bare["import"] + bare["first_request"]
    ours_total = ours["import"] + ours["first_request"]
    print(f"cold start, median of {args.runs} fresh interpreters ({sys.version.split()[0]}):")
    print(f"  bare Chalice + boto3   import {bare['import'] * 1000:7.1f} ms  first request {bare['first_request'] * 1000:6.1f} ms  total {bare_total * 1000:7.1f} ms")
    print(f"  this app (API handler) import {ours['import'] * 1000:7.1f} ms  first request {ours['first_request'] * 1000:6.1f} ms  total {ours_total * 1000:7.1f} ms  ({ours_total / bare_total:.2f}x bare)")
    print(f"  authorizer extra: PyJWT + cryptography import {auth['import'] * 1000:.1f} ms (paid only by the authorizer function)")
    print("warm path:")
    print(f"  RS256 access-token verification (cached JWKS): {warm['verify_token_us']:.0f} us")
    print(f"  pagination token decode: {warm['pagination_decode_us']:.1f} us")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
