"""The local stack's gateway over real HTTP: every answer API Gateway gives itself, as the deployed API gives it.

What is expected comes from chalicelib.web.gateway.gateway_responses(), the definitions applied to the
deployed API, so the local answers and the AWS ones cannot drift apart.
"""

from __future__ import annotations

import http.client
import json
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest

from chalicelib.web.gateway import gateway_responses
from tests.support.stack import HTTP_TIMEOUT_SECONDS, RunningStack

pytestmark = pytest.mark.e2e

ORDER = {"items": [{"product_id": "prod-001", "quantity": 1}]}
# A marker that must never come back in any answer, whatever header or body carries it.
SECRET = "s3cr3t-marker-0123456789"
PROTECTED = ["/catalog", "/catalog/prod-001", "/orders", "/orders/ord_" + "0" * 26]


@dataclass
class RawAnswer:
    """One HTTP answer read off a socket, and whether the server closed the connection after it."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes
    closed: bool

    def json(self) -> Any:
        """The body, decoded."""
        return json.loads(self.body)


def envelope_of(response_type: str) -> tuple[int, dict[str, str]]:
    """The status and error object that the project's gateway response of response_type gives."""
    definition = gateway_responses()[response_type]
    body = json.loads(definition["responseTemplates"]["application/json"])
    return int(definition["statusCode"]), body["error"]


NO_ROUTE = envelope_of("MISSING_AUTHENTICATION_TOKEN")
UNAUTHORIZED = envelope_of("UNAUTHORIZED")
GATEWAY_4XX = json.loads(gateway_responses()["DEFAULT_4XX"]["responseTemplates"]["application/json"])["error"]


def raw_exchange(stack: RunningStack, request: bytes, *, shut_write: bool = False) -> RawAnswer:
    """Send request bytes as they are on a fresh connection; read one answer and whether the connection then ends."""
    host, port = urlsplit(stack.api_url).hostname, urlsplit(stack.api_url).port
    with socket.create_connection((host, port), timeout=HTTP_TIMEOUT_SECONDS) as connection:
        connection.sendall(request)
        if shut_write:
            connection.shutdown(socket.SHUT_WR)
        response = http.client.HTTPResponse(connection, method=request.split(b" ", 1)[0].decode())
        response.begin()
        body = response.read()
        try:
            closed = connection.recv(1) == b""
        except (ConnectionResetError, TimeoutError):
            closed = True
        return RawAnswer(response.status, response.headers, body, closed)


