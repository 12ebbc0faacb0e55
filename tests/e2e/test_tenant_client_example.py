"""The tenant client example (examples/tenant_client.py) against the local stack.

The client talks to the API and to the token endpoint through loopback proxies that record
every request and answer, so the tests count real token requests and see real retries. A proxy
can also answer the next requests itself, for the answers the stack does not give on demand (a
503, or a 429 the client cannot wait out): then the request is not forwarded, or it is forwarded
first and its answer replaced, as when a gateway gives up waiting for an order it did place. A
proxy can hold its answers a while, so that concurrent clients arrive while a request is in flight.
"""

from __future__ import annotations

import http.client
import json
import os
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from chalicelib.errors import CatalogChanged, InsufficientStock, RateLimited, ServiceUnavailable, error_body
from examples import tenant_client
from examples.tenant_client import (
    RETRY_BACKOFF_SECONDS,
    TenantApiError,
    TenantClient,
    TokenFile,
    main,
    require_secure_url,
)
from tests.support.project import PROJECT_DIR
from tests.support.stack import RunningStack

pytestmark = pytest.mark.e2e

TOKEN_PATH = "/oauth2/token"
EXAMPLE = PROJECT_DIR / "examples" / "tenant_client.py"
# Headers that describe one connection, not the message: a proxy does not pass them on.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}
# A client's wait is measured from the proxy's clock reads around it; this covers their resolution.
TIMING_SLACK_SECONDS = 0.01


@dataclass(frozen=True)
class Answer:
    """An answer a proxy gives instead of the upstream's; forward_first sends the request upstream all the same."""

    status: int
    body: dict
    headers: dict[str, str] = field(default_factory=dict)
    forward_first: bool = False


@dataclass(frozen=True)
class Exchange:
    """One request through a proxy and the answer the client got."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    response_headers: dict[str, str]
    response_body: bytes
    arrived: float
    answered: float
    replaced: bool

    @property
    def bearer(self) -> str:
        """The access token the request carried."""
        return self.headers.get("Authorization", "").removeprefix("Bearer ")


class RecordingProxy:
    """A loopback HTTP proxy in front of one upstream origin: records every exchange, can answer in its place."""

    def __init__(self, upstream: str):
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port)
        self._exchanges: list[Exchange] = []
        self._answers: deque[Answer] = deque()
        self._hold_seconds = 0.0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
                proxy._handle(self)

            do_POST = do_GET

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's signature
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def exchanges(self) -> list[Exchange]:
        """Every exchange so far, in the order the requests arrived."""
        with self._lock:
            return sorted(self._exchanges, key=lambda exchange: exchange.arrived)

    def answer_next(self, *answers: Answer) -> None:
        """Give these answers to the next requests, in order, instead of the upstream's."""
        with self._lock:
            self._answers.extend(answers)

    def hold_answers(self, seconds: float) -> None:
        """Keep every answer from now on this long before sending it."""
        self._hold_seconds = seconds

    def for_path(self, path: str) -> list[Exchange]:
        """The exchanges for one path (query excluded), in the order the requests arrived."""
        return [exchange for exchange in self.exchanges if urlsplit(exchange.path).path == path]

    def _forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict, bytes]:
        connection = http.client.HTTPConnection(*self.upstream, timeout=30)
        try:
            forwarded = {name: value for name, value in headers.items() if name.lower() not in HOP_BY_HOP | {"host"}}
            connection.request(method, path, body=body or None, headers=forwarded)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        arrived = time.monotonic()
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        headers = dict(handler.headers.items())
        with self._lock:
            answer = self._answers.popleft() if self._answers else None
        if answer is None or answer.forward_first:
            status, response_headers, payload = self._forward(handler.command, handler.path, headers, body)
        if answer is not None:
            status, payload = answer.status, json.dumps(answer.body).encode()
            response_headers = {"Content-Type": "application/json", **answer.headers}
        time.sleep(self._hold_seconds)
        handler.send_response_only(status)
        for name, value in response_headers.items():
            if name.lower() not in HOP_BY_HOP | {"content-length"}:
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.send_header("Connection", "close")
        handler.end_headers()
        # Taken before the body goes out, so the client cannot have had the answer any earlier; and the
        # exchange is recorded before then too, so a client that has its answer finds it recorded.
        answered = time.monotonic()
        exchange = Exchange(
            handler.command,
            handler.path,
            headers,
            body,
            status,
            response_headers,
            payload,
            arrived,
            answered,
            answer is not None,
        )
        with self._lock:
            self._exchanges.append(exchange)
        handler.wfile.write(payload)
        handler.wfile.flush()


