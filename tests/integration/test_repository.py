"""The repository and services over moto: partial DynamoDB pages and batches, and orders racing catalog changes."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest

from chalicelib import services
from chalicelib.errors import CatalogChanged, InsufficientStock, ServiceUnavailable
from chalicelib.models import Order, OrderLineRequest, OrderRequest, Product
from chalicelib.store import dynamodb, keys, orders
from chalicelib.store.catalog import CatalogRepository
from chalicelib.store.dynamodb import dynamodb_client, to_item
from chalicelib.store.orders import OrderConflict, OrderRepository
from chalicelib.tenancy import TenantContext
from chalicelib.tenant_repositories import repositories_for
from tests.support.api import Api
from tests.support.tenants import ACME, GLOBEX

ACME_CONTEXT = TenantContext("acme", "basic", frozenset())


def intercept(monkeypatch, handler) -> None:
    """Route every DynamoDB call through handler(operation, params, original)."""
    client = dynamodb_client()
    original = client._make_api_call
    monkeypatch.setattr(client, "_make_api_call", lambda name, params: handler(name, params, original))


def short_pages(size: int):
    """Answer every Query as DynamoDB does when a page reaches 1 MB: fewer items, and a LastEvaluatedKey."""

    def handler(name: str, params: dict[str, Any], original) -> Any:
        if name == "Query":
            params = {**params, "Limit": min(params["Limit"], size)}
        return original(name, params)

    return handler


def one_line(product_id: str = "prod-001", quantity: int = 1) -> OrderRequest:
    return OrderRequest((OrderLineRequest(product_id, quantity),))


def priced(request: OrderRequest) -> Order:
    """The request priced from acme's catalog as it stands now."""
    wanted = [line.product_id for line in request.lines]
    return services._price_order(request, OrderRepository("acme", dynamodb_client()).read_inputs(wanted, None).products)


# --- pages cut short by DynamoDB's 1 MB limit ------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 3])
def test_a_page_cut_short_by_dynamodb_still_fills_up_and_resumes(table, monkeypatch, size):
    intercept(monkeypatch, short_pages(size))
    catalog = CatalogRepository("acme", dynamodb_client())
    products, last = catalog.list(4)
    assert [p.product_id for p in products] == ["prod-001", "prod-002", "prod-003", "prod-004"]
    assert last == "PRODUCT#prod-004"
    rest, last = catalog.list(4, last)
    assert [p.product_id for p in rest] == ["prod-005"]
    assert last is None


def test_the_api_lists_every_product_when_dynamodb_cuts_pages_short(api: Api, monkeypatch):
    for number in range(6, 13):
        CatalogRepository("acme", dynamodb_client()).put(ACME.product(number))
    intercept(monkeypatch, short_pages(2))
    seen, token = [], None
    while True:
        body = api.get("/catalog?limit=5" + (f"&next_token={token}" if token else ""), ACME).json
        seen.extend(item["product_id"] for item in body["items"])
        token = body["next_token"]
        if token is None:
            break
    assert seen == [f"prod-{n:03d}" for n in range(1, 13)]


def test_orders_are_all_listed_when_dynamodb_cuts_pages_short(table, monkeypatch):
    placed = [
        services.place_order(ACME_CONTEXT, repositories_for(ACME_CONTEXT), one_line())[0].order_id for _ in range(5)
    ]
    intercept(monkeypatch, short_pages(1))
    orders, last = OrderRepository("acme", dynamodb_client()).list(3)
    assert [o.order_id for o in orders] == placed[::-1][:3]
    more, last = OrderRepository("acme", dynamodb_client()).list(3, last)
    assert [o.order_id for o in more] == placed[::-1][3:]
    assert last is None


# --- batches with unprocessed keys -----------------------------------------------------------


