"""A server missing a setting, or its issuer, answers 503 service_unavailable and logs why; never 401.

A 401 tells the client its token is bad, so it fetches another (Cognito bills each one) while
the fault is the deployment's. Through chalice.test.Client (the local gateway chalice local
uses) and as the deployed functions are invoked by API Gateway.
"""

from __future__ import annotations

import json
import socket
import uuid
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from chalice.local import LambdaContext

import app as application
from chalicelib.store import dynamodb
from chalicelib.web import gateway
from tests.support.api import Api, assert_error
from tests.support.capture import CapturedLogs
from tests.support.jwks import JwksServer
from tests.support.tenants import ACME

METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/api/GET/catalog"
UNAVAILABLE_MESSAGE = "The service is temporarily unavailable; retry later."


def misconfiguration_lines(logs: CapturedLogs) -> list[dict[str, Any]]:
    """The log lines that say the API is not configured."""
    return [record for record in logs.records() if "the API is not configured: " in record["message"]]


def assert_unavailable(reply: Any) -> None:
    """A 503 in the envelope, with Retry-After, that names no setting to the client."""
    body = assert_error(reply, 503, "service_unavailable")
    assert body["error"]["message"] == UNAVAILABLE_MESSAGE
    assert reply.header("Retry-After") == "1"
    assert reply.header("X-Content-Type-Options") == "nosniff"


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- through the local gateway (chalice local, chalice.test.Client) ---------------------------


@pytest.mark.parametrize("missing", ["TOKEN_ISSUER", "PAGINATION_SECRET", "TENANT_ACCESS_ROLE_ARN"])
def test_each_missing_setting_is_a_503_and_one_log_line_naming_it(api: Api, env, logs: CapturedLogs, missing):
    env.set_unread(**{missing: None})
    reply = api.get("/catalog", ACME)
    assert_unavailable(reply)
    [line] = misconfiguration_lines(logs)
    assert line["level"] == "ERROR"
    assert missing in line["message"]
    # The other settings are set: the line names only what is missing.
    others = {"TOKEN_ISSUER", "PAGINATION_SECRET", "TENANT_ACCESS_ROLE_ARN"} - {missing}
    assert not any(name in line["message"] for name in others), line["message"]


def test_every_missing_setting_is_named_in_the_same_line(api: Api, env, logs: CapturedLogs):
    env.set_unread(TOKEN_ISSUER=None, PAGINATION_SECRET=None, TENANT_ACCESS_ROLE_ARN=None)
    assert_unavailable(api.get("/orders", ACME))
    [line] = misconfiguration_lines(logs)
    assert line["misconfigured_settings"] == ["TOKEN_ISSUER", "PAGINATION_SECRET", "TENANT_ACCESS_ROLE_ARN"]
    assert "TOKEN_ISSUER, PAGINATION_SECRET (or PAGINATION_SECRET_ARN), TENANT_ACCESS_ROLE_ARN" in line["message"]


def test_under_chalice_local_the_line_says_how_to_get_the_settings(api: Api, env, logs: CapturedLogs, monkeypatch):
    env.set_unread(TOKEN_ISSUER=None)
    assert_unavailable(api.get("/catalog", ACME))
    assert "make run" not in misconfiguration_lines(logs)[0]["message"]
    # What the Chalice CLI sets in the process it serves from.
    monkeypatch.setenv("AWS_CHALICE_CLI_MODE", "true")
    assert_unavailable(api.get("/catalog", ACME))
    message = misconfiguration_lines(logs)[1]["message"]
    assert "`make run` in another terminal" in message
    assert 'eval "$(.venv/bin/python -m scripts.local.env --server)"' in message


def test_a_malformed_setting_is_a_503_naming_it(api: Api, env, logs: CapturedLogs):
    env.set_unread(TOKEN_ISSUER="cognito-idp.us-east-1.amazonaws.com/us-east-1_abc")
    assert_unavailable(api.get("/catalog", ACME))
    [line] = misconfiguration_lines(logs)
    assert "TOKEN_ISSUER must be an http(s) URL" in line["message"]
    assert line["misconfigured_settings"] == ["TOKEN_ISSUER"]


def test_an_unreachable_issuer_is_a_503_not_a_401_and_the_line_names_its_keys_url(
    api: Api, env, logs: CapturedLogs, monkeypatch
):
    issuer = f"http://127.0.0.1:{closed_port()}/pool"
    env.set(TOKEN_ISSUER=issuer)
    monkeypatch.setenv("AWS_CHALICE_CLI_MODE", "true")
    reply = api.get("/catalog", ACME)
    assert_unavailable(reply)
    [line] = [record for record in logs.records() if record["message"].startswith("authorizer could not decide")]
    assert f"{issuer}/.well-known/jwks.json" in line["message"]
    assert "Connection refused" in line["message"]
    assert "`make run` in another terminal" in line["message"]
    assert logs.security_events() == []


