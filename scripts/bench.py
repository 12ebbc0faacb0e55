"""Cold-start and warm-path figures: this app against a bare Chalice app with boto3, side by side.

Both apps run as a Lambda cold start would: a fresh interpreter imports the app, then serves
its first request, a product read from DynamoDB (served here by moto on loopback). This app
runs with tracing, structured logs and metrics all on, in a Lambda-like environment (trace
header present and sampled), with the request already authorized as API Gateway would pass it.

This app reads a tenant's items with that tenant's own credentials (chalicelib.tenant_access):
its first request in a container assumes the tenant-access role through STS (moto too), later
ones reuse the client. The tenant-credential figures measure that first request, another
tenant's first request in the now warm container, and the warm request against the same request
made with the process's own client, counting the AssumeRole calls each makes. Part of the warm
difference is moto's own: for each call signed with assumed-role credentials its server looks up
their account and records the key's last use (the "credentials per signed call" row is the client's part).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from chalicelib import keys

ROOT = Path(__file__).resolve().parent.parent
TABLE = "bench-table"
# moto's STS issues credentials for any role ARN, and moto files the calls made with them under
# the ARN's account: 123456789012 is moto's default, the account the table is created in.
TENANT_ACCESS_ROLE_ARN = "arn:aws:iam::123456789012:role/tenant-api-bench-tenant-access"
# Tenants whose product the table holds: the first and the second tenant of a container.
TENANTS = ("tenant-a", "tenant-b")
PRODUCT_ID = "prod-001"
# Warm requests per variant in one interpreter, and calls per timing of a client lookup.
WARM_REQUESTS = 200
LOOKUPS = 20000

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
    return dynamodb.get_item(TableName="%(table)s", Key=%(key)s)["Item"]["name"]
t1 = time.perf_counter()
response = app(event("/catalog/{product_id}", "/catalog/prod-001", {"product_id": "prod-001"}), CONTEXT)
assert response["statusCode"] == 200, response
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "first_request": t2 - t1}))
"""
    # The same item this app reads, at the key chalicelib.keys gives it.
    % {"table": TABLE, "key": {name: {"S": value} for name, value in keys.product_key("tenant-a", PRODUCT_ID).items()}}
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

TENANT_CREDENTIALS = (
    EVENT
    + """
import json, statistics, time, timeit
from botocore.client import BaseClient

# Every call of every botocore client passes here, whichever STS client makes the AssumeRole
# (the first one of a tenant, or a refresh): counted as calls, before botocore's retries.
assume_role_calls = 0
make_api_call = BaseClient._make_api_call
def counting(self, operation_name, api_params):
    global assume_role_calls
    if operation_name == "AssumeRole":
        assume_role_calls += 1
    return make_api_call(self, operation_name, api_params)
BaseClient._make_api_call = counting

import app
from chalicelib import repository, services, tenant_access

def request(tenant_id):
    authorizer = {"tenant_id": tenant_id, "tier": "basic", "scopes": "tenant-api/catalog.read", "principalId": tenant_id}
    started = time.perf_counter()
    response = app.app(event("/catalog/{product_id}", "/catalog/prod-001", {"product_id": "prod-001"}, authorizer), CONTEXT)
    elapsed = time.perf_counter() - started
    assert response["statusCode"] == 200, response
    return elapsed

def first_request(tenant_id):
    before = assume_role_calls
    return request(tenant_id), assume_role_calls - before

first_a, first_a_calls = first_request("tenant-a")
first_b, first_b_calls = first_request("tenant-b")

# The baseline: the same request, its repository handed the process's own client (what the API
# used before tenant credentials), so that the difference is the tenant-credential path alone.
tenant_scoped = services.tenant_dynamodb
def own_client(tenant_id):
    return repository.dynamodb_client()
services.tenant_dynamodb = own_client
request("tenant-a")  # makes the process's own client, which the warm baseline then reuses
services.tenant_dynamodb = tenant_scoped

# Interleaved, and in alternating order, so that drift on a noisy machine falls on both alike.
scoped, own, warm_calls = [], [], 0
for i in range(%(requests)d):
    for variant in ((tenant_scoped, own_client) if i %% 2 else (own_client, tenant_scoped)):
        services.tenant_dynamodb = variant
        before = assume_role_calls
        seconds = request("tenant-a")
        if variant is tenant_scoped:
            scoped.append(seconds)
            warm_calls += assume_role_calls - before
        else:
            own.append(seconds)
services.tenant_dynamodb = tenant_scoped

# The warm path's two additions, each against what the baseline does in its place; best of five,
# the least disturbed timing. Finding the client: the tenant's through tenant_dynamodb, as the
# request path calls it, from TenantClients.dynamodb's dict under a lock; the process's from
# functools.lru_cache.
def best(statement, callable_):
    return min(timeit.repeat(statement, globals={"f": callable_}, number=%(lookups)d, repeat=5)) / %(lookups)d
lookup = best("f('tenant-a')", tenant_access.tenant_dynamodb)
own_lookup = best("f()", repository.dynamodb_client)
# Reading the credentials, which botocore does for each call it signs: the tenant's refreshable
# ones check their expiry against the clock each time, the process's static ones do not.
credentials = best("f()", tenant_access.tenant_dynamodb("tenant-a")._request_signer._credentials.get_frozen_credentials)
own_credentials = best("f()", repository.dynamodb_client()._request_signer._credentials.get_frozen_credentials)

# STS's share of a first request: one AssumeRole alone, for a tenant with no client (outside the counts above).
started = time.perf_counter()
tenant_access.assume_tenant_role("tenant-c")
assume_alone = time.perf_counter() - started

print(json.dumps({
    "first_a": first_a, "first_a_calls": first_a_calls, "first_b": first_b, "first_b_calls": first_b_calls,
    "warm": statistics.median(scoped), "warm_own": statistics.median(own), "warm_calls": warm_calls,
    "lookup": lookup, "own_lookup": own_lookup, "credentials": credentials, "own_credentials": own_credentials,
    "assume_alone": assume_alone,
}))
"""
)

