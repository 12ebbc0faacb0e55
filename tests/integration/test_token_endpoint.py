"""The token endpoint over HTTP on 127.0.0.1 against moto's Cognito: Cognito's answers, and tokens the API accepts."""

from __future__ import annotations

import base64
import http.client
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Iterator
from urllib.parse import urlencode, urlsplit

import boto3
import jwt
import pytest
from moto import mock_aws

from chalicelib.config import get_settings
from chalicelib.web.auth import JwksCache, TokenRejected, verify_access_token
from scripts.local.token_issuer import TokenIssuer
from scripts.local.token_server import TokenServer
from tests.support.api import Reply
from tests.support.settings import Environment
from tests.support.tenants import ALL_SCOPES, RESOURCE_SERVER

FORM = "application/x-www-form-urlencoded"
READ = f"{RESOURCE_SERVER}/catalog.read"
NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}


@dataclass(frozen=True)
class Client:
    """An app client's id and secret (empty for a client without one)."""

    client_id: str
    secret: str = ""


class Endpoint:
    """The token server on 127.0.0.1 over a moto user pool holding a few app clients."""

    def __init__(self) -> None:
        # Explicit credentials: the module's pool outlives each test's environment.
        self.cognito = boto3.client(
            "cognito-idp", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        self.pool_id = self.cognito.create_user_pool(PoolName="tokens")["UserPool"]["Id"]
        self.cognito.create_resource_server(
            UserPoolId=self.pool_id,
            Identifier=RESOURCE_SERVER,
            Name=RESOURCE_SERVER,
            Scopes=[{"ScopeName": scope.split("/")[1], "ScopeDescription": scope} for scope in ALL_SCOPES],
        )
        self.good = self.app_client("good", AccessTokenValidity=60, TokenValidityUnits={"AccessToken": "minutes"})
        self.read_only = self.app_client("read-only", AllowedOAuthScopes=[READ])
        self.hours = self.app_client("hours", AccessTokenValidity=2)
        self.code_flow = self.app_client(
            "code-flow", AllowedOAuthFlows=["code"], CallbackURLs=["https://example.com/callback"]
        )
        self.no_secret = self.app_client("no-secret", GenerateSecret=False)
        self.server = TokenServer(self.cognito, self.pool_id)

    def app_client(self, name: str, **settings: Any) -> Client:
        arguments: dict[str, Any] = {
            "GenerateSecret": True,
            "AllowedOAuthFlows": ["client_credentials"],
            "AllowedOAuthFlowsUserPoolClient": True,
            "AllowedOAuthScopes": ALL_SCOPES,
            **settings,
        }
        created = self.cognito.create_user_pool_client(UserPoolId=self.pool_id, ClientName=name, **arguments)
        client = created["UserPoolClient"]
        return Client(client["ClientId"], client.get("ClientSecret", ""))

    @property
    def issuer(self) -> str:
        return self.server.issuer.issuer

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Reply:
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=5)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            connection.close()

    def token(
        self,
        form: dict[str, str] | None = None,
        client: Client | None = None,
        content_type: str | None = FORM,
        extra_headers: dict[str, str] | None = None,
    ) -> Reply:
        """POST /oauth2/token with form (grant_type=client_credentials by default), Basic auth as client."""
        headers = dict(extra_headers or {})
        if content_type is not None:
            headers["Content-Type"] = content_type
        if client is not None:
            headers["Authorization"] = basic(client.client_id, client.secret)
        body = urlencode({"grant_type": "client_credentials"} if form is None else form).encode()
        return self.request("POST", "/oauth2/token", body, headers)


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


@pytest.fixture(scope="module")
def endpoint() -> Iterator[Endpoint]:
    """One user pool and token server for the module: Cognito calls and RSA keys are slow to make."""
    with mock_aws():
        endpoint = Endpoint()
        endpoint.server.start()
        yield endpoint
        endpoint.server.stop()


def assert_refused(answer: Reply, code: str, status: int = 400) -> None:
    assert (answer.status, answer.json) == (status, {"error": code}), answer.body
    assert answer.headers["content-type"].startswith("application/json")
    assert {name: answer.headers.get(name) for name in NO_STORE} == NO_STORE


# --- refusals, exactly as Cognito answers them ------------------------------------------------


def test_a_wrong_secret_is_invalid_client(endpoint: Endpoint):
    assert_refused(endpoint.token(client=Client(endpoint.good.client_id, "not-the-secret")), "invalid_client")
    # Another client's secret is as wrong as any other.
    assert_refused(endpoint.token(client=Client(endpoint.good.client_id, endpoint.hours.secret)), "invalid_client")


