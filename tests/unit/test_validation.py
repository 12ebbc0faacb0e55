"""Unit tests of the request rules in chalicelib.web.validation: order bodies, limits, ids and headers."""

from __future__ import annotations

import json

import pytest

from chalicelib.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from chalicelib.models import OrderLineRequest
from chalicelib.web import validation

JSON = "application/json"


def order_body(*lines: dict) -> bytes:
    return json.dumps({"items": list(lines)}).encode()


def line(product_id: str = "prod-001", quantity: object = 1) -> dict:
    return {"product_id": product_id, "quantity": quantity}


def read(body: bytes | str, content_type: str | None = JSON):
    return validation.read_order_request(content_type, body)


# --- POST /orders body -----------------------------------------------------------------------


def test_a_valid_order_keeps_its_lines_in_order():
    request = read(order_body(line("prod-002", 3), line("prod-001", 1000)))
    assert request.lines == (OrderLineRequest("prod-002", 3), OrderLineRequest("prod-001", 1000))


@pytest.mark.parametrize("count", [1, 50])
def test_one_to_fifty_lines_are_accepted(count):
    request = read(order_body(*(line(f"prod-{n:03d}") for n in range(count))))
    assert len(request.lines) == count


@pytest.mark.parametrize("count", [0, 51])
def test_fewer_than_one_or_more_than_fifty_lines_are_refused(count):
    with pytest.raises(ValidationFailed, match="items must be a list of 1 to 50 lines"):
        read(order_body(*(line(f"prod-{n:03d}") for n in range(count))))


@pytest.mark.parametrize("quantity", [1, 2, 999, 1000, 1.0, 1e3])
def test_integer_quantities_from_1_to_1000_are_accepted(quantity):
    accepted = read(order_body(line(quantity=quantity))).lines[0].quantity
    assert accepted == quantity and type(accepted) is int


@pytest.mark.parametrize(
    "quantity", [0, -1, 1001, 10**30, True, False, 0.0, 2.5, 1000.5, 1e4, "1", None, [1], {"n": 1}]
)
def test_other_quantities_are_refused(quantity):
    with pytest.raises(ValidationFailed, match=r"items\[0\]\.quantity must be an integer from 1 to 1000"):
        read(order_body(line(quantity=quantity)))


def test_a_missing_quantity_is_refused():
    with pytest.raises(ValidationFailed, match="quantity"):
        read(order_body({"product_id": "prod-001"}))


@pytest.mark.parametrize(
    "product_id", ["", "PROD-001", "prod#001", "prod 001", "-prod", "p" * 64, 1, None, ["prod-001"]]
)
def test_malformed_product_ids_in_lines_are_refused(product_id):
    with pytest.raises(ValidationFailed, match=r"items\[0\]\.product_id"):
        read(order_body(line(product_id=product_id)))


def test_the_same_product_twice_is_refused():
    with pytest.raises(ValidationFailed, match="repeated: prod-001"):
        read(order_body(line("prod-001", 1), line("prod-002", 1), line("prod-001", 2)))


@pytest.mark.parametrize(
    "document",
    [
        {"items": [line()], "tenant_id": "globex"},
        {"items": [line()], "total": "0.01"},
        {"items": [{**line(), "price": "0.01"}]},
        {"items": [{**line(), "unit_price": "0.01"}]},
        {"items": [{**line(), "tenant_id": "globex"}]},
    ],
)
def test_unknown_fields_are_refused(document):
    with pytest.raises(ValidationFailed, match="is not an allowed field"):
        read(json.dumps(document))


def test_plain_identifier_field_names_are_named_in_the_message():
    with pytest.raises(ValidationFailed) as raised:
        read(json.dumps({"items": [{**line(), "unit_price": "0.01"}], "tenant_id": "globex"}))
    assert "tenant_id is not an allowed field." in raised.value.message
    assert "items[0].unit_price is not an allowed field." in raised.value.message


@pytest.mark.parametrize(
    "name",
    [
        "<script>alert(1)</script>",
        "x" * 33,
        "a" * 5000,
        "line\nbreak",
        "tab\there",
        "caf\u00e9",
        "9lives",
        "has space",
        'quote"d',
        "",
        "${jndi:ldap://x}",
    ],
)
def test_other_field_names_are_counted_never_echoed(name):
    for document in ({"items": [line()], name: 1}, {"items": [{**line(), name: 1}]}):
        with pytest.raises(ValidationFailed) as raised:
            read(json.dumps(document))
        message = raised.value.message
        assert "1 field that is not allowed" in message
        assert name not in message or name == ""
        assert len(message) < 200


