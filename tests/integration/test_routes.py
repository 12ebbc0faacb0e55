"""Every route through chalice.test.Client with real tokens over moto's DynamoDB: the successful answers."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from chalicelib.models import Product
from chalicelib.store import keys
from chalicelib.store.catalog import CatalogRepository
from chalicelib.store.dynamodb import dynamodb_client
from tests.support.api import Api
from tests.support.tenants import ACME, GLOBEX, INITECH, PRODUCTS_PER_TENANT

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def stock_of(tenant, product_id: str) -> int:
    return CatalogRepository(tenant.tenant_id, dynamodb_client()).get(product_id).stock


def add_products(tenant, count: int, start: int = PRODUCTS_PER_TENANT + 1) -> None:
    catalog = CatalogRepository(tenant.tenant_id, dynamodb_client())
    for number in range(start, start + count):
        catalog.put(tenant.product(number))


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "application/json"])
def test_a_get_with_any_declared_content_type_is_served(api: Api, content_type: str):
    # Chalice alone would answer a GET with a non-JSON Content-Type with 415.
    assert api.get("/health", tenant=None, headers={"Content-Type": content_type}).status == 200
    assert api.get("/catalog/prod-001", headers={"Content-Type": content_type}).status == 200


def test_health_needs_no_token(api: Api):
    reply = api.get("/health", tenant=None)
    assert reply.status == 200
    assert reply.json["status"] == "ok"
    assert UUID.match(reply.json["request_id"])
    assert reply.header("X-Request-Id") == reply.json["request_id"]


def test_openapi_needs_no_token_and_describes_the_api(api: Api):
    reply = api.get("/openapi.json", tenant=None)
    assert reply.status == 200
    document = reply.json
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {
        "/health",
        "/openapi.json",
        "/catalog",
        "/catalog/{product_id}",
        "/orders",
        "/orders/{order_id}",
    }


def test_the_catalog_lists_the_callers_products_in_id_order(api: Api):
    reply = api.get("/catalog", ACME)
    assert reply.status == 200
    body = reply.json
    assert body["tenant_id"] == "acme"
    assert UUID.match(body["request_id"])
    assert body["next_token"] is None
    assert body["items"] == [ACME.product(number).to_json() for number in range(1, PRODUCTS_PER_TENANT + 1)]
    assert body["items"][0] == {
        "product_id": "prod-001",
        "name": "acme widget 1",
        "description": "Sold by acme.",
        "price": "20.99",
        "currency": "USD",
        "stock": 10,
    }


def test_the_catalog_pages_through_every_product_exactly_once(api: Api):
    add_products(ACME, 20)  # 25 products in all
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        query = "/catalog?limit=7" + (f"&next_token={token}" if token else "")
        reply = api.get(query, ACME)
        assert reply.status == 200, reply.body
        body = reply.json
        assert len(body["items"]) <= 7
        seen.extend(item["product_id"] for item in body["items"])
        pages += 1
        token = body["next_token"]
        if token is None:
            break
    assert pages == 4
    assert seen == [f"prod-{number:03d}" for number in range(1, 26)]


def test_a_page_that_ends_exactly_at_the_last_product_has_no_next_token(api: Api):
    first = api.get("/catalog?limit=4", ACME).json
    assert [item["product_id"] for item in first["items"]] == ["prod-001", "prod-002", "prod-003", "prod-004"]
    second = api.get(f"/catalog?limit=1&next_token={first['next_token']}", ACME).json
    assert [item["product_id"] for item in second["items"]] == ["prod-005"]
    assert second["next_token"] is None
    whole = api.get("/catalog?limit=5", ACME).json
    assert len(whole["items"]) == 5 and whole["next_token"] is None


@pytest.mark.parametrize(("limit", "expected"), [("1", 1), ("100", 100), (None, 20)])
def test_the_catalog_limit_bounds(api: Api, limit, expected):
    add_products(ACME, 120)
    path = "/catalog" if limit is None else f"/catalog?limit={limit}"
    body = api.get(path, ACME).json
    assert len(body["items"]) == expected
    assert body["next_token"] is not None


def test_a_product_is_read_by_id(api: Api):
    reply = api.get("/catalog/prod-003", GLOBEX)
    assert reply.status == 200
    assert reply.json == {**GLOBEX.product(3).to_json(), "tenant_id": "globex", "request_id": reply.json["request_id"]}
    assert reply.json["price"] == "8.25"


def test_an_order_is_priced_from_the_catalog_with_exact_decimal_totals(api: Api):
    CatalogRepository("acme", dynamodb_client()).put(Product("prod-010", "acme tenth", Decimal("0.10"), "USD", 100))
    CatalogRepository("acme", dynamodb_client()).put(Product("prod-020", "acme twentieth", Decimal("0.20"), "USD", 100))
    reply = api.post_order([{"product_id": "prod-010", "quantity": 3}, {"product_id": "prod-020", "quantity": 1}], ACME)
    assert reply.status == 201, reply.body
    order = reply.json
    assert keys.ORDER_ID.fullmatch(order["order_id"])
    assert order["tenant_id"] == "acme"
    assert order["status"] == "placed"
    assert order["currency"] == "USD"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", order["created_at"])
    # 3 x 0.10 + 0.20 is exactly 0.50: no float rounding (0.30000000000000004) anywhere.
    assert order["items"] == [
        {"product_id": "prod-010", "name": "acme tenth", "quantity": 3, "unit_price": "0.10", "line_total": "0.30"},
        {"product_id": "prod-020", "name": "acme twentieth", "quantity": 1, "unit_price": "0.20", "line_total": "0.20"},
    ]
    assert order["total"] == "0.50"
    assert reply.header("Location") == f"/orders/{order['order_id']}"
    assert reply.header("Idempotent-Replayed") == "false"


def test_placing_an_order_takes_its_stock(api: Api):
    reply = api.post_order(
        [{"product_id": "prod-001", "quantity": 4}, {"product_id": "prod-002", "quantity": 10}], ACME
    )
    assert reply.status == 201
    assert reply.json["total"] == "303.86"  # 4 x 20.99 + 10 x 21.99
    assert stock_of(ACME, "prod-001") == 6
    assert stock_of(ACME, "prod-002") == 0
    assert stock_of(ACME, "prod-003") == 10
    assert api.get("/catalog/prod-001", ACME).json["stock"] == 6
    # The same product ids of other tenants are untouched.
    assert stock_of(GLOBEX, "prod-001") == 10
    assert stock_of(INITECH, "prod-002") == 10


def test_an_order_is_read_back_as_it_was_placed(api: Api):
    placed = api.post_order([{"product_id": "prod-005", "quantity": 2}], INITECH).json
    reply = api.get(f"/orders/{placed['order_id']}", INITECH)
    assert reply.status == 200
    fetched = reply.json
    assert fetched.pop("request_id") != placed.pop("request_id")
    assert fetched == placed
    assert fetched["total"] == "10.20"


def test_a_price_change_after_the_order_does_not_change_the_order(api: Api):
    placed = api.post_order([{"product_id": "prod-001", "quantity": 1}], ACME).json
    CatalogRepository("acme", dynamodb_client()).put(Product("prod-001", "renamed", Decimal("99.00"), "USD", 5))
    fetched = api.get(f"/orders/{placed['order_id']}", ACME).json
    assert fetched["items"][0]["unit_price"] == "20.99"
    assert fetched["items"][0]["name"] == "acme widget 1"
    assert fetched["total"] == "20.99"


def test_orders_are_listed_newest_first_across_pages(api: Api):
    placed = [api.post_order([{"product_id": "prod-001", "quantity": 1}], GLOBEX).json["order_id"] for _ in range(7)]
    listed: list[str] = []
    token = None
    while True:
        reply = api.get("/orders?limit=3" + (f"&next_token={token}" if token else ""), GLOBEX)
        assert reply.status == 200
        assert reply.json["tenant_id"] == "globex"
        listed.extend(order["order_id"] for order in reply.json["items"])
        token = reply.json["next_token"]
        if token is None:
            break
    assert listed == list(reversed(placed))


def test_a_tenant_with_no_orders_gets_an_empty_list(api: Api):
    api.post_order([{"product_id": "prod-001", "quantity": 1}], ACME)
    body = api.get("/orders", GLOBEX).json
    assert body["items"] == [] and body["next_token"] is None and body["tenant_id"] == "globex"


def test_listed_orders_carry_their_lines_and_totals(api: Api):
    placed = api.post_order([{"product_id": "prod-002", "quantity": 3}], GLOBEX).json
    listed = api.get("/orders", GLOBEX).json["items"]
    placed.pop("request_id"), placed.pop("tenant_id")
    assert listed == [placed]
