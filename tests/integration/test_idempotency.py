"""Idempotent order retries through the API: the same key and body replay the first order and write nothing."""

from __future__ import annotations

from chalicelib.store import keys
from chalicelib.store.catalog import CatalogRepository
from chalicelib.store.dynamodb import dynamodb_client, to_item
from chalicelib.store.orders import OrderRepository
from tests.support.api import Api, assert_error
from tests.support.tenants import ACME, GLOBEX, TABLE_NAME

LINES = [{"product_id": "prod-001", "quantity": 2}, {"product_id": "prod-002", "quantity": 1}]


def stock_of(tenant, product_id: str) -> int:
    return CatalogRepository(tenant.tenant_id, dynamodb_client()).get(product_id).stock


def orders_of(tenant) -> list[str]:
    return [order.order_id for order in OrderRepository(tenant.tenant_id, dynamodb_client()).list(100)[0]]


def test_a_retry_with_the_same_key_returns_the_same_order_and_writes_nothing(api: Api):
    first = api.post_order(LINES, ACME, idempotency_key="checkout-42")
    assert first.status == 201
    assert first.header("Idempotent-Replayed") == "false"
    retry = api.post_order(LINES, ACME, idempotency_key="checkout-42")
    assert retry.status == 201
    assert retry.header("Idempotent-Replayed") == "true"
    assert retry.header("Location") == first.header("Location")
    replayed, original = retry.json, first.json
    assert replayed.pop("request_id") != original.pop("request_id")
    assert replayed == original
    assert stock_of(ACME, "prod-001") == 8
    assert stock_of(ACME, "prod-002") == 9
    assert orders_of(ACME) == [original["order_id"]]


def test_a_retry_listing_the_lines_in_another_order_is_the_same_request(api: Api):
    first = api.post_order(LINES, ACME, idempotency_key="checkout-43").json
    retry = api.post_order(list(reversed(LINES)), ACME, idempotency_key="checkout-43")
    assert retry.header("Idempotent-Replayed") == "true"
    assert retry.json["order_id"] == first["order_id"]
    assert stock_of(ACME, "prod-001") == 8


def test_without_a_key_each_request_is_a_new_order(api: Api):
    ids = {api.post_order(LINES, ACME).json["order_id"] for _ in range(2)}
    assert len(ids) == 2
    assert stock_of(ACME, "prod-001") == 6


def test_different_keys_make_different_orders(api: Api):
    first = api.post_order(LINES, ACME, idempotency_key="a").json["order_id"]
    second = api.post_order(LINES, ACME, idempotency_key="b").json["order_id"]
    assert first != second
    assert sorted(orders_of(ACME)) == sorted([first, second])


def test_a_key_reused_with_another_body_is_422_and_writes_nothing(api: Api):
    first = api.post_order(LINES, ACME, idempotency_key="checkout-44").json
    for other in (
        [{"product_id": "prod-001", "quantity": 3}],
        [LINES[0]],
        LINES + [{"product_id": "prod-003", "quantity": 1}],
    ):
        assert_error(api.post_order(other, ACME, idempotency_key="checkout-44"), 422, "idempotency_key_reused")
    assert orders_of(ACME) == [first["order_id"]]
    assert stock_of(ACME, "prod-001") == 8
    assert stock_of(ACME, "prod-003") == 10
    # The original body still replays.
    assert api.post_order(LINES, ACME, idempotency_key="checkout-44").json["order_id"] == first["order_id"]


def test_keys_are_per_tenant(api: Api):
    acme = api.post_order(LINES, ACME, idempotency_key="shared-key")
    globex = api.post_order([{"product_id": "prod-004", "quantity": 1}], GLOBEX, idempotency_key="shared-key")
    assert globex.status == 201
    assert globex.header("Idempotent-Replayed") == "false"
    assert globex.json["order_id"] != acme.json["order_id"]
    assert globex.json["tenant_id"] == "globex"
    assert orders_of(GLOBEX) == [globex.json["order_id"]]


def test_a_refused_order_does_not_use_up_its_key(api: Api):
    too_many = [{"product_id": "prod-001", "quantity": 11}]
    assert_error(api.post_order(too_many, ACME, idempotency_key="restock"), 409, "insufficient_stock")
    CatalogRepository("acme", dynamodb_client()).put(ACME.product(1, stock=20))
    retry = api.post_order(too_many, ACME, idempotency_key="restock")
    assert retry.status == 201
    assert retry.header("Idempotent-Replayed") == "false"
    assert stock_of(ACME, "prod-001") == 9


def test_an_expired_key_may_be_used_again(api: Api, monkeypatch):
    monkeypatch.setattr(OrderRepository, "IDEMPOTENCY_TTL_SECONDS", -1)
    first = api.post_order(LINES, ACME, idempotency_key="old-key").json["order_id"]
    second = api.post_order([{"product_id": "prod-003", "quantity": 1}], ACME, idempotency_key="old-key")
    assert second.status == 201
    assert second.header("Idempotent-Replayed") == "false"
    assert second.json["order_id"] != first
    assert len(orders_of(ACME)) == 2


def test_a_replay_answers_from_the_keys_record_alone(api: Api):
    first = api.post_order(LINES, ACME, idempotency_key="orphaned")
    # The record keeps the whole first answer: even with the order item gone (an operator
    # removed it), a retry gets what the first request got, and nothing is written.
    dynamodb_client().delete_item(TableName=TABLE_NAME, Key=to_item(keys.order_key("acme", first.json["order_id"])))
    retry = api.post_order(LINES, ACME, idempotency_key="orphaned")
    assert retry.status == 201, retry.body
    assert retry.header("Idempotent-Replayed") == "true"
    replayed, original = retry.json, first.json
    assert replayed.pop("request_id") != original.pop("request_id")
    assert replayed == original
    assert orders_of(ACME) == []
    assert stock_of(ACME, "prod-001") == 8


def test_deleting_a_keys_record_frees_the_key(api: Api):
    import hashlib

    first = api.post_order(LINES, ACME, idempotency_key="freed").json["order_id"]
    digest = hashlib.sha256(b"freed").hexdigest()
    dynamodb_client().delete_item(TableName=TABLE_NAME, Key=to_item(keys.idempotency_key("acme", digest)))
    again = api.post_order(LINES, ACME, idempotency_key="freed")
    assert again.header("Idempotent-Replayed") == "false"
    assert again.json["order_id"] != first