def test_at_most_three_unknown_field_names_are_quoted_and_the_rest_counted():
    extra = {f"field_{n:02d}": n for n in range(40)}
    with pytest.raises(ValidationFailed) as raised:
        read(json.dumps({"items": [line()], **extra}))
    message = raised.value.message
    assert [f"field_{n:02d}" in message for n in range(5)] == [True, True, True, False, False]
    assert "The body has 37 more fields that are not allowed (allowed: items)." in message


def test_a_repeated_malformed_product_id_is_not_echoed():
    bad = "<img src=x onerror=alert(1)>"
    with pytest.raises(ValidationFailed) as raised:
        read(order_body(line(bad), line(bad)))
    assert bad not in raised.value.message
    assert "repeated" not in raised.value.message


@pytest.mark.parametrize(
    "body",
    [
        b'{"items": [{"product_id": "prod-001", "quantity": 1}], "items": []}',
        b'{"items": [{"product_id": "prod-001", "quantity": 1, "quantity": 1000}]}',
        b'{"items": [{"product_id": "prod-001", "product_id": "prod-001", "quantity": 1}]}',
        b'{"items": [{"product_id": "prod-001", "quantity": 1}], "x": {"k": 1, "k": 1}}',
        b'{"items": [{"product_id": "prod-001", "quantity": 1}], "\\u0069tems": []}',
    ],
    ids=["top-level", "in-a-line", "same-value-twice", "nested", "escaped-spelling"],
)
def test_an_object_that_repeats_a_key_is_an_invalid_request(body):
    with pytest.raises(InvalidRequest, match="an object repeats a key") as raised:
        read(body)
    assert "quantity" not in raised.value.message and "items" not in raised.value.message


def test_the_same_key_in_different_objects_is_not_a_repeat():
    assert len(read(order_body(line("prod-001"), line("prod-002"))).lines) == 2


@pytest.mark.parametrize(
    "document", [[], [line()], "items", 1, None, {"items": "prod-001"}, {"items": {"0": line()}}, {}]
)
def test_a_body_that_is_not_an_object_with_an_items_list_is_refused(document):
    with pytest.raises(ValidationFailed):
        read(json.dumps(document))


def test_a_line_that_is_not_an_object_is_refused():
    with pytest.raises(ValidationFailed, match=r"items\[0\] must be an object"):
        read(json.dumps({"items": ["prod-001"]}))


def test_every_problem_is_reported_not_only_the_first():
    with pytest.raises(ValidationFailed) as raised:
        read(json.dumps({"items": [line("BAD", 0)], "extra": 1}))
    message = raised.value.message
    assert "extra is not an allowed field" in message
    assert "items[0].product_id" in message
    assert "items[0].quantity" in message


def test_a_body_of_exactly_16_kib_is_read_and_one_byte_more_is_too_large():
    body = order_body(line())
    padded = body[:-1] + b" " * (validation.MAX_BODY_BYTES - len(body)) + b"}"
    assert len(padded) == validation.MAX_BODY_BYTES
    assert read(padded).lines == (OrderLineRequest("prod-001", 1),)
    with pytest.raises(PayloadTooLarge):
        read(padded + b" ")


def test_the_size_limit_counts_bytes_not_characters():
    # 6000 three-byte characters: 18,000 bytes in 6000 characters.
    body = json.dumps({"items": [line()], "note": "\u20ac" * 6000}, ensure_ascii=False)
    assert len(body) < validation.MAX_BODY_BYTES < len(body.encode())
    with pytest.raises(PayloadTooLarge):
        read(body)


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/jsonx",
        "application/json-patch+json",
        "multipart/form-data; boundary=x",
        "application/json; charset=latin-1",
        "application/json; charset=utf-16",
    ],
)
def test_only_json_content_types_are_accepted(content_type):
    with pytest.raises(UnsupportedMediaType):
        read(order_body(line()), content_type)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "Application/JSON",
        "application/json; charset=utf-8",
        'application/json;charset="UTF-8"',
        "application/json; charset=utf8",
    ],
)
def test_json_content_types_with_or_without_utf8_charset_are_accepted(content_type):
    assert read(order_body(line()), content_type).lines


