"""Cross-tenant attempts on every route: another tenant's data is never visible and identity cannot be injected."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from chalicelib.models import Product
from chalicelib.store.catalog import CatalogRepository
from chalicelib.store.dynamodb import dynamodb_client
from chalicelib.store.orders import OrderRepository
from tests.support.api import Api, Reply, assert_error
from tests.support.tenants import ACME, GLOBEX, INITECH, TENANTS

ONE_LINE = [{"product_id": "prod-001", "quantity": 1}]
MISSING_ORDER = "ord_01HZY3M9K8V6T5R4Q3P2N1M0AB"


def comparable(reply: Reply) -> tuple[int, dict, dict]:
    """A response without what differs between any two requests (the request id)."""
    body = reply.json
    body.pop("request_id")
    headers = {name.lower(): value for name, value in reply.headers.items() if name.lower() not in ("x-request-id",)}
    return reply.status, body, headers


@pytest.fixture
def acme_only_product() -> str:
    CatalogRepository("acme", dynamodb_client()).put(
        Product("prod-acme-only", "acme secret gadget", Decimal("1000.00"), "USD", 3)
    )
    return "prod-acme-only"


def test_the_same_product_id_reads_each_tenants_own_product(api: Api):
    for tenant in TENANTS:
        body = api.get("/catalog/prod-002", tenant).json
        assert body["name"] == f"{tenant.tenant_id} widget 2"
        assert body["price"] == str(tenant.price_base + 2)
        assert body["tenant_id"] == tenant.tenant_id


def test_each_catalog_lists_only_its_tenants_products(api: Api, acme_only_product):
    for tenant in TENANTS:
        body = api.get("/catalog?limit=100", tenant).json
        names = {item["name"] for item in body["items"]}
        assert names and all(name.startswith(f"{tenant.tenant_id} ") for name in names), names
        assert (acme_only_product in {item["product_id"] for item in body["items"]}) == (tenant is ACME)


def test_another_tenants_product_is_a_404_identical_to_a_missing_one(api: Api, acme_only_product):
    theirs = api.get(f"/catalog/{acme_only_product}", GLOBEX)
    missing = api.get("/catalog/prod-nothing", GLOBEX)
    assert_error(theirs, 404, "not_found")
    assert comparable(theirs) == comparable(missing)


def test_another_tenants_order_is_a_404_identical_to_a_missing_one(api: Api):
    order_id = api.post_order(ONE_LINE, ACME).json["order_id"]
    assert api.get(f"/orders/{order_id}", ACME).status == 200
    for other in (GLOBEX, INITECH):
        theirs = api.get(f"/orders/{order_id}", other)
        missing = api.get(f"/orders/{MISSING_ORDER}", other)
        assert_error(theirs, 404, "not_found")
        assert comparable(theirs) == comparable(missing)


def test_another_tenants_orders_are_never_listed(api: Api):
    acme_orders = {api.post_order(ONE_LINE, ACME).json["order_id"] for _ in range(3)}
    globex_order = api.post_order(ONE_LINE, GLOBEX).json["order_id"]
    assert {order["order_id"] for order in api.get("/orders", ACME).json["items"]} == acme_orders
    assert [order["order_id"] for order in api.get("/orders", GLOBEX).json["items"]] == [globex_order]
    assert api.get("/orders", INITECH).json["items"] == []


def test_ordering_another_tenants_product_is_an_unknown_product_and_takes_nothing(api: Api, acme_only_product):
    theirs = api.post_order([{"product_id": acme_only_product, "quantity": 1}], GLOBEX)
    missing = api.post_order([{"product_id": "prod-nothing", "quantity": 1}], GLOBEX)
    assert_error(theirs, 422, "unknown_product")
    assert theirs.json["error"]["message"] == f"Unknown product: {acme_only_product}."
    assert missing.json["error"]["message"] == "Unknown product: prod-nothing."
    assert CatalogRepository("acme", dynamodb_client()).get(acme_only_product).stock == 3
    assert OrderRepository("globex", dynamodb_client()).list(10)[0] == []


def test_an_order_takes_stock_and_price_from_the_callers_catalog_only(api: Api):
    body = api.post_order([{"product_id": "prod-001", "quantity": 2}], INITECH).json
    assert body["items"][0]["unit_price"] == "1.10"
    assert body["items"][0]["name"] == "initech widget 1"
    assert CatalogRepository("initech", dynamodb_client()).get("prod-001").stock == 8
    assert CatalogRepository("acme", dynamodb_client()).get("prod-001").stock == 10
    assert CatalogRepository("globex", dynamodb_client()).get("prod-001").stock == 10


@pytest.mark.parametrize("list_path", ["/catalog", "/orders"])
def test_another_tenants_next_token_is_refused(api: Api, list_path):
    for _ in range(3):
        api.post_order(ONE_LINE, ACME)
    token = api.get(f"{list_path}?limit=1", ACME).json["next_token"]
    assert token
    assert api.get(f"{list_path}?limit=1&next_token={token}", ACME).status == 200
    for other in (GLOBEX, INITECH):
        assert_error(api.get(f"{list_path}?limit=1&next_token={token}", other), 400, "invalid_pagination_token")


def test_a_next_token_of_another_list_is_refused(api: Api):
    for _ in range(3):
        api.post_order(ONE_LINE, ACME)
    catalog_token = api.get("/catalog?limit=1", ACME).json["next_token"]
    orders_token = api.get("/orders?limit=1", ACME).json["next_token"]
    assert_error(api.get(f"/orders?next_token={catalog_token}", ACME), 400, "invalid_pagination_token")
    assert_error(api.get(f"/catalog?next_token={orders_token}", ACME), 400, "invalid_pagination_token")


INJECTED_HEADERS = {
    "X-Tenant-Id": "globex",
    "Tenant-Id": "globex",
    "X-Amzn-Tenant-Id": "globex",
    "X-Forwarded-User": "globex",
    "X-Client-Id": GLOBEX.client_id,
}


@pytest.mark.parametrize(
    "path",
    [
        "/catalog",
        "/catalog?tenant_id=globex",
        "/catalog?tenant=globex&tenant_id=globex&client_id=globexclient0002",
        "/catalog/prod-003?tenant_id=globex",
        "/orders?tenant_id=globex",
    ],
)
def test_tenant_identity_in_headers_or_query_is_ignored(api: Api, path):
    api.post_order(ONE_LINE, GLOBEX)
    reply = api.get(path, ACME, headers=INJECTED_HEADERS)
    assert reply.status == 200
    body = reply.json
    assert body["tenant_id"] == "acme"
    items = body.get("items", [body])
    for item in items:
        if "name" in item:
            assert item["name"].startswith("acme ")
    if path.startswith("/orders"):
        assert items == []


def test_tenant_identity_in_the_body_is_refused(api: Api):
    for document in (
        {"items": ONE_LINE, "tenant_id": "globex"},
        {"items": [{**ONE_LINE[0], "tenant_id": "globex"}]},
        {"items": ONE_LINE, "tenant": {"tenant_id": "globex"}},
    ):
        reply = api.request(
            "POST",
            "/orders",
            ACME,
            headers={"Content-Type": "application/json", **INJECTED_HEADERS},
            body=json.dumps(document),
        )
        assert_error(reply, 422, "validation_error")
    assert OrderRepository("globex", dynamodb_client()).list(10)[0] == []
    assert OrderRepository("acme", dynamodb_client()).list(10)[0] == []


def test_an_order_placed_with_injected_headers_belongs_to_the_token_tenant(api: Api):
    reply = api.post_order(ONE_LINE, ACME, headers=INJECTED_HEADERS)
    assert reply.status == 201
    assert reply.json["tenant_id"] == "acme"
    assert [order.order_id for order in OrderRepository("acme", dynamodb_client()).list(10)[0]] == [
        reply.json["order_id"]
    ]
    assert OrderRepository("globex", dynamodb_client()).list(10)[0] == []
    assert CatalogRepository("globex", dynamodb_client()).get("prod-001").stock == 10


@pytest.mark.parametrize(
    "path",
    [
        "/catalog/TENANT%23globex%23PRODUCT",
        "/catalog/prod-001%23",
        "/catalog/..%2Fglobex",
        "/orders/ORDER%23ord_01HZY3M9K8V6T5R4Q3P2N1M0AB",
    ],
)
def test_key_material_in_path_ids_is_refused(api: Api, path):
    assert_error(api.get(path, ACME), 400, "invalid_request")


def test_a_token_says_who_the_tenant_is_not_its_subject_or_other_claims(api: Api):
    # A validly signed token of acme's client that claims another tenant in extra claims.
    claims = api.issuer.claims(ACME.client_id, ["tenant-api/catalog.read"])
    claims.update({"tenant_id": "globex", "custom:tenant_id": "globex", "sub": GLOBEX.client_id})
    body = api.get("/catalog/prod-001", token=api.issuer.sign(claims)).json
    assert body["tenant_id"] == "acme"
    assert body["name"] == "acme widget 1"
