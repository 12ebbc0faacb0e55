"""Cold-start and warm-path figures: this app against a bare Chalice app with boto3, side by side.

Both apps run as a Lambda cold start would: a fresh interpreter imports the app, then serves
its first request, a product read from DynamoDB (served here by moto on loopback). This app
runs with tracing, structured logs and metrics all on, in a Lambda-like environment (trace
header present and sampled), with the request already authorized as API Gateway would pass it.

This app reads a tenant's items with that tenant's own credentials (chalicelib.store.tenant_access):
its first request in a container assumes the tenant-access role through STS (moto too), later
ones reuse the client. The tenant-credential figures measure that first request, another
tenant's first request in the now warm container, and the warm request against the same request
made with the process's own client, counting the AssumeRole calls each makes. Part of the warm
difference is moto's own: for each call signed with assumed-role credentials its server looks up
their account and records the key's last use (the "credentials per signed call" row is the client's part).

The warm-route figures compare this app's own time on warm requests with a bare Chalice app's
(bare_app) in the same interpreter, tracing on and the request not sampled, as most requests
are: both serve GET /catalog/{product_id} and GET /catalog through Lambda's entry point, their
DynamoDB calls the same requests signed with the same tenant credentials against the same moto,
so that moto's time falls on both alike and the difference is this app's middleware, logging,
metrics, tracing, validation and tenant-credential layers. The bare app's client is boto3's
own, untouched by X-Ray's patching of botocore, which is process-wide: a bare app sharing it
would pay X-Ray's cost per call too and hide most of the list's. The snippet checks all of that
before timing. moto's time cancels out on average, not request by request: the list's 16 Queries
make its wall-clock difference vary by milliseconds between runs on a busy machine, so each row
also gives the difference in the function process's CPU time, which leaves moto's out.

The last rows weigh the tracing library (scripts.measure.tracing_cold_start): the X-Ray SDK as
chalicelib.telemetry.tracing sets it up against OpenTelemetry as chalicelib.telemetry.tracing_otel does, set up alone
and in the whole app's cold start, and the size each adds to the package. --tracing-only runs
just those.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from chalicelib.store import keys
from scripts.measure import tracing_cold_start
from scripts.measure.fresh_interpreter import medians, run

ROOT = Path(__file__).resolve().parents[2]
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
# The catalog tenant A lists: as many products as a seeded tenant of the local stack has, each
# priced to the cent so that the bare app's str(Decimal) renders it as this app's money() does.
CATALOG = {f"prod-{number:03d}": (f"Product {number}", f"{number * 3}.99") for number in range(1, 13)}
CATALOG[PRODUCT_ID] = ("Claw Hammer", "12.99")
# Warm requests per variant in each interpreter of the warm-route comparison, after WARM_UP untimed
# ones: a list costs 16 Queries of moto's time, about ten times a read, so it gets fewer.
ROUTE_REQUESTS = {"get product": 200, "list catalog": 60}
WARM_UP = 10
# Fresh interpreters the warm-route comparison runs in: their spread is the measurement's noise.
ROUTE_RUNS = 3
# The target for this app's own time on a warm request, over the bare app's.
GOAL_US = 100
# The routes compared: resource, path and path parameters as API Gateway passes them.
ROUTES = {
    "get product": ("/catalog/{product_id}", f"/catalog/{PRODUCT_ID}", {"product_id": PRODUCT_ID}),
    "list catalog": ("/catalog", "/catalog", None),
}

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
    # The same item this app reads, at the key chalicelib.store.keys gives it.
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
from chalicelib.store import tenant_access
from chalicelib.store import dynamodb
from chalicelib import tenant_repositories

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
tenant_scoped = tenant_repositories.tenant_dynamodb
def own_client(tenant_id):
    return dynamodb.dynamodb_client()
tenant_repositories.tenant_dynamodb = own_client
request("tenant-a")  # makes the process's own client, which the warm baseline then reuses
tenant_repositories.tenant_dynamodb = tenant_scoped

# Interleaved, and in alternating order, so that drift on a noisy machine falls on both alike.
scoped, own, warm_calls = [], [], 0
for i in range(%(requests)d):
    for variant in ((tenant_scoped, own_client) if i %% 2 else (own_client, tenant_scoped)):
        tenant_repositories.tenant_dynamodb = variant
        before = assume_role_calls
        seconds = request("tenant-a")
        if variant is tenant_scoped:
            scoped.append(seconds)
            warm_calls += assume_role_calls - before
        else:
            own.append(seconds)
tenant_repositories.tenant_dynamodb = tenant_scoped

# The warm path's two additions, each against what the baseline does in its place; best of five,
# the least disturbed timing. Finding the client: the tenant's through tenant_dynamodb, as the
# request path calls it, from TenantClients.dynamodb's dict under a lock; the process's from
# functools.lru_cache.
def best(statement, callable_):
    return min(timeit.repeat(statement, globals={"f": callable_}, number=%(lookups)d, repeat=5)) / %(lookups)d
lookup = best("f('tenant-a')", tenant_access.tenant_dynamodb)
own_lookup = best("f()", dynamodb.dynamodb_client)
# Reading the credentials, which botocore does for each call it signs: the tenant's refreshable
# ones check their expiry against the clock each time, the process's static ones do not.
credentials = best("f()", tenant_access.tenant_dynamodb("tenant-a")._request_signer._credentials.get_frozen_credentials)
own_credentials = best("f()", dynamodb.dynamodb_client()._request_signer._credentials.get_frozen_credentials)

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
from scripts.local.token_issuer import TokenIssuer
from chalicelib.web.auth import JwksCache, verify_access_token
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


WARM_ROUTES = (
    EVENT
    + """