def test_unprocessed_keys_of_a_batch_are_read_again(table, monkeypatch):
    monkeypatch.setattr(orders.time, "sleep", lambda seconds: None)
    calls = []

    def handler(name, params, original):
        if name != "BatchGetItem":
            return original(name, params)
        calls.append(params)
        request = params["RequestItems"]["tenant-api-local"]
        if len(calls) == 1:
            # Serve only the first key, as DynamoDB may under load.
            response = original(name, {"RequestItems": {"tenant-api-local": {**request, "Keys": request["Keys"][:1]}}})
            response["UnprocessedKeys"] = {"tenant-api-local": {"Keys": request["Keys"][1:]}}
            return response
        return original(name, params)

    intercept(monkeypatch, handler)
    found = OrderRepository("acme", dynamodb_client()).read_inputs(["prod-001", "prod-002", "prod-003"], None).products
    assert sorted(found) == ["prod-001", "prod-002", "prod-003"]
    assert len(calls) == 2
    assert len(calls[1]["RequestItems"]["tenant-api-local"]["Keys"]) == 2


def test_keys_left_unprocessed_every_time_are_a_503(table, monkeypatch):
    sleeps = []
    monkeypatch.setattr(orders.time, "sleep", sleeps.append)

    def handler(name, params, original):
        if name == "BatchGetItem":
            return {"Responses": {}, "UnprocessedKeys": params["RequestItems"]}
        return original(name, params)

    intercept(monkeypatch, handler)
    with pytest.raises(ServiceUnavailable):
        OrderRepository("acme", dynamodb_client()).read_inputs(["prod-001"], None)
    assert len(sleeps) == dynamodb.MAX_BATCH_ATTEMPTS - 1  # no pause after the last attempt
    assert sleeps == sorted(sleeps)


def test_the_order_read_finds_only_the_tenants_own_products(table):
    CatalogRepository("globex", dynamodb_client()).put(
        Product("prod-globex-only", "globex only", Decimal("1"), "USD", 1)
    )
    found = OrderRepository("acme", dynamodb_client()).read_inputs(["prod-001", "prod-globex-only"], None).products
    assert sorted(found) == ["prod-001"]
    assert found["prod-001"].name == "acme widget 1"


# --- orders racing catalog changes -----------------------------------------------------------


def test_the_transaction_refuses_a_stale_price_and_says_why(table):
    stale = priced(one_line())
    CatalogRepository("acme", dynamodb_client()).put(Product("prod-001", "acme widget 1", Decimal("25.00"), "USD", 10))
    with pytest.raises(OrderConflict) as raised:
        OrderRepository("acme", dynamodb_client()).place(stale)
    assert raised.value.stock_or_price and not raised.value.idempotency
    assert CatalogRepository("acme", dynamodb_client()).get("prod-001").stock == 10
    assert OrderRepository("acme", dynamodb_client()).list(10)[0] == []


def test_an_order_priced_before_a_price_change_is_repriced_at_the_new_price(table, monkeypatch):
    original_read = OrderRepository.read_inputs
    reads = []

    def read_then_change_price(self, product_ids, key_digest, now=None):
        found = original_read(self, product_ids, key_digest, now)
        reads.append(found)
        if len(reads) == 1:
            CatalogRepository("acme", dynamodb_client()).put(
                Product("prod-001", "acme widget 1", Decimal("25.00"), "USD", 10)
            )
        return found

    monkeypatch.setattr(OrderRepository, "read_inputs", read_then_change_price)
    order, replayed = services.place_order(ACME_CONTEXT, repositories_for(ACME_CONTEXT), one_line(quantity=2))
    assert not replayed
    assert len(reads) == 2
    assert order.lines[0].unit_price == Decimal("25.00")
    assert order.total == Decimal("50.00")
    assert CatalogRepository("acme", dynamodb_client()).get("prod-001").stock == 8


def test_stock_taken_between_pricing_and_writing_ends_in_insufficient_stock(table, monkeypatch):
    original_read = OrderRepository.read_inputs
    reads = []

    def read_then_sell_out(self, product_ids, key_digest, now=None):
        found = original_read(self, product_ids, key_digest, now)
        reads.append(found)
        if len(reads) == 1:
            CatalogRepository("acme", dynamodb_client()).put(ACME.product(1, stock=1))
        return found

    monkeypatch.setattr(OrderRepository, "read_inputs", read_then_sell_out)
    with pytest.raises(InsufficientStock):
        services.place_order(ACME_CONTEXT, repositories_for(ACME_CONTEXT), one_line(quantity=2))
    assert CatalogRepository("acme", dynamodb_client()).get("prod-001").stock == 1
    assert OrderRepository("acme", dynamodb_client()).list(10)[0] == []


