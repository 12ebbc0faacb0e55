"""The authorizer: verify a Cognito access token and map its client to an active tenant."""

from __future__ import annotations

import functools
import json
import threading
import time
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable

from chalice.app import ChaliceAuthorizer

from chalicelib import deadline
from chalicelib.config import Settings, SettingsError, get_settings, local_stack_hint
from chalicelib.errors import DeadlineExceeded, ServiceUnavailable
from chalicelib.store import keys
from chalicelib.store.registry import TenantRecord, TenantRegistry
from chalicelib.telemetry import tracing
from chalicelib.telemetry.logs import logger, report_misconfiguration, security_event
from chalicelib.tenancy import authorizer_context
from chalicelib.tiers import TIERS
from chalicelib.web import gateway
from chalicelib.web.middleware import misconfigured

ALGORITHM = "RS256"
MAX_TOKEN_LENGTH = 8192
MAX_JWKS_BYTES = 256 * 1024
REQUIRED_CLAIMS = ["exp", "iat", "iss", "token_use", "client_id"]
JWKS_TIMEOUT_SECONDS = 3.0


class TokenRejected(Exception):
    """The token is not acceptable; the reason is for logs only, never for the client."""


class JwksUnavailable(Exception):
    """The issuer's keys could not be fetched and none are known: no token can be judged; the message says why."""


@dataclass(frozen=True)
class VerifiedToken:
    """The claims of an access token whose signature and validity were checked."""

    client_id: str
    scopes: str
    claims: dict[str, Any]


def fetch_jwks(url: str) -> dict[str, Any]:
    """Download a JWKS document (bounded in size, and in time by the invocation's deadline)."""
    if not url.startswith(("https://", "http://")):
        raise TokenRejected("JWKS URL must be http(s)")
    # The timeout bounds each wait (connecting, then each read): half of what is left lets the
    # connection and the answer both fit.
    timeout = deadline.io_timeout(JWKS_TIMEOUT_SECONDS, waits=2)
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - scheme checked above
        document: dict[str, Any] = json.loads(response.read(MAX_JWKS_BYTES))
        return document


class JwksCache:
    """The issuer's signing keys, fetched once and refetched for an unknown kid at most once a minute.

    Known keys are also refetched once they are an hour old, so a key the issuer withdrew stops
    being trusted; a failed refetch keeps the keys already known.
    """

    # While no key has ever been fetched, retry sooner: every token is refused until one is.
    RETRY_WITHOUT_KEYS_SECONDS = 5.0
    MAX_AGE_SECONDS = 3600.0

    def __init__(
        self,
        url: str,
        min_refresh_seconds: float = 60.0,
        fetch: Callable[[str], dict[str, Any]] = fetch_jwks,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._url = url
        self._min_refresh = min_refresh_seconds
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, Any] | None = None
        self._fetched_at = float("-inf")
        self._loaded_at = float("-inf")
        # Why the last fetch failed, for the log line of the requests it leaves without keys.
        self._failure = "not fetched yet"

    def signing_key(self, kid: str) -> Any:
        """The RSA public key for kid; TokenRejected if the issuer does not publish it."""
        # Another thread may be fetching (chalice local serves requests on threads): wait no longer
        # than this invocation's deadline allows.
        current = deadline.current()
        if not self._lock.acquire(timeout=current.remaining() if current is not None else -1):
            raise JwksUnavailable(f"another request's fetch of the issuer's keys from {self._url} did not end in time")
        try:
            now = self._clock()
            if self._keys is None:
                due = now - self._fetched_at >= min(self._min_refresh, self.RETRY_WITHOUT_KEYS_SECONDS)
            elif kid not in self._keys:
                due = now - self._fetched_at >= self._min_refresh
            else:
                due = now - self._loaded_at >= self.MAX_AGE_SECONDS and now - self._fetched_at >= self._min_refresh
            if due:
                self._refresh()
            if self._keys is None:
                raise JwksUnavailable(f"the issuer's keys could not be fetched from {self._url} ({self._failure})")
            key = self._keys.get(kid)
        finally:
            self._lock.release()
        if key is None:
            raise TokenRejected("unknown kid")
        return key

    def _refresh(self) -> None:
        import jwt

        # A fetch this invocation has no time for is not an attempt (DeadlineExceeded, 503): the
        # next request may try at once.
        deadline.io_timeout(JWKS_TIMEOUT_SECONDS, waits=2)
        # Record the attempt first so that a failing issuer is not hammered by every request.
        self._fetched_at = self._clock()
        try:
            document = self._fetch(self._url)
            jwk_set = jwt.PyJWKSet.from_dict(document)
        except Exception as error:  # noqa: BLE001 - any failure leaves the previous keys in place
            self._failure = f"{type(error).__name__}: {error}"
            if self._keys is not None:
                # Without known keys the request's 503 says it; with them, nobody else would.
                logger.warning(
                    "could not refresh the JWKS from %s, keeping the known keys: %s", self._url, self._failure
                )
            return
        self._keys = {
            jwk.key_id: jwk.key
            for jwk in jwk_set.keys
            if jwk.key_id and jwk.key_type == "RSA" and jwk.public_key_use in (None, "sig")
        }
        self._loaded_at = self._fetched_at