def test_an_unknown_client_is_invalid_client(endpoint: Endpoint):
    assert_refused(endpoint.token(client=Client("unknownclient0000000000000", "secret")), "invalid_client")
    form = {"grant_type": "client_credentials", "client_id": "unknownclient0000000000000", "client_secret": "secret"}
    assert_refused(endpoint.token(form), "invalid_client")


def test_no_client_authentication_at_all_is_invalid_client(endpoint: Endpoint):
    assert_refused(endpoint.token(), "invalid_client")


def test_a_client_without_a_secret_cannot_use_client_credentials(endpoint: Endpoint):
    assert_refused(endpoint.token(client=endpoint.no_secret), "invalid_client")


def test_a_missing_grant_type_is_invalid_request(endpoint: Endpoint):
    assert_refused(endpoint.token({"scope": READ}, client=endpoint.good), "invalid_request")


@pytest.mark.parametrize("grant_type", ["password", "authorization_code", "refresh_token"])
def test_another_grant_type_is_unsupported_grant_type(endpoint: Endpoint, grant_type: str):
    assert_refused(endpoint.token({"grant_type": grant_type}, client=endpoint.good), "unsupported_grant_type")


def test_a_client_not_allowed_client_credentials_is_unauthorized_client(endpoint: Endpoint):
    assert_refused(endpoint.token(client=endpoint.code_flow), "unauthorized_client")


@pytest.mark.parametrize("scope", [f"{RESOURCE_SERVER}/orders.write", f"{READ} {RESOURCE_SERVER}/admin", "openid"])
def test_a_scope_the_client_may_not_have_is_invalid_scope(endpoint: Endpoint, scope: str):
    form = {"grant_type": "client_credentials", "scope": scope}
    assert_refused(endpoint.token(form, client=endpoint.read_only), "invalid_scope")


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", None])
def test_a_body_that_is_not_a_form_is_invalid_request(endpoint: Endpoint, content_type: str | None):
    answer = endpoint.token(client=endpoint.good, content_type=content_type)
    assert_refused(answer, "invalid_request")
    as_json = endpoint.request(
        "POST",
        "/oauth2/token",
        json.dumps({"grant_type": "client_credentials"}).encode(),
        {"Content-Type": "application/json", "Authorization": basic(endpoint.good.client_id, endpoint.good.secret)},
    )
    assert_refused(as_json, "invalid_request")


def test_a_body_over_16_kib_is_refused_unread(endpoint: Endpoint):
    # Only the declared length is sent: the server must answer without reading a byte of the body.
    headers = {"Content-Type": FORM, "Content-Length": str(16 * 1024 + 1)}
    assert_refused(endpoint.request("POST", "/oauth2/token", None, headers), "invalid_request")
    not_a_length = {"Content-Type": FORM, "Content-Length": "x"}
    assert_refused(endpoint.request("POST", "/oauth2/token", None, not_a_length), "invalid_request")


def test_a_parameter_given_twice_is_invalid_request(endpoint: Endpoint):
    answer = endpoint.request(
        "POST",
        "/oauth2/token",
        b"grant_type=client_credentials&grant_type=client_credentials",
        {"Content-Type": FORM, "Authorization": basic(endpoint.good.client_id, endpoint.good.secret)},
    )
    assert_refused(answer, "invalid_request")


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_the_token_path_only_accepts_post(endpoint: Endpoint, method: str):
    answer = endpoint.request(method, "/oauth2/token")
    assert answer.status == 405
    assert answer.headers["allow"] == "POST"
    assert answer.json == {"error": "invalid_request"}


def test_the_jwks_path_only_accepts_get_and_head_and_other_paths_are_404(endpoint: Endpoint):
    jwks_path = urlsplit(endpoint.server.issuer.jwks_url).path
    put = endpoint.request("PUT", jwks_path)
    assert (put.status, put.headers["allow"]) == (405, "GET, HEAD")
    head = endpoint.request("HEAD", jwks_path)
    assert (head.status, head.body) == (200, b"")
    for method, path in [("GET", "/"), ("GET", "/other/.well-known/jwks.json"), ("POST", "/oauth2/authorize")]:
        answer = endpoint.request(method, path, b"" if method == "POST" else None, {"Content-Type": FORM})
        assert (answer.status, answer.json) == (404, {"error": "not_found"}), (method, path)


def test_the_endpoint_reads_the_user_pool_on_every_request(endpoint: Endpoint):
    doomed = endpoint.app_client("doomed")
    assert endpoint.token(client=doomed).status == 200
    endpoint.cognito.delete_user_pool_client(UserPoolId=endpoint.pool_id, ClientId=doomed.client_id)
    assert_refused(endpoint.token(client=doomed), "invalid_client")


