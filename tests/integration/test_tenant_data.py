"""scripts.tenants.data against moto: counting and purging a tenant's data, whole or interrupted."""

from __future__ import annotations

from typing import Any, Callable

import pytest
from botocore.exceptions import EndpointConnectionError

from chalicelib.models import Order, OrderLineRequest, OrderRequest
from chalicelib.services import place_order
from chalicelib.store import keys
from chalicelib.store.dynamodb import dynamodb_client, to_item
from chalicelib.tenancy import TenantContext
from chalicelib.tenant_repositories import repositories_for
from scripts.tenants import data as tenant_data
from tests.support.tenants import PRODUCTS_PER_TENANT, TABLE_NAME

ACME = TenantContext("acme", "basic", frozenset())
PRODUCTS, ORDERS, RECORDS = "products", "orders", "idempotency records"


def place(idempotency_key: str | None, product_id: str = "prod-001") -> Order:
    order, replayed = place_order(
        ACME, repositories_for(ACME), OrderRequest((OrderLineRequest(product_id, 1),)), idempotency_key
    )
    assert not replayed
    return order


def items_of(tenant_id: str) -> list[dict[str, Any]]:
    """Every item of the tenant's own data (a test may scan; the script never does)."""
    items, request = [], {"TableName": TABLE_NAME, "ConsistentRead": True}
    while True:
        page = dynamodb_client().scan(**request)
        items.extend(item for item in page["Items"] if item["PK"]["S"].startswith(keys.tenant_prefix(tenant_id)))
        if "LastEvaluatedKey" not in page:
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def kind_of(key: dict[str, Any]) -> str:
    if "#IDEMPOTENCY#" in key["PK"]["S"]:
        return RECORDS
    if key["SK"]["S"].startswith(keys.ORDER_PREFIX):
        return ORDERS
    assert key["SK"]["S"] == keys.PRODUCT_SORT_KEY, key
    return PRODUCTS


def records_of(tenant_id: str) -> list[dict[str, Any]]:
    return [item for item in items_of(tenant_id) if kind_of(item) == RECORDS]


def expire_records(tenant_id: str) -> None:
    """As if the tenant's Idempotency-Key records were a day old (TTL has not deleted them yet)."""
    for record in records_of(tenant_id):
        dynamodb_client().update_item(
            TableName=TABLE_NAME,
            Key={"PK": record["PK"], "SK": record["SK"]},
            UpdateExpression="SET expires_at = :then",
            ExpressionAttributeValues=to_item({":then": 0}),
        )


def intercept(monkeypatch: pytest.MonkeyPatch, handler: Callable[..., Any]) -> None:
    """Route every call of the application's DynamoDB client through handler(operation, params, original)."""
    dynamodb = dynamodb_client()
    original = dynamodb._make_api_call
    monkeypatch.setattr(dynamodb, "_make_api_call", lambda name, params: handler(name, params, original))


def test_orders_of_a_reused_expired_idempotency_key_are_counted_and_purged(table: None):
    first = place("reused-key")
    expire_records("acme")
    second = place("reused-key")
    assert first != second
    digests = [item["idempotency_key_digest"] for item in items_of("acme") if kind_of(item) == ORDERS]
    assert len(digests) == 2 and digests[0] == digests[1], "both orders name the one record"

    expected = {PRODUCTS: PRODUCTS_PER_TENANT, ORDERS: 2, RECORDS: 1}
    assert tenant_data.count_data("acme") == expected
    assert tenant_data.purge_data("acme") == expected
    assert items_of("acme") == []


def test_a_purge_deletes_the_records_then_the_orders_then_the_products(table: None, monkeypatch: pytest.MonkeyPatch):
    for number in range(3):
        place(f"key-{number}")
    place(None)
    deleted: list[str] = []

    def record(name: str, params: dict[str, Any], original: Callable[..., Any]) -> Any:
        if name == "BatchWriteItem":
            requests = params["RequestItems"][TABLE_NAME]
            deleted.extend(kind_of(request["DeleteRequest"]["Key"]) for request in requests)
        return original(name, params)

    intercept(monkeypatch, record)
    counts = tenant_data.purge_data("acme")

    assert counts == {PRODUCTS: PRODUCTS_PER_TENANT, ORDERS: 4, RECORDS: 3}
    assert list(counts) == [PRODUCTS, ORDERS, RECORDS], "the same keys, in the same order, as before"
    # Records are found only through their orders: deleting them last would orphan them on an interruption.
    assert deleted == [RECORDS] * 3 + [ORDERS] * 4 + [PRODUCTS] * PRODUCTS_PER_TENANT
    assert items_of("acme") == []


@pytest.mark.parametrize("batches", [0, 1, 2])
def test_an_interrupted_purge_leaves_no_record_that_a_rerun_cannot_find(
    table: None, monkeypatch: pytest.MonkeyPatch, batches: int
):
    for number in range(3):
        place(f"key-{number}")
    sent = {"count": 0, "failing": True}

    def cut_off(name: str, params: dict[str, Any], original: Callable[..., Any]) -> Any:
        if name == "BatchWriteItem" and sent["failing"]:
            if sent["count"] == batches:
                raise EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")
            sent["count"] += 1
        return original(name, params)

    intercept(monkeypatch, cut_off)
    with pytest.raises(EndpointConnectionError):
        tenant_data.purge_data("acme")

    sent["failing"] = False
    assert tenant_data.count_data("acme")[RECORDS] == len(records_of("acme")), "every record left is found"
    tenant_data.purge_data("acme")
    assert items_of("acme") == []
