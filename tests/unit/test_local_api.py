"""Unit tests of the local API server's gateway: the project's gateway responses rendered as API Gateway renders them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chalice import Chalice, CORSConfig
from chalice.app import AuthResponse
from chalice.config import Config

from chalicelib.web import gateway
from scripts.local import api as local_api
from scripts.local.api import GatewayLikeLocalGateway, GatewayRefusal, gateway_refusal


def rendered(refusal: GatewayRefusal) -> tuple[int, dict[str, Any], dict[str, Any]]:
    return refusal.CODE, refusal.headers, json.loads(refusal.body)


def test_a_defined_response_type_is_its_status_and_template_with_the_request_id():
    definition = gateway.gateway_responses()["MISSING_AUTHENTICATION_TOKEN"]
    status, headers, body = rendered(gateway_refusal("MISSING_AUTHENTICATION_TOKEN"))
    assert status == int(definition["statusCode"])
    template = json.loads(definition["responseTemplates"]["application/json"])
    assert body == {**template, "request_id": headers["X-Request-Id"]}
    assert headers["x-amzn-RequestId"] == headers["X-Request-Id"]
    assert headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Type"] == "application/json"
    assert "Connection" not in headers


def test_every_refusal_has_its_own_request_id():
    first, second = gateway_refusal("UNAUTHORIZED"), gateway_refusal("UNAUTHORIZED")
    assert first.headers["X-Request-Id"] != second.headers["X-Request-Id"]


def test_a_type_the_project_leaves_undefined_takes_default_4xx_with_api_gateways_status(monkeypatch):
    definitions = gateway.gateway_responses()
    monkeypatch.setattr(
        local_api, "gateway_responses", lambda: {k: v for k, v in definitions.items() if k != "ACCESS_DENIED"}
    )
    status, _, body = rendered(gateway_refusal("ACCESS_DENIED"))
    default_4xx = json.loads(definitions["DEFAULT_4XX"]["responseTemplates"]["application/json"])
    assert (status, body["error"]) == (403, default_4xx["error"])


def test_a_status_set_on_default_4xx_applies_to_every_undefined_4xx_type(monkeypatch):
    definitions = {"DEFAULT_4XX": {"statusCode": "418", "responseTemplates": {"application/json": "{}"}}}
    monkeypatch.setattr(local_api, "gateway_responses", lambda: definitions)
    assert gateway_refusal("REQUEST_TOO_LARGE").CODE == 418
    assert gateway_refusal("DEFAULT_4XX", status=400).CODE == 418


def test_without_any_definition_the_body_is_api_gateways_own(monkeypatch):
    monkeypatch.setattr(local_api, "gateway_responses", dict)
    status, _, body = rendered(gateway_refusal("MISSING_AUTHENTICATION_TOKEN"))
    assert (status, body) == (403, {"message": "Missing Authentication Token"})
    assert rendered(gateway_refusal("DEFAULT_4XX", status=411))[:3:2] == (411, {"message": "Length Required"})


def test_response_parameters_become_headers():
    definitions = gateway.gateway_responses()
    refusal = gateway_refusal("THROTTLED", status=429)
    expected = {
        key.rpartition(".")[2]: value.strip("'")
        for key, value in definitions["THROTTLED"].get("responseParameters", {}).items()
    }
    assert refusal.CODE == int(definitions["THROTTLED"]["statusCode"])
    assert expected and all(refusal.headers[name] == value for name, value in expected.items())


def test_a_refusal_that_ends_the_connection_says_so():
    refusal = gateway_refusal("DEFAULT_4XX", status=400, close=True)
    assert refusal.close and refusal.headers["Connection"] == "close"


# --- the gateway in front of an application ---------------------------------------------------

demo = Chalice(app_name="gateway-demo")


@demo.authorizer()
def demo_authorizer(auth_request):
    """Allow "allow", deny "deny", answer nothing for "none", refuse with an envelope for "envelope"."""
    if auth_request.token == "none":
        return None
    if auth_request.token == "envelope":
        raise gateway.unauthorized()
    routes = ["*"] if auth_request.token == "allow" else ["/elsewhere"]
    return AuthResponse(routes=routes, principal_id="someone")


@demo.route("/open")
def open_view():
    """No authorizer."""
    return {"ok": True}


@demo.route("/closed", authorizer=demo_authorizer)
def closed_view():
    """Behind the authorizer."""
    return {"ok": True}


@demo.route("/shared", cors=CORSConfig(allow_origin="https://example.com"))
def shared_view():
    """CORS enabled, so API Gateway has an OPTIONS method here."""
    return {"ok": True}


def call(method: str, path: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return GatewayLikeLocalGateway(demo, Config()).handle_request(method, path, headers or {}, None)


def refusal_of(method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    with pytest.raises(GatewayRefusal) as raised:
        call(method, path, headers)
    assert raised.value.headers["X-Content-Type-Options"] == "nosniff"
    return raised.value.CODE, json.loads(raised.value.body)


def envelope_error(response_type: str) -> tuple[int, dict[str, str]]:
    definition = gateway.gateway_responses()[response_type]
    return int(definition["statusCode"]), json.loads(definition["responseTemplates"]["application/json"])["error"]


def test_defined_routes_reach_the_application():
    assert call("GET", "/open")["statusCode"] == 200
    assert call("GET", "/closed", {"authorization": "allow"})["statusCode"] == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/nope"), ("POST", "/open"), ("HEAD", "/open"), ("OPTIONS", "/open"), ("TRACE", "/open"), ("GET", "/%")],
)
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer secret-token"}])
def test_undefined_routes_and_methods_are_the_missing_authentication_token_response(method, path, headers):
    status, body = refusal_of(method, path, headers)
    assert (status, body["error"]) == envelope_error("MISSING_AUTHENTICATION_TOKEN")
    assert "secret-token" not in json.dumps(body)


def test_options_is_chalices_preflight_where_a_view_enables_cors():
    response = call("OPTIONS", "/shared")
    assert response["statusCode"] == 200
    assert response["headers"]["Access-Control-Allow-Origin"] == "https://example.com"


def test_no_authorization_header_is_the_unauthorized_response():
    status, body = refusal_of("GET", "/closed")
    assert (status, body["error"]) == envelope_error("UNAUTHORIZED")


def test_a_policy_that_does_not_allow_the_call_is_the_access_denied_response():
    status, body = refusal_of("GET", "/closed", {"authorization": "deny"})
    assert (status, body["error"]) == envelope_error("ACCESS_DENIED")


def test_an_authorizer_that_answers_nothing_is_the_authorizer_configuration_error_response():
    status, body = refusal_of("GET", "/closed", {"authorization": "none"})
    definitions = gateway.gateway_responses()
    if "AUTHORIZER_CONFIGURATION_ERROR" in definitions:
        assert (status, body["error"]) == envelope_error("AUTHORIZER_CONFIGURATION_ERROR")
    else:
        default_5xx = json.loads(definitions["DEFAULT_5XX"]["responseTemplates"]["application/json"])
        assert (status, body["error"]) == (500, default_5xx["error"])


def test_the_projects_own_refusals_pass_through_unchanged():
    status, body = refusal_of("GET", "/closed", {"authorization": "envelope"})
    assert (status, body["error"]) == (401, {"code": "unauthorized", "message": gateway.UNAUTHORIZED_MESSAGE})
