"""Unit tests of the authorizer with real RS256 tokens and a real JWKS served over HTTP on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any, Callable

import jwt
import pytest
from chalice.local import ForbiddenError, NotAuthorizedError
from cryptography.hazmat.primitives import serialization

from chalicelib import deadline
from chalicelib.config import get_settings
from chalicelib.errors import ServiceUnavailable
from chalicelib.store.registry import SUSPENDED, TenantRecord
from chalicelib.web import auth, gateway
from chalicelib.web.auth import JwksCache, TenantAuthorizer, TenantCache
from scripts.local.token_issuer import TokenIssuer
from tests.support.clock import FakeClock
from tests.support.jwks import JwksServer
from tests.support.tenants import ACME, ALL_SCOPES, GLOBEX

METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/prod/GET/catalog/prod-001"
API_WIDE_ARN = "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/prod/*/*"


class FakeRegistry:
    """The registry's lookup by client id, over a dict, counting reads."""

    def __init__(self, *records: TenantRecord):
        self.records = {record.client_id: record for record in records}
        self.reads = 0
        self.failure: Exception | None = None

    def find_by_client_id(self, client_id: str) -> TenantRecord | None:
        self.reads += 1
        if self.failure is not None:
            raise self.failure
        return self.records.get(client_id)

    def put(self, record: TenantRecord) -> None:
        self.records[record.client_id] = record


def acme_claims(issuer: TokenIssuer, **changes: Any) -> dict[str, Any]:
    """Acme's access token claims with some changed (None removes a claim)."""
    claims = issuer.claims(ACME.client_id, ALL_SCOPES)
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


class Harness:
    """An authorizer over the test JWKS server and a fake registry, with fake clocks for both caches."""

    def __init__(self, issuer: TokenIssuer, server: JwksServer):
        settings = get_settings()
        self.issuer = issuer
        self.server = server
        self.jwks_clock = FakeClock()
        self.tenant_clock = FakeClock()
        self.registry = FakeRegistry(ACME.record(), GLOBEX.record())
        self.jwks = JwksCache(settings.jwks_url, settings.jwks_min_refresh_seconds, clock=self.jwks_clock)
        self.tenants = TenantCache(self.registry, settings.tenant_cache_seconds, clock=self.tenant_clock)
        self.authorizer = TenantAuthorizer(settings, self.jwks, self.tenants)

    def claims(self, **changes: Any) -> dict[str, Any]:
        return acme_claims(self.issuer, **changes)

    def call(self, token: str, method_arn: str = METHOD_ARN) -> dict[str, Any]:
        return self.authorizer(f"Bearer {token}", method_arn)


@pytest.fixture
def harness(jwks: JwksServer, token_issuer: TokenIssuer) -> Harness:
    return Harness(token_issuer, jwks)


@pytest.fixture(params=["local", "lambda"])
def gateway_mode(request, monkeypatch) -> str:
    """Run the test as under Chalice's local gateway and as in a Lambda function."""
    if request.param == "lambda":
        monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "tenant-api-prod-tenant_authorizer")
    return request.param


def assert_unauthorized(mode: str, call: Callable[[], Any]) -> None:
    """The call refuses with 401: "Unauthorized" in Lambda, NotAuthorizedError with our envelope locally."""
    if mode == "lambda":
        with pytest.raises(Exception) as raised:
            call()
        assert type(raised.value) is Exception
        assert str(raised.value) == "Unauthorized"
    else:
        with pytest.raises(NotAuthorizedError) as raised:
            call()
        assert raised.value.CODE == 401
        body = json.loads(raised.value.body)
        assert body["error"] == {"code": "unauthorized", "message": "Unauthorized"}
        assert raised.value.headers["X-Request-Id"] == body["request_id"]


