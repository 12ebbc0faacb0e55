"""Requests answer before their function's deadline when DynamoDB or the JWKS hang: 503 in the envelope.

The dependency is a real socket on 127.0.0.1 that accepts connections and never answers; the
API runs under Chalice's local gateway with a stage whose lambda_timeout is 3 s, so the Lambda
context the request sees gives it 3 s, as Lambda would.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from botocore.exceptions import ReadTimeoutError
from chalice.test import Client

import app as application
from chalicelib.errors import DeadlineExceeded, OrderOutcomeUnknown
from chalicelib.store import dynamodb, tenant_access
from chalicelib.store.catalog import CatalogRepository
from chalicelib.store.dynamodb import dynamodb_client
from chalicelib.store.orders import OrderRepository
from tests.support.api import Api, Reply, assert_error
from tests.support.aws import dynamodb_calls_through
from tests.support.project import PROJECT_DIR
from tests.support.tenants import ACME

LAMBDA_TIMEOUT_SECONDS = 3
ONE_LINE = [{"product_id": "prod-001", "quantity": 1}]


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts every connection and never sends a byte."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.05)
        self._stopped = threading.Event()
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._socket.getsockname()[:2]
        return f"http://{host}:{port}"

    @property
    def connections(self) -> int:
        return len(self._held)

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            self._held.append(connection)

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
        self._socket.close()
        for connection in self._held:
            connection.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


@pytest.fixture
def short_api(api: Api, tmp_path: Path) -> Api:
    """The API under a stage whose functions time out after LAMBDA_TIMEOUT_SECONDS (same process caches)."""
    config = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())
    config["lambda_timeout"] = LAMBDA_TIMEOUT_SECONDS
    (tmp_path / ".chalice").mkdir()
    (tmp_path / ".chalice" / "config.json").write_text(json.dumps(config))
    short = Api(api.issuer)
    short.http = Client(application.app, stage_name="local", project_dir=str(tmp_path)).http
    return short


@contextlib.contextmanager
def dynamodb_at(url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The application's DynamoDB client talks to url in the block (the process's caches are kept)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", url)
    dynamodb.dynamodb_client.cache_clear()
    tenant_access.tenant_clients.forget()
    try:
        yield
    finally:
        # Everything after the block, this test's checks and the next tests, talks to moto again.
        monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB")
        dynamodb.dynamodb_client.cache_clear()
        tenant_access.tenant_clients.forget()


@pytest.fixture
def hanging_dynamodb(silent_server: SilentServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[SilentServer]:
    """The application's DynamoDB client talks to the silent server for the whole test."""
    with dynamodb_at(silent_server.url, monkeypatch):
        yield silent_server


def timed(call: Any) -> tuple[Reply, float]:
    started = time.monotonic()
    reply = call()
    return reply, time.monotonic() - started


def assert_retryable_in_time(reply: Reply, elapsed: float) -> dict[str, Any]:
    """503 in the envelope with Retry-After, answered before the function would have been killed."""
    body = assert_error(reply, 503, "service_unavailable")
    assert reply.header("Retry-After") == "1"
    assert elapsed < LAMBDA_TIMEOUT_SECONDS, elapsed
    return body


def warm_authorizer(api: Api) -> None:
    """One request while DynamoDB answers, with the usual timeout: the JWKS and the tenant's record are now cached."""
    assert api.get("/catalog/prod-001", ACME).status == 200


@pytest.mark.parametrize("path", ["/catalog/prod-001", "/catalog", "/orders"])
def test_a_hanging_dynamodb_is_a_503_before_the_deadline(
    api: Api, short_api: Api, silent_server: SilentServer, monkeypatch, path
):
    warm_authorizer(api)
    with dynamodb_at(silent_server.url, monkeypatch):
        # /catalog and /orders query their shards on other threads: those honour the deadline too.
        reply, elapsed = timed(lambda: short_api.get(path, ACME))
    body = assert_retryable_in_time(reply, elapsed)
    assert body["error"]["message"] == DeadlineExceeded.message
    assert silent_server.connections >= 1, "the request must really have waited on DynamoDB"


