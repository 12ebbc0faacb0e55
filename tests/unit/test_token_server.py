"""Unit tests of the local token endpoint's rules: form parsing, client authentication, scopes, lifetimes, errors."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from scripts.local.token_server import (
    ClientCredentialsGrant,
    OAuthError,
    TokenGrant,
    access_token_lifetime,
    client_credentials,
    granted_scopes,
    parse_form,
)

FORM = "application/x-www-form-urlencoded"
READ = "tenant-api/catalog.read"
WRITE = "tenant-api/orders.write"
LIST = "tenant-api/orders.read"
ALLOWED = [READ, LIST, WRITE]


def basic(client_id: str, secret: str) -> str:
    """An HTTP Basic Authorization header value."""
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def refused(code: str):
    """pytest.raises for an OAuthError with this code."""
    return pytest.raises(OAuthError, match=f"^{code}$")


# --- parse_form ------------------------------------------------------------------------------


def test_a_form_body_gives_its_fields_url_decoded():
    form = parse_form(FORM, b"grant_type=client_credentials&scope=tenant-api%2Fcatalog.read+tenant-api%2Forders.read")
    assert form == {"grant_type": "client_credentials", "scope": f"{READ} {LIST}"}


@pytest.mark.parametrize(
    "content_type",
    [FORM, "application/x-www-form-urlencoded; charset=UTF-8", "Application/X-WWW-Form-Urlencoded", f" {FORM} "],
)
def test_the_form_media_type_is_matched_without_parameters_or_case(content_type):
    assert parse_form(content_type, b"grant_type=client_credentials") == {"grant_type": "client_credentials"}


@pytest.mark.parametrize(
    "content_type",
    [None, "", "application/json", "text/plain", "multipart/form-data; boundary=x", "application/x-www-form"],
)
def test_any_other_content_type_is_invalid_request(content_type):
    with refused("invalid_request") as raised:
        parse_form(content_type, b"grant_type=client_credentials")
    assert raised.value.status == 400


def test_blank_values_are_kept_and_an_empty_body_is_an_empty_form():
    assert parse_form(FORM, b"grant_type=&scope=") == {"grant_type": "", "scope": ""}
    assert parse_form(FORM, b"") == {}


def test_a_field_given_twice_is_invalid_request():
    with refused("invalid_request"):
        parse_form(FORM, b"grant_type=client_credentials&grant_type=client_credentials")
    with refused("invalid_request"):
        parse_form(FORM, b"grant_type=client_credentials&scope=a&scope=b")


def test_a_body_that_is_not_utf8_is_invalid_request():
    with refused("invalid_request"):
        parse_form(FORM, b"grant_type=\xff\xfe")


# --- client_credentials: HTTP Basic or form fields -------------------------------------------


def test_http_basic_gives_the_client_id_and_secret():
    assert client_credentials(basic("abc123", "s3cr:et"), {"grant_type": "client_credentials"}) == ("abc123", "s3cr:et")


def test_the_basic_scheme_name_is_case_insensitive():
    header = basic("abc123", "secret").replace("Basic", "bAsIc")
    assert client_credentials(header, {}) == ("abc123", "secret")


def test_basic_may_be_repeated_by_a_form_client_id_naming_the_same_client():
    assert client_credentials(basic("abc123", "secret"), {"client_id": "abc123"}) == ("abc123", "secret")


def test_a_form_client_id_naming_another_client_than_basic_is_invalid_client():
    with refused("invalid_client"):
        client_credentials(basic("abc123", "secret"), {"client_id": "other456"})


def test_two_authentication_methods_at_once_are_invalid_request():
    with refused("invalid_request"):
        client_credentials(basic("abc123", "secret"), {"client_id": "abc123", "client_secret": "secret"})


@pytest.mark.parametrize(
    "header",
    [
        "Bearer abc",
        "Basic",
        "Basic not*base64",
        "Basic " + base64.b64encode(b"no-colon-here").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:\xfd").decode(),
        "Digest " + base64.b64encode(b"abc123:secret").decode(),
    ],
    ids=["bearer", "empty", "not-base64", "no-colon", "not-utf8", "digest"],
)
def test_a_malformed_authorization_header_is_invalid_client(header):
    with refused("invalid_client") as raised:
        client_credentials(header, {})
    assert raised.value.status == 400


def test_form_fields_give_the_client_id_and_secret():
    form = {"grant_type": "client_credentials", "client_id": "abc123", "client_secret": "secret"}
    assert client_credentials(None, form) == ("abc123", "secret")
    # An empty Authorization header counts as none.
    assert client_credentials("", form) == ("abc123", "secret")


@pytest.mark.parametrize(
    "form",
    [{}, {"client_id": "abc123"}, {"client_secret": "secret"}, {"client_id": "", "client_secret": "secret"}],
    ids=["nothing", "no-secret", "no-id", "empty-id"],
)
def test_without_both_form_fields_and_without_basic_the_client_is_invalid(form):
    with refused("invalid_client"):
        client_credentials(None, form)


# --- granted_scopes --------------------------------------------------------------------------


@pytest.mark.parametrize("requested", [None, "", "   "])
def test_no_requested_scope_grants_every_allowed_scope(requested):
    granted = granted_scopes(requested, ALLOWED)
    assert granted == ALLOWED
    assert granted is not ALLOWED


def test_requested_scopes_are_granted_as_asked_once_each_in_order():
    assert granted_scopes(f"{WRITE} {READ}", ALLOWED) == [WRITE, READ]
    assert granted_scopes(f" {READ}  {READ} ", ALLOWED) == [READ]


@pytest.mark.parametrize(
    "requested", ["tenant-api/admin", f"{READ} tenant-api/admin", "catalog.read", "other-api/catalog.read"]
)
def test_any_requested_scope_that_is_not_allowed_refuses_them_all(requested):
    with refused("invalid_scope") as raised:
        granted_scopes(requested, ALLOWED)
    assert raised.value.status == 400


def test_a_client_without_allowed_scopes_gets_invalid_scope():
    with refused("invalid_scope"):
        granted_scopes(None, [])
    with refused("invalid_scope"):
        granted_scopes(READ, [])


# --- access_token_lifetime -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("app_client", "seconds"),
    [
        ({}, 3600),
        ({"AccessTokenValidity": 60, "TokenValidityUnits": {"AccessToken": "minutes"}}, 3600),
        ({"AccessTokenValidity": 5, "TokenValidityUnits": {"AccessToken": "minutes"}}, 300),
        ({"AccessTokenValidity": 900, "TokenValidityUnits": {"AccessToken": "seconds"}}, 900),
        ({"AccessTokenValidity": 2, "TokenValidityUnits": {"AccessToken": "hours"}}, 7200),
        ({"AccessTokenValidity": 1, "TokenValidityUnits": {"AccessToken": "days"}}, 86400),
        ({"AccessTokenValidity": 3}, 10800),
        ({"AccessTokenValidity": 3, "TokenValidityUnits": {}}, 10800),
        ({"AccessTokenValidity": 3, "TokenValidityUnits": {"IdToken": "minutes"}}, 10800),
        ({"AccessTokenValidity": 3, "TokenValidityUnits": None}, 10800),
    ],
    ids=[
        "default",
        "60-minutes",
        "5-minutes",
        "seconds",
        "hours",
        "days",
        "no-units",
        "empty-units",
        "other-unit",
        "null-units",
    ],
)
def test_the_lifetime_follows_access_token_validity_and_its_unit(app_client, seconds):
    assert access_token_lifetime(app_client) == seconds


# --- errors and the success body -------------------------------------------------------------


def test_an_oauth_error_carries_its_code_and_status():
    error = OAuthError("invalid_client")
    assert (error.code, error.status, str(error)) == ("invalid_client", 400, "invalid_client")
    assert OAuthError("server_error", status=500).status == 500


def test_a_grant_answers_with_cognitos_three_fields():
    assert TokenGrant("tok", 3600).to_json() == {"access_token": "tok", "expires_in": 3600, "token_type": "Bearer"}


# --- ClientCredentialsGrant over a fake user pool ---------------------------------------------


class FakeCognito:
    """describe_user_pool_client over a dict of app clients, recording the calls."""

    def __init__(self, *clients: dict[str, Any]):
        self.clients = {client["ClientId"]: client for client in clients}
        self.calls: list[tuple[str, str]] = []
        self.failure: Exception | None = None

    def describe_user_pool_client(self, UserPoolId: str, ClientId: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
        self.calls.append((UserPoolId, ClientId))
        if self.failure is not None:
            raise self.failure
        if ClientId not in self.clients:
            error = {"Error": {"Code": "ResourceNotFoundException", "Message": ClientId}}
            raise ClientError(error, "DescribeUserPoolClient")
        return {"UserPoolClient": self.clients[ClientId]}


class FakeIssuer:
    """Signs nothing: returns a readable stand-in for the token and records what was asked."""

    def __init__(self) -> None:
        self.issued: list[tuple[str, list[str], int]] = []

    def issue(self, client_id: str, scopes: list[str], lifetime_seconds: int = 3600) -> str:
        self.issued.append((client_id, scopes, lifetime_seconds))
        return f"token-for-{client_id}"


def app_client(client_id: str = "goodclient1", **changes: Any) -> dict[str, Any]:
    """An app client as DescribeUserPoolClient returns it, set up for client credentials."""
    client = {
        "ClientId": client_id,
        "ClientSecret": "the-secret",
        "AllowedOAuthFlows": ["client_credentials"],
        "AllowedOAuthFlowsUserPoolClient": True,
        "AllowedOAuthScopes": list(ALLOWED),
        "AccessTokenValidity": 15,
        "TokenValidityUnits": {"AccessToken": "minutes"},
    }
    client.update(changes)
    return {name: value for name, value in client.items() if value is not None}


GOOD_FORM = {"grant_type": "client_credentials"}


@pytest.fixture
def pool() -> FakeCognito:
    return FakeCognito(
        app_client(),
        app_client("nosecret1", ClientSecret=None),
        app_client("codeflow1", AllowedOAuthFlows=["code"]),
        app_client("notoauth1", AllowedOAuthFlowsUserPoolClient=False),
        app_client("readonly1", AllowedOAuthScopes=[READ]),
    )


@pytest.fixture
def issuer() -> FakeIssuer:
    return FakeIssuer()


@pytest.fixture
def grant(pool: FakeCognito, issuer: FakeIssuer) -> ClientCredentialsGrant:
    return ClientCredentialsGrant(pool, "us-east-1_pool", issuer)


def test_a_good_request_is_granted_with_the_clients_scopes_and_lifetime(grant, pool, issuer):
    answer = grant.grant(basic("goodclient1", "the-secret"), GOOD_FORM)
    assert answer == TokenGrant("token-for-goodclient1", 900)
    assert issuer.issued == [("goodclient1", ALLOWED, 900)]
    assert pool.calls == [("us-east-1_pool", "goodclient1")]


def test_form_authentication_and_a_narrower_scope_are_granted(grant, issuer):
    form = {**GOOD_FORM, "client_id": "goodclient1", "client_secret": "the-secret", "scope": READ}
    assert grant.grant(None, form).access_token == "token-for-goodclient1"
    assert issuer.issued == [("goodclient1", [READ], 900)]


@pytest.mark.parametrize(
    ("authorization", "form", "code"),
    [
        (basic("goodclient1", "the-secret"), {}, "invalid_request"),
        (basic("goodclient1", "the-secret"), {"grant_type": ""}, "invalid_request"),
        (basic("goodclient1", "the-secret"), {"grant_type": "password"}, "unsupported_grant_type"),
        (basic("goodclient1", "the-secret"), {"grant_type": "authorization_code"}, "unsupported_grant_type"),
        (basic("goodclient1", "wrong"), GOOD_FORM, "invalid_client"),
        (basic("goodclient1", ""), GOOD_FORM, "invalid_client"),
        (basic("goodclient1", "the-secret-and-more"), GOOD_FORM, "invalid_client"),
        (basic("unknown1", "the-secret"), GOOD_FORM, "invalid_client"),
        (basic("nosecret1", ""), GOOD_FORM, "invalid_client"),
        (basic("codeflow1", "the-secret"), GOOD_FORM, "unauthorized_client"),
        (basic("notoauth1", "the-secret"), GOOD_FORM, "unauthorized_client"),
        (basic("readonly1", "the-secret"), {**GOOD_FORM, "scope": WRITE}, "invalid_scope"),
        (basic("goodclient1", "the-secret"), {**GOOD_FORM, "scope": "tenant-api/admin"}, "invalid_scope"),
    ],
    ids=[
        "no-grant-type",
        "empty-grant-type",
        "password",
        "authorization-code",
        "bad-secret",
        "empty-secret",
        "longer-secret",
        "unknown-client",
        "client-without-secret",
        "client-without-the-flow",
        "client-without-oauth",
        "scope-not-allowed",
        "unknown-scope",
    ],
)
def test_refusals_carry_cognitos_codes_and_issue_nothing(grant, issuer, authorization, form, code):
    with refused(code) as raised:
        grant.grant(authorization, form)
    assert raised.value.status == 400
    assert issuer.issued == []


def test_the_grant_type_is_checked_before_the_client_is_looked_up(grant, pool):
    with refused("unsupported_grant_type"):
        grant.grant(basic("goodclient1", "the-secret"), {"grant_type": "password"})
    assert pool.calls == []


@pytest.mark.parametrize("client_id", ["", "a" * 129, "bad/id", "bad id", "id:colon", "x;drop"])
def test_a_client_id_that_cannot_be_cognitos_is_refused_without_a_lookup(grant, pool, client_id):
    with refused("invalid_client"):
        grant.grant(None, {**GOOD_FORM, "client_id": client_id, "client_secret": "the-secret"})
    assert pool.calls == []


@pytest.mark.parametrize(
    "failure",
    [
        ClientError({"Error": {"Code": "TooManyRequestsException", "Message": "slow down"}}, "DescribeUserPoolClient"),
        EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
    ],
    ids=["throttled", "unreachable"],
)
def test_a_user_pool_failure_is_a_500_server_error_not_a_client_error(grant, pool, issuer, failure):
    pool.failure = failure
    with refused("server_error") as raised:
        grant.grant(basic("goodclient1", "the-secret"), GOOD_FORM)
    assert raised.value.status == 500
    assert issuer.issued == []
