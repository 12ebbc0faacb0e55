"""Nothing a client can send makes the API answer 500: odd paths, queries, headers, tokens and bodies."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.api import Api, Reply
from tests.support.tenants import ACME

FUZZ = settings(
    max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
JSON_HEADERS = {"Content-Type": "application/json"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def assert_handled(reply: Reply) -> None:
    """A deliberate answer: below 500 and, for our own errors, the JSON envelope."""
    assert reply.status < 500, (reply.status, reply.body)
    if reply.status >= 400 and reply.header("X-Request-Id"):
        body = reply.json
        assert set(body) == {"error", "request_id"}


@pytest.mark.parametrize(
    "path",
    [
        "/catalog/%00",
        "/catalog/%ZZ",
        "/catalog/" + "a" * 5000,
        "/catalog/\u00fc",
        "/catalog/a:b:c",
        "/catalog/prod-001;x=1",
        "/catalog?limit=",
        "/catalog?limit=%00",
        "/catalog?limit=1&limit=500",
        "/catalog?limit=99999999999999999999999999",
        "/catalog?next_token=" + b64(b'{"k":"PRODUCT#a","t":1}') + "." + b64(b"x" * 32),
        "/catalog?next_token=" + "." * 100,
        "/catalog?next_token=%FF%FE",
        "/orders?next_token=\u00e9.\u00e9",
        "/orders/ord_ZZZZZZZZZZZZZZZZZZZZZZZZZZ",
        "/orders/ord_00000000000000000000000000",
        "/orders/",
        "/catalog/",
    ],
)
def test_odd_paths_and_queries_are_answered_deliberately(api: Api, path):
    assert_handled(api.get(path, ACME))


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer " + "." * 100,
        "Bearer ..",
        "Bearer " + b64(b"[]") + ".e30.",
        "Bearer " + b64(b'{"alg":"RS256","kid":["test-key-1"]}') + ".e30.c2ln",
        "Bearer " + b64(b'{"alg":"RS256","kid":"' + b"k" * 4000 + b'"}') + ".e30.c2ln",
        "Bearer " + b64(b'{"alg":"RS256","kid":"test-key-1"}') + "." + b64(b"\xff\xfe") + ".c2ln",
        "Bearer " + b64(b'{"alg":"RS256","kid":"test-key-1"}') + ".!!!.!!!",
        "Bearer \u00e9\u00e9\u00e9",
        "Bearer\ttoken",
        "  ",
    ],
)
def test_odd_authorization_headers_are_401(api: Api, authorization):
    reply = api.get("/catalog", tenant=None, headers={"Authorization": authorization})
    assert reply.status == 401, reply.body


def test_validly_signed_tokens_with_odd_claims_are_refused_or_scoped(api: Api):
    base = api.issuer.claims(ACME.client_id, ["tenant-api/catalog.read"])
    for changes in (
        {"exp": "tomorrow"},
        {"iat": None},
        {"iat": "yesterday"},
        {"nbf": 4102444800},
        {"scope": ["tenant-api/catalog.read"]},
        {"client_id": ""},
        {"client_id": "x" * 200},
        {"token_use": ["access"]},
    ):
        reply = api.get("/catalog", token=api.issuer.sign({**base, **changes}))
        assert reply.status in (401, 403), (changes, reply.status, reply.body)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset",
        ";;;",
        'application/json; charset=""',
        "application/json;;",
        "APPLICATION/JSON ; CHARSET=UTF-8",
        "\u00e9",
    ],
)
def test_odd_content_types_are_answered_deliberately(api: Api, content_type):
    reply = api.request(
        "POST",
        "/orders",
        ACME,
        headers={"Content-Type": content_type},
        body=json.dumps({"items": [{"product_id": "prod-001", "quantity": 1}]}),
    )
    assert_handled(reply)
    assert reply.status in (201, 415)


@FUZZ
@given(body=st.binary(max_size=400))
def test_random_bytes_as_an_order_body(api: Api, body):
    assert_handled(api.request("POST", "/orders", ACME, headers=JSON_HEADERS, body=body))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
LINES = st.lists(
    st.dictionaries(
        st.sampled_from(["product_id", "quantity", "price", "tenant_id"]),
        st.sampled_from(["prod-001", "prod-002", "prod-404", "PROD", ""]) | st.integers(-5, 2000) | JSON_VALUES,
        max_size=4,
    ),
    max_size=5,
)


@FUZZ
@given(
    document=st.one_of(
        JSON_VALUES,
        st.fixed_dictionaries({"items": LINES}),
        st.fixed_dictionaries({"items": LINES}, optional={"extra": JSON_VALUES}),
    )
)
def test_random_json_as_an_order_body(api: Api, document):
    reply = api.request("POST", "/orders", ACME, headers=JSON_HEADERS, body=json.dumps(document))
    assert_handled(reply)
    assert reply.status in (201, 409, 422, 429), reply.body


@FUZZ
@given(segment=st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="/?#"), min_size=1, max_size=80))
def test_random_path_segments(api: Api, segment):
    assert_handled(api.get(f"/catalog/{segment}", ACME))
    assert_handled(api.get(f"/orders/{segment}", ACME))


@FUZZ
@given(
    limit=st.text(max_size=12),
    token=st.text(max_size=80),
    key=st.text(st.characters(blacklist_categories=["Cs", "Cc"]), max_size=140),
)
def test_random_query_values_and_idempotency_keys(api: Api, limit, token, key):
    query = f"/orders?limit={limit}&next_token={token}".replace("#", "%23")
    assert_handled(api.get(query, ACME))
    headers = {"Idempotency-Key": key}
    assert_handled(api.post_order([{"product_id": "prod-404", "quantity": 1}], ACME, headers=headers))
