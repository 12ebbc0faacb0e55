"""Traces, access and security logs and EMF metrics of real requests on moto, with no secret in any of them."""

from __future__ import annotations

import base64
import http.client
import json
import re
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlencode, urlsplit

import boto3
import pytest
from botocore.exceptions import ClientError

from chalicelib import services
from chalicelib.store import keys
from chalicelib.store.catalog import CatalogRepository
from chalicelib.store.dynamodb import dynamodb_client
from chalicelib.store.registry import SUSPENDED, TenantRegistry
from chalicelib.telemetry.logs import SERVICE
from chalicelib.telemetry.metrics import METRICS_NAMESPACE
from chalicelib.web import middleware
from chalicelib.web.ratelimit import TenantRateLimiter
from scripts import monitoring
from scripts.local.token_issuer import TokenIssuer
from scripts.local.token_server import TokenServer
from scripts.measure import contributor_insights
from scripts.monitoring import Deployment
from tests.support.api import Api, Reply, assert_error
from tests.support.aws import dynamodb_calls_through
from tests.support.capture import CapturedLogs, InMemoryEmitter
from tests.support.clock import FakeClock
from tests.support.project import PROJECT_DIR
from tests.support.settings import Environment, rate_limit_middleware
from tests.support.tenants import (
    ACME,
    ALL_SCOPES,
    GLOBEX,
    INITECH,
    PAGINATION_SECRET,
    RESOURCE_SERVER,
    TENANTS,
    SeedTenant,
)
from tests.unit.test_emf import dimension_sets, emf_documents, emf_problems, metric_values

ONE_LINE = [{"product_id": "prod-001", "quantity": 2}]
TRACE_ID = re.compile(r"^1-[0-9a-f]{8}-[0-9a-f]{24}$")
ACCESS_FIELDS = {
    "timestamp", "level", "message", "request_id", "tenant_id", "tier", "route", "status", "latency_ms",
    "xray_trace_id",
}  # fmt: skip
# The fields the saved queries and dashboard widgets are expected to use, all of them in the logs.
QUERIED_FIELDS = {
    "tenant_id", "status", "latency_ms", "request_id", "security_event", "xray_trace_id", "route", "error_code",
}  # fmt: skip


# --- helpers ---------------------------------------------------------------------------------


def request_segment(traces: InMemoryEmitter, request_id: str) -> dict[str, Any]:
    """The one segment of the request with this id."""
    [segment] = [s for s in traces.segments() if s.get("annotations", {}).get("request_id") == request_id]
    return segment


def authorizer_segments(traces: InMemoryEmitter) -> list[dict[str, Any]]:
    return [segment for segment in traces.segments() if "outcome" in segment.get("annotations", {})]


def aws_calls(segment: dict[str, Any]) -> list[tuple[str, str]]:
    """The (service, operation) of each AWS call recorded as a subsegment of segment, in order."""
    calls = segment.get("subsegments", [])
    assert all(call["namespace"] == "aws" for call in calls), calls
    return [(call["name"], call["aws"]["operation"]) for call in calls]


def dynamodb_calls(segment: dict[str, Any]) -> list[str]:
    """The DynamoDB operations recorded as subsegments of segment, in order; the only other call is a tenant's AssumeRole."""
    calls = aws_calls(segment)
    assert {call for call in calls if call[0] != "dynamodb"} <= {("sts", "AssumeRole")}, calls
    return [operation for service, operation in calls if service == "dynamodb"]


def access_line(logs: CapturedLogs, request_id: str) -> dict[str, Any]:
    """The one access-log line of the request with this id."""
    [line] = [record for record in logs.access() if record["request_id"] == request_id]
    return line


def metrics_documents(logs: CapturedLogs) -> list[dict[str, Any]]:
    """The EMF documents logged so far, each checked against the specification."""
    documents = emf_documents(logs.text)
    for document in documents:
        assert emf_problems(document) == [], document
    return documents