def envelope(error: type, **headers: str) -> Answer:
    """The API's own error answer for an error class of chalicelib.errors."""
    return Answer(error.status, error_body(error.code, error.message, str(uuid.uuid4())), headers)


@pytest.fixture
def api(stack: RunningStack) -> Iterator[RecordingProxy]:
    """A recording proxy in front of the stack's API."""
    with RecordingProxy(stack.api_url) as proxy:
        yield proxy


@pytest.fixture
def tokens(stack: RunningStack) -> Iterator[RecordingProxy]:
    """A recording proxy in front of the stack's token endpoint."""
    with RecordingProxy(stack.info["token_url"]) as proxy:
        yield proxy


@pytest.fixture
def connect(stack: RunningStack, api: RecordingProxy, tokens: RecordingProxy) -> Iterator[Callable[..., TenantClient]]:
    """Builds example clients for a seed tenant, through both proxies, and closes them afterwards."""
    clients: list[TenantClient] = []

    def connect(tier: str, **options: object) -> TenantClient:
        tenant = stack.tenant(tier)
        client = TenantClient(
            api.url, f"{tokens.url}{TOKEN_PATH}", tenant["client_id"], tenant["client_secret"], **options
        )
        # Loopback directly, whatever proxy the environment names (as the stack fixture's session does).
        client.session.trust_env = False
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()


def token_file(stack: RunningStack, tokens: RecordingProxy, tier: str, path: Path) -> TokenFile:
    """The token file the example client uses at path for the tier's tenant."""
    return TokenFile(path, stack.tenant(tier)["client_id"], f"{tokens.url}{TOKEN_PATH}")


def example_env(stack: RunningStack, api: RecordingProxy, tokens: RecordingProxy, tier: str) -> dict[str, str]:
    """The environment that points the example program at the tier's tenant, through both proxies."""
    tenant = stack.tenant(tier)
    return {
        **os.environ,
        "API": api.url,
        "TOKEN_URL": f"{tokens.url}{TOKEN_PATH}",
        "CLIENT_ID": tenant["client_id"],
        "CLIENT_SECRET": tenant["client_secret"],
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }


def test_one_token_serves_every_call_of_a_client(stack: RunningStack, connect, api, tokens) -> None:
    client = connect("premium")
    products = list(client.iter_catalog(page_size=5))
    assert [product.product_id for product in products] == [f"prod-{n:03d}" for n in range(1, 13)]
    assert client.get_product("prod-002") == products[1]
    placed = client.place_order({"prod-002": 1})
    assert client.get_order(placed.order.order_id) == placed.order
    assert placed.order.order_id in [order.order_id for order in client.iter_orders(page_size=2)]

    assert len(tokens.exchanges) == 1
    request = tokens.exchanges[0]
    assert (request.method, request.path, request.status) == ("POST", TOKEN_PATH, 200)
    # Cognito's shape: client id and secret by HTTP Basic, the grant in a form body.
    assert request.headers["Authorization"].startswith("Basic ")
    assert parse_qs(request.body.decode()) == {"grant_type": ["client_credentials"]}
    issued = json.loads(request.response_body)["access_token"]
    # Three catalog pages, a product, an order, the order again and at least one page of orders.
    assert len(api.exchanges) == client.api_requests >= 7
    assert {exchange.bearer for exchange in api.exchanges} == {issued}
    assert client.session.token_requests == 1


