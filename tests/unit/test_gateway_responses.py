"""Unit tests of the gateway responses: every authorizer outcome and gateway error in our envelope, with its status."""

from __future__ import annotations

import json

import pytest
from chalice.local import LocalGatewayException

from chalicelib import errors
from chalicelib.errors import ServiceUnavailable
from chalicelib.web import gateway
from scripts.deploy.terraform.api import gateway_responses_extension
from scripts.deploy.terraform.blocks import literal

RESPONSES = gateway.gateway_responses()
OUTCOMES = {outcome.description: outcome for outcome in gateway.AUTHORIZER_OUTCOMES}
# The code each status's envelope carries, as the API's own errors of that status do.
CODES = {401: "unauthorized", 403: "forbidden", 503: "service_unavailable"}


def envelope(response: dict) -> dict:
    return json.loads(response["responseTemplates"]["application/json"])


@pytest.mark.parametrize("description", OUTCOMES)
def test_every_authorizer_outcome_is_answered_in_the_envelope_with_its_status(description):
    outcome = OUTCOMES[description]
    for response_type in outcome.response_types:
        response = RESPONSES[response_type]
        assert response["statusCode"] == str(outcome.status), response_type
        assert envelope(response) == {
            "error": {"code": CODES[outcome.status], "message": envelope(response)["error"]["message"]},
            "request_id": "$context.requestId",
        }
        assert envelope(response)["error"]["message"]


def test_an_authorizer_that_fails_or_cannot_run_is_a_503_with_retry_after_never_a_500():
    # API Gateway's default for both types is 500 (DEFAULT_5XX): the client could not tell that
    # a retry may succeed.
    for response_type in ("AUTHORIZER_CONFIGURATION_ERROR", "AUTHORIZER_FAILURE"):
        response = RESPONSES[response_type]
        assert response["statusCode"] == "503"
        assert response["responseParameters"]["gatewayresponse.header.Retry-After"] == (
            f"'{ServiceUnavailable.RETRY_AFTER_SECONDS}'"
        )
        assert envelope(response)["error"] == {"code": "service_unavailable", "message": ServiceUnavailable.message}


@pytest.mark.parametrize(
    ("response_type", "error_type"),
    [
        ("UNAUTHORIZED", errors.Unauthenticated),
        ("ACCESS_DENIED", errors.Forbidden),
        ("INVALID_API_KEY", errors.Forbidden),
        ("THROTTLED", errors.RateLimited),
        ("REQUEST_TOO_LARGE", errors.PayloadTooLarge),
        ("AUTHORIZER_FAILURE", errors.ServiceUnavailable),
    ],
)
def test_the_gateways_refusals_say_what_the_apis_own_errors_of_that_kind_say(response_type, error_type):
    response = RESPONSES[response_type]
    assert response["statusCode"] == str(error_type.status)
    assert envelope(response) == errors.error_body(error_type.code, error_type.message, "$context.requestId")


def test_api_gateways_own_5xx_keep_their_status_and_say_what_the_apis_500_says():
    assert envelope(RESPONSES["DEFAULT_5XX"])["error"] == {
        "code": errors.ApiError.code,
        "message": errors.ApiError.message,
    }


def test_only_unauthorized_and_deny_are_not_503():
    statuses = {outcome.description: outcome.status for outcome in gateway.AUTHORIZER_OUTCOMES}
    assert sorted({status for status in statuses.values()}) == [401, 403, 503]
    refused = {description for description, status in statuses.items() if status != 503}
    assert refused == {
        "raises Unauthorized (bad, expired or unknown token)",
        "no Authorization header (API Gateway refuses before calling it)",
        "returns a Deny policy (suspended tenant)",
    }


@pytest.mark.parametrize("response_type", sorted(RESPONSES))
def test_every_gateway_response_forbids_content_sniffing_and_uses_the_envelope(response_type):
    response = RESPONSES[response_type]
    assert response["responseParameters"]["gatewayresponse.header.X-Content-Type-Options"] == "'nosniff'"
    body = envelope(response)
    assert set(body) == {"error", "request_id"} and body["request_id"] == "$context.requestId"
    # Header values are literals ('...') or request values; anything else fails put_gateway_response.
    for name, value in response["responseParameters"].items():
        assert name.startswith("gatewayresponse.header."), name
        assert value.startswith("'") and value.endswith("'"), (name, value)


@pytest.mark.parametrize("response_type", sorted(RESPONSES))
def test_every_503_and_429_tells_when_to_retry(response_type):
    response = RESPONSES[response_type]
    if response.get("statusCode") in ("503",) or response_type == "THROTTLED":
        assert "gatewayresponse.header.Retry-After" in response["responseParameters"]


def test_the_defaults_keep_api_gateways_own_status():
    # A status on DEFAULT_4XX or DEFAULT_5XX would replace that of every type not named here.
    assert "statusCode" not in RESPONSES["DEFAULT_4XX"]
    assert "statusCode" not in RESPONSES["DEFAULT_5XX"]


@pytest.mark.parametrize(
    ("raise_refusal", "response_type"),
    [
        (gateway.unauthorized, "UNAUTHORIZED"),
        (gateway.authorizer_failure, "AUTHORIZER_CONFIGURATION_ERROR"),
        (lambda: gateway.forbidden("arn:aws:execute-api:us-east-1:123456789012:a1/api/GET/x", "acme"), "ACCESS_DENIED"),
    ],
)
def test_the_local_gateway_refuses_with_the_very_response_api_gateway_sends(raise_refusal, response_type):
    response = RESPONSES[response_type]
    with pytest.raises(LocalGatewayException) as raised:
        refusal = raise_refusal()
        raise refusal
    refusal = raised.value
    assert refusal.CODE == int(response["statusCode"])
    body = json.loads(refusal.body)
    assert body["error"] == envelope(response)["error"]
    assert refusal.headers["X-Request-Id"] == body["request_id"]
    for name, value in response["responseParameters"].items():
        assert refusal.headers[name.removeprefix("gatewayresponse.header.")] == value.strip("'")


def test_in_lambda_a_dependency_failure_is_an_exception_api_gateway_does_not_read_as_unauthorized(monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "tenant-api-prod-tenant_authorizer")
    failure = gateway.authorizer_failure()
    assert isinstance(failure, Exception) and str(failure) != "Unauthorized"
    assert str(gateway.unauthorized()) == "Unauthorized"


def test_the_terraform_package_carries_the_same_responses_verbatim():
    # The API body is a Terraform template: the responses must pass through its escaping unchanged.
    extension = gateway_responses_extension()
    assert extension == RESPONSES
    assert literal(extension) == RESPONSES