import json, os, statistics, time
from concurrent.futures import ThreadPoolExecutor

from botocore.client import BaseClient
from botocore.endpoint import Endpoint

# This app's first request patches botocore for X-Ray in every client of the process: the bare
# app's client keeps the methods as they were before, as in a function without X-Ray.
plain_api_call, plain_prepare_request = BaseClient._make_api_call, Endpoint.prepare_request

import boto3
from botocore.config import Config

import app
from chalicelib.store import dynamodb, tenant_access
from chalicelib.telemetry.tracing import recorder
from scripts.measure.bench import ROUTES, bare_app, comparable_body, trace_header, without_xray

TENANT = "tenant-a"
AUTHORIZER = {"tenant_id": TENANT, "tier": "basic", "scopes": "tenant-api/catalog.read", "principalId": TENANT}
requests_made = 0

def call(handler, route):
    global requests_made
    requests_made += 1
    # As Lambda's runtime does before each invocation: a new trace id, here not sampled.
    os.environ["_X_AMZN_TRACE_ID"] = trace_header(requests_made, sampled=False)
    request = event(*ROUTES[route], AUTHORIZER)
    wall, cpu = time.perf_counter_ns(), time.process_time_ns()
    response = handler(request, CONTEXT)
    cpu, wall = time.process_time_ns() - cpu, time.perf_counter_ns() - wall
    assert response["statusCode"] == 200, response
    return response, wall / 1e9, cpu / 1e9

call(app.app, "get product")  # assumes the tenant's role and makes its client
ours_client = tenant_access.tenant_dynamodb(TENANT)
# The same credentials, static: moto does the same work for both apps' calls.
credentials = ours_client._request_signer._credentials.get_frozen_credentials()
bare_client = without_xray(
    boto3.client(
        "dynamodb",
        aws_access_key_id=credentials.access_key,
        aws_secret_access_key=credentials.secret_key,
        aws_session_token=credentials.token,
        # One connection per parallel Query, as this app's client has: fewer would queue them.
        config=Config(max_pool_connections=dynamodb.PARALLEL_QUERIES),
    ),
    plain_api_call,
    plain_prepare_request,
)
bare = bare_app(bare_client, os.environ["TABLE_NAME"], ThreadPoolExecutor(max_workers=dynamodb.PARALLEL_QUERIES))
VARIANTS = {"ours": app.app, "bare": bare}

# Before timing, what makes the comparison fair: the same DynamoDB requests and the same answer;
# and, the request not being sampled, no X-Ray work by either app (chalicelib.telemetry.tracing skips the
# SDK for an unsampled request) and nothing sent. (Both clients send Lambda's trace header:
# botocore does.)
xray = recorder()
touches, sent = [], []
def counting(owner, name, into):
    method = getattr(owner, name)
    def counted(*args, **kwargs):
        into.append(name)
        return method(*args, **kwargs)
    setattr(owner, name, counted)
WATCHED = ("record_subsegment", "current_subsegment", "get_trace_entity")
for name in WATCHED:
    counting(xray, name, touches)
counting(xray.emitter, "send_entity", sent)

def observed(variant, client, route):
    calls = []
    def on_call(params, model, **_):
        calls.append(json.dumps([model.name, params], sort_keys=True, default=str))
    client.meta.events.register("before-parameter-build.dynamodb", on_call, unique_id="bench-calls")
    del touches[:]
    try:
        response, _, _ = call(VARIANTS[variant], route)
    finally:
        client.meta.events.unregister("before-parameter-build.dynamodb", unique_id="bench-calls")
    return sorted(calls), list(touches), comparable_body(response["body"])

