"""Unit tests of chalicelib.pagination: signed tokens bound to one tenant and one list, with a lifetime."""

from __future__ import annotations

import base64
import json

import pytest

from chalicelib.errors import InvalidPaginationToken
from chalicelib.pagination import TOKEN_LIFETIME_SECONDS, decode_token, encode_token

SECRET = b"s" * 32
NOW = 1_700_000_000.0
SORT_KEY = "PRODUCT#prod-005"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def token(tenant: str = "acme", list_name: str = "catalog", sort_key: str = SORT_KEY, now: float = NOW) -> str:
    return encode_token(SECRET, tenant, list_name, sort_key, now=now)


def decode(
    value: str, tenant: str = "acme", list_name: str = "catalog", prefix: str = "PRODUCT#", now: float = NOW
) -> str:
    return decode_token(SECRET, tenant, list_name, value, expected_prefix=prefix, now=now)


def test_a_token_round_trips_to_its_sort_key():
    assert decode(token()) == SORT_KEY
    order_key = "ORDER#ord_01HZY3M9K8V6T5R4Q3P2N1M0AB"
    assert decode(token(list_name="orders", sort_key=order_key), list_name="orders", prefix="ORDER#") == order_key


def test_a_token_is_url_safe_and_does_not_name_the_tenant():
    value = token()
    assert set(value) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    assert b"acme" not in unb64(value.split(".")[0])


def test_an_edited_payload_is_refused():
    payload, signature = token().split(".")
    document = json.loads(unb64(payload))
    document["k"] = "PRODUCT#prod-001"
    forged = f"{b64(json.dumps(document, separators=(',', ':')).encode())}.{signature}"
    with pytest.raises(InvalidPaginationToken):
        decode(forged)


def test_an_edited_signature_is_refused():
    payload, signature = token().split(".")
    raw = bytearray(unb64(signature))
    raw[0] ^= 1
    with pytest.raises(InvalidPaginationToken):
        decode(f"{payload}.{b64(bytes(raw))}")


def test_a_token_signed_with_another_secret_is_refused():
    other = encode_token(b"o" * 32, "acme", "catalog", SORT_KEY, now=NOW)
    with pytest.raises(InvalidPaginationToken):
        decode(other)


def test_another_tenants_token_is_refused():
    with pytest.raises(InvalidPaginationToken):
        decode(token(tenant="globex"), tenant="acme")


def test_another_lists_token_is_refused():
    orders_token = token(list_name="orders", sort_key="ORDER#ord_01HZY3M9K8V6T5R4Q3P2N1M0AB")
    with pytest.raises(InvalidPaginationToken):
        decode(orders_token, list_name="catalog", prefix="PRODUCT#")


def test_a_sort_key_outside_the_list_is_refused_even_if_signed():
    with pytest.raises(InvalidPaginationToken):
        decode(token(sort_key="META"))


def test_a_token_expires_after_its_lifetime():
    value = token(now=NOW)
    assert decode(value, now=NOW + TOKEN_LIFETIME_SECONDS) == SORT_KEY
    with pytest.raises(InvalidPaginationToken, match="expired"):
        decode(value, now=NOW + TOKEN_LIFETIME_SECONDS + 1)


def test_a_token_issued_in_the_future_is_refused():
    with pytest.raises(InvalidPaginationToken):
        decode(token(now=NOW + 3600), now=NOW)


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        ".",
        "..",
        "abc",
        "a.b.c",
        "not base64!.x",
        "\u00e9\u00e9.\u00e9",
        "=.=",
        "%%%.%%%",
        "x" * 511,
        token() + ".",
        token()[:-2],
    ],
)
def test_garbage_is_refused(garbage):
    with pytest.raises(InvalidPaginationToken):
        decode(garbage)


def test_a_signed_payload_that_is_not_the_expected_document_is_refused():
    # Only the holder of the secret can sign, but a malformed document must still not crash.
    from chalicelib.pagination import _signature

    for payload in [b"[]", b"{}", b'{"k": 1, "t": 1700000000}', b'{"k": "PRODUCT#x", "t": "1700000000"}', b"\xff"]:
        forged = f"{b64(payload)}.{b64(_signature(SECRET, 'acme', 'catalog', payload))}"
        with pytest.raises(InvalidPaginationToken):
            decode(forged)
