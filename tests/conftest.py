"""Shared fixtures: settings, a JWKS server on 127.0.0.1, real tokens, a seeded moto table, captured logs and traces."""

from __future__ import annotations

import io
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest
from moto import mock_aws

from chalicelib.store import dynamodb
from chalicelib.telemetry import tracing
from chalicelib.telemetry.logs import logger
from scripts.local.token_issuer import TokenIssuer
from tests.support.api import Api
from tests.support.aws import seed_table
from tests.support.capture import CapturedLogs, InMemoryEmitter
from tests.support.jwks import JwksServer
from tests.support.settings import Environment, clear_caches
from tests.support.tenants import PAGINATION_SECRET, RESOURCE_SERVER, TABLE_NAME, TENANT_ACCESS_ROLE_ARN


@pytest.fixture(scope="session")
def jwks_server() -> Iterator[JwksServer]:
    """The JWKS server, running for the whole session."""
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


@pytest.fixture(scope="session", autouse=True)
def _fresh_dynamodb_client() -> Iterator[None]:
    """One DynamoDB client for the session, made after moto is imported so moto intercepts it."""
    dynamodb.dynamodb_client.cache_clear()
    yield
    dynamodb.dynamodb_client.cache_clear()


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


@pytest.fixture
def aws(env: Environment) -> Iterator[None]:
    """moto's in-process AWS, empty."""
    with mock_aws():
        yield


@pytest.fixture
def table(aws: None) -> None:
    """The single table, with the three seed tenants and their catalogs."""
    seed_table()


@pytest.fixture
def api(table: None, jwks: JwksServer, token_issuer: TokenIssuer) -> Api:
    """The API over a seeded table, with the issuer's JWKS being served."""
    return Api(token_issuer)


@pytest.fixture
def logs() -> Iterator[CapturedLogs]:
    """The application's log lines, written to memory instead of stdout for the test."""
    handler = logger.registered_handler
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        yield CapturedLogs(stream)
    finally:
        handler.setStream(previous)


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
    application_client = dynamodb.dynamodb_client()
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