for route in ROUTES:
    ours_calls, ours_touches, ours_body = observed("ours", ours_client, route)
    bare_calls, bare_touches, bare_body = observed("bare", bare_client, route)
    assert ours_calls and ours_calls == bare_calls, (route, ours_calls, bare_calls)
    assert ours_body == bare_body, (route, ours_body, bare_body)
    assert not ours_touches and not bare_touches, (route, ours_touches, bare_touches)
assert not sent, sent
for name in WATCHED:
    delattr(xray, name)
del xray.emitter.send_entity

for _ in range(%(warm_up)d):
    for route in ROUTES:
        for handler in VARIANTS.values():
            call(handler, route)

# Interleaved, and in alternating order, so that drift on a noisy machine falls on both alike.
requests = %(requests)r
samples = {route: {variant: ([], []) for variant in VARIANTS} for route in ROUTES}
for i in range(max(requests.values())):
    for route in ROUTES:
        if i >= requests[route]:
            continue
        for variant in (("ours", "bare") if i %% 2 else ("bare", "ours")):
            _, wall, cpu = call(VARIANTS[variant], route)
            samples[route][variant][0].append(wall)
            samples[route][variant][1].append(cpu)

print(json.dumps({
    route: {
        f"{variant}_{clock}": statistics.median(samples[route][variant][index])
        for variant in VARIANTS for index, clock in enumerate(("wall", "cpu"))
    }
    for route in ROUTES
}))
"""
)


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


def trace_header(number: int, sampled: bool) -> str:
    """The _X_AMZN_TRACE_ID Lambda sets for an invocation: trace number `number`, sampled or not."""
    return f"Root=1-5759e988-{number:024x};Parent={number:016x};Sampled={int(sampled)}"


def routes_snippet(requests: dict[str, int] | None = None, warm_up: int = WARM_UP) -> str:
    """The warm-route snippet, with its timed requests per route and variant and its untimed warm-up."""
    return WARM_ROUTES % {"requests": dict(requests or ROUTE_REQUESTS), "warm_up": warm_up}


def without_xray(client: Any, make_api_call: Callable[..., Any], prepare_request: Callable[..., Any]) -> Any:
    """The client, its calls made with botocore's methods as given rather than as X-Ray patched them."""
    # X-Ray wraps these two on botocore's base classes; a subclass of the client's own classes
    # takes them back for this client alone, leaving this app's clients traced.
    client.__class__ = type(f"Untraced{type(client).__name__}", (type(client),), {"_make_api_call": make_api_call})
    endpoint = client._endpoint
    endpoint.__class__ = type(
        f"Untraced{type(endpoint).__name__}", (type(endpoint),), {"prepare_request": prepare_request}
    )
    return client


def catalog_query(table: str, partition: str, limit: int) -> dict[str, Any]:
    """The Query of one catalog partition for a first page, as chalicelib.store.dynamodb.query_sharded_list makes it."""
    return {
        "TableName": table,
        "KeyConditionExpression": "#pk = :pk",
        "ExpressionAttributeNames": {"#pk": keys.CATALOG_INDEX_PK},
        "ExpressionAttributeValues": {":pk": {"S": partition}},
        # One more than the page, which tells whether another page exists.
        "Limit": limit + 1,
        "ScanIndexForward": True,
        "IndexName": keys.CATALOG_INDEX,
    }