# AssumeRole calls each tenant-credential figure should make: one per tenant's first request, none warm.
EXPECTED_ASSUME_ROLE_CALLS = {"first_a_calls": 1, "first_b_calls": 1, "warm_calls": 0}

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
        "TENANT_ACCESS_ROLE_ARN": TENANT_ACCESS_ROLE_ARN,
        "TOKEN_ISSUER": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_bench",
        "PAGINATION_SECRET": "bench-secret-" + "x" * 40,
        "PATH": os.environ.get("PATH", ""),
    }


def tenant_credentials_snippet(requests: int = WARM_REQUESTS) -> str:
    """The tenant-credential snippet, with its number of warm requests per variant."""
    return TENANT_CREDENTIALS % {"requests": requests, "lookups": LOOKUPS}


def run(snippet: str, environment: dict[str, str]) -> dict[str, float]:
    """Run a snippet in a fresh interpreter and return the figures it printed on its last line."""
    output = subprocess.run([sys.executable, "-c", snippet], cwd=ROOT, env=environment, capture_output=True, text=True)
    if output.returncode != 0:
        # The app logs a failed request's error to stdout, the snippet's traceback goes to stderr: show both.
        tail = "\n".join((output.stdout.strip().splitlines() + output.stderr.strip().splitlines())[-12:])
        raise RuntimeError(f"bench snippet failed (exit {output.returncode}):\n{tail}")
    return json.loads(output.stdout.strip().splitlines()[-1])


def medians(samples: list[dict[str, float]]) -> dict[str, float]:
    """Median of each figure over several samples."""
    return {name: statistics.median(sample[name] for sample in samples) for name in samples[0]}


def median_of(snippet: str, environment: dict[str, str], runs: int) -> dict[str, float]:
    """Median of each figure over several cold starts."""
    return medians([run(snippet, environment) for _ in range(runs)])