def request_bytes(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    """An HTTP/1.1 request exactly as given (no Content-Length added)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def assert_gateway_envelope(status: int, headers: Any, body: Any, expected: tuple[int, dict[str, str]]) -> None:
    """The project's envelope with the expected status and error, its request id also in X-Request-Id."""
    assert (status, body["error"]) == expected, body
    assert set(body) == {"error", "request_id"}
    assert body["request_id"] and headers["X-Request-Id"] == body["request_id"]
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Content-Type-Options"] == "nosniff"


def order_ids(stack: RunningStack, token: str) -> list[str]:
    """Every order id of the token's tenant."""
    response = stack.get("/orders", token, params={"limit": "100"})
    assert response.status_code == 200, response.text
    assert response.json()["next_token"] is None
    return [order["order_id"] for order in response.json()["items"]]


@pytest.fixture(scope="module")
def premium(stack: RunningStack) -> str:
    """A token of the premium tenant (never rate limited by these tests)."""
    return stack.token("premium")


# --- no Authorization header -----------------------------------------------------------------


@pytest.mark.parametrize("path", PROTECTED)
def test_a_protected_route_without_authorization_is_the_401_envelope(stack: RunningStack, path: str) -> None:
    response = stack.http.get(f"{stack.api_url}{path}", timeout=HTTP_TIMEOUT_SECONDS)
    assert_gateway_envelope(response.status_code, response.headers, response.json(), UNAUTHORIZED)
    assert response.headers["x-amzn-ErrorType"] == "UnauthorizedException"


def test_posting_an_order_without_authorization_is_401_and_writes_nothing(stack: RunningStack, premium: str) -> None:
    before = order_ids(stack, premium)
    response = stack.http.post(f"{stack.api_url}/orders", json=ORDER, timeout=HTTP_TIMEOUT_SECONDS)
    assert_gateway_envelope(response.status_code, response.headers, response.json(), UNAUTHORIZED)
    assert order_ids(stack, premium) == before


def test_a_refused_token_is_the_401_envelope_and_is_not_echoed(stack: RunningStack) -> None:
    response = stack.get("/catalog", SECRET)
    assert_gateway_envelope(response.status_code, response.headers, response.json(), UNAUTHORIZED)
    assert SECRET not in response.text and SECRET not in str(response.headers)


# --- no such route or method -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/nope"),
        ("GET", "/catalog/prod-001/extra"),
        ("GET", "/orders/x/y/z"),
        ("POST", "/catalog"),
        ("PUT", "/orders"),
        ("DELETE", "/orders/ord_" + "0" * 26),
        ("PATCH", "/catalog/prod-001"),
        ("POST", "/health"),
        ("OPTIONS", "/catalog"),
        ("OPTIONS", "/nope"),
    ],
)
@pytest.mark.parametrize("authorization", [None, "Bearer {token}", f"Bearer {SECRET}", SECRET])
def test_an_undefined_route_or_method_is_the_404_envelope_and_echoes_nothing(
    stack: RunningStack, premium: str, method: str, path: str, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization.format(token=premium)}
    response = stack.http.request(method, f"{stack.api_url}{path}", headers=headers, timeout=HTTP_TIMEOUT_SECONDS)
    assert_gateway_envelope(response.status_code, response.headers, response.json(), NO_ROUTE)
    assert response.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    for secret in (SECRET, premium):
        assert secret not in response.text
        assert all(secret not in value for value in response.headers.values())


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND", "FOO"])
def test_methods_api_gateway_has_no_definition_for_are_the_404_envelope(stack: RunningStack, method: str) -> None:
    answer = raw_exchange(
        stack, request_bytes(method, "/catalog", {"Authorization": f"Bearer {SECRET}", "Content-Length": "0"})
    )
    assert_gateway_envelope(answer.status, answer.headers, answer.json(), NO_ROUTE)
    assert SECRET.encode() not in answer.body and SECRET not in str(answer.headers)


def test_head_is_answered_like_api_gateway_without_a_body_and_the_connection_stays_usable(
    stack: RunningStack,
) -> None:
    # API Gateway has no HEAD method unless one is defined: HEAD /health is its "no such method".
    parts = urlsplit(stack.api_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=HTTP_TIMEOUT_SECONDS)
    try:
        connection.request("HEAD", "/health")
        head = connection.getresponse()
        assert head.read() == b""
        assert head.status == NO_ROUTE[0]
        assert head.headers["X-Content-Type-Options"] == "nosniff"
        # A body written after a HEAD answer would be read here as the start of the next answer.
        connection.request("GET", "/health")
        health = connection.getresponse()
        assert (health.status, json.loads(health.read())["status"]) == (200, "ok")
    finally:
        connection.close()


# --- framing ---------------------------------------------------------------------------------


def test_a_body_shorter_than_its_content_length_is_400_writes_nothing_and_closes(
    stack: RunningStack, premium: str
) -> None:
    before = order_ids(stack, premium)
    body = json.dumps(ORDER).encode()
    # The body sent is a complete, valid order: processed as it is, it would place one.
    headers = {
        "Authorization": f"Bearer {premium}",
        "Content-Type": "application/json",
        "Content-Length": str(len(body) + 10),
    }
    answer = raw_exchange(stack, request_bytes("POST", "/orders", headers, body), shut_write=True)
    assert (answer.status, answer.json()["error"]) == (400, GATEWAY_4XX)
    assert answer.headers["Connection"] == "close" and answer.closed
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert order_ids(stack, premium) == before
    # The same body with its true length is placed: the refusal was the framing, not the order.
    placed = stack.http.post(
        f"{stack.api_url}/orders",
        data=body,
        headers={"Authorization": f"Bearer {premium}", "Content-Type": "application/json"},
        timeout=HTTP_TIMEOUT_SECONDS,
    )
    assert placed.status_code == 201, placed.text
    assert order_ids(stack, premium) == [placed.json()["order_id"], *before]