def bare_app(dynamodb: Any, table: str, pool: Any, limit: int = 20) -> Any:
    """A bare Chalice app serving the catalog with this app's DynamoDB calls, and no other layer.

    A product is one GetItem; the list is one Query per catalog partition, made at once on the
    pool as this app makes them, merged by product id, a page of `limit` (this app's default).
    """
    from boto3.dynamodb.types import TypeDeserializer
    from chalice import Chalice

    bare = Chalice(app_name="bare")
    deserializer = TypeDeserializer()

    def product(item: dict[str, Any]) -> dict[str, Any]:
        values = {name: deserializer.deserialize(value) for name, value in item.items()}
        return {
            "product_id": values["product_id"],
            "name": values["name"],
            "description": values.get("description", ""),
            "price": str(values["price"]),
            "currency": values["currency"],
            "stock": int(values["stock"]),
        }

    def caller() -> tuple[str, str]:
        context = bare.current_request.context
        return context["authorizer"]["tenant_id"], context["requestId"]

    @bare.route("/catalog/{product_id}")
    def get_product(product_id: str) -> dict[str, Any]:
        tenant_id, request_id = caller()
        key = {name: {"S": value} for name, value in keys.product_key(tenant_id, product_id).items()}
        item = dynamodb.get_item(TableName=table, Key=key)["Item"]
        return {**product(item), "tenant_id": tenant_id, "request_id": request_id}

    @bare.route("/catalog")
    def list_catalog() -> dict[str, Any]:
        tenant_id, request_id = caller()
        queries = [catalog_query(table, partition, limit) for partition in keys.catalog_partitions(tenant_id)]
        pages = pool.map(lambda query: dynamodb.query(**query)["Items"], queries)
        merged = list(heapq.merge(*pages, key=lambda item: item[keys.CATALOG_INDEX_SK]["S"]))
        page = merged[:limit]
        after = page[-1][keys.CATALOG_INDEX_SK]["S"] if len(merged) > limit else None
        return {
            "items": [product(item) for item in page],
            "next_token": after,
            "tenant_id": tenant_id,
            "request_id": request_id,
        }

    return bare


def comparable_body(body: str) -> dict[str, Any]:
    """A response body as both apps should agree on it: a next_token only as present or not.

    This app's token is signed and opaque, the bare app's the plain sort key it resumes after.
    """
    payload = json.loads(body)
    if "next_token" in payload:
        payload["next_token"] = payload["next_token"] is not None
    return payload


def tenant_credentials_snippet(requests: int = WARM_REQUESTS) -> str:
    """The tenant-credential snippet, with its number of warm requests per variant."""
    return TENANT_CREDENTIALS % {"requests": requests, "lookups": LOOKUPS}


def median_of(snippet: str, environment: dict[str, str], runs: int) -> dict[str, float]:
    """Median of each figure over several cold starts."""
    return medians([run(snippet, environment) for _ in range(runs)])


def start_dynamodb() -> tuple[object, str]:
    """moto on loopback with the table, tenant A's catalog and tenant B's prod-001, as both apps' DynamoDB and STS.

    moto's server answers every service at one address, told apart by the request's signature.
    """
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    from chalicelib.store.schema import table_definition

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
        # Tenant A's whole catalog, which the warm-route comparison lists; the others read prod-001 only.
        catalog = CATALOG if tenant_id == TENANTS[0] else {PRODUCT_ID: CATALOG[PRODUCT_ID]}
        for product_id, (name, price) in catalog.items():
            client.put_item(TableName=TABLE, Item=product_item(tenant_id, product_id, name, price))
    return server, url


def product_item(tenant_id: str, product_id: str, name: str, price: str) -> dict[str, Any]:
    """A product as DynamoDB holds it, keyed as CatalogRepository.put keys it (which needs settings this process lacks)."""
    item_keys = {**keys.product_key(tenant_id, product_id), **keys.catalog_index_key(tenant_id, product_id)}
    return {
        **{attribute: {"S": value} for attribute, value in item_keys.items()},
        "product_id": {"S": product_id},
        "name": {"S": name},
        "description": {"S": ""},
        "price": {"N": price},
        "currency": {"S": "USD"},
        "stock": {"N": "5"},
    }


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


def verdict(difference_us: float, runs_us: list[float], goal_us: float = GOAL_US) -> str:
    """The goal's verdict on a difference; flagged when the runs fall on both sides of it."""
    text = f"goal ≤ {goal_us:.0f} µs: {'met' if difference_us <= goal_us else 'NOT MET'}"
    if min(runs_us) <= goal_us < max(runs_us):
        text += " (runs on both sides: within the noise)"
    return text


def route_lines(samples: list[dict[str, dict[str, float]]]) -> list[str]:
    """The warm-route rows: per route, this app against the bare app, over the runs' figures.

    Each run gives each variant's median wall and CPU time; a row gives the median over runs
    of each, and of each run's difference (which the goal is judged on), with the runs' spread.
    CPU time is the function process's alone, so moto's (in another process) is not in it.
    """
    rows = []
    for route in samples[0]:
        figures = [sample[route] for sample in samples]
        ours = statistics.median(figure["ours_wall"] for figure in figures)
        bare = statistics.median(figure["bare_wall"] for figure in figures)
        walls = [(figure["ours_wall"] - figure["bare_wall"]) * 1e6 for figure in figures]
        cpus = [(figure["ours_cpu"] - figure["bare_cpu"]) * 1e6 for figure in figures]
        difference = statistics.median(walls)
        rows.append(
            f"  {route:<13} this app {ours * 1000:6.2f} ms   bare {bare * 1000:6.2f} ms"
            f"   difference {difference:+5.0f} us ({ours / bare:.2f}x)   {verdict(difference, walls)}"
        )
        rows.append(
            f"  {'':<13} runs {' '.join(f'{wall:+.0f}' for wall in walls)} us (spread {max(walls) - min(walls):.0f} us);"
            f" CPU only, without moto's time: {statistics.median(cpus):+.0f} us"
            f" (runs {' '.join(f'{cpu:+.0f}' for cpu in cpus)})"
        )
    return rows