def assert_authorizer_failure(mode: str, call: Callable[[], Any]) -> None:
    """The call fails closed with 503: any exception but "Unauthorized" in Lambda, our envelope locally."""
    with pytest.raises(Exception) as raised:
        call()
    if mode == "lambda":
        assert str(raised.value) != "Unauthorized"
        assert not isinstance(raised.value, dict)
    else:
        assert raised.value.CODE == 503
        body = json.loads(raised.value.body)
        assert body["error"]["code"] == "service_unavailable"
        assert raised.value.headers["Retry-After"] == "1"
        assert raised.value.headers["X-Content-Type-Options"] == "nosniff"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_parts(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"


# --- allowed ---------------------------------------------------------------------------------


def test_a_valid_token_is_allowed_on_every_route_with_the_tenants_context_and_api_key(harness, jwks):
    answer = harness.call(harness.issuer.issue(ACME.client_id, ALL_SCOPES))
    assert answer == {
        "principalId": "acme",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": [API_WIDE_ARN]}],
        },
        "context": {"tenant_id": "acme", "tier": "basic", "scopes": " ".join(ALL_SCOPES)},
        "usageIdentifierKey": ACME.api_key_value,
    }
    assert jwks.fetches == 1


def test_the_answer_names_the_tenant_of_the_tokens_client(harness):
    answer = harness.call(harness.issuer.issue(GLOBEX.client_id, ["tenant-api/catalog.read"]))
    assert answer["principalId"] == "globex"
    assert answer["context"] == {"tenant_id": "globex", "tier": "standard", "scopes": "tenant-api/catalog.read"}
    assert answer["usageIdentifierKey"] == GLOBEX.api_key_value


def test_a_tenant_without_an_api_key_gets_no_usage_identifier_key(harness):
    harness.registry.put(ACME.record(api_key_value=""))
    answer = harness.call(harness.issuer.issue(ACME.client_id, ALL_SCOPES))
    assert "usageIdentifierKey" not in answer


@pytest.mark.parametrize(
    ("method_arn", "expected"),
    [
        (METHOD_ARN, API_WIDE_ARN),
        (
            "arn:aws:execute-api:eu-west-1:210987654321:api9/dev/POST/orders",
            "arn:aws:execute-api:eu-west-1:210987654321:api9/dev/*/*",
        ),
        (
            "arn:aws-cn:execute-api:cn-north-1:123456789012:a1/v1/GET/",
            "arn:aws-cn:execute-api:cn-north-1:123456789012:a1/v1/*/*",
        ),
        # A path may carry ":" (e.g. /catalog/a:b): only the ARN's own separators count.
        ("arn:aws:execute-api:us-east-1:123456789012:abcdef1234/prod/GET/catalog/a:b", API_WIDE_ARN),
        ("arn:aws:execute-api:us-east-1:123456789012:abcdef1234/prod/GET/orders/x:y:z/w", API_WIDE_ARN),
    ],
)
def test_the_policy_covers_the_whole_api_and_stage(method_arn, expected):
    assert gateway.api_wide_arn(method_arn) == expected


def test_a_token_within_the_leeway_is_allowed(harness):
    now = time.time()
    expired_just_now = harness.claims(exp=int(now) - 10)
    issued_just_ahead = harness.claims(iat=int(now) + 10)
    assert harness.call(harness.issuer.sign(expired_just_now))["principalId"] == "acme"
    assert harness.call(harness.issuer.sign(issued_just_ahead))["principalId"] == "acme"


# --- refused with 401 ------------------------------------------------------------------------


