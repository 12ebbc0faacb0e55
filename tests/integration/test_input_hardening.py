"""Input hardening through the Chalice test client: repeated JSON keys, unknown field names, nosniff on every answer."""

from __future__ import annotations

import pytest

from chalicelib.store.dynamodb import dynamodb_client
from chalicelib.store.orders import OrderRepository
from tests.support.api import Api, assert_error
from tests.support.tenants import ACME

JSON = {"Content-Type": "application/json"}


def order_count() -> int:
    return len(OrderRepository(ACME.tenant_id, dynamodb_client()).list(100)[0])


@pytest.mark.parametrize(
    "body",
    [
        b'{"items": [{"product_id": "prod-001", "quantity": 1, "quantity": 1000}]}',
        b'{"items": [{"product_id": "prod-001", "quantity": 1}], "items": [{"product_id": "prod-002", "quantity": 1}]}',
        b'{"items": [{"product_id": "prod-001", "product_id": "prod-002", "quantity": 1}]}',
    ],
    ids=["quantity-twice", "items-twice", "product-twice"],
)
def test_a_body_that_repeats_a_key_is_400_and_writes_nothing(api: Api, body):
    reply = api.request("POST", "/orders", ACME, headers=JSON, body=body)
    assert_error(reply, 400, "invalid_request")
    assert order_count() == 0


def test_unknown_field_names_that_are_not_plain_identifiers_are_not_echoed(api: Api):
    name = '"><img src=x onerror=alert(1)>' + "x" * 1000
    reply = api.request(
        "POST",
        "/orders",
        ACME,
        headers=JSON,
        body='{"items": [{"product_id": "prod-001", "quantity": 1, "%s": 1}]}' % name.replace('"', '\\"'),
    )
    body = assert_error(reply, 422, "validation_error")
    assert body["error"]["message"] == ("items[0] has 1 field that is not allowed (allowed: product_id, quantity).")
    assert b"onerror" not in reply.body and order_count() == 0


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/health", 200),
        ("GET", "/openapi.json", 200),
        ("GET", "/catalog", 200),
        ("GET", "/catalog/prod-999", 404),
        ("GET", "/catalog?limit=0", 400),
        ("POST", "/catalog", 405),
        ("POST", "/orders", 415),
    ],
)
def test_every_answer_of_the_application_sends_nosniff(api: Api, method, path, status):
    reply = api.request(method, path, ACME)
    assert reply.status == status, reply.body
    assert reply.header("X-Content-Type-Options") == "nosniff"