@dataclass
class Measured:
    """The figures of the cold-start, tenant-credential and warm-path parts of the report."""

    runs: int
    bare: dict[str, float]
    ours: dict[str, float]
    untraced: dict[str, float]
    tenants: list[dict[str, float]]
    warm_requests: int
    warm: dict[str, float]
    route_requests: dict[str, int]
    routes: list[dict[str, dict[str, float]]]


def measure(args: argparse.Namespace, environment: dict[str, str]) -> Measured:
    """Every figure but the tracing library's, in fresh interpreters against the moto the environment names."""
    route_requests = dict(zip(ROUTE_REQUESTS, args.route_requests))
    unsampled = {**environment, "_X_AMZN_TRACE_ID": trace_header(0, sampled=False)}
    return Measured(
        runs=args.runs,
        bare=median_of(BARE, environment, args.runs),
        ours=median_of(OURS, environment, args.runs),
        untraced=median_of(OURS, {**environment, "TRACING": "off"}, args.runs),
        tenants=[run(tenant_credentials_snippet(args.warm_requests), environment) for _ in range(args.runs)],
        warm_requests=args.warm_requests,
        warm=run(WARM, environment),
        route_requests=route_requests,
        routes=[run(routes_snippet(route_requests), unsampled) for _ in range(args.route_runs)],
    )


def report(measured: Measured) -> list[str]:
    """The cold-start, tenant-credential and warm-path lines of the report."""
    baseline = measured.bare["import"] + measured.bare["first_request"]
    counts = ", ".join(f"{count} {route.split()[0]}" for route, count in measured.route_requests.items())
    return [
        f"cold start: import + first DynamoDB-backed request, median of {measured.runs} fresh interpreters"
        f" (Python {sys.version.split()[0]})",
        "  (this app's first request includes its tenant's AssumeRole)",
        line("bare Chalice + boto3", measured.bare),
        line("this app, tracing+logs+metrics on", measured.ours, baseline),
        line("this app, tracing off", measured.untraced, baseline),
        f"tenant credentials: catalog read after import, median of {measured.runs} fresh interpreters"
        " (STS and DynamoDB: moto on loopback)",
        f"  warm: median of {measured.warm_requests} requests per variant, the variants interleaved",
        *tenant_lines(measured.tenants),
        "warm path:",
        f"  RS256 access-token verification (cached JWKS): {measured.warm['verify_token_us']:.0f} us",
        f"  pagination token decode: {measured.warm['pagination_decode_us']:.1f} us",
        "warm requests, tracing on and not sampled: this app against a bare Chalice app making the same"
        " DynamoDB calls in the same interpreter",
        f"  median of {counts} requests per variant, interleaved, in each of {len(measured.routes)} fresh"
        " interpreters; median of the interpreters",
        *route_lines(measured.routes),
    ]


def main(argv: list[str] | None = None) -> int:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=9, help="cold starts per variant (the median is reported)")
    parser.add_argument(
        "--warm-requests", type=int, default=WARM_REQUESTS, help="warm requests per variant and interpreter"
    )
    parser.add_argument(
        "--route-runs", type=int, default=ROUTE_RUNS, help="fresh interpreters of the warm-route comparison"
    )
    parser.add_argument(
        "--route-requests",
        type=int,
        nargs=2,
        metavar=("GET", "LIST"),
        default=list(ROUTE_REQUESTS.values()),
        help="warm-route requests per variant and interpreter: get product, list catalog",
    )
    parser.add_argument(
        "--tracing-only",
        action="store_true",
        help="only the tracing library's cold start, X-Ray SDK against OpenTelemetry (scripts.measure.tracing_cold_start)",
    )
    args = parser.parse_args(argv)
    server, url = start_dynamodb()
    try:
        environment = lambda_like_environment(url)
        measured = None if args.tracing_only else measure(args, environment)
        tracing = tracing_cold_start.measure(environment, args.runs, EVENT)
    finally:
        server.stop()
    lines = [] if measured is None else report(measured)
    for text in [*lines, *tracing_cold_start.report(tracing)]:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