def forged_tokens(issuer: TokenIssuer) -> dict[str, str]:
    """Tokens that must all be refused, by what is wrong with them."""

    def claims(**changes: Any) -> dict[str, Any]:
        return acme_claims(issuer, **changes)

    now = int(time.time())
    public_pem = jwt.PyJWK(issuer.jwks()["keys"][0]).key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs256_header = {"alg": "HS256", "typ": "JWT", "kid": issuer.key_id}
    hs256_input = unsigned_parts(hs256_header, claims())
    hs256_signature = hmac.new(public_pem, hs256_input.encode(), hashlib.sha256).digest()
    valid = issuer.sign(claims())
    header, _, signature = valid.split(".")
    tampered_claims = b64(json.dumps(claims(client_id=GLOBEX.client_id)).encode())
    return {
        "expired": issuer.sign(claims(iat=now - 7200, exp=now - 3600)),
        "not yet valid": issuer.sign(claims(iat=now + 600, exp=now + 4200)),
        "wrong issuer": issuer.sign(claims(iss="https://cognito-idp.us-east-1.amazonaws.com/us-east-1_other")),
        "issuer with a trailing slash": issuer.sign(claims(iss=issuer.issuer + "/")),
        "id token": issuer.sign(claims(token_use="id")),
        "no token_use": issuer.sign(claims(token_use=None)),
        "no exp": issuer.sign(claims(exp=None)),
        "no iat": issuer.sign(claims(iat=None)),
        "no client_id": issuer.sign(claims(client_id=None)),
        "client_id not a string": issuer.sign(claims(client_id=12345)),
        "client_id with a separator": issuer.sign(claims(client_id="acmeclient0001#TENANT")),
        "unknown client": issuer.sign(claims(client_id="nobodysclient")),
        "unknown kid": issuer.sign(claims(), headers={"kid": "not-published"}),
        "no kid": unsigned_parts({"alg": "RS256", "typ": "JWT"}, claims()) + f".{signature}",
        "alg none": unsigned_parts({"alg": "none", "typ": "JWT", "kid": issuer.key_id}, claims()) + ".",
        "hs256 with the public key": f"{hs256_input}.{b64(hs256_signature)}",
        "rs512": unsigned_parts({"alg": "RS512", "typ": "JWT", "kid": issuer.key_id}, claims()) + f".{signature}",
        "tampered payload": f"{header}.{tampered_claims}.{signature}",
        "stripped signature": f"{header}.{valid.split('.')[1]}.",
        "signed by another key": TokenIssuer(issuer.issuer, key_id=issuer.key_id).sign(claims()),
        "not a jwt": "not-a-jwt",
        "two parts": f"{header}.{valid.split('.')[1]}",
    }


# Each forgery and the reason the authorizer logs for refusing it.
FORGERIES = {
    "expired": "expired",
    "not yet valid": "not yet valid",
    "wrong issuer": "wrong issuer",
    "issuer with a trailing slash": "wrong issuer",
    "id token": "not an access token",
    "no token_use": "invalid token (MissingRequiredClaimError)",
    "no exp": "invalid token (MissingRequiredClaimError)",
    "no iat": "invalid token (MissingRequiredClaimError)",
    "no client_id": "invalid token (MissingRequiredClaimError)",
    "client_id not a string": "bad client_id",
    "client_id with a separator": "bad client_id",
    "unknown client": "unknown client",
    "unknown kid": "unknown kid",
    "no kid": "no kid",
    "alg none": "algorithm not allowed",
    "hs256 with the public key": "algorithm not allowed",
    "rs512": "algorithm not allowed",
    "tampered payload": "bad signature",
    "stripped signature": "bad signature",
    "signed by another key": "bad signature",
    "not a jwt": "malformed token",
    "two parts": "malformed token",
}


@pytest.fixture(scope="module")
def forgeries(token_issuer: TokenIssuer) -> dict[str, str]:
    # Made once per module: "signed by another key" generates an RSA key.
    return forged_tokens(token_issuer)


def test_every_forgery_is_listed(forgeries):
    assert sorted(forgeries) == sorted(FORGERIES)


@pytest.mark.parametrize("name", FORGERIES)
def test_a_forged_or_invalid_token_is_refused_with_401(harness, forgeries, gateway_mode, name, logs):
    assert_unauthorized(gateway_mode, lambda: harness.call(forgeries[name]))
    [line] = logs.records()
    assert (line["level"], line["message"], line["security_event"]) == ("WARNING", "security event", FORGERIES[name])
    assert forgeries[name] not in logs.text


def test_a_valid_token_still_works_after_the_refusals(harness, forgeries):
    for name in FORGERIES:
        with pytest.raises(NotAuthorizedError):
            harness.call(forgeries[name])
    assert harness.call(harness.issuer.sign(harness.claims()))["principalId"] == "acme"


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Basic YWNtZTpzZWNyZXQ=", "Token abc", "Bearer a b", "Bearer " + "a" * 9000],
)
def test_a_malformed_authorization_header_is_refused_with_401(harness, gateway_mode, header):
    assert_unauthorized(gateway_mode, lambda: harness.authorizer(header, METHOD_ARN))


def test_the_bearer_scheme_is_case_insensitive(harness):
    token = harness.issuer.issue(ACME.client_id, ALL_SCOPES)
    assert harness.authorizer(f"bearer {token}", METHOD_ARN)["principalId"] == "acme"
    assert harness.authorizer(f"  BEARER   {token}  ", METHOD_ARN)["principalId"] == "acme"


