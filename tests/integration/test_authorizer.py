"""The authorizer as wired into the app: API Gateway's event in and out, and its effect through the test client."""

from __future__ import annotations

import pytest
from chalice.local import ARNMatcher, LocalARNBuilder

import app as application
from chalicelib.store.registry import SUSPENDED, TenantRegistry
from chalicelib.web.ratelimit import TenantRateLimiter
from tests.support.api import Api, assert_error
from tests.support.clock import FakeClock
from tests.support.jwks import JwksServer
from tests.support.settings import rate_limit_middleware
from tests.support.tenants import ACME, ALL_SCOPES, GLOBEX

METHOD_ARN = "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/prod/GET/catalog"


def gateway_event(token: str, method_arn: str = METHOD_ARN) -> dict:
    return {"type": "TOKEN", "authorizationToken": f"Bearer {token}", "methodArn": method_arn}


def test_the_app_authorizer_answers_api_gateway_with_the_usage_identifier_key(api: Api):
    answer = application.tenant_authorizer(gateway_event(api.token(ACME)), None)
    assert answer["usageIdentifierKey"] == ACME.api_key_value
    assert answer["principalId"] == "acme"
    assert answer["context"] == {"tenant_id": "acme", "tier": "basic", "scopes": " ".join(ALL_SCOPES)}
    statement = answer["policyDocument"]["Statement"]
    assert statement == [
        {
            "Action": "execute-api:Invoke",
            "Effect": "Allow",
            "Resource": ["arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/prod/*/*"],
        }
    ]


def test_the_allow_policy_covers_every_route_and_method_of_the_app(api: Api):
    # API Gateway caches the answer per token, so the first route's answer must fit every route.
    answer = application.tenant_authorizer(
        gateway_event(api.token(ACME), LocalARNBuilder().build_arn("GET", "/health")), None
    )
    resources = answer["policyDocument"]["Statement"][0]["Resource"]
    for path, methods in application.app.routes.items():
        concrete = path.replace("{product_id}", "prod-001").replace("{order_id}", "ord_01HZY3M9K8V6T5R4Q3P2N1M0AB")
        for method in methods:
            assert ARNMatcher(LocalARNBuilder().build_arn(method, concrete)).does_any_resource_match(resources), (
                method,
                path,
            )


def test_the_authorizer_is_cached_for_60_seconds_in_api_gateway():
    assert application.tenant_authorizer.config.ttl_seconds == 60


def test_in_lambda_a_bad_token_raises_unauthorized_and_a_suspended_tenant_gets_deny(api: Api, monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "tenant-api-prod-tenant_authorizer")
    with pytest.raises(Exception) as raised:
        application.tenant_authorizer(gateway_event("not-a-token"), None)
    assert type(raised.value) is Exception and str(raised.value) == "Unauthorized"
    TenantRegistry().put(GLOBEX.record(status=SUSPENDED))
    answer = application.tenant_authorizer(gateway_event(api.token(GLOBEX)), None)
    assert answer["policyDocument"]["Statement"][0]["Effect"] == "Deny"
    assert "usageIdentifierKey" not in answer and "context" not in answer


def test_one_jwks_fetch_serves_many_requests(api: Api, jwks: JwksServer):
    for path in ["/catalog", "/catalog/prod-001", "/orders", "/catalog", "/orders"]:
        assert api.get(path, ACME).status == 200
        assert api.get(path, GLOBEX).status == 200
    assert jwks.fetches == 1


def test_suspension_applies_once_the_registry_cache_expires(api: Api, env):
    assert api.get("/catalog", ACME).status == 200
    TenantRegistry().put(ACME.record(status=SUSPENDED))
    assert api.get("/catalog", ACME).status == 200, "within TENANT_CACHE_SECONDS the cached record applies"
    env.set(TENANT_CACHE_SECONDS="0")
    assert_error(api.get("/catalog", ACME), 403, "forbidden")
    TenantRegistry().put(ACME.record())
    assert api.get("/catalog", ACME).status == 200


def test_a_tier_change_reaches_the_rate_limit(api: Api, env):
    env.set(TENANT_CACHE_SECONDS="0", RATE_LIMITER="in-app")
    clock = FakeClock()
    rate_limit_middleware().limiter = TenantRateLimiter(clock=clock)
    assert [api.get("/catalog/prod-001", ACME).status for _ in range(21)] == [200] * 20 + [429]
    TenantRegistry().put(ACME.record(tier="premium"))
    clock.advance(60)
    assert [api.get("/catalog/prod-001", ACME).status for _ in range(25)] == [200] * 25


def test_a_rotated_client_id_no_longer_authorizes(api: Api):
    # The old client's lookup item is left behind; the tenant record now names another client.
    TenantRegistry().put(ACME.record(client_id="acmeclientrotated"))
    assert_error(api.get("/catalog", ACME), 401, "unauthorized")
    token = api.issuer.issue("acmeclientrotated", ALL_SCOPES)
    assert api.get("/catalog", token=token).json["tenant_id"] == "acme"


def test_a_misconfigured_deployment_refuses_every_protected_route_with_503(api: Api, env):
    env.set_unread(PAGINATION_SECRET="short")
    reply = api.get("/catalog", ACME)
    assert_error(reply, 503, "service_unavailable")
    assert reply.header("Retry-After") == "1"
    assert api.get("/health", tenant=None).status == 200


class LambdaContext:
    """The Lambda context of an invocation with remaining_ms left."""

    def __init__(self, remaining_ms: float):
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> float:
        return self.remaining_ms


def test_the_app_authorizer_answers_within_its_invocations_time(api: Api, jwks: JwksServer, monkeypatch):
    # Chalice hands the authorizer no Lambda context; the app's authorizer takes the deadline from
    # the invocation itself. With no time left it neither fetches the JWKS nor reads the registry.
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "tenant-api-prod-tenant_authorizer")
    with pytest.raises(Exception) as raised:
        application.tenant_authorizer(gateway_event(api.token(ACME)), LambdaContext(remaining_ms=400))
    assert str(raised.value) != "Unauthorized"
    assert jwks.fetches == 0
    answer = application.tenant_authorizer(gateway_event(api.token(ACME)), LambdaContext(remaining_ms=10_000))
    assert answer["principalId"] == "acme"
    assert jwks.fetches == 1


def test_a_registry_that_cannot_be_read_is_503_with_retry_after_through_the_local_gateway(api: Api, monkeypatch):
    from chalicelib.store import dynamodb

    client = dynamodb.dynamodb_client()
    original = client._make_api_call

    def unreachable(name, params):
        if name == "GetItem":
            from botocore.exceptions import EndpointConnectionError

            raise EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")
        return original(name, params)

    monkeypatch.setattr(client, "_make_api_call", unreachable)
    reply = api.get("/catalog", ACME)
    body = assert_error(reply, 503, "service_unavailable")
    assert reply.header("Retry-After") == "1"
    assert reply.header("X-Content-Type-Options") == "nosniff"
    assert body["error"]["message"] == "The service is temporarily unavailable; retry later."


def test_an_unreachable_jwks_is_503_with_retry_after_through_the_local_gateway(api: Api, env, jwks: JwksServer):
    jwks.document = {"keys": "not a list"}
    reply = api.get("/catalog", ACME)
    assert_error(reply, 503, "service_unavailable")
    assert reply.header("Retry-After") == "1"
