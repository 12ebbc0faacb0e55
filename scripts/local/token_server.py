"""A stand-in for Cognito's /oauth2/token (client credentials) and JWKS, for the local stack.

moto implements user pools and app clients but not the token endpoint, so this server checks
each request against the app client as moto holds it (through boto3, as Cognito would against
its own records) and signs Cognito-shaped access tokens with scripts.local.token_issuer.TokenIssuer.
Requests and errors follow Cognito's: a form-encoded POST, client authentication by HTTP
Basic or form fields, and HTTP 400 with an OAuth error code.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from scripts.aws_calls import error_code
from scripts.local.token_issuer import TokenIssuer

logger = logging.getLogger(__name__)

TOKEN_PATH = "/oauth2/token"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
CLIENT_CREDENTIALS = "client_credentials"
MAX_BODY_BYTES = 16 * 1024
# Cognito's app client id pattern; anything else cannot name a client, so it is refused unseen.
CLIENT_ID = re.compile(r"^[\w+]{1,128}$")
SECONDS_PER_UNIT = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
# Cognito's defaults when an app client does not set its access token validity.
DEFAULT_VALIDITY, DEFAULT_UNIT = 60, "minutes"


class OAuthError(Exception):
    """A refused token request, answered as {"error": code} with status."""

    def __init__(self, code: str, status: int = 400):
        super().__init__(code)
        self.code = code
        self.status = status


@dataclass(frozen=True)
class TokenGrant:
    """A successful token response."""

    access_token: str
    expires_in: int

    def to_json(self) -> dict[str, Any]:
        """The body Cognito answers with."""
        return {"access_token": self.access_token, "expires_in": self.expires_in, "token_type": "Bearer"}


def parse_form(content_type: str | None, body: bytes) -> dict[str, str]:
    """The parameters of a form-encoded body; each may appear once (RFC 6749, section 3.2)."""
    media_type = (content_type or "").partition(";")[0].strip().lower()
    if media_type != FORM_CONTENT_TYPE:
        raise OAuthError("invalid_request")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise OAuthError("invalid_request") from None
    if any(len(values) > 1 for values in fields.values()):
        raise OAuthError("invalid_request")
    return {name: values[0] for name, values in fields.items()}


def _basic_credentials(authorization: str) -> tuple[str, str]:
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        raise OAuthError("invalid_client")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError("invalid_client") from None
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise OAuthError("invalid_client")
    return client_id, secret


def client_credentials(authorization: str | None, form: dict[str, str]) -> tuple[str, str]:
    """The client id and secret, from HTTP Basic or from the form (one method only)."""
    if authorization:
        if "client_secret" in form:
            raise OAuthError("invalid_request")
        client_id, secret = _basic_credentials(authorization)
        # Some clients repeat client_id in the form next to Basic; it must then name the same client.
        if form.get("client_id", client_id) != client_id:
            raise OAuthError("invalid_client")
        return client_id, secret
    if not form.get("client_id") or "client_secret" not in form:
        raise OAuthError("invalid_client")
    return form["client_id"], form["client_secret"]


def access_token_lifetime(app_client: dict[str, Any]) -> int:
    """Seconds an access token of app_client lives, from AccessTokenValidity and its unit."""
    validity = app_client.get("AccessTokenValidity")
    if validity is None:
        return DEFAULT_VALIDITY * SECONDS_PER_UNIT[DEFAULT_UNIT]
    # Cognito counts a validity set without a unit in hours.
    unit = (app_client.get("TokenValidityUnits") or {}).get("AccessToken", "hours")
    return int(validity) * SECONDS_PER_UNIT[unit]


def granted_scopes(requested: str | None, allowed: list[str]) -> list[str]:
    """The scopes to grant: those requested if all are allowed, else all allowed ones."""
    if not requested or not requested.strip():
        if not allowed:
            raise OAuthError("invalid_scope")
        return list(allowed)
    wanted = list(dict.fromkeys(requested.split()))
    if any(scope not in allowed for scope in wanted):
        raise OAuthError("invalid_scope")
    return wanted


class ClientCredentialsGrant:
    """Decides token requests against one user pool's app clients and signs the tokens."""

    def __init__(self, cognito: Any, user_pool_id: str, issuer: TokenIssuer):
        self.cognito = cognito
        self.user_pool_id = user_pool_id
        self.issuer = issuer

    def _app_client(self, client_id: str) -> dict[str, Any]:
        if not CLIENT_ID.fullmatch(client_id):
            raise OAuthError("invalid_client")
        try:
            return self.cognito.describe_user_pool_client(UserPoolId=self.user_pool_id, ClientId=client_id)[
                "UserPoolClient"
            ]
        except ClientError as error:
            if error_code(error) == "ResourceNotFoundException":
                raise OAuthError("invalid_client") from None
            logger.error("describe_user_pool_client failed: %s", error_code(error))
            raise OAuthError("server_error", status=500) from None
        except BotoCoreError as error:
            logger.error("the user pool is unreachable: %s", type(error).__name__)
            raise OAuthError("server_error", status=500) from None

    def _authenticate(self, client_id: str, secret: str) -> dict[str, Any]:
        app_client = self._app_client(client_id)
        expected = app_client.get("ClientSecret")
        # A client without a secret cannot use client credentials at all.
        if not expected or not hmac.compare_digest(secret.encode(), expected.encode()):
            raise OAuthError("invalid_client")
        return app_client

    def grant(self, authorization: str | None, form: dict[str, str]) -> TokenGrant:
        """Check one token request and return the token, or raise OAuthError with Cognito's code."""
        grant_type = form.get("grant_type")
        if not grant_type:
            raise OAuthError("invalid_request")
        if grant_type != CLIENT_CREDENTIALS:
            raise OAuthError("unsupported_grant_type")
        app_client = self._authenticate(*client_credentials(authorization, form))
        if not app_client.get("AllowedOAuthFlowsUserPoolClient") or CLIENT_CREDENTIALS not in app_client.get(
            "AllowedOAuthFlows", []
        ):
            raise OAuthError("unauthorized_client")
        scopes = granted_scopes(form.get("scope"), app_client.get("AllowedOAuthScopes", []))
        lifetime = access_token_lifetime(app_client)
        return TokenGrant(self.issuer.issue(app_client["ClientId"], scopes, lifetime), lifetime)