def test_the_content_type_is_checked_before_the_size():
    with pytest.raises(UnsupportedMediaType):
        read(b"x" * (validation.MAX_BODY_BYTES + 1), "text/plain")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b'{"items": [}',
        b"{'items': []}",
        b'{"items": [{"product_id": "prod-001", "quantity": NaN}]}',
        b'{"items": [{"product_id": "prod-001", "quantity": Infinity}]}',
        b'{"items": [{"product_id": "prod-001", "quantity": -Infinity}]}',
        b'{"items": [{"product_id": "prod-\xff", "quantity": 1}]}',
        b"\xef\xbb\xbf{}",
        b"[" * 5000 + b"]" * 5000,
        b'{"items": [{"product_id": "prod-001", "quantity": 1}]} trailing',
    ],
)
def test_malformed_json_nan_and_invalid_utf8_are_invalid_requests(body):
    with pytest.raises(InvalidRequest, match="not valid JSON"):
        read(body)


# --- limit and next_token --------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [(None, 20), ("1", 1), ("20", 20), ("100", 100), ("007", 7)])
def test_limit_is_1_to_100_and_defaults_to_20(raw, expected):
    assert validation.parse_limit(raw) == expected


@pytest.mark.parametrize(
    "raw", ["0", "101", "-1", "", " 5", "5 ", "1.5", "1e2", "ten", "+5", "9" * 5000, "\u00b2", "\u0661\u0660", "\uff15"]
)
def test_other_limits_are_invalid_requests(raw):
    with pytest.raises(InvalidRequest, match="limit must be an integer from 1 to 100"):
        validation.parse_limit(raw)


def test_page_params_reads_limit_and_next_token():
    assert validation.page_params(None) == (20, None)
    assert validation.page_params({"limit": "5", "next_token": "abc.def"}) == (5, "abc.def")
    assert validation.page_params({"next_token": ""}) == (20, None)


def test_an_oversized_next_token_is_refused_before_decoding():
    assert validation.parse_next_token("a" * 512) == "a" * 512
    with pytest.raises(InvalidRequest):
        validation.parse_next_token("a" * 513)


# --- ids -------------------------------------------------------------------------------------


@pytest.mark.parametrize("product_id", ["prod-001", "a", "0", "a" * 63, "sku-9-"])
def test_product_ids_of_the_strict_shape_are_accepted(product_id):
    assert validation.check_product_id(product_id) == product_id


@pytest.mark.parametrize(
    "product_id",
    [
        "",
        "Prod-001",
        "prod#001",
        "TENANT#globex#PRODUCT",
        "-prod",
        "a" * 64,
        "prod_001",
        "prod.001",
        "prod/1",
        "prod\n",
        "é",
    ],
)
def test_other_product_ids_are_invalid_requests(product_id):
    with pytest.raises(InvalidRequest):
        validation.check_product_id(product_id)


def test_order_ids_must_be_ord_and_a_26_character_ulid():
    good = "ord_01HZY3M9K8V6T5R4Q3P2N1M0AB"
    assert validation.check_order_id(good) == good
    for bad in [
        "",
        "ord_",
        good.lower(),
        good[:-1],
        good + "C",
        "ORD_" + good[4:],
        good[:-1] + "I",
        good[:-1] + "U",
        "ord#" + good[4:],
    ]:
        with pytest.raises(InvalidRequest):
            validation.check_order_id(bad)


# --- Idempotency-Key -------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["k", "a" * 128, "order-2024-01-01#1", "~!@$%^&*()_+{}|:<>?"])
def test_idempotency_keys_of_1_to_128_printable_ascii_characters_are_accepted(key):
    assert validation.check_idempotency_key(key) == key


def test_no_idempotency_key_is_allowed():
    assert validation.check_idempotency_key(None) is None


@pytest.mark.parametrize("key", ["", "a" * 129, "has space", "tab\there", "new\nline", "caf\u00e9", "\x7f", "\x00"])
def test_other_idempotency_keys_are_invalid_requests(key):
    with pytest.raises(InvalidRequest, match="Idempotency-Key"):
        validation.check_idempotency_key(key)