def test_a_tenant_with_an_unknown_tier_is_refused(harness, gateway_mode):
    harness.registry.put(ACME.record(tier="platinum"))
    assert_unauthorized(gateway_mode, lambda: harness.call(harness.issuer.issue(ACME.client_id, ALL_SCOPES)))


def test_an_unexpected_failure_fails_closed_with_503_not_401(harness, gateway_mode):
    # Nothing says the token is bad: a 401 would send the client after new tokens, each billed.
    harness.registry.failure = RuntimeError("table unreachable")
    assert_authorizer_failure(gateway_mode, lambda: harness.call(harness.issuer.issue(ACME.client_id, ALL_SCOPES)))


def test_an_unreachable_jwks_fails_closed_with_503_not_401(harness, jwks, gateway_mode):
    # The token may be fine: telling the client it is not would make it fetch new ones (billed).
    jwks.document = {"keys": "not a list"}
    assert_authorizer_failure(gateway_mode, lambda: harness.call(harness.issuer.issue(ACME.client_id, ALL_SCOPES)))


def test_a_throttled_registry_fails_closed_with_503_not_401(harness, gateway_mode):
    harness.registry.failure = ServiceUnavailable()
    assert_authorizer_failure(gateway_mode, lambda: harness.call(harness.issuer.issue(ACME.client_id, ALL_SCOPES)))


def test_without_keys_the_jwks_is_retried_within_seconds_not_a_minute(jwks, token_issuer):
    clock = FakeClock()
    cache = JwksCache(f"{jwks.issuer}/.well-known/jwks.json", min_refresh_seconds=60, clock=clock)
    good = jwks.document
    jwks.document = {"keys": "not a list"}
    with pytest.raises(auth.JwksUnavailable):
        cache.signing_key(token_issuer.key_id)
    jwks.document = good
    clock.advance(JwksCache.RETRY_WITHOUT_KEYS_SECONDS - 1)
    with pytest.raises(auth.JwksUnavailable):
        cache.signing_key(token_issuer.key_id)
    clock.advance(1)
    assert cache.signing_key(token_issuer.key_id) is not None


def test_known_keys_are_refetched_after_an_hour_so_a_withdrawn_key_stops_working(jwks, token_issuer):
    clock = FakeClock()
    cache = JwksCache(f"{jwks.issuer}/.well-known/jwks.json", min_refresh_seconds=60, clock=clock)
    assert cache.signing_key(token_issuer.key_id) is not None
    other = TokenIssuer(jwks.issuer, key_id="rotated-in")
    jwks.document = other.jwks()
    clock.advance(JwksCache.MAX_AGE_SECONDS - 1)
    assert cache.signing_key(token_issuer.key_id) is not None
    assert jwks.fetches == 1
    clock.advance(1)
    with pytest.raises(auth.TokenRejected):
        cache.signing_key(token_issuer.key_id)
    assert cache.signing_key("rotated-in") is not None


def test_a_failed_hourly_refetch_keeps_the_known_keys(jwks, token_issuer):
    clock = FakeClock()
    cache = JwksCache(f"{jwks.issuer}/.well-known/jwks.json", min_refresh_seconds=60, clock=clock)
    assert cache.signing_key(token_issuer.key_id) is not None
    jwks.document = {"keys": "not a list"}
    clock.advance(JwksCache.MAX_AGE_SECONDS)
    assert cache.signing_key(token_issuer.key_id) is not None


def test_a_misconfigured_deployment_refuses_with_503_not_401(env, gateway_mode, token_issuer):
    env.set_unread(PAGINATION_SECRET="too-short")
    assert_authorizer_failure(
        gateway_mode, lambda: auth.authorize(f"Bearer {token_issuer.issue(ACME.client_id, ALL_SCOPES)}", METHOD_ARN)
    )


# --- the JWKS cache ---------------------------------------------------------------------------


def test_the_jwks_is_fetched_once_for_many_tokens(harness, jwks):
    for _ in range(5):
        harness.call(harness.issuer.issue(ACME.client_id, ALL_SCOPES))
    assert jwks.fetches == 1


