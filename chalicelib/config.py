"""Settings read from the environment once, on first use rather than at import.

The bottom of the package: it imports nothing of the project, so that every layer may read it.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, field
from typing import Sequence

RATE_LIMITERS = ("usage-plan", "in-app")
# The Cognito resource server whose scopes the API checks, unless RESOURCE_SERVER_ID names another.
DEFAULT_RESOURCE_SERVER = "tenant-api"
# A setting that another can stand in for, as a missing one is named in the log.
ALTERNATIVES = {"PAGINATION_SECRET": "PAGINATION_SECRET (or PAGINATION_SECRET_ARN)"}
# What a developer running plain `chalice local` needs: the local stack's settings in the shell that starts it.
LOCAL_STACK_HINT = (
    "For chalice local: run `make run` in another terminal, then "
    '`eval "$(.venv/bin/python -m scripts.local.env --server)"` in this one and start '
    "`chalice local --stage local` (the default stage, dev, holds the deployed stage's settings)."
)


class SettingsError(Exception):
    """Required settings are missing or malformed: the deployment is at fault, not any request.

    The web edge answers it as a 503 (chalicelib.errors.ConfigurationError) and logs which
    settings are at fault; this module only says what is wrong.
    """

    def __init__(self, detail: str, settings: Sequence[str] = ()):
        super().__init__(detail)
        self.detail = detail
        # The names of the settings at fault, for log queries.
        self.settings = tuple(settings)


def in_aws_lambda() -> bool:
    """Whether this process is a Lambda function (Lambda always sets AWS_LAMBDA_FUNCTION_NAME)."""
    return "AWS_LAMBDA_FUNCTION_NAME" in os.environ


def served_by_chalice_local() -> bool:
    """Whether the Chalice CLI serves this process (chalice local), rather than Lambda or a test client."""
    return bool(os.environ.get("AWS_CHALICE_CLI_MODE")) and not in_aws_lambda()


def local_stack_hint() -> str:
    """How to give chalice local what it lacks, under chalice local only; empty elsewhere."""
    return f" {LOCAL_STACK_HINT}" if served_by_chalice_local() else ""


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
    # The stage's OAuth token endpoint, published in the OpenAPI document; set on deployed stages
    # (a Cognito issuer's host is not its user pool's domain), worked out from the issuer locally.
    token_url: str


@dataclass
class _EnvironmentReader:
    """Reads settings, collecting every missing or malformed one so that one error names them all."""

    missing: list[str] = field(default_factory=list)
    # (setting, what is wrong with it)
    malformed: list[tuple[str, str]] = field(default_factory=list)

    def optional(self, name: str) -> str:
        return os.environ.get(name, "").strip()

    def required(self, name: str) -> str:
        value = self.optional(name)
        if not value:
            self.missing.append(name)
        return value

    def number(self, name: str, default: float) -> float:
        raw = os.environ.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = float(raw)
        except ValueError:
            self.malformed.append((name, f"{name} must be a number"))
            return default
        # "nan" and "inf" parse as floats, but would make every expiry comparison pass or fail.
        if not math.isfinite(value) or value < 0:
            self.malformed.append((name, f"{name} must be a finite number, not negative"))
            return default
        return value

    def check(self) -> None:
        """Raise one SettingsError naming every problem found, if there is any."""
        if not self.missing and not self.malformed:
            return
        # Named too, though read only where tenant data is served: one line should list all that is missing.
        if not self.optional("TENANT_ACCESS_ROLE_ARN"):
            self.missing.append("TENANT_ACCESS_ROLE_ARN")
        named = [ALTERNATIVES.get(name, name) for name in self.missing]
        problems = [f"not set: {', '.join(named)}"] if self.missing else []
        problems += [problem for _, problem in self.malformed]
        raise SettingsError("; ".join(problems), [*self.missing, *(name for name, _ in self.malformed)])


def secret_long_enough(secret: str) -> bool:
    """Whether a signing secret is long enough to use."""
    # A short secret would make pagination tokens forgeable by brute force.
    return len(secret) >= 32


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the settings, reading the environment on the first call only.

    SettingsError names every required setting that is missing or malformed.
    """
    read = _EnvironmentReader()
    table_name = read.required("TABLE_NAME")
    issuer = read.required("TOKEN_ISSUER").rstrip("/")
    explicit_jwks_url = read.optional("JWKS_URL")
    for name, url in (("TOKEN_ISSUER", issuer), ("JWKS_URL", explicit_jwks_url)):
        if url and not url.startswith(("https://", "http://")):
            read.malformed.append((name, f"{name} must be an http(s) URL"))
    rate_limiter = os.environ.get("RATE_LIMITER", "usage-plan")
    if rate_limiter not in RATE_LIMITERS:
        read.malformed.append(("RATE_LIMITER", f"RATE_LIMITER must be one of {', '.join(RATE_LIMITERS)}"))
    secret = read.optional("PAGINATION_SECRET")
    secret_arn = read.optional("PAGINATION_SECRET_ARN")
    if not secret and not secret_arn:
        read.missing.append("PAGINATION_SECRET")
    elif secret and not secret_long_enough(secret):
        read.malformed.append(("PAGINATION_SECRET", "PAGINATION_SECRET must be at least 32 characters"))
    settings = Settings(
        table_name=table_name,
        issuer=issuer,
        jwks_url=explicit_jwks_url or f"{issuer}/.well-known/jwks.json",
        pagination_secret=secret.encode(),
        pagination_secret_arn=secret_arn,
        resource_server=os.environ.get("RESOURCE_SERVER_ID", DEFAULT_RESOURCE_SERVER),
        rate_limiter=rate_limiter,
        tenant_cache_seconds=read.number("TENANT_CACHE_SECONDS", 60.0),
        jwks_min_refresh_seconds=read.number("JWKS_MIN_REFRESH_SECONDS", 60.0),
        jwt_leeway_seconds=read.number("JWT_LEEWAY_SECONDS", 30.0),
        region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        tenant_access_role_arn=read.optional("TENANT_ACCESS_ROLE_ARN"),
        token_url=read.optional("TOKEN_URL"),
    )
    read.check()
    return settings
