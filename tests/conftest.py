"""Shared fixtures: settings, a JWKS server on 127.0.0.1, real tokens, a seeded moto table, captured logs and traces."""

from __future__ import annotations

import functools
import io
import json
import shutil
import tempfile
import threading
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from botocore.client import BaseClient
from chalice.test import Client
from moto import mock_aws

import app as application
from chalicelib import config, observability, repository, schema, tracing
from chalicelib.models import Product
from chalicelib.process_caches import reset_process_caches
from chalicelib.ratelimit import TenantRateLimiter
from chalicelib.registry import ACTIVE, TenantRecord, TenantRegistry
from chalicelib.repository import CatalogRepository, dynamodb_client
from chalicelib.responses import RateLimitMiddleware
from chalicelib.tenancy import SCOPES
from scripts.token_issuer import TokenIssuer

PROJECT_DIR = Path(__file__).resolve().parents[1]
# The local stage's own table name: chalice.test.Client applies the stage's environment during
# each request, so using the same name keeps the table the same inside and outside requests.
TABLE_NAME = "tenant-api-local"
PAGINATION_SECRET = "pagination-secret-for-tests-0123456789abcdef"
RESOURCE_SERVER = "tenant-api"
# moto's STS issues credentials for any role; the role itself is made where a test needs it.
TENANT_ACCESS_ROLE_ARN = "arn:aws:iam::123456789012:role/tenant-api-local-tenant-access"
ALL_SCOPES = [f"{RESOURCE_SERVER}/{scope}" for scope in SCOPES]
JWKS_PATH = "/pool/.well-known/jwks.json"


@dataclass(frozen=True)
class SeedTenant:
    """A tenant the table is seeded with, and the catalog it owns."""

    tenant_id: str
    tier: str
    client_id: str
    api_key_value: str
    price_base: Decimal

    def __repr__(self) -> str:
        return f"<tenant {self.tenant_id}>"

    def record(self, **changes: Any) -> TenantRecord:
        """The registry record of this tenant."""
        record = TenantRecord(
            tenant_id=self.tenant_id,
            tier=self.tier,
            status=ACTIVE,
            client_id=self.client_id,
            api_key_id=f"key-id-{self.tenant_id}",
            api_key_value=self.api_key_value,
            display_name=self.tenant_id.title(),
        )
        return record.with_changes(**changes)

    def product(self, number: int, stock: int = 10) -> Product:
        """The seeded product prod-00{number}; name and price are tagged with the tenant."""
        return Product(
            product_id=f"prod-{number:03d}",
            name=f"{self.tenant_id} widget {number}",
            description=f"Sold by {self.tenant_id}.",
            price=self.price_base + number,
            currency="USD",
            stock=stock,
        )


ACME = SeedTenant("acme", "basic", "acmeclient0001", "apikey-acme-0123456789", Decimal("19.99"))
GLOBEX = SeedTenant("globex", "standard", "globexclient0002", "apikey-globex-0123456789", Decimal("5.25"))
INITECH = SeedTenant("initech", "premium", "initechclient0003", "apikey-initech-0123456789", Decimal("0.10"))
TENANTS = (ACME, GLOBEX, INITECH)
PRODUCTS_PER_TENANT = 5


