"""The API as integration tests call it: chalice.test.Client with real tokens, and its error envelope."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from chalice.test import Client

import app as application
from scripts.local.token_issuer import TokenIssuer
from tests.support.project import PROJECT_DIR
from tests.support.tenants import ACME, ALL_SCOPES, SeedTenant


@dataclass
class Reply:
    """An HTTP response from the test client, with its JSON body decoded."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        """The body, decoded as JSON."""
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
        """Call the API as tenant (with a token for scopes) unless a token is given or tenant is None."""
        all_headers = dict(headers or {})
        if token is None and tenant is not None:
            token = self.token(tenant, scopes)
        if token is not None:
            all_headers.setdefault("Authorization", f"Bearer {token}")
        raw = body.encode() if isinstance(body, str) else body
        response = self.http.request(method, path, headers=all_headers, body=raw)
        return Reply(response.status_code, dict(response.headers), response.body or b"")

    def get(self, path: str, tenant: SeedTenant | None = ACME, **options: Any) -> Reply:
        """GET path as tenant."""
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
        """POST an order of items as tenant, with an Idempotency-Key when one is given."""
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if idempotency_key is not None:
            all_headers["Idempotency-Key"] = idempotency_key
        return self.request(
            "POST", "/orders", tenant, headers=all_headers, body=json.dumps({"items": items}), **options
        )


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