def test_a_catalog_that_keeps_changing_ends_in_catalog_changed(table, monkeypatch):
    original_read = OrderRepository.read_inputs
    prices = iter(Decimal(price) for price in ("30.00", "31.00", "32.00", "33.00"))

    def read_then_change_price(self, product_ids, key_digest, now=None):
        found = original_read(self, product_ids, key_digest, now)
        CatalogRepository("acme", dynamodb_client()).put(Product("prod-001", "acme widget 1", next(prices), "USD", 10))
        return found

    monkeypatch.setattr(OrderRepository, "read_inputs", read_then_change_price)
    with pytest.raises(CatalogChanged):
        services.place_order(ACME_CONTEXT, repositories_for(ACME_CONTEXT), one_line())
    assert CatalogRepository("acme", dynamodb_client()).get("prod-001").stock == 10
    assert OrderRepository("acme", dynamodb_client()).list(10)[0] == []


def test_a_product_removed_before_writing_is_an_unknown_product(table, monkeypatch):
    from chalicelib.errors import UnknownProduct

    original_read = OrderRepository.read_inputs
    reads = []

    def read_then_delete(self, product_ids, key_digest, now=None):
        found = original_read(self, product_ids, key_digest, now)
        reads.append(found)
        if len(reads) == 1:
            dynamodb_client().delete_item(
                TableName="tenant-api-local", Key=to_item(keys.product_key("acme", "prod-001"))
            )
        return found

    monkeypatch.setattr(OrderRepository, "read_inputs", read_then_delete)
    with pytest.raises(UnknownProduct):
        services.place_order(ACME_CONTEXT, repositories_for(ACME_CONTEXT), one_line())
    assert OrderRepository("acme", dynamodb_client()).list(10)[0] == []


def test_stored_money_is_exact_decimal(table):
    order, _ = services.place_order(
        ACME_CONTEXT,
        repositories_for(ACME_CONTEXT),
        OrderRequest((OrderLineRequest("prod-001", 3), OrderLineRequest("prod-002", 7))),
    )
    item = dynamodb_client().get_item(
        TableName="tenant-api-local", Key=to_item(keys.order_key("acme", order.order_id))
    )["Item"]
    assert item["total"] == {"N": "216.90"}  # 3 x 20.99 + 7 x 21.99
    assert {line["M"]["unit_price"]["N"] for line in item["lines"]["L"]} == {"20.99", "21.99"}
    assert GLOBEX.product(1).price == Decimal("6.25")


def test_the_idempotency_record_holds_the_whole_answer(table):
    import hashlib

    digest = hashlib.sha256(b"key").hexdigest()
    order, _ = services.place_order(ACME_CONTEXT, repositories_for(ACME_CONTEXT), one_line(), "key")
    orders = OrderRepository("acme", dynamodb_client())
    record = orders.get_idempotency_record(digest)
    assert record.order == order
    assert record.fingerprint == one_line().fingerprint()
    assert orders.read_inputs(["prod-001"], digest).earlier == record
    # Past its expiry the record no longer binds the key, although TTL has not deleted it yet.
    assert orders.get_idempotency_record(digest, now=time.time() + orders.IDEMPOTENCY_TTL_SECONDS + 1) is None


def test_the_registry_reads_tenants_by_id_and_ignores_a_lookup_without_a_tenant(table):
    from chalicelib.store.registry import TenantRegistry

    registry = TenantRegistry()
    assert registry.get("acme") == ACME.record()
    assert registry.get("nobody") is None
    dynamodb_client().put_item(
        TableName="tenant-api-local",
        Item={"PK": {"S": "CLIENT#strayclient"}, "SK": {"S": "TENANT"}, "tenant_id": {"S": "gone"}},
    )
    assert registry.find_by_client_id("strayclient") is None
    assert registry.find_by_client_id(ACME.client_id) == ACME.record()


def test_a_failed_transaction_for_another_reason_is_not_hidden(table, monkeypatch):
    from botocore.exceptions import ClientError

    def handler(name, params, original):
        if name == "TransactWriteItems":
            raise ClientError({"Error": {"Code": "ValidationException", "Message": "bad"}}, name)
        return original(name, params)

    intercept(monkeypatch, handler)
    with pytest.raises(ClientError):
        OrderRepository("acme", dynamodb_client()).place(priced(one_line()))