class FakeClock:
    """A clock that only moves when told to, for the caches and the rate limiter."""

    def __init__(self, now: float = 0.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class JwksServer:
    """A tiny HTTP server on 127.0.0.1 publishing a JWKS document that tests may change."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = {"keys": []}
        self.fetches = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # the name http.server dispatches GET to
                if self.path != JWKS_PATH:
                    self.send_error(404)
                    return
                server.fetches += 1
                body = json.dumps(server.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def issuer(self) -> str:
        """The token issuer whose JWKS this server publishes."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/pool"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture(scope="session")
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def token_issuer(jwks_server: JwksServer) -> TokenIssuer:
    """The signing key of the test issuer (RSA key generation is slow, so made once)."""
    return TokenIssuer(jwks_server.issuer, key_id="test-key-1")


@pytest.fixture
def jwks(jwks_server: JwksServer, token_issuer: TokenIssuer) -> JwksServer:
    """The JWKS server, publishing the test issuer's keys and with its fetch count reset."""
    jwks_server.document = token_issuer.jwks()
    jwks_server.fetches = 0
    return jwks_server


def rate_limit_middleware() -> RateLimitMiddleware:
    """The app's in-app rate limiting middleware."""
    return next(
        handler for handler, _ in application.app.middleware_handlers if isinstance(handler, RateLimitMiddleware)
    )


def clear_caches() -> None:
    """Forget the process's caches and the app's rate-limit buckets.

    The DynamoDB client is kept: it holds no data (moto's state lives in its backends, reset by
    each mock_aws) and making one costs about 0.1 s, which every integration test would pay.
    """
    reset_process_caches(keep_dynamodb_client=True)
    rate_limit_middleware().limiter = TenantRateLimiter()


class Environment:
    """Sets environment variables for a test and rereads the settings from them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self._monkeypatch = monkeypatch

    def set(self, **values: str | None) -> None:
        """Change variables (None removes one) and read the settings from them at once."""
        self.set_unread(**values)
        # Read the settings now, outside any request: chalice.test.Client swaps in the stage's
        # environment during requests, and the settings must come from the test's environment.
        config.get_settings()

    def set_unread(self, **values: str | None) -> None:
        """Change variables and forget the settings without reading them (for invalid ones)."""
        for name, value in values.items():
            if value is None:
                self._monkeypatch.delenv(name, raising=False)
            else:
                self._monkeypatch.setenv(name, value)
        clear_caches()


@pytest.fixture(scope="session", autouse=True)
def _fresh_dynamodb_client() -> Iterator[None]:
    """One DynamoDB client for the session, made after moto is imported so moto intercepts it."""
    repository.dynamodb_client.cache_clear()
    yield
    repository.dynamodb_client.cache_clear()


@pytest.fixture(autouse=True)
def _in_process_settings(request: pytest.FixtureRequest) -> None:
    """In-process tests all start from the same settings; end-to-end tests keep the real environment."""
    if request.node.get_closest_marker("e2e") is None:
        request.getfixturevalue("env")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, jwks_server: JwksServer) -> Iterator[Environment]:
    """The test's settings, from a known environment, with empty process caches."""
    environment = Environment(monkeypatch)
    environment.set(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_SESSION_TOKEN="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        AWS_PROFILE=None,
        AWS_ENDPOINT_URL=None,
        AWS_ENDPOINT_URL_DYNAMODB=None,
        AWS_LAMBDA_FUNCTION_NAME=None,
        TABLE_NAME=TABLE_NAME,
        TENANT_ACCESS_ROLE_ARN=TENANT_ACCESS_ROLE_ARN,
        TOKEN_ISSUER=jwks_server.issuer,
        JWKS_URL=None,
        PAGINATION_SECRET=PAGINATION_SECRET,
        RESOURCE_SERVER_ID=RESOURCE_SERVER,
        RATE_LIMITER="usage-plan",
        TENANT_CACHE_SECONDS="60",
        JWKS_MIN_REFRESH_SECONDS="60",
        JWT_LEEWAY_SECONDS="30",
        TRACING=None,
        LAMBDA_TASK_ROOT=None,
        _X_AMZN_TRACE_ID=None,
        POWERTOOLS_METRICS_DISABLED=None,
        POWERTOOLS_DEV=None,
    )
    yield environment
    clear_caches()


def set_stage_settings(project: Path, stage: str, **settings: Any) -> None:
    """Set (or, given None, remove) settings of one stage in the project's .chalice/config.json."""
    path = project / ".chalice" / "config.json"
    config = json.loads(path.read_text())
    for name, value in settings.items():
        if value is None:
            config["stages"][stage].pop(name, None)
        else:
            config["stages"][stage][name] = value
    path.write_text(json.dumps(config, indent=2))


def keep_tenant_secrets(project: Path, *stages: str) -> None:
    """Make the project's stages keep a copy of each tenant's client secret in Secrets Manager."""
    for stage in stages:
        set_stage_settings(project, stage, store_tenant_secrets=True)


def dynamodb_calls_through(
    monkeypatch: pytest.MonkeyPatch, replacement: Callable[[str, dict[str, Any], Callable[..., Any]], Any]
) -> None:
    """Send every DynamoDB call of every client (the process's own and each tenant's) through replacement.

    replacement(operation_name, params, original) answers the call; original(operation_name, params)
    makes it as it would have been made.
    """
    make_call = BaseClient._make_api_call

    def call(client: BaseClient, operation_name: str, params: dict[str, Any]) -> Any:
        if client.meta.service_model.service_name != "dynamodb":
            return make_call(client, operation_name, params)
        return replacement(operation_name, params, functools.partial(make_call, client))

    monkeypatch.setattr(BaseClient, "_make_api_call", call)


def seed_table(tenants: tuple[SeedTenant, ...] = TENANTS) -> None:
    """Create the table and put each tenant's record and its products prod-001..prod-005."""
    dynamodb_client().create_table(**schema.table_definition(TABLE_NAME))
    registry = TenantRegistry()
    for tenant in tenants:
        registry.put(tenant.record())
        catalog = CatalogRepository(tenant.tenant_id, dynamodb_client())
        for number in range(1, PRODUCTS_PER_TENANT + 1):
            catalog.put(tenant.product(number))


@pytest.fixture
def aws(env: Environment) -> Iterator[None]:
    """moto's in-process AWS, empty."""
    with mock_aws():
        yield


@pytest.fixture
def table(aws: None) -> None:
    """The single table, with the three seed tenants and their catalogs."""
    seed_table()


@dataclass
class Reply:
    """An HTTP response from the test client, with its JSON body decoded."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        """A response header, looked up case-insensitively."""
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


class Api:
    """The API through chalice.test.Client, calling as one of the seed tenants with a real token."""

    def __init__(self, issuer: TokenIssuer):
        self.issuer = issuer
        self.http = Client(application.app, stage_name="local", project_dir=str(PROJECT_DIR)).http
        self._tokens: dict[tuple[str, tuple[str, ...]], str] = {}

    def token(self, tenant: SeedTenant, scopes: list[str] | None = None) -> str:
        """A valid access token of tenant's app client."""
        scope_key = tuple(ALL_SCOPES if scopes is None else scopes)
        key = (tenant.client_id, scope_key)
        if key not in self._tokens:
            self._tokens[key] = self.issuer.issue(tenant.client_id, list(scope_key))
        return self._tokens[key]

    def request(
        self,
        method: str,
        path: str,
        tenant: SeedTenant | None = ACME,
        *,
        token: str | None = None,
        scopes: list[str] | None = None,
        headers: dict[str, str] | None = None,
        body: bytes | str = b"",
    ) -> Reply:
        all_headers = dict(headers or {})
        if token is None and tenant is not None:
            token = self.token(tenant, scopes)
        if token is not None:
            all_headers.setdefault("Authorization", f"Bearer {token}")
        raw = body.encode() if isinstance(body, str) else body
        response = self.http.request(method, path, headers=all_headers, body=raw)
        return Reply(response.status_code, dict(response.headers), response.body or b"")

    def get(self, path: str, tenant: SeedTenant | None = ACME, **options: Any) -> Reply:
        return self.request("GET", path, tenant, **options)

    def post_order(
        self,
        items: list[dict[str, Any]],
        tenant: SeedTenant | None = ACME,
        *,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
        **options: Any,
    ) -> Reply:
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if idempotency_key is not None:
            all_headers["Idempotency-Key"] = idempotency_key
        return self.request(
            "POST", "/orders", tenant, headers=all_headers, body=json.dumps({"items": items}), **options
        )


@pytest.fixture
def api(table: None, jwks: JwksServer, token_issuer: TokenIssuer) -> Api:
    """The API over a seeded table, with the issuer's JWKS being served."""
    return Api(token_issuer)


def assert_error(reply: Reply, status: int, code: str) -> dict[str, Any]:
    """Check the status and the one error envelope; return the decoded body."""
    assert reply.status == status, (reply.status, reply.body)
    body = reply.json
    assert set(body) == {"error", "request_id"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["request_id"], str) and body["request_id"]
    assert reply.header("X-Request-Id") == body["request_id"]
    return body


class CapturedLogs:
    """What the application logged through its JSON logger during a test."""

    def __init__(self, stream: io.StringIO):
        self._stream = stream

    @property
    def text(self) -> str:
        """Everything logged, as written."""
        return self._stream.getvalue()

    def records(self) -> list[dict[str, Any]]:
        """Every line, each decoded as the one JSON object it must be."""
        return [json.loads(line) for line in self.text.splitlines()]

    def access(self) -> list[dict[str, Any]]:
        """The access-log lines, one per request that reached the API."""
        return [record for record in self.records() if record["message"] == "request"]

    def security_events(self) -> list[str]:
        """The security_event reason of every line that has one, in order."""
        return [record["security_event"] for record in self.records() if "security_event" in record]


@pytest.fixture
def logs() -> Iterator[CapturedLogs]:
    """The application's log lines, written to memory instead of stdout for the test."""
    handler = observability.logger.registered_handler
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        yield CapturedLogs(stream)
    finally:
        handler.setStream(previous)


class InMemoryEmitter:
    """An X-Ray emitter that keeps the documents it would send to the daemon, decoded."""

    def __init__(self) -> None:
        self.documents: list[dict[str, Any]] = []

    def send_entity(self, entity: Any) -> None:
        self.documents.append(json.loads(entity.serialize()))

    def set_daemon_address(self, address: str | None) -> None:
        pass

    def segments(self) -> list[dict[str, Any]]:
        """The whole segments sent (outside Lambda, one per request or authorization)."""
        return [document for document in self.documents if document.get("type") != "subsegment"]


@pytest.fixture
def traces() -> Iterator[InMemoryEmitter]:
    """The X-Ray documents sent during the test, captured instead of sent to a daemon."""
    recorder = tracing.recorder()
    previous = recorder.emitter
    emitter = InMemoryEmitter()
    recorder.emitter = emitter
    try:
        yield emitter
    finally:
        recorder.emitter = previous


@pytest.fixture
def operator_calls(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every AWS operation the operator scripts' clients and the application's DynamoDB client complete."""
    from scripts.stage_resources import AwsClients

    recorded: list[str] = []

    def record(model: Any, **_: Any) -> None:
        recorded.append(model.name)

    make = AwsClients.for_region.__func__  # type: ignore[attr-defined]

    def recording(cls: type, region: str) -> AwsClients:
        clients = make(cls, region)
        for client in clients.all():
            client.meta.events.register("after-call", record)
        return clients

    monkeypatch.setattr(AwsClients, "for_region", classmethod(recording))
    application_client = repository.dynamodb_client()
    application_client.meta.events.register("after-call", record, unique_id="tests-operator-calls")
    yield recorded
    application_client.meta.events.unregister("after-call", unique_id="tests-operator-calls")


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start recording the operator scripts' calls now if the operator-policy test was selected.

    That recording reruns the scripts' tests in a subprocess (a few minutes); begun at collection,
    it overlaps the rest of the session instead of adding to it.
    """
    selected = [item for item in session.items if item.path.name == "test_operator_policy.py"]
    if not selected or session.config.option.collectonly:
        return
    from tests.integration import test_operator_policy

    output = Path(tempfile.mkdtemp(prefix="operator-calls-")) / "calls.jsonl"
    session.config.stash[test_operator_policy.RECORDING] = (test_operator_policy.start_recording(output), output)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop the recording if the session ended before waiting for it, and remove its output."""
    from tests.integration import test_operator_policy

    started = session.config.stash.get(test_operator_policy.RECORDING, None)
    if started is None:
        return
    process, output = started
    if process.poll() is None:
        process.kill()
        process.communicate()
    shutil.rmtree(output.parent, ignore_errors=True)