# --- tokens -----------------------------------------------------------------------------------


def test_a_good_request_gets_a_bearer_token_for_the_clients_lifetime(endpoint: Endpoint):
    answer = endpoint.token(client=endpoint.good)
    assert answer.status == 200, answer.body
    body = answer.json
    assert set(body) == {"access_token", "expires_in", "token_type"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert answer.headers["content-type"].startswith("application/json")
    assert {name: answer.headers.get(name) for name in NO_STORE} == NO_STORE


def test_form_field_authentication_works_as_well_as_basic(endpoint: Endpoint):
    form = {
        "grant_type": "client_credentials",
        "client_id": endpoint.good.client_id,
        "client_secret": endpoint.good.secret,
    }
    answer = endpoint.token(form)
    assert answer.status == 200, answer.body
    assert jwt.decode(answer.json["access_token"], options={"verify_signature": False})["client_id"] == (
        endpoint.good.client_id
    )


def test_the_token_verifies_against_the_served_jwks_and_has_cognitos_claims(endpoint: Endpoint, env: Environment):
    before = int(time.time())
    answer = endpoint.token(client=endpoint.good)
    token = answer.json["access_token"]

    assert urlsplit(endpoint.issuer).path == f"/{endpoint.pool_id}"
    env.set(TOKEN_ISSUER=endpoint.issuer)
    settings = get_settings()
    assert settings.jwks_url == f"{endpoint.issuer}/.well-known/jwks.json"
    verified = verify_access_token(token, settings, JwksCache(settings.jwks_url))
    assert verified.client_id == endpoint.good.client_id
    assert verified.scopes == " ".join(ALL_SCOPES)

    claims = verified.claims
    assert claims["iss"] == endpoint.issuer
    assert claims["client_id"] == endpoint.good.client_id
    assert claims["token_use"] == "access"
    assert claims["scope"] == " ".join(ALL_SCOPES)
    assert "aud" not in claims
    assert before <= claims["iat"] <= int(time.time())
    assert claims["exp"] - claims["iat"] == answer.json["expires_in"] == 3600
    uuid.UUID(claims["jti"])

    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    jwks = endpoint.request("GET", urlsplit(settings.jwks_url).path)
    assert jwks.status == 200
    assert [key["kid"] for key in jwks.json["keys"]] == [header["kid"]]
    assert {key["kty"] for key in jwks.json["keys"]} == {"RSA"}


def test_each_token_has_its_own_jti(endpoint: Endpoint):
    tokens = [endpoint.token(client=endpoint.good).json["access_token"] for _ in range(2)]
    jtis = {jwt.decode(token, options={"verify_signature": False})["jti"] for token in tokens}
    assert len(jtis) == 2


def test_a_token_signed_with_another_key_under_the_same_kid_does_not_verify(endpoint: Endpoint, env: Environment):
    impostor = TokenIssuer(endpoint.issuer, key_id=endpoint.server.issuer.key_id)
    forged = impostor.issue(endpoint.good.client_id, ALL_SCOPES)
    env.set(TOKEN_ISSUER=endpoint.issuer)
    settings = get_settings()
    with pytest.raises(TokenRejected, match="bad signature"):
        verify_access_token(forged, settings, JwksCache(settings.jwks_url))


def test_a_requested_scope_narrows_the_token(endpoint: Endpoint):
    answer = endpoint.token({"grant_type": "client_credentials", "scope": READ}, client=endpoint.good)
    assert answer.status == 200, answer.body
    assert jwt.decode(answer.json["access_token"], options={"verify_signature": False})["scope"] == READ


def test_a_read_only_client_gets_only_its_scope_by_default(endpoint: Endpoint):
    answer = endpoint.token(client=endpoint.read_only)
    assert answer.status == 200, answer.body
    assert jwt.decode(answer.json["access_token"], options={"verify_signature": False})["scope"] == READ


def test_a_validity_without_a_unit_counts_in_hours(endpoint: Endpoint):
    answer = endpoint.token(client=endpoint.hours)
    assert answer.json["expires_in"] == 7200
    claims = jwt.decode(answer.json["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 7200


def test_stopping_the_server_closes_its_port(endpoint: Endpoint):
    server = TokenServer(endpoint.cognito, endpoint.pool_id)
    server.start()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request("GET", "/oauth2/token")
    assert connection.getresponse().status == 405
    connection.close()
    server.stop()
    with pytest.raises(ConnectionRefusedError):
        http.client.HTTPConnection("127.0.0.1", server.port, timeout=5).request("GET", "/oauth2/token")