class TokenHTTPServer(ThreadingHTTPServer):
    """The HTTP server, holding what its request handlers share."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], grant: ClientCredentialsGrant | None = None):
        super().__init__(address, TokenRequestHandler)
        self.grant = grant

    @property
    def jwks_path(self) -> str:
        """Where the JWKS is served: {issuer path}/.well-known/jwks.json."""
        assert self.grant is not None
        return urlsplit(self.grant.issuer.jwks_url).path


class TokenRequestHandler(BaseHTTPRequestHandler):
    """Routes POST /oauth2/token and GET {pool}/.well-known/jwks.json; everything else is 404 or 405."""

    server: TokenHTTPServer
    server_version = "local-token-endpoint"
    # A stalled client must not hold a thread for ever.
    timeout = 10

    def _path(self) -> str:
        return urlsplit(self.path).path

    def _send_json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _send_not_allowed(self, allow: str) -> None:
        self._send_json(405, {"error": "invalid_request"}, {"Allow": allow})

    def _read_body(self) -> bytes:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            raise OAuthError("invalid_request") from None
        if not 0 <= length <= MAX_BODY_BYTES:
            raise OAuthError("invalid_request")
        return self.rfile.read(length)

    def do_POST(self) -> None:  # noqa: N802 - the name http.server dispatches to
        """Answer a token request."""
        if self._path() != TOKEN_PATH:
            self._send_json(404, {"error": "not_found"})
            return
        # Responses carry credentials, so nothing on the way may cache them (RFC 6749, section 5.1).
        no_store = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        try:
            form = parse_form(self.headers.get("Content-Type"), self._read_body())
            grant = self.server.grant.grant(self.headers.get("Authorization"), form)
        except OAuthError as error:
            self._send_json(error.status, {"error": error.code}, no_store)
            return
        self._send_json(200, grant.to_json(), no_store)

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        """Serve the JWKS."""
        path = self._path()
        if path == self.server.jwks_path:
            self._send_json(200, self.server.grant.issuer.jwks())
        elif path == TOKEN_PATH:
            self._send_not_allowed("POST")
        else:
            self._send_json(404, {"error": "not_found"})

    do_HEAD = do_GET

    def _refuse_method(self) -> None:
        if self._path() in (TOKEN_PATH, self.server.jwks_path):
            self._send_not_allowed("POST" if self._path() == TOKEN_PATH else "GET, HEAD")
        else:
            self._send_json(404, {"error": "not_found"})

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse_method

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        """Keep the console for the API's own log; token requests go to debug logging."""
        logger.debug("%s - %s", self.address_string(), format % args)


class TokenServer:
    """The token endpoint and JWKS for one user pool, served on a background thread."""

    def __init__(self, cognito: Any, user_pool_id: str, host: str = "127.0.0.1", port: int = 0):
        # Bind first: the issuer URL, and so every token's iss, names the port actually bound.
        self._http = TokenHTTPServer((host, port))
        bound_host, bound_port = self._http.server_address[:2]
        self.issuer = TokenIssuer(f"http://{bound_host}:{bound_port}/{user_pool_id}")
        self._http.grant = ClientCredentialsGrant(cognito, user_pool_id, self.issuer)
        self.token_url = f"http://{bound_host}:{bound_port}{TOKEN_PATH}"
        self._thread = threading.Thread(target=self._http.serve_forever, args=(0.1,), name="token-server", daemon=True)

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return self._http.server_address[1]

    def start(self) -> None:
        """Start answering requests."""
        self._thread.start()

    def stop(self) -> None:
        """Stop answering, close the socket and wait for the serving thread."""
        if self._thread.is_alive():
            self._http.shutdown()
            self._thread.join(timeout=5)
        self._http.server_close()