def bearer_token(header_value: str | None) -> str:
    """The token from an "Authorization: Bearer ..." header value."""
    scheme, _, token = (header_value or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token or len(token) > MAX_TOKEN_LENGTH:
        raise TokenRejected("malformed authorization header")
    return token


def verify_access_token(token: str, settings: Settings, jwks: JwksCache) -> VerifiedToken:
    """Check an RS256 Cognito access token's signature, issuer, lifetime and use."""
    import jwt

    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise TokenRejected("malformed token") from None
    if header.get("alg") != ALGORITHM:
        raise TokenRejected("algorithm not allowed")
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise TokenRejected("no kid")
    try:
        claims = jwt.decode(
            token,
            key=jwks.signing_key(kid),
            algorithms=[ALGORITHM],
            issuer=settings.issuer,
            leeway=settings.jwt_leeway_seconds,
            options={"require": REQUIRED_CLAIMS, "verify_aud": False},
        )
    except jwt.ExpiredSignatureError:
        raise TokenRejected("expired") from None
    except jwt.ImmatureSignatureError:
        raise TokenRejected("not yet valid") from None
    except jwt.InvalidIssuerError:
        raise TokenRejected("wrong issuer") from None
    except jwt.InvalidSignatureError:
        raise TokenRejected("bad signature") from None
    except jwt.PyJWTError as error:
        raise TokenRejected(f"invalid token ({type(error).__name__})") from None
    if claims.get("token_use") != "access":
        raise TokenRejected("not an access token")
    client_id = claims.get("client_id")
    if not isinstance(client_id, str) or not keys.CLIENT_ID.fullmatch(client_id):
        raise TokenRejected("bad client_id")
    scopes = claims.get("scope", "")
    return VerifiedToken(client_id=client_id, scopes=scopes if isinstance(scopes, str) else "", claims=claims)


class TenantCache:
    """Registry lookups by client id, kept for a short time so most requests read nothing."""

    def __init__(self, registry: TenantRegistry, ttl_seconds: float, clock: Callable[[], float] = time.monotonic):
        self._registry = registry
        self._ttl = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, TenantRecord | None]] = {}

    def find(self, client_id: str) -> TenantRecord | None:
        """The tenant of client_id, from cache if looked up less than ttl_seconds ago."""
        now = self._clock()
        with self._lock:
            cached = self._entries.get(client_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        record = self._registry.find_by_client_id(client_id)
        with self._lock:
            self._entries[client_id] = (now + self._ttl, record)
        return record


class TenantAuthorizer:
    """Turns an Authorization header into an API Gateway authorizer answer, failing closed."""

    def __init__(self, settings: Settings, jwks: JwksCache, tenants: TenantCache):
        self.settings = settings
        self.jwks = jwks
        self.tenants = tenants

    def __call__(self, authorization: str | None, method_arn: str) -> dict[str, Any]:
        """Allow every route for an active tenant's valid token; otherwise raise or deny."""
        with tracing.span("authorizer") as span:
            try:
                token = verify_access_token(bearer_token(authorization), self.settings, self.jwks)
                tenant = self.tenants.find(token.client_id)
                if tenant is None:
                    raise TokenRejected("unknown client")
                if tenant.tier not in TIERS:
                    raise TokenRejected("tenant has an unknown tier")
            except TokenRejected as rejection:
                span.annotate(outcome="refused", security_event=str(rejection))
                security_event(str(rejection))
                raise gateway.unauthorized() from None
            except Exception as error:  # noqa: BLE001 - fail closed on anything else too
                # Not a judgement on the token (a dependency, the configuration or the code failed):
                # closed, but 503 rather than 401, which would send the client after new tokens.
                span.record_exception(error)
                span.annotate(outcome="failed")
                report_undecided(error)
                raise gateway.authorizer_failure() from None
            span.annotate(tenant_id=tenant.tenant_id, tier=tenant.tier)
            if not tenant.active:
                span.annotate(outcome="denied", security_event="tenant suspended")
                security_event("tenant suspended", tenant_id=tenant.tenant_id, tier=tenant.tier)
                return gateway.forbidden(method_arn, tenant.tenant_id)
            span.annotate(outcome="allowed")
            return self._allow(tenant, token, method_arn)

    @staticmethod
    def _allow(tenant: TenantRecord, token: VerifiedToken, method_arn: str) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "principalId": tenant.tenant_id,
            "policyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": [gateway.api_wide_arn(method_arn)]}
                ],
            },
            "context": authorizer_context(tenant.tenant_id, tenant.tier, token.scopes),
        }
        if tenant.api_key_value:
            # With apiKeySource=AUTHORIZER this selects the tenant's own usage-plan bucket.
            answer["usageIdentifierKey"] = tenant.api_key_value
        return answer