def test_an_unknown_kid_refetches_the_jwks_at_most_once_per_min_refresh_interval(harness, jwks):
    valid = harness.issuer.issue(ACME.client_id, ALL_SCOPES)
    unknown = harness.issuer.sign(harness.claims(), headers={"kid": "rotated-key"})
    harness.call(valid)
    assert jwks.fetches == 1
    for _ in range(10):
        with pytest.raises(NotAuthorizedError):
            harness.call(unknown)
    assert jwks.fetches == 1, "an unknown kid within the refresh interval must not refetch"
    harness.jwks_clock.advance(get_settings().jwks_min_refresh_seconds)
    for _ in range(10):
        with pytest.raises(NotAuthorizedError):
            harness.call(unknown)
    assert jwks.fetches == 2
    assert harness.call(valid)["principalId"] == "acme"
    assert jwks.fetches == 2


def test_a_rotated_key_is_picked_up_once_the_refresh_interval_has_passed(harness, jwks):
    harness.call(harness.issuer.issue(ACME.client_id, ALL_SCOPES))
    rotated = TokenIssuer(harness.issuer.issuer, key_id="test-key-2")
    jwks.document = {"keys": harness.issuer.jwks()["keys"] + rotated.jwks()["keys"]}
    token = rotated.issue(ACME.client_id, ALL_SCOPES)
    with pytest.raises(NotAuthorizedError):
        harness.call(token)
    harness.jwks_clock.advance(60)
    assert harness.call(token)["principalId"] == "acme"
    assert jwks.fetches == 2


def test_a_failed_refresh_keeps_the_keys_already_known(harness, jwks):
    valid = harness.issuer.issue(ACME.client_id, ALL_SCOPES)
    harness.call(valid)
    jwks.document = {"keys": "broken"}
    harness.jwks_clock.advance(60)
    with pytest.raises(NotAuthorizedError):
        harness.call(harness.issuer.sign(harness.claims(), headers={"kid": "rotated-key"}))
    assert jwks.fetches == 2
    assert harness.call(valid)["principalId"] == "acme"


# --- suspension and tier changes --------------------------------------------------------------


def test_a_suspended_tenant_is_refused_with_403_locally(harness):
    harness.registry.put(ACME.record(status=SUSPENDED))
    with pytest.raises(ForbiddenError) as raised:
        harness.call(harness.issuer.issue(ACME.client_id, ALL_SCOPES))
    assert raised.value.CODE == 403
    assert json.loads(raised.value.body)["error"] == {"code": "forbidden", "message": "Forbidden"}


def test_a_suspended_tenant_gets_a_deny_policy_in_lambda(harness, monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "tenant-api-prod-tenant_authorizer")
    harness.registry.put(ACME.record(status=SUSPENDED))
    answer = harness.call(harness.issuer.issue(ACME.client_id, ALL_SCOPES))
    assert answer == {
        "principalId": "acme",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": [API_WIDE_ARN]}],
        },
    }


def test_suspension_takes_effect_after_the_registry_cache_ttl(harness):
    token = harness.issuer.issue(ACME.client_id, ALL_SCOPES)
    assert harness.call(token)["principalId"] == "acme"
    harness.registry.put(ACME.record(status=SUSPENDED))
    harness.tenant_clock.advance(get_settings().tenant_cache_seconds - 1)
    assert harness.call(token)["principalId"] == "acme", "the cached record is used within the TTL"
    assert harness.registry.reads == 1
    harness.tenant_clock.advance(1)
    with pytest.raises(ForbiddenError):
        harness.call(token)
    assert harness.registry.reads == 2
    harness.registry.put(ACME.record())
    harness.tenant_clock.advance(get_settings().tenant_cache_seconds)
    assert harness.call(token)["principalId"] == "acme"


def test_a_tier_change_takes_effect_after_the_registry_cache_ttl(harness):
    token = harness.issuer.issue(ACME.client_id, ALL_SCOPES)
    assert harness.call(token)["context"]["tier"] == "basic"
    harness.registry.put(ACME.record(tier="premium"))
    assert harness.call(token)["context"]["tier"] == "basic"
    harness.tenant_clock.advance(get_settings().tenant_cache_seconds)
    assert harness.call(token)["context"]["tier"] == "premium"


