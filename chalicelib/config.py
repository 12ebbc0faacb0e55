"""Settings read from the environment once, on first use rather than at import."""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass

RATE_LIMITERS = ("usage-plan", "in-app")


class ConfigurationError(RuntimeError):
    """A required setting is missing or malformed; the deployment, not the client, is at fault."""


@dataclass(frozen=True)
class Settings:
    """Everything the application reads from its environment."""

    table_name: str
    issuer: str
    jwks_url: str
    pagination_secret: bytes
    pagination_secret_arn: str
    resource_server: str
    rate_limiter: str
    tenant_cache_seconds: float
    jwks_min_refresh_seconds: float
    jwt_leeway_seconds: float
    region: str
    # The role whose sessions, tagged with one tenant, read and write that tenant's items only.
    # Empty where nothing serves tenant data (the operator scripts); checked where it is used.
    tenant_access_role_arn: str


def _required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"environment variable {name} is not set")
    return value


def _number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"environment variable {name} must be a number") from None
    # "nan" and "inf" parse as floats, but would make every expiry comparison pass or fail.
    if not math.isfinite(value) or value < 0:
        raise ConfigurationError(f"environment variable {name} must be a finite number, not negative")
    return value


def _check_secret(secret: str, source: str) -> str:
    if len(secret) < 32:
        # A short secret would make pagination tokens forgeable by brute force.
        raise ConfigurationError(f"{source} must be at least 32 characters")
    return secret


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the settings, reading the environment on the first call only."""
    issuer = _required("TOKEN_ISSUER").rstrip("/")
    rate_limiter = os.environ.get("RATE_LIMITER", "usage-plan")
    if rate_limiter not in RATE_LIMITERS:
        raise ConfigurationError(f"RATE_LIMITER must be one of {', '.join(RATE_LIMITERS)}")
    secret = os.environ.get("PAGINATION_SECRET", "").strip()
    secret_arn = os.environ.get("PAGINATION_SECRET_ARN", "").strip()
    if not secret and not secret_arn:
        raise ConfigurationError("environment variable PAGINATION_SECRET (or PAGINATION_SECRET_ARN) is not set")
    if secret:
        _check_secret(secret, "PAGINATION_SECRET")
    return Settings(
        table_name=_required("TABLE_NAME"),
        issuer=issuer,
        jwks_url=os.environ.get("JWKS_URL") or f"{issuer}/.well-known/jwks.json",
        pagination_secret=secret.encode(),
        pagination_secret_arn=secret_arn,
        resource_server=os.environ.get("RESOURCE_SERVER_ID", "tenant-api"),
        rate_limiter=rate_limiter,
        tenant_cache_seconds=_number("TENANT_CACHE_SECONDS", 60.0),
        jwks_min_refresh_seconds=_number("JWKS_MIN_REFRESH_SECONDS", 60.0),
        jwt_leeway_seconds=_number("JWT_LEEWAY_SECONDS", 30.0),
        region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        tenant_access_role_arn=os.environ.get("TENANT_ACCESS_ROLE_ARN", "").strip(),
    )


@functools.lru_cache(maxsize=1)
def pagination_secret() -> bytes:
    """The key that signs pagination tokens: PAGINATION_SECRET, or read once from Secrets Manager.

    Deployed stages name a secret (PAGINATION_SECRET_ARN) so that the key is neither in the
    repository nor in the function's configuration; it is fetched on first use, not at import.
    """
    settings = get_settings()
    if settings.pagination_secret:
        return settings.pagination_secret
    from botocore.exceptions import BotoCoreError, ClientError

    from chalicelib.errors import ServiceUnavailable
    from chalicelib.repository import bounded_client

    try:
        client = bounded_client("secretsmanager")
        value = client.get_secret_value(SecretId=settings.pagination_secret_arn)["SecretString"]
    except (BotoCoreError, ClientError) as error:
        # Not cached (lru_cache keeps only results): the next request tries again.
        raise ServiceUnavailable() from error
    return _check_secret(value.strip(), "the pagination secret").encode()
