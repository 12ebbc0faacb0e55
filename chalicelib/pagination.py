"""Opaque pagination tokens, signed and bound to one tenant and one list, and the key that signs them."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import time

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.config import SettingsError, get_settings, secret_long_enough
from chalicelib.errors import InvalidPaginationToken, ServiceUnavailable
from chalicelib.store.dynamodb import bounded_client

TOKEN_LIFETIME_SECONDS = 24 * 3600


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: bytes, tenant_id: str, list_name: str, payload: bytes) -> bytes:
    # The tenant and list are signed but not stored: a token only verifies for the tenant
    # and list it was issued to, so it cannot be replayed elsewhere.
    message = b"\x00".join((b"v1", tenant_id.encode(), list_name.encode(), payload))
    return hmac.new(secret, message, hashlib.sha256).digest()


def encode_token(secret: bytes, tenant_id: str, list_name: str, sort_key: str, now: float | None = None) -> str:
    """A token that resumes list_name after sort_key, valid only for tenant_id."""
    issued = int(time.time() if now is None else now)
    payload = json.dumps({"k": sort_key, "t": issued}, separators=(",", ":")).encode()
    return f"{_b64encode(payload)}.{_b64encode(_signature(secret, tenant_id, list_name, payload))}"


def decode_token(
    secret: bytes, tenant_id: str, list_name: str, token: str, expected_prefix: str, now: float | None = None
) -> str:
    """The sort key to resume after, or InvalidPaginationToken if the token is not ours to use."""
    try:
        payload_part, signature_part = token.split(".")
        payload = _b64decode(payload_part)
        signature = _b64decode(signature_part)
    except (ValueError, binascii.Error):
        raise InvalidPaginationToken() from None
    if not hmac.compare_digest(signature, _signature(secret, tenant_id, list_name, payload)):
        raise InvalidPaginationToken()
    try:
        document = json.loads(payload)
        sort_key, issued = document["k"], document["t"]
    except (ValueError, KeyError, TypeError):
        raise InvalidPaginationToken() from None
    current = time.time() if now is None else now
    if not isinstance(issued, int) or not issued - 60 <= current <= issued + TOKEN_LIFETIME_SECONDS:
        raise InvalidPaginationToken("The pagination token has expired; start the list again.")
    if not isinstance(sort_key, str) or not sort_key.startswith(expected_prefix):
        raise InvalidPaginationToken()
    return sort_key


@functools.lru_cache(maxsize=1)
def pagination_secret() -> bytes:
    """The key that signs pagination tokens: PAGINATION_SECRET, or read once from Secrets Manager.

    Deployed stages name a secret (PAGINATION_SECRET_ARN) so that the key is neither in the
    repository nor in the function's configuration; it is fetched on first use, not at import.
    """
    settings = get_settings()
    if settings.pagination_secret:
        return settings.pagination_secret
    try:
        client = bounded_client("secretsmanager")
        value = str(client.get_secret_value(SecretId=settings.pagination_secret_arn)["SecretString"])
    except (BotoCoreError, ClientError) as error:
        # Not cached (lru_cache keeps only results): the next request tries again.
        raise ServiceUnavailable() from error
    value = value.strip()
    if not secret_long_enough(value):
        raise SettingsError(
            f"the pagination secret {settings.pagination_secret_arn} must be at least 32 characters",
            ["PAGINATION_SECRET_ARN"],
        )
    return value.encode()