def test_an_unreachable_registry_is_a_503_naming_the_endpoint(api: Api, env, logs: CapturedLogs, monkeypatch):
    def unreachable(*_: Any, **__: Any) -> Any:
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")

    monkeypatch.setattr(dynamodb.dynamodb_client(), "get_item", unreachable)
    assert_unavailable(api.get("/catalog", ACME))
    [line] = [record for record in logs.records() if record["message"].startswith("authorizer could not decide")]
    assert "the tenant registry could not be read (EndpointConnectionError" in line["message"]
    assert "http://127.0.0.1:1" in line["message"]


def test_once_configured_a_bad_token_is_still_a_401_and_a_good_one_is_served(api: Api, logs: CapturedLogs):
    assert_error(api.get("/catalog", token="not.a.token"), 401, "unauthorized")
    header, payload, signature = api.token(ACME).split(".")
    tampered = ".".join([header, payload, signature[::-1]])
    assert_error(api.get("/catalog", token=tampered), 401, "unauthorized")
    assert api.get("/catalog", ACME).status == 200
    assert misconfiguration_lines(logs) == []


# --- as deployed: API Gateway invokes the two functions ------------------------------------------

# The stage's environment as `chalice deploy` sets it before bootstrap has filled it in.
NOT_BOOTSTRAPPED = {
    "TOKEN_ISSUER": "",
    "PAGINATION_SECRET": None,
    "PAGINATION_SECRET_ARN": "",
    "TENANT_ACCESS_ROLE_ARN": "",
}


@pytest.fixture
def in_lambda(monkeypatch) -> None:
    """Run as in a Lambda function (which always has AWS_LAMBDA_FUNCTION_NAME)."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "tenant-api-dev")


def lambda_context(function_name: str) -> LambdaContext:
    """A Lambda context with the stages' 10 s timeout."""
    return LambdaContext(function_name, memory_size=512, max_runtime_ms=10_000)


def test_a_deployed_authorizer_without_its_settings_makes_api_gateway_answer_503(
    api: Api, env, in_lambda, logs: CapturedLogs
):
    env.set_unread(**NOT_BOOTSTRAPPED)
    event = {"type": "TOKEN", "authorizationToken": f"Bearer {api.token(ACME)}", "methodArn": METHOD_ARN}
    with pytest.raises(Exception) as raised:
        application.tenant_authorizer(event, lambda_context("tenant-api-dev-tenant_authorizer"))
    # Anything but "Unauthorized" is API Gateway's AUTHORIZER_CONFIGURATION_ERROR, which the
    # stage's gateway responses answer with 503 service_unavailable and Retry-After.
    assert str(raised.value) != gateway.UNAUTHORIZED_MESSAGE
    status, headers, body = gateway.render(
        gateway.gateway_responses(), "AUTHORIZER_CONFIGURATION_ERROR", "req-1", default_status=500
    )
    assert (status, headers["Retry-After"], json.loads(body)["error"]["code"]) == (503, "1", "service_unavailable")
    [line] = misconfiguration_lines(logs)
    assert line["misconfigured_settings"] == ["TOKEN_ISSUER", "PAGINATION_SECRET", "TENANT_ACCESS_ROLE_ARN"]
    assert "make run" not in line["message"]


@pytest.mark.parametrize("missing", ["TABLE_NAME", "TOKEN_ISSUER", "PAGINATION_SECRET", "TENANT_ACCESS_ROLE_ARN"])
def test_a_deployed_api_function_without_a_setting_answers_503_in_the_envelope(
    api: Api, env, in_lambda, logs: CapturedLogs, missing
):
    env.set_unread(**{missing: None})
    event = {
        "resource": "/catalog",
        "path": "/catalog",
        "httpMethod": "GET",
        "headers": {"Accept": "application/json"},
        "multiValueHeaders": {"Accept": ["application/json"]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "body": None,
        "isBase64Encoded": False,
        "requestContext": {
            "resourcePath": "/catalog",
            "httpMethod": "GET",
            "requestId": str(uuid.uuid4()),
            "stage": "api",
            "path": "/api/catalog",
            "authorizer": {"tenant_id": "acme", "tier": "basic", "scopes": "tenant-api/catalog.read"},
        },
    }
    answer = application.app(event, lambda_context("tenant-api-dev"))
    assert answer["statusCode"] == 503
    body = json.loads(answer["body"])
    assert body["error"] == {"code": "service_unavailable", "message": UNAVAILABLE_MESSAGE}
    assert answer["headers"]["Retry-After"] == "1"
    [line] = misconfiguration_lines(logs)
    assert missing in line["message"]
    [access] = logs.access()
    assert (access["status"], access["error_code"]) == (503, "service_unavailable")


def test_a_misconfigured_authorizer_fetches_nothing(jwks: JwksServer, api: Api, env):
    # No token is judged without the settings: the issuer's keys are not even fetched.
    env.set_unread(TOKEN_ISSUER=None)
    assert_unavailable(api.get("/catalog", ACME))
    assert jwks.fetches == 0
