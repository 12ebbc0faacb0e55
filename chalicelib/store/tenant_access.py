"""Credentials scoped to one tenant: the only ones the API reads and writes tenant items with.

The function's own role reaches no tenant data. For each tenant it assumes the tenant-access
role through STS with the session tag TenantID=<tenant>; the role's one policy admits only
partition keys that start with TENANT#${aws:PrincipalTag/TenantID}#, so a request signed with
one tenant's credentials cannot reach another tenant's items, whatever the code asks for.

Each tenant's credentials are kept in the container and assumed once at a time per tenant.
botocore refreshes them before they expire: from 15 minutes before expiry one call refreshes
them while the others go on with the current ones, and a refresh that fails then leaves the
current ones in use; only in the last 10 minutes does a failed refresh fail the request (503).
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import botocore.session
from botocore.credentials import CredentialProvider, CredentialResolver, RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import deadline
from chalicelib.config import SettingsError, get_settings
from chalicelib.errors import DeadlineExceeded, TenantAccessUnavailable
from chalicelib.store import keys
from chalicelib.store.dynamodb import DYNAMODB_CONFIG, bounded_client, bounded_config
from chalicelib.telemetry.logs import logger

# The session tag the tenant-access role's policy reads as ${aws:PrincipalTag/TenantID}.
TENANT_TAG = "TenantID"
# STS's default, and the role's longest unless its MaxSessionDuration is raised.
SESSION_SECONDS = 3600
# Tenants whose credentials one container keeps; beyond it the least recently used is dropped
# (and assumes again when it returns): a bound on memory, not a limit on tenants.
MAX_TENANTS = 1000
CREDENTIAL_METHOD = "sts-assume-role-for-tenant"
# After STS fails for a tenant, how long its requests answer 503 without asking STS again
# (the Retry-After those answers carry).
RETRY_AFTER_FAILURE_SECONDS = float(TenantAccessUnavailable.RETRY_AFTER_SECONDS)


def session_name(tenant_id: str) -> str:
    """The role session's name: CloudTrail shows it on every call made with the tenant's credentials."""
    keys.tenant_partition(tenant_id)  # refuses a malformed tenant id
    return f"tenant-{tenant_id}"


@functools.lru_cache(maxsize=1)
def _sts_client() -> Any:
    # Signed with the function's own role, the only thing that role is for beyond logs and traces.
    return bounded_client("sts")


@functools.lru_cache(maxsize=1)
def _service_models() -> Any:
    # Every tenant's client reads the same service model: loaded once, shared.
    return botocore.session.get_session().get_component("data_loader")


@contextlib.contextmanager
def _sts_errors() -> Iterator[None]:
    try:
        yield
    except (ClientError, BotoCoreError) as error:
        if isinstance(error, BotoCoreError) and deadline.spent():
            raise DeadlineExceeded() from error
        logger.error("tenant credentials unavailable", exc_info=error)
        raise TenantAccessUnavailable() from error


def assume_tenant_role(tenant_id: str) -> dict[str, Any]:
    """Credentials for tenant_id's session of the tenant-access role, in botocore's refresh format."""
    role_arn = get_settings().tenant_access_role_arn
    if not role_arn:
        raise SettingsError("not set: TENANT_ACCESS_ROLE_ARN", ["TENANT_ACCESS_ROLE_ARN"])
    with _sts_errors():
        response = _sts_client().assume_role(
            RoleArn=role_arn,
            RoleSessionName=session_name(tenant_id),
            Tags=[{"Key": TENANT_TAG, "Value": tenant_id}],
            DurationSeconds=SESSION_SECONDS,
        )
    credentials = response["Credentials"]
    logger.info("tenant credentials assumed", extra={"tenant_id": tenant_id, "expires": str(credentials["Expiration"])})
    return {
        "access_key": credentials["AccessKeyId"],
        "secret_key": credentials["SecretAccessKey"],
        "token": credentials["SessionToken"],
        "expiry_time": credentials["Expiration"].isoformat(),
    }


class _TenantCredentialProvider(CredentialProvider):  # type: ignore[misc]  # botocore has no types
    """A credential provider that hands botocore the credentials it was made with."""

    METHOD = CREDENTIAL_METHOD

    def __init__(self, credentials: RefreshableCredentials):
        super().__init__()
        self._credentials = credentials

    def load(self) -> RefreshableCredentials:
        """The tenant's credentials, which refresh themselves."""
        return self._credentials


