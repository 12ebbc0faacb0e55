"""Cold-start and warm-path figures: this app against a bare Chalice app with boto3, side by side.

Both apps run as a Lambda cold start would: a fresh interpreter imports the app, then serves
its first request, a product read from DynamoDB (served here by moto on loopback). This app
runs with tracing, structured logs and metrics all on, in a Lambda-like environment (trace
header present and sampled), with the request already authorized as API Gateway would pass it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLE = "bench-table"

EVENT = """
import types
def event(resource, path, params, authorizer=None):
    context = {"resourcePath": resource, "httpMethod": "GET", "requestId": "bench", "stage": "api", "path": path}
    if authorizer:
        context["authorizer"] = authorizer
    return {"resource": resource, "path": path, "httpMethod": "GET", "headers": {}, "multiValueHeaders": {},
            "queryStringParameters": None, "multiValueQueryStringParameters": None, "pathParameters": params,
            "stageVariables": None, "body": None, "isBase64Encoded": False, "requestContext": context}
CONTEXT = types.SimpleNamespace(aws_request_id="bench", function_name="bench", memory_limit_in_mb=512,
                                invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:bench",
                                get_remaining_time_in_millis=lambda: 10000)
"""

BARE = (
    EVENT
    + """
import json, time
t0 = time.perf_counter()
import boto3
from chalice import Chalice
app = Chalice(app_name="bare")
dynamodb = boto3.client("dynamodb")
@app.route("/catalog/{product_id}")
def get_product(product_id):
    key = {"PK": {"S": "TENANT#tenant-a#PRODUCT"}, "SK": {"S": "PRODUCT#" + product_id}}
    return dynamodb.get_item(TableName="%(table)s", Key=key)["Item"]["name"]
t1 = time.perf_counter()
response = app(event("/catalog/{product_id}", "/catalog/prod-001", {"product_id": "prod-001"}), CONTEXT)
assert response["statusCode"] == 200, response
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "first_request": t2 - t1}))
"""
    % {"table": TABLE}
)

OURS = (
    EVENT
    + """
import json, time
t0 = time.perf_counter()
import app
t1 = time.perf_counter()
authorizer = {"tenant_id": "tenant-a", "tier": "basic", "scopes": "tenant-api/catalog.read", "principalId": "tenant-a"}
response = app.app(event("/catalog/{product_id}", "/catalog/prod-001", {"product_id": "prod-001"}, authorizer), CONTEXT)
assert response["statusCode"] == 200, response
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "first_request": t2 - t1}))
"""
)

WARM = """
import json, os, timeit
from scripts.token_issuer import TokenIssuer
from chalicelib.auth import JwksCache, verify_access_token
from chalicelib.config import get_settings
from chalicelib import pagination
issuer = TokenIssuer("https://cognito-idp.us-east-1.amazonaws.com/us-east-1_bench")
os.environ.update(TOKEN_ISSUER=issuer.issuer)
jwks = JwksCache(issuer.jwks_url, fetch=lambda url: issuer.jwks())
token = issuer.issue("client1", ["tenant-api/catalog.read"])
settings = get_settings()
verify_access_token(token, settings, jwks)
n = 2000
seconds = timeit.timeit(lambda: verify_access_token(token, settings, jwks), number=n)
secret = settings.pagination_secret
t = pagination.encode_token(secret, "tenant-a", "catalog", "PRODUCT#prod-001")
p = timeit.timeit(lambda: pagination.decode_token(secret, "tenant-a", "catalog", t, "PRODUCT#"), number=n)
print(json.dumps({"verify_token_us": seconds / n * 1e6, "pagination_decode_us": p / n * 1e6}))
"""


def lambda_like_environment(endpoint_url: str) -> dict[str, str]:
    """The environment Lambda gives a traced function, pointed at the local DynamoDB."""
    return {
        "PYTHONPATH": str(ROOT),
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "LAMBDA_TASK_ROOT": str(ROOT),
        "AWS_LAMBDA_FUNCTION_NAME": "tenant-api-bench",
        "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
        "POWERTOOLS_SERVICE_NAME": "tenant-api-bench",
        "TABLE_NAME": TABLE,
        "TOKEN_ISSUER": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_bench",
        "PAGINATION_SECRET": "bench-secret-" + "x" * 40,
        "PATH": os.environ.get("PATH", ""),
    }


def run(snippet: str, environment: dict[str, str]) -> dict[str, float]:
    """Run a snippet in a fresh interpreter and return the figures it printed on its last line."""
    output = subprocess.run(
        [sys.executable, "-c", snippet], cwd=ROOT, env=environment, capture_output=True, text=True, check=True
    )
    return json.loads(output.stdout.strip().splitlines()[-1])


def median_of(snippet: str, environment: dict[str, str], runs: int) -> dict[str, float]:
    """Median of each figure over several cold starts."""
    samples = [run(snippet, environment) for _ in range(runs)]
    return {name: statistics.median(sample[name] for sample in samples) for name in samples[0]}


def start_dynamodb() -> tuple[object, str]:
    """moto on loopback with the table and one product, as both apps' DynamoDB."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    from chalicelib.schema import table_definition

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    client = boto3.client(
        "dynamodb", endpoint_url=url, region_name="us-east-1", aws_access_key_id="b", aws_secret_access_key="b"
    )
    client.create_table(**table_definition(TABLE))
    client.put_item(
        TableName=TABLE,
        Item={
            "PK": {"S": "TENANT#tenant-a#PRODUCT"},
            "SK": {"S": "PRODUCT#prod-001"},
            "product_id": {"S": "prod-001"},
            "name": {"S": "Claw Hammer"},
            "price": {"N": "12.99"},
            "currency": {"S": "USD"},
            "stock": {"N": "5"},
        },
    )
    return server, url


def line(label: str, figures: dict[str, float], baseline: float | None = None) -> str:
    """One row of the report."""
    total = figures["import"] + figures["first_request"]
    ratio = f"  ({total / baseline:.2f}x bare)" if baseline else ""
    return (
        f"  {label:<34} import {figures['import'] * 1000:6.1f} ms   first request {figures['first_request'] * 1000:6.1f} ms"
        f"   total {total * 1000:6.1f} ms{ratio}"
    )


def main(argv: list[str] | None = None) -> int:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=9, help="cold starts per variant (the median is reported)")
    args = parser.parse_args(argv)
    server, url = start_dynamodb()
    try:
        environment = lambda_like_environment(url)
        bare = median_of(BARE, environment, args.runs)
        ours = median_of(OURS, environment, args.runs)
        untraced = median_of(OURS, {**environment, "TRACING": "off"}, args.runs)
        warm = run(WARM, environment)
    finally:
        server.stop()
    baseline = bare["import"] + bare["first_request"]
    print(
        f"cold start: import + first DynamoDB-backed request, median of {args.runs} fresh interpreters (Python {sys.version.split()[0]})"
    )
    print(line("bare Chalice + boto3", bare))
    print(line("this app, tracing+logs+metrics on", ours, baseline))
    print(line("this app, tracing off", untraced, baseline))
    print("warm path:")
    print(f"  RS256 access-token verification (cached JWKS): {warm['verify_token_us']:.0f} us")
    print(f"  pagination token decode: {warm['pagination_decode_us']:.1f} us")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