@pytest.mark.parametrize(
    ("extra_headers", "status"),
    [
        ({"Content-Length": "abc"}, 400),
        ({"Content-Length": "-1"}, 400),
        ({"Content-Length": "+5"}, 400),
        ({"Transfer-Encoding": "chunked"}, 411),
        ({"Transfer-Encoding": "chunked", "Content-Length": "{length}"}, 411),
    ],
    ids=["not-a-number", "negative", "signed", "chunked", "chunked-and-length"],
)
def test_a_body_whose_end_is_unknowable_is_refused_writes_nothing_and_closes(
    stack: RunningStack, premium: str, extra_headers: dict[str, str], status: int
) -> None:
    before = order_ids(stack, premium)
    body = json.dumps(ORDER).encode()
    chunked = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    headers = {"Authorization": f"Bearer {premium}", "Content-Type": "application/json"}
    headers.update({name: value.format(length=len(body)) for name, value in extra_headers.items()})
    payload = chunked if "Transfer-Encoding" in headers else body
    answer = raw_exchange(stack, request_bytes("POST", "/orders", headers, payload))
    assert (answer.status, answer.json()["error"]) == (status, GATEWAY_4XX)
    assert answer.closed
    assert order_ids(stack, premium) == before


def test_two_different_content_lengths_are_refused(stack: RunningStack, premium: str) -> None:
    body = json.dumps(ORDER).encode()
    request = (
        request_bytes(
            "POST", "/orders", {"Authorization": f"Bearer {premium}", "Content-Type": "application/json"}
        ).replace(b"\r\n\r\n", f"\r\nContent-Length: {len(body)}\r\nContent-Length: 3\r\n\r\n".encode())
        + body
    )
    answer = raw_exchange(stack, request)
    assert (answer.status, answer.json()["error"]) == (400, GATEWAY_4XX)
    assert answer.closed


def test_a_body_over_api_gateways_10_mb_is_413_before_it_is_read(stack: RunningStack, premium: str) -> None:
    headers = {
        "Authorization": f"Bearer {premium}",
        "Content-Type": "application/json",
        "Content-Length": str(10 * 1024 * 1024 + 1),
    }
    answer = raw_exchange(stack, request_bytes("POST", "/orders", headers))
    status = int(gateway_responses().get("REQUEST_TOO_LARGE", {}).get("statusCode", 413))
    assert answer.status == status
    assert answer.json()["error"]["code"] and answer.closed


@pytest.mark.parametrize(
    "request_line",
    [b"GARBAGE\r\n\r\n", b"GET /health HTTP/9.9\r\n\r\n", b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n"],
    ids=["no-version", "bad-version", "uri-too-long"],
)
def test_a_request_http_cannot_parse_gets_the_envelope_not_an_html_page(
    stack: RunningStack, request_line: bytes
) -> None:
    answer = raw_exchange(stack, request_line)
    assert 400 <= answer.status < 600
    assert answer.headers["Content-Type"] == "application/json"
    assert set(answer.json()) == {"error", "request_id"}
    assert answer.closed


# --- what the function answers ---------------------------------------------------------------


def test_every_answer_of_the_function_forbids_sniffing(stack: RunningStack, premium: str) -> None:
    answers = [
        stack.http.get(f"{stack.api_url}/health", timeout=HTTP_TIMEOUT_SECONDS),
        stack.get("/catalog", premium),
        stack.get("/catalog/prod-999", premium),
        stack.get("/catalog?limit=0", premium),
    ]
    assert [answer.status_code for answer in answers] == [200, 200, 404, 400]
    assert all(answer.headers["X-Content-Type-Options"] == "nosniff" for answer in answers)


def test_a_body_that_repeats_a_key_is_400_and_writes_nothing(stack: RunningStack, premium: str) -> None:
    before = order_ids(stack, premium)
    response = stack.http.post(
        f"{stack.api_url}/orders",
        data=b'{"items": [{"product_id": "prod-001", "quantity": 1, "quantity": 2}]}',
        headers={"Authorization": f"Bearer {premium}", "Content-Type": "application/json"},
        timeout=HTTP_TIMEOUT_SECONDS,
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert order_ids(stack, premium) == before


def test_unknown_field_names_are_not_echoed(stack: RunningStack, premium: str) -> None:
    name = "<script>alert(1)</script>"
    response = stack.http.post(
        f"{stack.api_url}/orders",
        json={**ORDER, name: 1},
        headers={"Authorization": f"Bearer {premium}"},
        timeout=HTTP_TIMEOUT_SECONDS,
    )
    assert response.status_code == 422
    assert name not in response.text and "alert" not in response.text