@functools.lru_cache(maxsize=1)
def get_authorizer() -> TenantAuthorizer:
    """The process's authorizer, built on first use so its caches live as long as the process."""
    settings = get_settings()
    return TenantAuthorizer(
        settings,
        JwksCache(settings.jwks_url, settings.jwks_min_refresh_seconds),
        TenantCache(TenantRegistry(), settings.tenant_cache_seconds),
    )


UNDECIDED = "authorizer could not decide, answering 503"


def report_undecided(error: Exception) -> None:
    """Log, in one line, why the authorizer could not judge a token (it answers 503)."""
    if isinstance(error, SettingsError):
        report_misconfiguration(misconfigured(error), UNDECIDED)
    elif isinstance(error, DeadlineExceeded):
        logger.error(f"{UNDECIDED}: its time budget ran out")
    elif isinstance(error, JwksUnavailable):
        logger.error(f"{UNDECIDED}: {error}.{local_stack_hint()}")
    elif isinstance(error, ServiceUnavailable):
        cause = error.__cause__
        reason = f" ({type(cause).__name__}: {cause})" if cause is not None else ""
        logger.error(f"{UNDECIDED}: the tenant registry could not be read{reason}.{local_stack_hint()}")
    else:
        logger.exception(f"{UNDECIDED}: an unexpected error")


def authorize(authorization: str | None, method_arn: str) -> dict[str, Any]:
    """The authorizer answer for one request (the entry point app.py's authorizer calls)."""
    try:
        authorizer = get_authorizer()
    except SettingsError as error:
        # A misconfigured deployment refuses every token, with 503: the tokens are not at fault.
        report_undecided(error)
        raise gateway.authorizer_failure() from None
    answer = authorizer(authorization, method_arn)
    problem = answer_problem(answer)
    if problem is not None:
        # API Gateway would answer a malformed answer with AUTHORIZER_CONFIGURATION_ERROR (503);
        # saying so here makes the local gateway answer alike and names the fault in the log.
        logger.error("authorizer answer is malformed: %s", problem)
        raise gateway.authorizer_failure()
    return answer


ANSWER_FIELDS = {"principalId", "policyDocument", "context", "usageIdentifierKey"}


def answer_problem(answer: Any) -> str | None:
    """What makes answer something API Gateway cannot use as a Lambda authorizer's output, or None."""
    if not isinstance(answer, dict) or not set(answer) <= ANSWER_FIELDS:
        return "not an object of principalId, policyDocument, context, usageIdentifierKey"
    if not isinstance(answer.get("principalId"), str) or not answer["principalId"]:
        return "no principalId"
    policy = answer.get("policyDocument")
    statements = policy.get("Statement") if isinstance(policy, dict) else None
    if not isinstance(policy, dict) or policy.get("Version") != "2012-10-17" or not statements:
        return "no policy document with statements"
    for statement in statements if isinstance(statements, list) else [None]:
        if not (
            isinstance(statement, dict)
            and statement.get("Action") == "execute-api:Invoke"
            and statement.get("Effect") in ("Allow", "Deny")
            and isinstance(statement.get("Resource"), list)
            and statement["Resource"]
            and all(isinstance(resource, str) for resource in statement["Resource"])
        ):
            return "a malformed policy statement"
    context = answer.get("context", {})
    # API Gateway passes on only string, number and boolean values; any other fails the request.
    if not isinstance(context, dict) or not all(
        isinstance(key, str) and isinstance(value, (str, int, float, bool)) for key, value in context.items()
    ):
        return "a context value that is not a string, number or boolean"
    if not isinstance(answer.get("usageIdentifierKey", ""), str):
        return "a usageIdentifierKey that is not a string"
    return None


class DeadlineAuthorizer(ChaliceAuthorizer):
    """Chalice's built-in authorizer, answering within its invocation's remaining time.

    Chalice calls the authorizer function without the Lambda context, so the deadline (see
    chalicelib.deadline) is set here, where API Gateway's event and the context arrive.
    """

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        """Answer API Gateway's (or the local gateway's) authorizer event before the deadline."""
        with deadline.answering_within(context):
            return super().__call__(event, context)


def answering_within_invocation(authorizer: ChaliceAuthorizer) -> ChaliceAuthorizer:
    """The authorizer @app.authorizer made, now a DeadlineAuthorizer.

    The object itself changes class (it adds only behaviour) because Chalice already holds it:
    routes name it, and the Lambda handler "app.<name>" resolves to it.
    """
    authorizer.__class__ = DeadlineAuthorizer
    return authorizer