def start_dynamodb() -> tuple[object, str]:
    """moto on loopback with the table and one product per tenant, as both apps' DynamoDB and this app's STS.

    moto's server answers every service at one address, told apart by the request's signature.
    """
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
    for tenant_id in TENANTS:
        # Keyed as CatalogRepository.put keys a product, which needs the app's settings this process lacks.
        item_keys = {**keys.product_key(tenant_id, PRODUCT_ID), **keys.catalog_index_key(tenant_id, PRODUCT_ID)}
        client.put_item(
            TableName=TABLE,
            Item={
                **{name: {"S": value} for name, value in item_keys.items()},
                "product_id": {"S": PRODUCT_ID},
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


def calls(samples: list[dict[str, float]], name: str) -> str:
    """The AssumeRole calls one figure made in every run ("1", or "1..2" if runs differ), flagged if unexpected."""
    counts = sorted({int(sample[name]) for sample in samples})
    text = str(counts[0]) if len(counts) == 1 else f"{counts[0]}..{counts[-1]}"
    expected = EXPECTED_ASSUME_ROLE_CALLS[name]
    return text if counts == [expected] else f"{text} (expected {expected})"


def row(label: str, value: str, note: str = "", assume_roles: str = "") -> str:
    """One row of the tenant-credential report: label, figure, comparison, and AssumeRole calls if counted."""
    text = f"  {label:<46} {value:>10}"
    if note:
        text += f"  {note}"
    if assume_roles:
        text += f"   AssumeRole calls {assume_roles}"
    return text


def tenant_lines(samples: list[dict[str, float]]) -> list[str]:
    """The tenant-credential rows: first requests and the warm path, as ratios to the same run's baseline."""
    figures = medians(samples)
    warm, own = figures["warm"], figures["warm_own"]
    first_a, first_b, assume = figures["first_a"], figures["first_b"], figures["assume_alone"]
    # A difference of medians: a guide to where the time goes, not a measurement of its own.
    client = first_b - assume - warm
    lookup, credentials = figures["lookup"], figures["credentials"]

    def ms(seconds: float) -> str:
        return f"{seconds * 1000:.2f} ms"

    def us(seconds: float) -> str:
        return f"{seconds * 1e6:.2f} us"

    return [
        row(
            "tenant A first request, fresh container",
            ms(first_a),
            f"({first_a / own:5.1f}x warm baseline)",
            calls(samples, "first_a_calls"),
        ),
        row(
            "tenant B first request, warm container",
            ms(first_b),
            f"({first_b / own:5.1f}x warm baseline)",
            calls(samples, "first_b_calls"),
        ),
        row("  of which AssumeRole alone", ms(assume), f"({assume / first_b:.0%} of it)"),
        row("  of which the rest (client, by difference)", ms(client), f"({client / first_b:.0%} of it)"),
        row(
            "warm request, tenant client",
            ms(warm),
            f"({warm / own:5.2f}x warm baseline, {(warm - own) * 1e6:+.0f} us)",
            calls(samples, "warm_calls"),
        ),
        row("warm request, own client (baseline)", ms(own)),
        row(
            "client lookup: tenant_dynamodb",
            us(lookup),
            f"(own client's lru_cache {us(figures['own_lookup'])}, {lookup / own:.3%} of a warm request)",
        ),
        row(
            "credentials per signed call: tenant's",
            us(credentials),
            f"(own static ones {us(figures['own_credentials'])}, {credentials / own:.3%} of a warm request)",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=9, help="cold starts per variant (the median is reported)")
    parser.add_argument(
        "--warm-requests", type=int, default=WARM_REQUESTS, help="warm requests per variant and interpreter"
    )
    args = parser.parse_args(argv)
    server, url = start_dynamodb()
    try:
        environment = lambda_like_environment(url)
        bare = median_of(BARE, environment, args.runs)
        ours = median_of(OURS, environment, args.runs)
        untraced = median_of(OURS, {**environment, "TRACING": "off"}, args.runs)
        tenants = [run(tenant_credentials_snippet(args.warm_requests), environment) for _ in range(args.runs)]
        warm = run(WARM, environment)
    finally:
        server.stop()
    baseline = bare["import"] + bare["first_request"]
    print(
        f"cold start: import + first DynamoDB-backed request, median of {args.runs} fresh interpreters (Python {sys.version.split()[0]})"
    )
    print("  (this app's first request includes its tenant's AssumeRole)")
    print(line("bare Chalice + boto3", bare))
    print(line("this app, tracing+logs+metrics on", ours, baseline))
    print(line("this app, tracing off", untraced, baseline))
    print(
        f"tenant credentials: catalog read after import, median of {args.runs} fresh interpreters"
        " (STS and DynamoDB: moto on loopback)"
    )
    print(f"  warm: median of {args.warm_requests} requests per variant, the variants interleaved")
    for text in tenant_lines(tenants):
        print(text)
    print("warm path:")
    print(f"  RS256 access-token verification (cached JWKS): {warm['verify_token_us']:.0f} us")
    print(f"  pagination token decode: {warm['pagination_decode_us']:.1f} us")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