def utc_now() -> datetime.datetime:
    """The time credentials' expiry is compared with."""
    return datetime.datetime.now(datetime.timezone.utc)


@dataclass(frozen=True)
class TenantSession:
    """A tenant's DynamoDB client and the refreshable credentials it signs with."""

    client: Any
    credentials: RefreshableCredentials


def _session_for(tenant_id: str, clock: Callable[[], datetime.datetime]) -> TenantSession:
    # The first AssumeRole happens here, in the request, so that its failure is this request's 503.
    first = assume_tenant_role(tenant_id)
    credentials = RefreshableCredentials(
        access_key=first["access_key"],
        secret_key=first["secret_key"],
        token=first["token"],
        expiry_time=datetime.datetime.fromisoformat(first["expiry_time"]),
        refresh_using=lambda: assume_tenant_role(tenant_id),
        method=CREDENTIAL_METHOD,
        time_fetcher=clock,
    )
    session = botocore.session.Session()
    session.register_component("data_loader", _service_models())
    session.register_component(
        "credential_provider", CredentialResolver(providers=[_TenantCredentialProvider(credentials)])
    )
    client = session.create_client(
        "dynamodb", region_name=get_settings().region, config=bounded_config(**DYNAMODB_CONFIG)
    )
    return TenantSession(deadline.bounded_by_deadline(client), credentials)


class TenantClients:
    """Each tenant's DynamoDB client, signed with that tenant's credentials, kept for the container's life."""

    def __init__(
        self,
        max_tenants: int = MAX_TENANTS,
        clock: Callable[[], datetime.datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.max_tenants = max_tenants
        self.clock = clock
        self.monotonic = monotonic
        self._sessions: OrderedDict[str, TenantSession] = OrderedDict()
        self._assuming: dict[str, threading.Lock] = {}
        self._failed_at: dict[str, float] = {}
        self._guard = threading.Lock()

    def dynamodb(self, tenant_id: str) -> Any:
        """The tenant's client: made on its first request (one AssumeRole), then reused.

        Credentials due for a refresh are refreshed here, once, in the request's own thread,
        before any call: otherwise each of a list's parallel Queries would ask STS itself. After
        STS has failed for a tenant, its requests answer 503 for RETRY_AFTER_FAILURE_SECONDS
        without asking again, so an STS outage or throttling is not made worse by the retries.
        """
        self._refuse_while_failing(tenant_id)
        try:
            session = self._session(tenant_id)
            session.credentials.get_frozen_credentials()
        except TenantAccessUnavailable:
            with self._guard:
                self._failed_at[tenant_id] = self.monotonic()
            raise
        return session.client

    def _refuse_while_failing(self, tenant_id: str) -> None:
        with self._guard:
            failed_at = self._failed_at.get(tenant_id)
            if failed_at is None:
                return
            if self.monotonic() - failed_at < RETRY_AFTER_FAILURE_SECONDS:
                raise TenantAccessUnavailable()
            del self._failed_at[tenant_id]

    def _session(self, tenant_id: str) -> TenantSession:
        with self._guard:
            session = self._sessions.get(tenant_id)
            if session is not None:
                self._sessions.move_to_end(tenant_id)
                return session
            assuming = self._assuming.setdefault(tenant_id, threading.Lock())
        # Requests of one tenant wait for its one AssumeRole; other tenants' requests do not.
        with assuming:
            with self._guard:
                session = self._sessions.get(tenant_id)
            if session is None:
                try:
                    session = _session_for(tenant_id, self.clock)
                except BaseException:
                    with self._guard:
                        self._assuming.pop(tenant_id, None)
                    raise
                with self._guard:
                    self._sessions[tenant_id] = session
                    while len(self._sessions) > self.max_tenants:
                        evicted, _ = self._sessions.popitem(last=False)
                        self._assuming.pop(evicted, None)
            return session

    def cached(self) -> list[str]:
        """The tenants whose credentials this container holds, least recently used first."""
        with self._guard:
            return list(self._sessions)

    def forget(self) -> None:
        """Drop every tenant's client (tests, and a container that changes its settings)."""
        with self._guard:
            self._sessions.clear()
            self._assuming.clear()
            self._failed_at.clear()


tenant_clients = TenantClients()


def tenant_dynamodb(tenant_id: str) -> Any:
    """The DynamoDB client that serves tenant_id's requests, signed with credentials that reach its items only."""
    return tenant_clients.dynamodb(tenant_id)