def test_an_order_whose_reads_hang_writes_nothing(api: Api, short_api: Api, silent_server: SilentServer, monkeypatch):
    warm_authorizer(api)
    with dynamodb_at(silent_server.url, monkeypatch):
        reply, elapsed = timed(lambda: short_api.post_order(ONE_LINE, ACME, idempotency_key="hang-1"))
    assert_retryable_in_time(reply, elapsed)
    assert CatalogRepository("acme", dynamodb_client()).get("prod-001").stock == 10
    assert OrderRepository("acme", dynamodb_client()).list(10)[0] == []
    # The retry the 503 asks for succeeds once DynamoDB answers again.
    assert short_api.post_order(ONE_LINE, ACME, idempotency_key="hang-1").status == 201


def test_the_authorizer_answers_503_before_the_deadline_when_the_jwks_hangs(
    short_api: Api, silent_server: SilentServer, env
):
    env.set(JWKS_URL=f"{silent_server.url}/.well-known/jwks.json")
    reply, elapsed = timed(lambda: short_api.get("/catalog", ACME))
    assert_retryable_in_time(reply, elapsed)
    assert reply.header("X-Content-Type-Options") == "nosniff"
    assert silent_server.connections == 1


def test_the_authorizer_answers_503_before_the_deadline_when_the_registry_hangs(
    short_api: Api, hanging_dynamodb: SilentServer
):
    reply, elapsed = timed(lambda: short_api.get("/catalog", ACME))
    assert_retryable_in_time(reply, elapsed)
    assert hanging_dynamodb.connections >= 1


def test_the_authorizer_in_lambda_raises_what_api_gateway_answers_with_503(
    api: Api, hanging_dynamodb: SilentServer, monkeypatch
):
    class Context:
        def get_remaining_time_in_millis(self) -> float:
            return LAMBDA_TIMEOUT_SECONDS * 1000

    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "tenant-api-dev-tenant_authorizer")
    event = {
        "type": "TOKEN",
        "authorizationToken": f"Bearer {api.token(ACME)}",
        "methodArn": "arn:aws:execute-api:us-east-1:123456789012:a1/api/GET/catalog",
    }
    started = time.monotonic()
    with pytest.raises(Exception) as raised:
        application.tenant_authorizer(event, Context())
    assert time.monotonic() - started < LAMBDA_TIMEOUT_SECONDS
    # Anything but "Unauthorized": AUTHORIZER_CONFIGURATION_ERROR, which the gateway responses make a 503.
    assert str(raised.value) != "Unauthorized"


# --- the order transaction -------------------------------------------------------------------


@pytest.fixture
def transaction(monkeypatch):
    """Replace what DynamoDB does with TransactWriteItems (the other operations are left alone)."""

    def install(behaviour) -> None:
        def call(name, params, original):
            if name == "TransactWriteItems":
                return behaviour(params, lambda: original(name, params))
            return original(name, params)

        dynamodb_calls_through(monkeypatch, call)

    return install


def test_a_transaction_sent_but_unanswered_in_time_is_a_503_that_says_the_order_may_exist(api: Api, transaction):
    committed = []

    def answer_lost(params, commit):
        committed.append(commit())
        raise ReadTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")

    transaction(answer_lost)
    reply = api.post_order(ONE_LINE, ACME, idempotency_key="lost-answer")
    body = assert_error(reply, 503, "service_unavailable")
    assert body["error"]["message"] == OrderOutcomeUnknown.message
    assert reply.header("Retry-After") == "1"
    # DynamoDB applied it whole; the retry with the same key answers with that order.
    assert len(committed) == 1
    monkeypatched_stock = CatalogRepository("acme", dynamodb_client()).get("prod-001").stock
    assert monkeypatched_stock == 9
    [placed] = OrderRepository("acme", dynamodb_client()).list(10)[0]
    retry = api.post_order(ONE_LINE, ACME, idempotency_key="lost-answer")
    assert retry.status == 201
    assert retry.header("Idempotent-Replayed") == "true"
    assert retry.json["order_id"] == placed.order_id
    assert CatalogRepository("acme", dynamodb_client()).get("prod-001").stock == 9


def test_a_transaction_not_sent_because_time_ran_out_is_a_503_and_wrote_nothing(api: Api, transaction):
    def never_sent(params, commit):
        raise DeadlineExceeded(attempts_sent=0)

    transaction(never_sent)
    reply = api.post_order(ONE_LINE, ACME)
    body = assert_error(reply, 503, "service_unavailable")
    assert body["error"]["message"] == DeadlineExceeded.message
    assert CatalogRepository("acme", dynamodb_client()).get("prod-001").stock == 10
    assert OrderRepository("acme", dynamodb_client()).list(10)[0] == []
