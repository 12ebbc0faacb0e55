"""Every error status the API answers, each with the one JSON envelope, through the Chalice test client."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from chalicelib import services
from chalicelib.models import Product
from chalicelib.store.catalog import CatalogRepository
from chalicelib.store.dynamodb import dynamodb_client
from chalicelib.store.orders import OrderRepository
from chalicelib.store.registry import SUSPENDED, TenantRegistry
from chalicelib.web.ratelimit import TenantRateLimiter
from tests.support.api import Api, assert_error
from tests.support.aws import dynamodb_calls_through
from tests.support.clock import FakeClock
from tests.support.settings import rate_limit_middleware
from tests.support.tenants import ACME, GLOBEX, INITECH

MISSING_ORDER = "ord_01HZY3M9K8V6T5R4Q3P2N1M0AB"
ONE_LINE = [{"product_id": "prod-001", "quantity": 1}]
CATALOG_READ_ONLY = ["tenant-api/catalog.read"]


def stock_of(tenant, product_id: str) -> int:
    return CatalogRepository(tenant.tenant_id, dynamodb_client()).get(product_id).stock


def order_count(tenant) -> int:
    return len(OrderRepository(tenant.tenant_id, dynamodb_client()).list(100)[0])


def post_raw(api: Api, body: bytes | str, content_type: str | None = "application/json") -> Any:
    headers = {} if content_type is None else {"Content-Type": content_type}
    return api.request("POST", "/orders", ACME, headers=headers, body=body)


def test_errors_are_json_with_a_request_id(api: Api):
    reply = api.get("/catalog/prod-999", ACME)
    assert reply.header("Content-Type") == "application/json"
    body = assert_error(reply, 404, "not_found")
    assert body["error"]["message"] == "Product not found."


# --- 400 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/catalog?limit=0",
        "/catalog?limit=101",
        "/catalog?limit=ten",
        "/catalog?limit=-5",
        "/catalog?limit=%C2%B2",
        "/orders?limit=1.5",
        "/catalog/PROD-001",
        "/catalog/prod_001",
        "/catalog/a:b",
        "/orders/not-an-order",
        "/orders/ord_lowercase0000000000000000",
        "/catalog?next_token=" + "a" * 513,
    ],
)
def test_malformed_query_and_path_values_are_400(api: Api, path):
    assert_error(api.get(path, ACME), 400, "invalid_request")


@pytest.mark.parametrize(
    "path", ["/catalog?next_token=garbage", "/orders?next_token=abc.def", "/catalog?next_token=..."]
)
def test_a_garbage_next_token_is_400(api: Api, path):
    assert_error(api.get(path, ACME), 400, "invalid_pagination_token")


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"",
        b'{"items": [{"product_id": "prod-001", "quantity": NaN}]}',
        b'{"items": [{"product_id": "prod-001", "quantity": Infinity}]}',
        b'{"items": [{"product_id": "prod-\xff\xfe", "quantity": 1}]}',
        b"\x00\x01\x02",
    ],
)
def test_malformed_json_is_400(api: Api, body):
    assert_error(post_raw(api, body), 400, "invalid_request")
    assert stock_of(ACME, "prod-001") == 10


@pytest.mark.parametrize("key", ["", "a" * 129, "has space", "caf\u00e9"])
def test_a_malformed_idempotency_key_is_400(api: Api, key):
    reply = api.post_order(ONE_LINE, ACME, idempotency_key=key)
    assert_error(reply, 400, "invalid_request")
    assert order_count(ACME) == 0


# --- 401 -------------------------------------------------------------------------------------


def test_no_token_is_401(api: Api):
    reply = api.get("/catalog", tenant=None)
    assert reply.status == 401
    # Chalice's local gateway answers a missing header itself, as API Gateway does.
    assert reply.json == {"message": "Unauthorized"}


@pytest.mark.parametrize("authorization", ["Bearer not-a-token", "Basic YWNtZTpzZWNyZXQ=", "Bearer", "bearer a.b.c"])
def test_an_invalid_token_is_401_on_every_protected_route(api: Api, authorization):
    headers = {"Authorization": authorization, "Content-Type": "application/json"}
    for method, path in [
        ("GET", "/catalog"),
        ("GET", "/catalog/prod-001"),
        ("GET", "/orders"),
        ("GET", f"/orders/{MISSING_ORDER}"),
        ("POST", "/orders"),
    ]:
        reply = api.request(method, path, tenant=None, headers=headers, body=json.dumps({"items": ONE_LINE}))
        body = assert_error(reply, 401, "unauthorized")
        assert body["error"]["message"] == "Unauthorized"
    assert stock_of(ACME, "prod-001") == 10


def test_an_expired_token_is_401(api: Api):
    claims = api.issuer.claims(ACME.client_id, ["tenant-api/catalog.read"], now=0)
    assert_error(api.get("/catalog", token=api.issuer.sign(claims)), 401, "unauthorized")


def test_a_token_of_an_unknown_client_is_401(api: Api):
    token = api.issuer.issue("unregisteredclient", ["tenant-api/catalog.read"])
    assert_error(api.get("/catalog", token=token), 401, "unauthorized")


# --- 403 -------------------------------------------------------------------------------------


def test_a_suspended_tenant_is_403_on_every_protected_route_and_others_are_not(api: Api):
    TenantRegistry().put(GLOBEX.record(status=SUSPENDED))
    for method, path in [
        ("GET", "/catalog"),
        ("GET", "/catalog/prod-001"),
        ("GET", "/orders"),
        ("GET", f"/orders/{MISSING_ORDER}"),
        ("POST", "/orders"),
    ]:
        reply = api.request(
            method, path, GLOBEX, headers={"Content-Type": "application/json"}, body=json.dumps({"items": ONE_LINE})
        )
        body = assert_error(reply, 403, "forbidden")
        assert body["error"]["message"] == "Forbidden"
    assert stock_of(GLOBEX, "prod-001") == 10
    assert api.get("/catalog", ACME).status == 200


def test_a_token_without_orders_write_cannot_place_orders(api: Api):
    reply = api.post_order(ONE_LINE, ACME, scopes=CATALOG_READ_ONLY + ["tenant-api/orders.read"])
    body = assert_error(reply, 403, "insufficient_scope")
    assert "scope" in body["error"]["message"]
    assert stock_of(ACME, "prod-001") == 10
    assert order_count(ACME) == 0


@pytest.mark.parametrize(
    ("scopes", "allowed"),
    [
        (CATALOG_READ_ONLY, {"/catalog", "/catalog/prod-001"}),
        (["tenant-api/orders.read"], {"/orders", f"/orders/{MISSING_ORDER}"}),
        (["tenant-api/orders.write"], set()),
        ([], set()),
        # Scopes of another resource server grant nothing here.
        (["other-api/catalog.read", "catalog.read", "tenant-api/catalog.readx"], set()),
    ],
)
def test_each_read_route_needs_its_scope(api: Api, scopes, allowed):
    for path in ["/catalog", "/catalog/prod-001", "/orders", f"/orders/{MISSING_ORDER}"]:
        reply = api.get(path, ACME, scopes=scopes)
        if path in allowed:
            assert reply.status in (200, 404), (path, reply.body)
        else:
            assert_error(reply, 403, "insufficient_scope")


# --- 404 and 405 -----------------------------------------------------------------------------


def test_a_missing_product_is_404(api: Api):
    body = assert_error(api.get("/catalog/prod-999", ACME), 404, "not_found")
    assert body["error"]["message"] == "Product not found."


def test_a_missing_order_is_404(api: Api):
    body = assert_error(api.get(f"/orders/{MISSING_ORDER}", ACME), 404, "not_found")
    assert body["error"]["message"] == "Order not found."


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/orders", "POST, GET"),
        ("PUT", "/orders", "POST, GET"),
        ("POST", "/catalog", "GET"),
        ("DELETE", "/catalog/prod-001", "GET"),
        ("PATCH", f"/orders/{MISSING_ORDER}", "GET"),
        ("POST", "/health", "GET"),
    ],
)
def test_an_unsupported_method_is_405_with_allow(api: Api, method, path, allow):
    reply = api.request(method, path, ACME)
    assert_error(reply, 405, "method_not_allowed")
    assert reply.header("Allow") == allow


# --- 409 -------------------------------------------------------------------------------------


def test_insufficient_stock_is_409_and_writes_nothing(api: Api):
    reply = api.post_order(
        [{"product_id": "prod-001", "quantity": 3}, {"product_id": "prod-002", "quantity": 11}], ACME
    )
    body = assert_error(reply, 409, "insufficient_stock")
    assert "prod-002" in body["error"]["message"]
    assert "prod-001" not in body["error"]["message"]
    assert stock_of(ACME, "prod-001") == 10
    assert stock_of(ACME, "prod-002") == 10
    assert order_count(ACME) == 0
    assert api.get("/orders", ACME).json["items"] == []


def test_stock_runs_out_exactly(api: Api):
    assert api.post_order([{"product_id": "prod-003", "quantity": 10}], ACME).status == 201
    assert_error(api.post_order([{"product_id": "prod-003", "quantity": 1}], ACME), 409, "insufficient_stock")
    assert stock_of(ACME, "prod-003") == 0
    assert order_count(ACME) == 1


# --- 413 and 415 -----------------------------------------------------------------------------


def test_a_body_over_16_kib_is_413(api: Api):
    body = json.dumps({"items": ONE_LINE}) + " " * (16 * 1024)
    assert_error(post_raw(api, body), 413, "payload_too_large")
    assert order_count(ACME) == 0


def test_a_16_kib_body_is_accepted(api: Api):
    base = json.dumps({"items": ONE_LINE})
    body = base[:-1] + " " * (16 * 1024 - len(base)) + "}"
    assert len(body.encode()) == 16 * 1024
    assert post_raw(api, body).status == 201


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
        "application/json; charset=latin-1",
        "*/*",
    ],
)
def test_a_body_not_declared_as_json_is_415(api: Api, content_type):
    reply = post_raw(api, json.dumps({"items": ONE_LINE}), content_type)
    assert_error(reply, 415, "unsupported_media_type")
    assert order_count(ACME) == 0


# --- 422 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "document",
    [
        {"items": [{"product_id": "prod-001", "quantity": 1, "price": "0.01"}]},
        {"items": ONE_LINE, "total": "0.01"},
        {"items": [{"product_id": "prod-001", "quantity": 0}]},
        {"items": [{"product_id": "prod-001", "quantity": 1001}]},
        {"items": [{"product_id": "prod-001", "quantity": 1.5}]},
        {"items": [{"product_id": "prod-001", "quantity": True}]},
        {"items": [{"product_id": "prod-001", "quantity": "2"}]},
        {"items": [{"product_id": "prod-001", "quantity": 1}, {"product_id": "prod-001", "quantity": 2}]},
        {"items": []},
        {"items": [{"product_id": f"prod-{n:03d}", "quantity": 1} for n in range(51)]},
        {"items": [{"product_id": "BAD#ID", "quantity": 1}]},
        {},
        [],
        "items",
    ],
)
def test_a_body_that_breaks_a_rule_is_422_and_writes_nothing(api: Api, document):
    reply = post_raw(api, json.dumps(document))
    assert_error(reply, 422, "validation_error")
    assert stock_of(ACME, "prod-001") == 10
    assert order_count(ACME) == 0


def test_a_client_price_is_refused_and_the_catalog_price_applies(api: Api):
    reply = api.post_order([{"product_id": "prod-001", "quantity": 1, "price": "0.01"}], ACME)
    body = assert_error(reply, 422, "validation_error")
    assert "items[0].price is not an allowed field" in body["error"]["message"]
    placed = api.post_order(ONE_LINE, ACME).json
    assert placed["items"][0]["unit_price"] == "20.99"


def test_an_unknown_product_is_422(api: Api):
    reply = api.post_order([{"product_id": "prod-001", "quantity": 1}, {"product_id": "prod-404", "quantity": 1}], ACME)
    body = assert_error(reply, 422, "unknown_product")
    assert body["error"]["message"] == "Unknown product: prod-404."
    assert stock_of(ACME, "prod-001") == 10


def test_products_in_two_currencies_cannot_share_an_order(api: Api):
    CatalogRepository("acme", dynamodb_client()).put(Product("prod-eur", "acme euro widget", ACME.price_base, "EUR", 5))
    reply = api.post_order([{"product_id": "prod-001", "quantity": 1}, {"product_id": "prod-eur", "quantity": 1}], ACME)
    assert_error(reply, 422, "validation_error")
    assert order_count(ACME) == 0


def test_an_idempotency_key_reused_with_another_body_is_422(api: Api):
    first = api.post_order(ONE_LINE, ACME, idempotency_key="retry-1")
    assert first.status == 201
    reply = api.post_order([{"product_id": "prod-001", "quantity": 2}], ACME, idempotency_key="retry-1")
    assert_error(reply, 422, "idempotency_key_reused")
    assert stock_of(ACME, "prod-001") == 9
    assert order_count(ACME) == 1


# --- 429 -------------------------------------------------------------------------------------


@pytest.fixture
def in_app_limits(env) -> FakeClock:
    """RATE_LIMITER=in-app with a limiter on a fake clock, so refill does not depend on test speed."""
    env.set(RATE_LIMITER="in-app")
    clock = FakeClock()
    rate_limit_middleware().limiter = TenantRateLimiter(clock=clock)
    return clock


def test_a_basic_tenant_is_throttled_after_its_burst_of_20(api: Api, in_app_limits: FakeClock):
    statuses = [api.get("/catalog/prod-001", ACME).status for _ in range(20)]
    assert statuses == [200] * 20
    reply = api.get("/catalog/prod-001", ACME)
    body = assert_error(reply, 429, "too_many_requests")
    assert body["error"]["message"] == "Too Many Requests"
    assert reply.header("Retry-After") == "1"
    assert reply.header("x-amzn-ErrorType") == "TooManyRequestsException"
    # Every route counts against the same bucket, including POST /orders, which then writes nothing.
    assert_error(api.post_order(ONE_LINE, ACME), 429, "too_many_requests")
    assert stock_of(ACME, "prod-001") == 10
    # Other tenants have buckets of their own.
    assert api.get("/catalog", GLOBEX).status == 200
    # The bucket refills at 10 requests a second.
    in_app_limits.advance(0.1)
    assert api.get("/catalog", ACME).status == 200
    assert api.get("/catalog", ACME).status == 429


def test_higher_tiers_have_bigger_bursts(api: Api, in_app_limits: FakeClock):
    assert all(api.get("/catalog/prod-001", GLOBEX).status == 200 for _ in range(25))
    assert all(api.get("/catalog/prod-001", INITECH).status == 200 for _ in range(25))


def test_health_is_never_throttled(api: Api, in_app_limits: FakeClock):
    assert all(api.get("/health", tenant=None).status == 200 for _ in range(30))


def test_usage_plan_mode_leaves_throttling_to_api_gateway(api: Api):
    assert all(api.get("/catalog/prod-001", ACME).status == 200 for _ in range(25))


# --- 503 -------------------------------------------------------------------------------------


def throttled(operation: str, code: str = "ProvisionedThroughputExceededException"):
    """A DynamoDB client call that raises the throttling error DynamoDB gives for operation."""

    def call(operation_name: str, params: dict[str, Any], original) -> Any:
        if operation_name == operation:
            raise ClientError(
                {"Error": {"Code": code, "Message": "Rate of requests exceeds the allowed throughput."}}, operation_name
            )
        return original(operation_name, params)

    return call


@pytest.fixture
def inject(monkeypatch):
    """Make one DynamoDB operation fail as given, leaving the others alone."""

    def install(failure) -> None:
        dynamodb_calls_through(monkeypatch, failure)

    return install


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [
        ("GET", "/catalog", "Query"),
        ("GET", "/catalog/prod-001", "GetItem"),
        ("GET", "/orders", "Query"),
        ("GET", f"/orders/{MISSING_ORDER}", "GetItem"),
        ("POST", "/orders", "BatchGetItem"),
        ("POST", "/orders", "TransactWriteItems"),
    ],
)
@pytest.mark.parametrize(
    "code",
    ["ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded", "InternalServerError"],
)
def test_dynamodb_throttling_is_503(api: Api, inject, method, path, operation, code):
    assert api.get("/catalog", ACME).status == 200  # the tenant's registry record is now cached
    inject(throttled(operation, code))
    reply = api.request(
        method, path, ACME, headers={"Content-Type": "application/json"}, body=json.dumps({"items": ONE_LINE})
    )
    body = assert_error(reply, 503, "service_unavailable")
    assert "retry" in body["error"]["message"]


def _transaction_conflicts(times: int):
    """Cancel the first `times` order transactions as DynamoDB does when another holds the item."""
    calls = []

    def conflict(operation_name, params, original):
        if operation_name == "TransactWriteItems":
            calls.append(operation_name)
            if len(calls) <= times:
                raise ClientError(
                    {
                        "Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
                        "CancellationReasons": [{"Code": "TransactionConflict"}, {"Code": "None"}],
                    },
                    operation_name,
                )
        return original(operation_name, params)

    return conflict, calls


def test_a_transaction_conflict_on_a_busy_product_is_retried(api: Api, inject):
    conflict, calls = _transaction_conflicts(times=1)
    inject(conflict)
    response = api.post_order(ONE_LINE, ACME)
    assert response.status == 201
    assert len(calls) == 2
    assert stock_of(ACME, "prod-001") == 10 - ONE_LINE[0]["quantity"]


def test_a_conflict_that_persists_is_a_retryable_503_and_writes_nothing(api: Api, inject):
    # A product busier than one item can take: nothing about the order is wrong, so the
    # client is told to come back rather than that the catalog changed.
    conflict, calls = _transaction_conflicts(times=99)
    inject(conflict)
    reply = api.post_order(ONE_LINE, ACME)
    assert_error(reply, 503, "service_unavailable")
    assert reply.header("Retry-After") == "1"
    assert len(calls) == services.MAX_PLACE_ATTEMPTS
    assert stock_of(ACME, "prod-001") == 10
    assert OrderRepository("acme", dynamodb_client()).list(10)[0] == []


def test_a_throttled_best_seller_is_a_retryable_503_and_never_oversells(api: Api, inject):
    calls = []

    def throttled(operation_name, params, original):
        if operation_name == "TransactWriteItems":
            calls.append(operation_name)
            raise ClientError(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
                    "CancellationReasons": [{"Code": "ThrottlingError"}, {"Code": "None"}],
                },
                operation_name,
            )
        return original(operation_name, params)

    inject(throttled)
    reply = api.post_order(ONE_LINE, ACME)
    assert_error(reply, 503, "service_unavailable")
    assert reply.header("Retry-After") == "1"
    assert len(calls) == 1
    assert stock_of(ACME, "prod-001") == 10


def test_an_unreachable_dynamodb_is_503(api: Api, inject):
    api.get("/catalog", ACME)

    def unreachable(operation_name, params, original):
        if operation_name == "Query":
            raise EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")
        return original(operation_name, params)

    inject(unreachable)
    assert_error(api.get("/catalog", ACME), 503, "service_unavailable")


def test_throttling_in_the_authorizer_fails_closed_with_503(api: Api, inject):
    # No tenant is assumed when the registry cannot be read, and the client is not told its
    # token is bad (it would fetch new ones, which Cognito bills): 503, retry later.
    inject(throttled("GetItem"))
    assert_error(api.get("/catalog", ACME), 503, "service_unavailable")


def test_a_transaction_the_sdk_resends_after_committing_places_the_order_once(api: Api, inject):
    # The first answer is lost after DynamoDB committed, and the SDK sends the same transaction
    # again: the order is placed once, answered as placed, and its stock taken once.
    sent = []

    def lost_answer(operation_name, params, original):
        if operation_name == "TransactWriteItems":
            sent.append(params)
            original(operation_name, params)
            return original(operation_name, params)
        return original(operation_name, params)

    inject(lost_answer)
    reply = api.post_order(ONE_LINE, ACME)
    assert reply.status == 201, reply.body
    assert reply.header("Idempotent-Replayed") == "false"
    assert len(sent) == 1
    assert sent[0]["ClientRequestToken"] == reply.json["order_id"]
    assert stock_of(ACME, "prod-001") == 10 - ONE_LINE[0]["quantity"]
    assert [order.order_id for order in OrderRepository("acme", dynamodb_client()).list(10)[0]] == [
        reply.json["order_id"]
    ]
