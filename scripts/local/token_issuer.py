"""An RS256 signer that issues access tokens shaped like Amazon Cognito's client-credentials tokens."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa


class TokenIssuer:
    """Holds a signing key pair and issues Cognito-shaped access tokens under one issuer URL."""

    def __init__(self, issuer: str, key_id: str | None = None):
        self.issuer = issuer.rstrip("/")
        self.key_id = key_id or uuid.uuid4().hex
        self._private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    @property
    def jwks_url(self) -> str:
        """Where Cognito publishes the keys for this issuer."""
        return f"{self.issuer}/.well-known/jwks.json"

    def jwks(self) -> dict[str, Any]:
        """The public key set, as served at jwks_url."""
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self._private_key.public_key(), as_dict=True)
        return {"keys": [{**jwk, "kid": self.key_id, "alg": "RS256", "use": "sig"}]}

    def claims(
        self, client_id: str, scopes: list[str], lifetime_seconds: int = 3600, now: float | None = None
    ) -> dict[str, Any]:
        """The claims Cognito puts in a client-credentials access token."""
        issued = int(time.time() if now is None else now)
        return {
            "sub": client_id,
            "token_use": "access",
            "scope": " ".join(scopes),
            "auth_time": issued,
            "iss": self.issuer,
            "exp": issued + lifetime_seconds,
            "iat": issued,
            "version": 2,
            "jti": str(uuid.uuid4()),
            "client_id": client_id,
        }

    def sign(self, claims: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
        """Sign arbitrary claims with this issuer's key (tests use it to forge variations)."""
        return jwt.encode(claims, self._private_key, algorithm="RS256", headers={"kid": self.key_id, **(headers or {})})

    def issue(self, client_id: str, scopes: list[str], lifetime_seconds: int = 3600) -> str:
        """A signed access token for client_id with the given scopes."""
        return self.sign(self.claims(client_id, scopes, lifetime_seconds))