def request_metrics(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [document for document in documents if "Requests" in document]


def order_metrics(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [document for document in documents if "OrdersPlaced" in document]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def tampered(token: str, **claims: Any) -> str:
    """The token with claims changed in its payload and its signature left as it was."""
    header, payload, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return f"{header}.{b64(json.dumps({**decoded, **claims}).encode())}.{signature}"


def suspended(tenant: SeedTenant, api: Api) -> Reply:
    """Suspend tenant in the registry, then call the API as it."""
    TenantRegistry().put(tenant.record(status=SUSPENDED))
    return api.get("/catalog", tenant)


def expired(issuer: TokenIssuer, client_id: str) -> str:
    return issuer.sign(issuer.claims(client_id, ALL_SCOPES, lifetime_seconds=600, now=time.time() - 3600))


@pytest.fixture
def in_app_limits(env: Environment) -> FakeClock:
    """The local stage's in-app rate limiter, on a clock that only moves when told."""
    env.set(RATE_LIMITER="in-app")
    clock = FakeClock()
    rate_limit_middleware().limiter = TenantRateLimiter(clock=clock)
    return clock


@pytest.fixture
def explode(monkeypatch: pytest.MonkeyPatch) -> str:
    """Make reading a product fail with an error no code expects; returns its message."""
    message = "the product catalog exploded"

    def get_product(*_: Any) -> Any:
        raise RuntimeError(message)

    monkeypatch.setattr(services, "get_product", get_product)
    return message


# --- X-Ray -----------------------------------------------------------------------------------


def test_each_request_is_a_segment_annotated_with_its_tenant_and_outcome(api: Api, traces: InMemoryEmitter):
    reply = api.get("/catalog/prod-002", GLOBEX)
    assert reply.status == 200
    rid = reply.header("X-Request-Id")
    segment = request_segment(traces, rid)
    assert segment["annotations"] == {
        "tenant_id": "globex",
        "tier": "standard",
        "request_id": rid,
        "endpoint": "GET /catalog/{product_id}",
        "status": 200,
    }
    assert segment["name"] == middleware.tracing.recorder().service
    assert TRACE_ID.match(segment["trace_id"])
    assert segment["http"] == {"request": {"method": "GET", "url": "/catalog/prod-002"}, "response": {"status": 200}}
    assert dynamodb_calls(segment) == ["GetItem"]
    [get_item] = [call for call in segment["subsegments"] if call["name"] == "dynamodb"]
    assert get_item["aws"]["table_name"] == "tenant-api-local"


def test_every_dynamodb_call_of_a_request_is_a_subsegment(api: Api, traces: InMemoryEmitter):
    placed = api.post_order(ONE_LINE, ACME, idempotency_key="order-1")
    listed = api.get("/orders", ACME)
    assert (placed.status, listed.status) == (201, 200)
    assert dynamodb_calls(request_segment(traces, placed.header("X-Request-Id"))) == [
        "BatchGetItem",  # the catalog's prices and stock, and the idempotency record
        "TransactWriteItems",  # stock, order and idempotency record together
    ]
    # The order partitions are queried in parallel from worker threads: still part of the trace.
    listed_segment = request_segment(traces, listed.header("X-Request-Id"))
    assert dynamodb_calls(listed_segment) == ["Query"] * keys.ORDER_SHARDS
    assert {call["parent_id"] for call in listed_segment["subsegments"]} == {listed_segment["id"]}


def test_a_tenants_first_request_traces_its_one_assume_role_and_later_requests_none(api: Api, traces: InMemoryEmitter):
    first = request_segment(traces, api.get("/catalog/prod-001", GLOBEX).header("X-Request-Id"))
    second = request_segment(traces, api.get("/catalog/prod-002", GLOBEX).header("X-Request-Id"))
    assert aws_calls(first) == [("sts", "AssumeRole"), ("dynamodb", "GetItem")]
    assert aws_calls(second) == [("dynamodb", "GetItem")]


def test_requests_without_a_tenant_are_traced_without_one(api: Api, traces: InMemoryEmitter):
    rid = api.get("/health", tenant=None).header("X-Request-Id")
    assert request_segment(traces, rid)["annotations"] == {"request_id": rid, "endpoint": "GET /health", "status": 200}


def test_metadata_has_the_bodies_redacted_and_never_the_authorization_header(api: Api, traces: InMemoryEmitter):
    token = api.token(ACME)
    body = json.dumps({"items": ONE_LINE, "client_secret": "hunter2-secret", "api_key": "key-value-1"})
    reply = api.request(
        "POST", "/orders", ACME, headers={"Content-Type": "application/json", "Idempotency-Key": "k-1"}, body=body
    )
    assert_error(reply, 422, "validation_error")
    metadata = request_segment(traces, reply.header("X-Request-Id"))["metadata"]["default"]
    assert metadata["request"] == {
        "method": "POST",
        "path": "/orders",
        "path_parameters": {},
        "query": {},
        "headers": {"content-type": "application/json", "idempotency-key": "k-1"},
        "body": {"items": ONE_LINE, "client_secret": "[redacted]", "api_key": "[redacted]"},
    }
    assert metadata["response"] == {"status": 422, "body": None, "error_code": "validation_error"}
    listed = api.get("/catalog?limit=2", ACME)
    response = request_segment(traces, listed.header("X-Request-Id"))["metadata"]["default"]["response"]
    assert listed.json["next_token"] and response["body"]["next_token"] == "[redacted]"
    everything = json.dumps(traces.documents)
    for secret in (token, "hunter2-secret", "key-value-1", listed.json["next_token"], ACME.api_key_value):
        assert secret not in everything


def test_a_large_body_is_capped_in_the_trace(api: Api, traces: InMemoryEmitter):
    lines = [{"product_id": f"prod-{number:03d}", "quantity": 1} for number in range(1, 61)]
    reply = api.post_order(lines, ACME)
    assert_error(reply, 422, "validation_error")
    traced = request_segment(traces, reply.header("X-Request-Id"))["metadata"]["default"]["request"]
    assert isinstance(traced, str) and traced.startswith('{"method": "POST"') and traced.endswith("...[truncated]")
    assert len(traced) == middleware.tracing.MAX_METADATA_CHARS + len("...[truncated]")


@pytest.mark.parametrize(
    ("path", "tenant", "status", "flags"),
    [
        ("/catalog/prod-999", ACME, 404, {"error"}),
        ("/orders?limit=0", ACME, 400, {"error"}),
    ],
)
def test_a_client_error_flags_the_segment_as_an_error(api: Api, traces: InMemoryEmitter, path, tenant, status, flags):
    reply = api.get(path, tenant)
    assert reply.status == status
    segment = request_segment(traces, reply.header("X-Request-Id"))
    assert segment["annotations"]["status"] == status
    assert {flag for flag in ("error", "throttle", "fault") if segment.get(flag)} == flags
    assert "cause" not in segment


def test_an_unexpected_error_is_recorded_with_its_stack(api: Api, traces: InMemoryEmitter, explode: str):
    reply = api.get("/catalog/prod-001", ACME)
    body = assert_error(reply, 500, "internal_error")
    assert explode not in reply.body.decode()
    segment = request_segment(traces, body["request_id"])
    assert segment["annotations"]["status"] == 500
    assert segment["fault"] is True
    [exception] = segment["cause"]["exceptions"]
    assert (exception["type"], exception["message"]) == ("RuntimeError", explode)
    frames = [(frame["path"], frame["label"]) for frame in exception["stack"]]
    assert ("app.py", "get_product") in frames
    assert frames[-1] == ("test_observability.py", "get_product")


def test_a_dynamodb_failure_is_a_fault_of_the_request(api: Api, traces: InMemoryEmitter, monkeypatch):
    assert api.get("/catalog", ACME).status == 200  # the registry record is now cached

    def throttled(operation_name: str, params: dict[str, Any], original: Any) -> Any:
        if operation_name == "Query":
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, operation_name)
        return original(operation_name, params)

    dynamodb_calls_through(monkeypatch, throttled)
    reply = api.get("/catalog", ACME)
    assert_error(reply, 503, "service_unavailable")
    segment = request_segment(traces, reply.header("X-Request-Id"))
    assert (segment["annotations"]["status"], segment.get("fault")) == (503, True)


def test_a_throttled_request_flags_the_segment_as_throttled(api: Api, traces: InMemoryEmitter, in_app_limits):
    replies = [api.get("/catalog/prod-001", ACME) for _ in range(21)]
    assert [reply.status for reply in replies] == [200] * 20 + [429]
    segment = request_segment(traces, replies[-1].header("X-Request-Id"))
    assert (segment.get("throttle"), segment.get("error"), segment["annotations"]["status"]) == (True, True, 429)
    assert dynamodb_calls(segment) == []


def test_the_authorizer_is_traced_with_its_outcome(api: Api, traces: InMemoryEmitter, token_issuer: TokenIssuer):
    assert api.get("/catalog", ACME).status == 200
    assert api.get("/catalog", ACME).status == 200
    assert api.get("/catalog", ACME, token=expired(token_issuer, ACME.client_id)).status == 401
    assert api.get("/catalog", ACME, token=token_issuer.issue("nobodysclient", ALL_SCOPES)).status == 401
    TenantRegistry().put(INITECH.record(status=SUSPENDED))
    assert api.get("/catalog", INITECH).status == 403
    segments = authorizer_segments(traces)
    assert [segment["annotations"] for segment in segments] == [
        {"tenant_id": "acme", "tier": "basic", "outcome": "allowed"},
        {"tenant_id": "acme", "tier": "basic", "outcome": "allowed"},
        {"outcome": "refused", "security_event": "expired"},
        {"outcome": "refused", "security_event": "unknown client"},
        {"tenant_id": "initech", "tier": "premium", "outcome": "denied", "security_event": "tenant suspended"},
    ]
    # The registry is read once per client and then cached.
    assert [dynamodb_calls(segment) for segment in segments] == [
        ["GetItem", "GetItem"],
        [],
        [],
        ["GetItem"],
        ["GetItem", "GetItem"],
    ]


def test_an_authorizer_failure_is_recorded_with_its_stack(api: Api, traces: InMemoryEmitter, monkeypatch):
    def unreachable(*_: Any) -> Any:
        raise RuntimeError("registry unreachable")

    monkeypatch.setattr(TenantRegistry, "find_by_client_id", unreachable)
    assert api.get("/catalog", ACME).status == 503
    [segment] = authorizer_segments(traces)
    assert segment["annotations"] == {"outcome": "failed"}
    assert segment["cause"]["exceptions"][0]["message"] == "registry unreachable"


# --- logs ------------------------------------------------------------------------------------


def test_each_request_has_one_access_line_with_every_field(api: Api, logs: CapturedLogs, traces: InMemoryEmitter):
    replies = [api.get("/catalog", ACME), api.get("/catalog/prod-003", GLOBEX), api.post_order(ONE_LINE, ACME)]
    replies.append(api.get(f"/orders/{replies[2].json['order_id']}", ACME))
    replies += [api.get("/orders", INITECH), api.get("/catalog/prod-999", INITECH)]
    lines = logs.access()
    assert len(lines) == len(replies)
    for reply, line in zip(replies, lines):
        rid = reply.header("X-Request-Id")
        assert line["request_id"] == rid
        assert ACCESS_FIELDS <= set(line), line
        # Lambda's own request id and cold start stay; what the log event already says does not.
        assert {"function_request_id", "cold_start"} <= set(line), line
        assert not {"function_name", "function_arn", "function_memory_size", "location"} & set(line), line
        assert (line["level"], line["message"], line["status"]) == ("INFO", "request", reply.status)
        datetime.strptime(line["timestamp"], "%Y-%m-%dT%H:%M:%S.%f%z")
        assert isinstance(line["latency_ms"], (int, float)) and line["latency_ms"] >= 0
        segment = request_segment(traces, rid)
        assert line["xray_trace_id"] == segment["trace_id"]
        assert (line["tenant_id"], line["tier"], line["route"]) == (
            segment["annotations"]["tenant_id"],
            segment["annotations"]["tier"],
            segment["annotations"]["endpoint"],
        )
    assert [line["route"] for line in lines] == [
        "GET /catalog",
        "GET /catalog/{product_id}",
        "POST /orders",
        "GET /orders/{order_id}",
        "GET /orders",
        "GET /catalog/{product_id}",
    ]
    assert [(line["tenant_id"], line["tier"]) for line in lines] == [
        ("acme", "basic"),
        ("globex", "standard"),
        ("acme", "basic"),
        ("acme", "basic"),
        ("initech", "premium"),
        ("initech", "premium"),
    ]
    assert lines[-1]["error_code"] == "not_found"
    assert all("error_code" not in line for line in lines[:-1])


def test_an_unauthenticated_route_has_an_access_line_without_a_tenant(api: Api, logs: CapturedLogs):
    reply = api.get("/health", tenant=None)
    line = access_line(logs, reply.header("X-Request-Id"))
    assert (line["route"], line["status"]) == ("GET /health", 200)
    assert "tenant_id" not in line and "tier" not in line


def test_an_unexpected_error_is_logged_with_its_stack_and_request(api: Api, logs: CapturedLogs, explode: str):
    rid = api.get("/catalog/prod-001", ACME).header("X-Request-Id")
    error, access = logs.records()
    assert (error["level"], error["message"], error["request_id"], error["tenant_id"]) == (
        "ERROR",
        "unhandled error",
        rid,
        "acme",
    )
    assert f"RuntimeError: {explode}" in error["exception"]
    assert error["xray_trace_id"] == access["xray_trace_id"]
    assert (access["request_id"], access["status"], access["error_code"]) == (rid, 500, "internal_error")


@pytest.mark.parametrize(
    ("case", "status", "reason"),
    [
        ("bad signature", 401, "bad signature"),
        ("expired token", 401, "expired"),
        ("unknown client", 401, "unknown client"),
        ("suspended tenant", 403, "tenant suspended"),
        ("another tenant's order", 404, "unowned_resource_id"),
        ("another tenant's product id", 404, "unowned_resource_id"),
        ("malformed pagination token", 400, "bad_pagination_token"),
        ("another tenant's pagination token", 400, "bad_pagination_token"),
    ],
)
def test_each_probe_is_logged_as_a_security_event_without_the_token(
    api: Api, logs: CapturedLogs, token_issuer: TokenIssuer, case: str, status: int, reason: str
):
    acme_order = api.post_order(ONE_LINE, ACME).json["order_id"]
    acme_page = api.get("/catalog?limit=1", ACME).json["next_token"]
    CatalogRepository(ACME.tenant_id, dynamodb_client()).put(ACME.product(6))  # a product id only acme has
    before = len(logs.records())
    probes = {
        "bad signature": lambda: api.get("/catalog", ACME, token=tampered(api.token(ACME), client_id=GLOBEX.client_id)),
        "expired token": lambda: api.get("/catalog", ACME, token=expired(token_issuer, ACME.client_id)),
        "unknown client": lambda: api.get("/catalog", ACME, token=token_issuer.issue("nobodysclient", ALL_SCOPES)),
        "suspended tenant": lambda: suspended(GLOBEX, api),
        "another tenant's order": lambda: api.get(f"/orders/{acme_order}", GLOBEX),
        "another tenant's product id": lambda: api.get("/catalog/prod-006", GLOBEX),
        "malformed pagination token": lambda: api.get("/catalog?next_token=bm90LWEtdG9rZW4", GLOBEX),
        "another tenant's pagination token": lambda: api.get(f"/catalog?next_token={acme_page}", GLOBEX),
    }
    reply = probes[case]()
    assert reply.status == status
    probe_lines = logs.records()[before:]
    events = [line for line in probe_lines if "security_event" in line]
    assert [line["security_event"] for line in events] == [reason]
    [event] = events
    if status in (401, 403):
        # Refused by the authorizer: the request never reaches the API, which logs nothing.
        assert (event["level"], event["message"]) == ("WARNING", "security event")
        assert probe_lines == events
    else:
        assert event == access_line(logs, reply.header("X-Request-Id"))
        assert (event["status"], event["tenant_id"]) == (status, "globex")
    if case == "suspended tenant":
        assert (event["tenant_id"], event["tier"]) == ("globex", "standard")
    assert "eyJ" not in logs.text  # how every JWT starts


# --- metrics ---------------------------------------------------------------------------------


def test_each_request_emits_valid_metrics_for_its_tier_in_its_access_line(api: Api, logs):
    statuses = [
        api.get("/catalog", ACME).status,
        api.get("/catalog/prod-999", GLOBEX).status,
        api.get("/orders?limit=500", INITECH).status,
        api.get("/health", tenant=None).status,
    ]
    assert statuses == [200, 404, 400, 200]
    documents = request_metrics(metrics_documents(logs))
    assert len(documents) == 3  # /health is not tenant traffic
    assert documents == logs.access()[:3]
    for document, tenant in zip(documents, (ACME, GLOBEX, INITECH)):
        assert [directive["Namespace"] for directive in document["_aws"]["CloudWatchMetrics"]] == [METRICS_NAMESPACE]
        assert dimension_sets(document) == {frozenset({"service", "tier"})}
        assert (document["service"], document["tier"], document["tenant_id"]) == (
            SERVICE,
            tenant.tier,
            tenant.tenant_id,
        )
    assert [
        {name: value for name, value in metric_values(document).items() if name != "Latency"} for document in documents
    ] == [
        {"Requests": 1, "ClientErrors": 0, "ServerErrors": 0, "Throttled": 0},
        {"Requests": 1, "ClientErrors": 1, "ServerErrors": 0, "Throttled": 0},
        {"Requests": 1, "ClientErrors": 1, "ServerErrors": 0, "Throttled": 0},
    ]
    assert all(0 <= metric_values(document)["Latency"] < 5000 for document in documents)


def test_a_server_error_counts_as_one_and_not_as_a_client_error(api: Api, logs, explode):
    assert api.get("/catalog/prod-001", ACME).status == 500
    [document] = request_metrics(metrics_documents(logs))
    assert {name: metric_values(document)[name] for name in ("ServerErrors", "ClientErrors")} == {
        "ServerErrors": 1,
        "ClientErrors": 0,
    }


def test_a_throttled_request_is_counted_as_throttled(api: Api, logs, in_app_limits):
    statuses = [api.get("/catalog/prod-001", ACME).status for _ in range(21)]
    assert statuses == [200] * 20 + [429]
    documents = request_metrics(metrics_documents(logs))
    assert [metric_values(document)["Throttled"] for document in documents] == [0] * 20 + [1]
    assert metric_values(documents[-1])["ClientErrors"] == 1
    assert access_line(logs, logs.access()[-1]["request_id"])["error_code"] == "too_many_requests"


def test_orders_are_counted_with_their_value_only_when_new(api: Api, logs):
    first = api.post_order(ONE_LINE, ACME, idempotency_key="order-1")
    replay = api.post_order(ONE_LINE, ACME, idempotency_key="order-1")
    other = api.post_order([{"product_id": "prod-002", "quantity": 3}], GLOBEX)
    refused = api.post_order([{"product_id": "prod-001", "quantity": 11}], ACME)
    assert (first.status, replay.status, other.status, refused.status) == (201, 201, 201, 409)
    assert (first.header("Idempotent-Replayed"), replay.header("Idempotent-Replayed")) == ("false", "true")
    documents = metrics_documents(logs)
    orders = order_metrics(documents)
    order_figures = [
        (document["tier"], {name: metric_values(document)[name] for name in ("OrdersPlaced", "OrderValue")})
        for document in orders
    ]
    assert order_figures == [
        ("basic", {"OrdersPlaced": 1, "OrderValue": float(Decimal(first.json["total"]))}),
        ("standard", {"OrdersPlaced": 1, "OrderValue": float(Decimal(other.json["total"]))}),
    ]
    assert first.json["total"] == "41.98" and other.json["total"] == "21.75"
    assert all(dimension_sets(document) == {frozenset({"service", "tier"})} for document in orders)
    # Each order's figures are in the line of the request that placed it: one line per request.
    assert len(request_metrics(documents)) == len(documents) == len(logs.access()) == 4
    assert [document["request_id"] for document in orders] == [
        first.header("X-Request-Id"),
        other.header("X-Request-Id"),
    ]


# --- nothing secret anywhere -----------------------------------------------------------------


class TokenEndpoint:
    """Cognito app clients for two seed tenants on moto, and the token endpoint that serves them."""

    def __init__(self) -> None:
        cognito = boto3.client("cognito-idp", region_name="us-east-1")
        pool_id = cognito.create_user_pool(PoolName="tenants")["UserPool"]["Id"]
        cognito.create_resource_server(
            UserPoolId=pool_id,
            Identifier=RESOURCE_SERVER,
            Name=RESOURCE_SERVER,
            Scopes=[{"ScopeName": scope.split("/")[1], "ScopeDescription": scope} for scope in ALL_SCOPES],
        )
        self.clients: dict[str, tuple[str, str]] = {}
        for tenant in (ACME, GLOBEX):
            client = cognito.create_user_pool_client(
                UserPoolId=pool_id,
                ClientName=tenant.tenant_id,
                GenerateSecret=True,
                AllowedOAuthFlows=["client_credentials"],
                AllowedOAuthFlowsUserPoolClient=True,
                AllowedOAuthScopes=ALL_SCOPES,
            )["UserPoolClient"]
            TenantRegistry().put(tenant.record(client_id=client["ClientId"]))
            self.clients[tenant.tenant_id] = (client["ClientId"], client["ClientSecret"])
        self.server = TokenServer(cognito, pool_id)

    @property
    def issuer(self) -> TokenIssuer:
        return self.server.issuer

    def token(self, tenant_id: str) -> str:
        """An access token from POST /oauth2/token with the tenant's client id and secret."""
        client_id, secret = self.clients[tenant_id]
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        url = urlsplit(self.server.token_url)
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
        try:
            connection.request(
                "POST",
                url.path,
                body=urlencode({"grant_type": "client_credentials"}),
                headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
            )
            answer = connection.getresponse()
            assert answer.status == 200
            return json.loads(answer.read())["access_token"]
        finally:
            connection.close()


@pytest.fixture
def token_endpoint(table: None, env: Environment) -> Iterator[TokenEndpoint]:
    """The token endpoint on 127.0.0.1 issuing the tokens the API trusts."""
    endpoint = TokenEndpoint()
    endpoint.server.start()
    env.set(TOKEN_ISSUER=endpoint.issuer.issuer)
    try:
        yield endpoint
    finally:
        endpoint.server.stop()


def full_run(api: Api, endpoint: TokenEndpoint, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every kind of request, answer and refusal; returns every token and pagination token it used."""
    acme, globex = endpoint.token("acme"), endpoint.token("globex")
    issuer = endpoint.issuer
    forged = [
        tampered(acme, client_id=endpoint.clients["globex"][0]),
        expired(issuer, endpoint.clients["acme"][0]),
        issuer.issue("nobodysclient", ALL_SCOPES),
        issuer.issue(INITECH.client_id, ALL_SCOPES),
    ]
    TenantRegistry().put(INITECH.record(status=SUSPENDED))
    page = api.get("/catalog?limit=2", ACME, token=acme).json["next_token"]
    assert api.get(f"/catalog?limit=2&next_token={page}", ACME, token=acme).status == 200
    order = api.post_order(ONE_LINE, ACME, token=acme, idempotency_key="first-order")
    assert api.post_order(ONE_LINE, ACME, token=acme, idempotency_key="first-order").status == 201
    assert api.post_order(ONE_LINE, ACME, token=acme, idempotency_key="second-order").status == 201
    order_page = api.get("/orders?limit=1", ACME, token=acme).json["next_token"]
    assert api.get(f"/orders/{order.json['order_id']}", ACME, token=acme).status == 200
    assert api.get(f"/orders/{order.json['order_id']}", GLOBEX, token=globex).status == 404
    assert api.get(f"/catalog?next_token={page}", GLOBEX, token=globex).status == 400
    assert api.get("/catalog?next_token=garbage", GLOBEX, token=globex).status == 400
    assert api.post_order(ONE_LINE, GLOBEX, token=globex).status == 201
    assert [api.get("/catalog", ACME, token=token).status for token in forged] == [401, 401, 401, 403]
    assert api.get("/health", tenant=None).status == 200
    monkeypatch.setattr(services, "list_orders", lambda *_: 1 / 0)
    assert api.get("/orders", ACME, token=acme).status == 500
    statuses = [api.get("/catalog/prod-001", ACME, token=acme).status for _ in range(20)]
    assert statuses[-1] == 429
    return [acme, globex, *forged, page, order_page]


def test_no_secret_appears_in_any_log_metric_or_trace_of_a_full_run(
    api: Api,
    token_endpoint: TokenEndpoint,
    in_app_limits: FakeClock,
    logs: CapturedLogs,
    traces: InMemoryEmitter,
    capsys,
    caplog,
    monkeypatch,
):
    used_tokens = full_run(api, token_endpoint, monkeypatch)
    output = capsys.readouterr()
    # Every line on stdout is a JSON object; the logs went to their own stream for the scan.
    assert all(json.loads(line) for line in output.out.splitlines())
    records = logs.records()
    assert len(logs.access()) >= 30 and len(traces.segments()) >= 30
    assert set(logs.security_events()) >= {
        "bad signature", "expired", "unknown client", "tenant suspended", "unowned_resource_id", "bad_pagination_token",
    }  # fmt: skip
    assert any(record["message"] == "unhandled error" for record in records)
    secrets = {
        **{f"{tenant_id} client secret": secret for tenant_id, (_, secret) in token_endpoint.clients.items()},
        **{f"token {number}": token for number, token in enumerate(used_tokens)},
        **{f"{tenant.tenant_id} API key": tenant.api_key_value for tenant in TENANTS},
        "pagination secret": PAGINATION_SECRET,
    }
    captured = {
        "logs": logs.text,
        "stdout": output.out,
        "stderr": output.err,
        "other loggers": caplog.text,
        "traces": json.dumps(traces.documents),
    }
    for where, text in captured.items():
        assert "Bearer " not in text and "Basic " not in text and "eyJ" not in text, where
        for name, secret in secrets.items():
            # The token's signature alone would be as bad as the whole token.
            for fragment in {secret, secret.rsplit(".", 1)[-1]}:
                assert fragment not in text, f"{name} in {where}"


# --- the dashboard and saved queries match what is emitted -----------------------------------

INSIGHTS_WORDS = {
    "fields", "filter", "stats", "sort", "limit", "display", "parse", "dedup", "by", "as", "and", "or", "not",
    "desc", "asc", "in", "like", "count", "avg", "sum", "min", "max", "pct", "ispresent", "isempty", "isblank", "bin",
}  # fmt: skip


def insights_fields(query: str) -> set[str]:
    """The log fields a Logs Insights query names (not @ fields, keywords, functions or aliases)."""
    # Strings and durations (bin(5m)) are not fields.
    without_literals = re.sub(r"'[^']*'|\"[^\"]*\"|\b\d+(?:ms|s|m|h|d)\b", " ", query)
    aliases = set(re.findall(r"\bas\s+(\w+)", without_literals))
    fields = set()
    for command in without_literals.split("|"):
        if command.strip().upper().startswith("SOURCE"):
            continue
        for word in re.findall(r"@?[A-Za-z_][\w.]*", command):
            if not word.startswith("@") and word.lower() not in INSIGHTS_WORDS and word not in aliases:
                fields.add(word)
    return fields


def test_insights_fields_reads_queries_as_expected():
    query = (
        "SOURCE '/aws/lambda/x' | filter ispresent(tenant_id) and status >= 400 "
        "| stats count(*) as n, avg(latency_ms) as ms by tier | sort n desc | limit 10"
    )
    assert insights_fields(query) == {"tenant_id", "status", "latency_ms", "tier"}


DEPLOYMENT = Deployment(app_name="tenant-api", stage="prod", region="eu-west-1", table_name="tenant-api-prod")


def dashboard_queries() -> list[str]:
    widgets = monitoring.dashboard_body(DEPLOYMENT)["widgets"]
    return [widget["properties"]["query"] for widget in widgets if widget["type"] == "log"]


def test_saved_queries_and_dashboard_name_only_fields_the_logs_have(
    api: Api, logs: CapturedLogs, token_issuer: TokenIssuer, explode: str
):
    order = api.post_order(ONE_LINE, ACME).json["order_id"]
    api.get(f"/orders/{order}", GLOBEX)
    api.get("/catalog/prod-001", ACME)
    api.get("/catalog", ACME, token=expired(token_issuer, ACME.client_id))
    logged = set().union(*(record.keys() for record in logs.records()))
    queries = [query["queryString"] for query in monitoring.saved_queries(DEPLOYMENT)] + dashboard_queries()
    assert len(queries) == 6
    named = set()
    for query in queries:
        fields = insights_fields(query)
        assert fields <= logged, (query, fields - logged)
        named |= fields
    assert QUERIED_FIELDS <= named
    assert QUERIED_FIELDS <= logged


def test_the_dashboards_metric_searches_find_metrics_the_app_emits(api: Api, logs):
    assert api.post_order(ONE_LINE, ACME).status == 201
    assert api.get("/catalog/prod-999", ACME).status == 404
    emitted = {
        (name, frozenset(directive["Dimensions"][number]))
        for document in metrics_documents(logs)
        for directive in document["_aws"]["CloudWatchMetrics"]
        for number in range(len(directive["Dimensions"]))
        for name in (metric["Name"] for metric in directive["Metrics"])
    }
    search = re.compile(
        r"SEARCH\('\{(?P<schema>[^}]*)\} MetricName=\"(?P<metric>\w+)\" service=\"(?P<service>[^\"]+)\"'"
    )
    found = [
        match.groupdict()
        for widget in monitoring.dashboard_body(DEPLOYMENT)["widgets"]
        if widget["type"] == "metric"
        for line in widget["properties"].get("metrics", [])
        for item in line
        if isinstance(item, dict) and (match := search.match(item.get("expression", "")))
    ]
    assert {entry["metric"] for entry in found} == {
        "Requests", "ClientErrors", "ServerErrors", "Latency", "OrdersPlaced", "OrderValue", "Throttled",
    }  # fmt: skip
    for entry in found:
        namespace, *dimensions = entry["schema"].split(",")
        assert namespace == METRICS_NAMESPACE
        assert (entry["metric"], frozenset(dimensions)) in emitted, entry
        assert entry["service"] == DEPLOYMENT.service


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_each_deployed_stage_emits_the_service_name_its_dashboard_searches_for(stage):
    config = json.loads(Path(PROJECT_DIR, ".chalice", "config.json").read_text())
    service = config["stages"][stage]["environment_variables"]["POWERTOOLS_SERVICE_NAME"]
    assert service == Deployment(app_name=config["app_name"], stage=stage, region="us-east-1", table_name="t").service


# --- Contributor Insights rules see the access lines ----------------------------------------


def test_the_contributor_rules_count_each_tenants_requests_errors_and_time_from_the_access_lines(
    api: Api, logs: CapturedLogs, token_issuer: TokenIssuer, explode: str
):
    order = api.post_order(ONE_LINE, ACME).json["order_id"]
    api.get("/catalog", ACME)
    assert api.get(f"/orders/{order}", GLOBEX).status == 404
    api.get("/orders?limit=500", INITECH)
    api.get("/catalog", INITECH)
    api.get("/health", tenant=None)
    api.get("/catalog", ACME, token=expired(token_issuer, ACME.client_id))
    assert api.get("/catalog/prod-001", ACME).status == 500
    records = logs.records()
    access = [line for line in logs.access() if "tenant_id" in line]
    # Other lines are there to be left out: the unhandled error, the security event, /health.
    assert {record["message"] for record in records} > {"request"}
    assert any(line.get("route") == "GET /health" for line in logs.access())
    rules = monitoring.contributor_rules(DEPLOYMENT)
    prefix = DEPLOYMENT.prefix
    requests, errors, time_served = (
        contributor_insights.report(rules[f"{prefix}-{name}"], records)
        for name in ("requests-by-tenant", "errors-by-tenant", "time-by-tenant")
    )
    assert requests == {("acme",): 3, ("globex",): 1, ("initech",): 2}
    assert errors == {("acme", "500"): 1, ("globex", "404"): 1, ("initech", "400"): 1}
    for (tenant,), total in time_served.items():
        assert total == pytest.approx(sum(line["latency_ms"] for line in access if line["tenant_id"] == tenant))
    assert set(time_served) == set(requests)
    for definition in rules.values():
        assert definition["LogGroupNames"] == [DEPLOYMENT.log_group(DEPLOYMENT.api_function)]


def test_the_dashboard_shows_each_contributor_rule():
    names = {
        widget["properties"]["insightRule"]["ruleName"]
        for widget in monitoring.dashboard_body(DEPLOYMENT)["widgets"]
        if "insightRule" in widget["properties"]
    }
    assert names == set(monitoring.contributor_rules(DEPLOYMENT))
    assert [rule["RuleName"] for rule in monitoring.insight_rules(DEPLOYMENT)] == sorted(
        names, key=list(monitoring.contributor_rules(DEPLOYMENT)).index
    )


def test_only_the_first_request_of_a_process_is_a_cold_start_and_each_line_has_lambdas_request_id(
    api: Api, logs: CapturedLogs, monkeypatch
):
    monkeypatch.setattr(middleware, "_cold_start", True)
    api.get("/catalog", ACME)
    api.get("/catalog", GLOBEX)
    lines = logs.access()
    assert [line["cold_start"] for line in lines] == [True, False]
    ids = [line["function_request_id"] for line in lines]
    assert all(isinstance(value, str) and value for value in ids) and len(set(ids)) == 2