def test_an_unknown_client_is_remembered_for_the_ttl_too(harness):
    token = harness.issuer.issue("laterclient", ALL_SCOPES)
    with pytest.raises(NotAuthorizedError):
        harness.call(token)
    harness.registry.put(ACME.record(client_id="laterclient", tenant_id="later"))
    with pytest.raises(NotAuthorizedError):
        harness.call(token)
    assert harness.registry.reads == 1
    harness.tenant_clock.advance(get_settings().tenant_cache_seconds)
    assert harness.call(token)["principalId"] == "later"


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/jwks.json", "/pool/.well-known/jwks.json"])
def test_the_jwks_is_only_fetched_over_http(url):
    with pytest.raises(auth.TokenRejected):
        auth.fetch_jwks(url)


def test_the_gateway_responses_give_api_gateways_errors_our_envelope():
    responses = gateway.gateway_responses()
    for name, status, code in [
        ("UNAUTHORIZED", "401", "unauthorized"),
        ("ACCESS_DENIED", "403", "forbidden"),
        ("THROTTLED", "429", "too_many_requests"),
    ]:
        assert responses[name]["statusCode"] == status
        body = json.loads(responses[name]["responseTemplates"]["application/json"])
        assert body == {
            "error": {"code": code, "message": body["error"]["message"]},
            "request_id": "$context.requestId",
        }
    assert {"DEFAULT_4XX", "DEFAULT_5XX", "QUOTA_EXCEEDED", "MISSING_AUTHENTICATION_TOKEN"} <= set(responses)


# --- the answer's shape -----------------------------------------------------------------------


ALLOW = {
    "principalId": "acme",
    "policyDocument": {
        "Version": "2012-10-17",
        "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": [API_WIDE_ARN]}],
    },
    "context": {"tenant_id": "acme", "tier": "basic", "scopes": ""},
    "usageIdentifierKey": "apikey",
}


def changed(**changes: Any) -> dict[str, Any]:
    answer = json.loads(json.dumps(ALLOW))
    for name, value in changes.items():
        if value is None:
            answer.pop(name)
        else:
            answer[name] = value
    return answer


def test_the_answers_the_authorizer_gives_are_well_formed(harness, monkeypatch):
    assert auth.answer_problem(harness.call(harness.issuer.issue(ACME.client_id, ALL_SCOPES))) is None
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "tenant-api-prod-tenant_authorizer")
    assert auth.answer_problem(gateway.forbidden(METHOD_ARN, "acme")) is None


@pytest.mark.parametrize(
    "answer",
    [
        None,
        "Allow",
        changed(principalId=None),
        changed(principalId=""),
        changed(policyDocument=None),
        changed(policyDocument={"Version": "2012-10-17", "Statement": []}),
        changed(policyDocument={"Version": "2008-10-17", "Statement": ALLOW["policyDocument"]["Statement"]}),
        changed(policyDocument={"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": ["*"]}]}),
        changed(
            policyDocument={
                "Version": "2012-10-17",
                "Statement": [{"Action": "execute-api:Invoke", "Effect": "Maybe", "Resource": ["*"]}],
            }
        ),
        changed(context={"tenant_id": {"nested": "no"}}),
        changed(context={"scopes": ["a", "b"]}),
        changed(usageIdentifierKey=12345),
        changed(extra="field"),
    ],
)
def test_a_malformed_answer_is_found(answer):
    assert auth.answer_problem(answer) is not None


def test_a_malformed_answer_is_a_503_as_api_gateway_would_make_it(env, gateway_mode, monkeypatch, logs):
    # API Gateway answers a malformed authorizer output with AUTHORIZER_CONFIGURATION_ERROR; the
    # authorizer says so itself, so that the local gateway answers alike and the log names it.
    monkeypatch.setattr(auth.TenantAuthorizer, "__call__", lambda self, header, arn: changed(context={"n": [1]}))
    assert_authorizer_failure(gateway_mode, lambda: auth.authorize("Bearer x", METHOD_ARN))
    assert any("malformed" in record["message"] for record in logs.records())


def test_a_jwks_fetch_that_does_not_fit_the_deadline_is_not_made(harness, jwks, gateway_mode):
    class NearlySpent:
        def get_remaining_time_in_millis(self) -> float:
            return 500  # no more than the margin kept for the answer

    with deadline.answering_within(NearlySpent()):
        assert_authorizer_failure(gateway_mode, lambda: harness.call(harness.issuer.issue(ACME.client_id, ALL_SCOPES)))
    assert jwks.fetches == 0
