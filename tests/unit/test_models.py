"""Unit tests of the catalog and order shapes: exact money, totals, and the request fingerprint."""

from __future__ import annotations

from decimal import Decimal

from chalicelib.models import Order, OrderLine, OrderLineRequest, OrderRequest, Product, money


def test_money_is_an_exact_decimal_string():
    assert money(Decimal("19.99")) == "19.99"
    assert money(Decimal("0.10") * 3) == "0.30"
    assert money(Decimal("1E+2")) == "100.00"
    assert money(Decimal("0.000001")) == "0.000001"


def test_money_pads_what_dynamodb_normalised_back_to_cents_without_rounding():
    # DynamoDB stores 19.90 as 19.9 and 20.00 as 20.
    assert money(Decimal("19.9")) == "19.90"
    assert money(Decimal("20")) == "20.00"
    assert money(Decimal("0.125")) == "0.125"


def test_order_totals_are_exact():
    lines = (
        OrderLine("prod-001", "a", 3, Decimal("0.10")),
        OrderLine("prod-002", "b", 1, Decimal("0.20")),
        OrderLine("prod-003", "c", 1000, Decimal("9999.99")),
    )
    order = Order("ord_01HZY3M9K8V6T5R4Q3P2N1M0AB", lines, "USD", "2024-01-01T00:00:00.000Z")
    assert order.total == Decimal("9999990.50")
    body = order.to_json()
    assert body["total"] == "9999990.50"
    assert [line["line_total"] for line in body["items"]] == ["0.30", "0.20", "9999990.00"]
    assert body["status"] == "placed"


def test_a_product_renders_its_price_as_a_string():
    body = Product("prod-001", "n", Decimal("5.50"), "EUR", 3, "d").to_json()
    assert body == {
        "product_id": "prod-001",
        "name": "n",
        "description": "d",
        "price": "5.50",
        "currency": "EUR",
        "stock": 3,
    }


def test_the_fingerprint_ignores_line_order_but_not_content():
    a = OrderRequest((OrderLineRequest("prod-001", 1), OrderLineRequest("prod-002", 2)))
    b = OrderRequest((OrderLineRequest("prod-002", 2), OrderLineRequest("prod-001", 1)))
    c = OrderRequest((OrderLineRequest("prod-001", 1), OrderLineRequest("prod-002", 3)))
    d = OrderRequest((OrderLineRequest("prod-001", 12),))
    e = OrderRequest((OrderLineRequest("prod-001", 1), OrderLineRequest("prod-0022", 2)))
    assert a.fingerprint() == b.fingerprint()
    assert len({a.fingerprint(), c.fingerprint(), d.fingerprint(), e.fingerprint()}) == 4
    assert len(a.fingerprint()) == 64