def test_a_shared_token_is_used_until_it_nears_expiry(stack: RunningStack, connect, api, tokens, tmp_path) -> None:
    shared = token_file(stack, tokens, "standard", tmp_path / "token.json")
    issued = stack.request_token("standard").json()
    shared.store({**issued, "expires_at": int(time.time()) + issued["expires_in"]})

    connect("standard", token_file=shared.path).get_product("prod-001")
    assert tokens.exchanges == []
    assert api.exchanges[-1].bearer == issued["access_token"]

    # Four minutes left of an hour's token: inside the renewal margin, so a new one is fetched and shared.
    shared.store({**issued, "expires_at": int(time.time()) + 240})
    connect("standard", token_file=shared.path).get_product("prod-001")
    assert len(tokens.exchanges) == 1
    renewed = json.loads(tokens.exchanges[0].response_body)["access_token"]
    assert renewed != issued["access_token"]
    assert api.exchanges[-1].bearer == renewed
    assert shared.load()["access_token"] == renewed


def test_processes_share_one_token_through_the_token_file(stack: RunningStack, api, tokens, tmp_path) -> None:
    path = tmp_path / "token.json"
    runs = [
        subprocess.run(
            [sys.executable, str(EXAMPLE), "--token-file", str(path)],
            cwd=PROJECT_DIR,
            env=example_env(stack, api, tokens, "standard"),
            capture_output=True,
            text=True,
            timeout=60,
        )
        for _ in range(2)
    ]
    for run in runs:
        assert run.returncode == 0, run.stdout + run.stderr
        assert "replayed: True" in run.stdout
    assert runs[0].stdout.splitlines()[-1].startswith("token requests: 1 for ")
    assert runs[1].stdout.splitlines()[-1].startswith("token requests: 0 for ")
    assert len(tokens.exchanges) == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_processes_started_together_renew_a_near_expiry_token_once(stack: RunningStack, api, tokens, tmp_path) -> None:
    shared = token_file(stack, tokens, "standard", tmp_path / "token.json")
    issued = stack.request_token("standard").json()
    # Four minutes left of an hour's token: every process finds it due for renewal.
    shared.store({**issued, "expires_at": int(time.time()) + 240})
    # The token answer is held, so the processes that start meanwhile find the renewal under way.
    tokens.hold_answers(2)
    runs = [
        subprocess.Popen(
            [sys.executable, str(EXAMPLE), "--token-file", str(shared.path)],
            cwd=PROJECT_DIR,
            env=example_env(stack, api, tokens, "standard"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [run.communicate(timeout=60) for run in runs]

    for run, (stdout, stderr) in zip(runs, outputs):
        assert run.returncode == 0, stdout + stderr
    token_lines = sorted(stdout.splitlines()[-1].split(" for ")[0] for stdout, _ in outputs)
    assert token_lines == ["token requests: 0"] * 3 + ["token requests: 1"]
    assert len(tokens.exchanges) == 1
    renewed = json.loads(tokens.exchanges[0].response_body)["access_token"]
    assert renewed != issued["access_token"]
    # Eight API calls a run (three catalog pages, a product, two orders, an order, a page of orders).
    assert len(api.exchanges) >= 4 * 8
    assert {exchange.bearer for exchange in api.exchanges} == {renewed}
    assert shared.load()["access_token"] == renewed


def test_a_token_file_in_a_new_folder_gets_a_folder_of_its_own(stack: RunningStack, connect, tokens, tmp_path) -> None:
    path = tmp_path / "nodir" / "sub" / "token.json"
    assert connect("standard", token_file=path).get_product("prod-001").product_id == "prod-001"
    assert len(tokens.exchanges) == 1
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert (
        token_file(stack, tokens, "standard", path).load()["access_token"]
        == json.loads(tokens.exchanges[0].response_body)["access_token"]
    )


def test_the_example_reports_a_token_file_it_cannot_create(tmp_path, monkeypatch, capsys) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("CLIENT_SECRET", "secret")
    # Nothing is sent: the token file's folder is needed before the first request.
    argv = ["--api-url", "http://127.0.0.1:9", "--token-url", f"http://127.0.0.1:9{TOKEN_PATH}", "--client-id", "id"]
    assert main([*argv, "--token-file", str(blocker / "token.json")]) == 1
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 1
    assert errors[0].startswith("error: ") and str(blocker) in errors[0]


@pytest.mark.parametrize("planted_as", ["group-readable", "symlink", "another user's"])
def test_a_token_file_another_user_could_have_written_is_not_used(
    stack: RunningStack, connect, api, tokens, tmp_path, monkeypatch, planted_as: str
) -> None:
    # Another tenant's valid token, in an entry for this client: used, it would act in that tenant.
    path = tmp_path / "token.json"
    planted = stack.request_token("premium").json()
    planted_file = tmp_path / "planted.json" if planted_as == "symlink" else path
    token_file(stack, tokens, "standard", planted_file).store({**planted, "expires_at": 2**40})
    if planted_as == "group-readable":
        path.chmod(0o644)
    elif planted_as == "symlink":
        path.symlink_to(planted_file)
    else:
        real_uid = os.geteuid()
        monkeypatch.setattr(tenant_client.os, "geteuid", lambda: real_uid + 1)

    connect("standard", token_file=path).get_product("prod-001")
    monkeypatch.undo()

    assert len(tokens.exchanges) == 1
    fresh = json.loads(tokens.exchanges[0].response_body)["access_token"]
    assert [exchange.bearer for exchange in api.exchanges] == [fresh]
    # The planted file was replaced by a file of this user's own, not written through.
    assert not path.is_symlink()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert token_file(stack, tokens, "standard", path).load()["access_token"] == fresh
    if planted_as == "symlink":
        assert json.loads(planted_file.read_text())["token"]["access_token"] == planted["access_token"]


def test_a_symlink_planted_as_the_lock_is_refused(connect, tokens, tmp_path) -> None:
    path = tmp_path / "token.json"
    victim = tmp_path / "victim"
    path.with_name("token.json.lock").symlink_to(victim)
    with pytest.raises(OSError):
        connect("standard", token_file=path).get_product("prod-001")
    assert not victim.exists()
    assert tokens.exchanges == []


def test_a_refused_token_is_renewed_once(stack: RunningStack, connect, api, tokens, tmp_path) -> None:
    shared = token_file(stack, tokens, "standard", tmp_path / "token.json")
    shared.store({"access_token": "revoked", "token_type": "Bearer", "expires_in": 3600, "expires_at": 2**40})
    client = connect("standard", token_file=shared.path)

    assert client.get_product("prod-001").product_id == "prod-001"
    assert [(e.status, e.bearer) for e in api.exchanges][0] == (401, "revoked")
    assert len(tokens.exchanges) == 1
    renewed = shared.load()["access_token"]
    assert [(e.status, e.bearer) for e in api.exchanges][1] == (200, renewed)

    # A 401 for the new token too is not a token problem: one renewal, then the error.
    unauthorized = Answer(401, error_body("unauthorized", "Unauthorized", str(uuid.uuid4())))
    api.answer_next(unauthorized, unauthorized)
    with pytest.raises(TenantApiError) as refused:
        client.get_product("prod-001")
    assert (refused.value.status, refused.value.code) == (401, "unauthorized")
    assert len(tokens.exchanges) == 2
    assert len(api.exchanges) == 4


def test_an_order_whose_answer_was_lost_is_placed_once(stack: RunningStack, connect, api) -> None:
    client = connect("standard")
    stock_before = client.get_product("prod-003").stock
    orders_before = {order.order_id for order in client.iter_orders()}

    # The order is placed upstream, but the client gets a 503: the API's answer when its time ran out.
    lost = envelope(ServiceUnavailable, **{"Retry-After": "1"})
    api.answer_next(Answer(lost.status, lost.body, lost.headers, forward_first=True))
    placed = client.place_order({"prod-003": 2})

    posts = [exchange for exchange in api.exchanges if exchange.method == "POST"]
    assert [(post.status, post.replaced) for post in posts] == [(503, True), (201, False)]
    assert posts[0].headers["Idempotency-Key"] == posts[1].headers["Idempotency-Key"] == placed.idempotency_key
    assert posts[1].arrived >= posts[0].answered + 1 - TIMING_SLACK_SECONDS
    assert placed.replayed
    assert {order.order_id for order in client.iter_orders()} - orders_before == {placed.order.order_id}
    assert client.get_product("prod-003").stock == stock_before - 2

    # The same key later (another run of the same order) answers with that order and places nothing.
    again = client.place_order({"prod-003": 2}, idempotency_key=placed.idempotency_key)
    assert again.replayed and again.order == placed.order
    assert len({order.order_id for order in client.iter_orders()} - orders_before) == 1
    assert client.get_product("prod-003").stock == stock_before - 2


API_GATEWAY_502 = Answer(502, error_body("internal_error", "Internal server error", "gateway"))


@pytest.mark.parametrize(
    ("answer", "replayed"),
    [
        # The API placed nothing: prices moved under concurrent orders.
        (envelope(CatalogChanged), False),
        # API Gateway got no answer from the function, which placed nothing.
        (API_GATEWAY_502, False),
        # API Gateway gave up waiting while the function placed the order.
        (Answer(504, error_body("internal_error", "Endpoint request timed out", "gateway"), forward_first=True), True),
    ],
    ids=["409-catalog-changed", "502", "504-after-placing"],
)
def test_an_order_is_retried_with_its_key_after_a_back_off(connect, api, answer: Answer, replayed: bool) -> None:
    client = connect("standard")
    orders_before = {order.order_id for order in client.iter_orders()}
    api.answer_next(answer)
    placed = client.place_order({"prod-007": 1})

    posts = [exchange for exchange in api.exchanges if exchange.method == "POST"]
    assert [(post.status, post.replaced) for post in posts] == [(answer.status, True), (201, False)]
    assert posts[0].headers["Idempotency-Key"] == posts[1].headers["Idempotency-Key"] == placed.idempotency_key
    assert posts[1].arrived >= posts[0].answered + RETRY_BACKOFF_SECONDS - TIMING_SLACK_SECONDS
    assert placed.replayed is replayed
    assert {order.order_id for order in client.iter_orders()} - orders_before == {placed.order.order_id}


def test_the_client_s_own_retries_are_bounded(connect, api) -> None:
    client = connect("standard", attempts=2)
    changed = envelope(CatalogChanged)
    api.answer_next(changed, changed)
    with pytest.raises(TenantApiError) as gave_up:
        client.place_order({"prod-007": 1})
    assert (gave_up.value.status, gave_up.value.code, gave_up.value.attempts) == (409, "catalog_changed", 2)
    assert "after 2 attempts" in str(gave_up.value)
    assert len([exchange for exchange in api.exchanges if exchange.method == "POST"]) == 2

    # Another 409 is an answer about the order, not a reason to send it again.
    api.answer_next(envelope(InsufficientStock))
    with pytest.raises(TenantApiError) as refused:
        client.place_order({"prod-007": 1})
    assert (refused.value.code, refused.value.attempts) == ("insufficient_stock", 1)
    assert len([exchange for exchange in api.exchanges if exchange.method == "POST"]) == 3

    # A GET is safe to repeat after a 502 too.
    api.answer_next(API_GATEWAY_502)
    assert client.get_product("prod-007").product_id == "prod-007"
    assert [exchange.status for exchange in api.for_path("/catalog/prod-007")] == [502, 200]


def test_a_503_is_retried_after_its_retry_after(connect, api) -> None:
    client = connect("premium")
    api.answer_next(envelope(ServiceUnavailable, **{"Retry-After": "2"}))
    assert client.get_product("prod-004").product_id == "prod-004"
    first, second = api.for_path("/catalog/prod-004")
    assert (first.status, second.status) == (503, 200)
    assert second.arrived >= first.answered + 2 - TIMING_SLACK_SECONDS


def test_the_client_reports_when_its_attempts_run_out(connect, api) -> None:
    client = connect("premium", attempts=2)
    throttled = envelope(RateLimited, **{"Retry-After": "1"})
    api.answer_next(throttled, throttled)
    with pytest.raises(TenantApiError) as gave_up:
        client.get_product("prod-005")
    error = gave_up.value
    assert (error.status, error.code, error.attempts, error.retry_after) == (429, "too_many_requests", 2, "1")
    assert "after 2 attempts" in str(error)
    first, second = api.for_path("/catalog/prod-005")
    assert second.arrived >= first.answered + 1 - TIMING_SLACK_SECONDS

    # API Gateway's monthly-quota 429 names no Retry-After: waiting would not help, so there is no retry.
    quota = Answer(429, error_body("quota_exceeded", "The monthly request quota is used up.", str(uuid.uuid4())))
    api.answer_next(quota)
    with pytest.raises(TenantApiError) as over_quota:
        client.get_product("prod-006")
    assert (over_quota.value.code, over_quota.value.attempts) == ("quota_exceeded", 1)
    assert len(api.for_path("/catalog/prod-006")) == 1


def test_a_basic_tenant_past_its_burst_waits_for_retry_after_and_succeeds(connect, api) -> None:
    client = connect("basic")
    product_ids = [f"prod-{n:03d}" for n in range(1, 9)]

    def read_repeatedly(product_id: str) -> list[str]:
        return [client.get_product(product_id).product_id for _ in range(8)]

    # Eight threads share the client (and its one token), each reading its own product: 64 reads
    # against a burst of 20 and 10 a second.
    with ThreadPoolExecutor(max_workers=len(product_ids)) as pool:
        results = list(pool.map(read_repeatedly, product_ids))
    assert results == [[product_id] * 8 for product_id in product_ids]

    throttled = [exchange for exchange in api.exchanges if exchange.status == 429]
    assert throttled, "the burst never reached the stack's rate limit"
    assert not any(exchange.replaced for exchange in api.exchanges)
    assert sum(exchange.status == 200 for exchange in api.exchanges) == 64
    for product_id in product_ids:
        exchanges = api.for_path(f"/catalog/{product_id}")
        # Every 429 is followed by the retry of the same read, no sooner than its Retry-After.
        for answered, retried in zip(exchanges, exchanges[1:]):
            if answered.status == 429:
                wait = int(answered.response_headers["Retry-After"])
                assert retried.arrived >= answered.answered + wait - TIMING_SLACK_SECONDS
        assert exchanges[-1].status == 200
    assert client.session.token_requests == 1


@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("https://api.example.com/v1", True),
        ("http://127.0.0.1:8000", True),
        ("http://localhost:8000", True),
        ("http://[::1]:8000", True),
        ("http://api.example.com", False),
        ("http://10.0.0.8:8000", False),
        ("ftp://127.0.0.1/", False),
        ("https:///no-host", False),
    ],
)
def test_plain_http_is_accepted_only_on_loopback(url: str, accepted: bool) -> None:
    if accepted:
        assert require_secure_url(url) == url
    else:
        with pytest.raises(ValueError, match="use https"):
            require_secure_url(url)
