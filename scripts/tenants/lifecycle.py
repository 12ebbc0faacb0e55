"""A stage's tenants: onboard, list, show, suspend, resume, change tier, rotate the secret, offboard.

Each operation is idempotent and prints a progress line per thing it does. The registry in
the table is the source of truth for which app client and API key belong to a tenant; the
tenant's client secret lives in Cognito, and in Secrets Manager too where the stage keeps a copy
(store_tenant_secrets).
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.store import keys
from chalicelib.store.catalog import CatalogRepository
from chalicelib.store.dynamodb import dynamodb_client
from chalicelib.store.registry import ACTIVE, SUSPENDED, TenantRecord, TenantRegistry
from chalicelib.tenancy import SCOPES
from chalicelib.tiers import TIERS
from scripts import provision
from scripts.command_output import CommandOutput
from scripts.stage_resources import LOCAL_STAGE, AwsClients, StageResources, token_url
from scripts.tenants import data as tenant_data
from scripts.tenants import seed

OUTPUT = CommandOutput("tenants")

# Secrets Manager allows 7 to 30 days before a deleted secret is gone for good.
MIN_RECOVERY_DAYS, MAX_RECOVERY_DAYS = 7, 30


class TenantError(Exception):
    """An operator request that cannot be carried out; the message says why."""


def tenant_tags(stage_tags: dict[str, str], tenant_id: str) -> dict[str, str]:
    """Cost-allocation tags of a tenant's own resources: the stage's, and the tenant's id."""
    return {**stage_tags, "tenant": tenant_id}


@dataclass(frozen=True)
class Tenancy:
    """Where a stage's tenants live: its AWS clients, user pool, scopes and usage plans.

    token_url names the token endpoint when it is not the pool's hosted domain (the local stack's).
    """

    resources: StageResources
    clients: AwsClients
    pool_id: str
    scopes: list[str]
    plan_ids: dict[str, str]
    registry: TenantRegistry
    token_url: str | None = None

    def tags(self, tenant_id: str) -> dict[str, str]:
        """Cost-allocation tags of a tenant's own resources."""
        return tenant_tags(self.resources.tags, tenant_id)

    def secret_name(self, tenant_id: str) -> str:
        """Where the tenant's client id and secret are stored."""
        return self.resources.tenant_secret_name(tenant_id)

    def key_name(self, tenant_id: str) -> str:
        """The name of the tenant's API key."""
        return provision.api_key_name(self.resources.prefix, tenant_id)


def open_tenancy(
    resources: StageResources,
    clients: AwsClients,
    pool_id: str,
    token_endpoint: str | None = None,
    *,
    read_only: bool = False,
) -> Tenancy:
    """The stage's tenancy; the usage plans are made if bootstrap has not made them yet.

    With read_only nothing is made: the plans that exist are looked up (missing_plans names the others).
    """
    try:
        clients.cognito.describe_user_pool(UserPoolId=pool_id)
    except clients.cognito.exceptions.ResourceNotFoundException:
        raise TenantError(
            f"the user pool {pool_id} named by TOKEN_ISSUER does not exist; run scripts.deploy.bootstrap"
        ) from None
    scopes = [f"{resources.config.resource_server_id}/{scope}" for scope in SCOPES]
    if read_only:
        plan_ids = provision.find_usage_plans(clients.apigateway, resources.prefix)
    else:
        plan_ids = provision.ensure_usage_plans(clients.apigateway, resources.prefix, tags=resources.tags)
    return Tenancy(resources, clients, pool_id, scopes, plan_ids, TenantRegistry(), token_endpoint)


def missing_plans(tenancy: Tenancy) -> list[str]:
    """The names of the usage plans the stage lacks, one per tier without a plan."""
    return [
        provision.usage_plan_name(tenancy.resources.prefix, tier)
        for tier in TIERS.values()
        if tier.name not in tenancy.plan_ids
    ]


def check_tenant_id(tenant_id: str) -> str:
    """tenant_id if it is a valid tenant id, else TenantError."""
    if not keys.TENANT_ID.fullmatch(tenant_id):
        raise TenantError(
            f"not a valid tenant id: {tenant_id!r} (1 to 48 lowercase letters, digits and hyphens, "
            "starting and ending with a letter or digit)"
        )
    return tenant_id


def check_tier(tier: str) -> str:
    """tier if it names a tier, else TenantError."""
    if tier not in TIERS:
        raise TenantError(f"unknown tier {tier!r}; expected one of {', '.join(TIERS)}")
    return tier


def require_tenant(tenancy: Tenancy, tenant_id: str) -> TenantRecord:
    """The tenant's record, or TenantError if the stage has no such tenant."""
    record = tenancy.registry.get(check_tenant_id(tenant_id))
    if record is None:
        raise TenantError(f"stage {tenancy.resources.stage} has no tenant {tenant_id!r}")
    return record


def _store_secret(tenancy: Tenancy, tenant_id: str, client: provision.AppClient) -> str | None:
    """The stored copy's ARN, or None where the stage keeps no copy (Cognito holds the secret either way)."""
    if not tenancy.resources.config.store_tenant_secrets:
        return None
    value = {"tenant_id": tenant_id, "client_id": client.client_id, "client_secret": client.client_secret}
    return provision.put_secret_json(
        tenancy.clients.secretsmanager, tenancy.secret_name(tenant_id), value, tenancy.tags(tenant_id)
    )


def _secret_whereabouts(arn: str | None) -> str:
    return f"stored in {arn}" if arn else "kept in Cognito only (`tenants show --reveal-secret` reads it there)"


def create_tenant(
    tenancy: Tenancy, tenant_id: str, tier: str, display_name: str = "", adopt_data: bool = False
) -> TenantRecord:
    """Onboard a tenant: registry items, app client, API key in its tier's plan, secret; or check an existing one."""
    check_tenant_id(tenant_id)
    check_tier(tier)
    existing = tenancy.registry.get(tenant_id)
    if existing is not None:
        return _recheck_tenant(tenancy, existing, tier, display_name)
    # Data kept by an earlier `delete` would otherwise be served to whoever gets the id next.
    if not adopt_data and tenant_data.has_data(tenant_id):
        counts = ", ".join(f"{n} {what}" for what, n in tenant_data.count_data(tenant_id).items() if n)
        raise TenantError(
            f"the table still holds data of an earlier tenant {tenant_id!r} ({counts}); "
            "remove it with `delete --purge-data`, or pass --adopt-data to give it to the new tenant"
        )
    credentials = provision.onboard_tenant(
        tenancy.clients.cognito,
        tenancy.clients.apigateway,
        tenancy.registry,
        pool_id=tenancy.pool_id,
        scopes=tenancy.scopes,
        plan_ids=tenancy.plan_ids,
        key_prefix=tenancy.resources.prefix,
        tenant_id=tenant_id,
        tier=tier,
        display_name=display_name,
        tags=tenancy.tags(tenant_id),
        access_token_minutes=tenancy.resources.config.access_token_minutes,
    )
    OUTPUT.progress(f"{tenant_id}: app client {credentials.client_id} (client credentials, {' '.join(tenancy.scopes)})")
    OUTPUT.progress(f"{tenant_id}: API key {credentials.api_key_id} in usage plan {tier}")
    arn = _store_secret(tenancy, tenant_id, provision.AppClient(credentials.client_id, credentials.client_secret))
    OUTPUT.progress(f"{tenant_id}: client secret {_secret_whereabouts(arn)}")
    return require_tenant(tenancy, tenant_id)


def _recheck_tenant(tenancy: Tenancy, record: TenantRecord, tier: str, display_name: str) -> TenantRecord:
    if record.tier != tier:
        raise TenantError(f"{record.tenant_id} exists with tier {record.tier}; use change-tier to move it to {tier}")
    client = provision.ensure_app_client_settings(
        tenancy.clients.cognito,
        tenancy.pool_id,
        record.client_id,
        tenancy.scopes,
        tenancy.resources.config.access_token_minutes,
    )
    if client is None:
        raise TenantError(
            f"the app client {record.client_id} of {record.tenant_id} is gone; rotate-secret gives it a new one"
        )
    provision.attach_api_key(
        tenancy.clients.apigateway, record.api_key_id, tenancy.plan_ids[tier], tenancy.plan_ids.values()
    )
    _store_secret(tenancy, record.tenant_id, client)
    if display_name and display_name != record.display_name:
        record = record.with_changes(display_name=display_name)
        tenancy.registry.put(record)
    OUTPUT.progress(f"{record.tenant_id}: exists ({record.tier}, {record.status}, app client {record.client_id})")
    return record


def _set_status(tenancy: Tenancy, tenant_id: str, status: str) -> TenantRecord:
    record = require_tenant(tenancy, tenant_id)
    if record.status == status:
        OUTPUT.progress(f"{tenant_id}: already {status}")
        return record
    record = record.with_changes(status=status)
    tenancy.registry.put(record)
    OUTPUT.progress(f"{tenant_id}: {status}; the API applies it within {_propagation(tenancy)}")
    return record


def _propagation(tenancy: Tenancy) -> str:
    cache = tenancy.resources.config.environment.get("TENANT_CACHE_SECONDS", "60")
    if tenancy.resources.stage == LOCAL_STAGE:
        # chalice local calls the authorizer on every request; API Gateway keeps its answer per token.
        return f"{cache} s (registry cache; the local stack caches no authorizer answer)"
    return f"{cache} s (registry cache) plus 60 s (API Gateway's authorizer cache)"


def _limits_take_effect(tenancy: Tenancy) -> str:
    if tenancy.resources.config.environment.get("RATE_LIMITER") == "in-app":
        # The in-app limiter sizes the bucket by the tier the authorizer read from the registry.
        return f"the new limits apply within {_propagation(tenancy)}"
    return f"the new limits apply at once; the tier in the request context within {_propagation(tenancy)}"


def suspend_tenant(tenancy: Tenancy, tenant_id: str) -> TenantRecord:
    """Refuse the tenant's calls (403) without touching its credentials or data."""
    return _set_status(tenancy, tenant_id, SUSPENDED)


def resume_tenant(tenancy: Tenancy, tenant_id: str) -> TenantRecord:
    """Let a suspended tenant call the API again."""
    return _set_status(tenancy, tenant_id, ACTIVE)


def change_tier(tenancy: Tenancy, tenant_id: str, tier: str) -> TenantRecord:
    """Move the tenant's API key to the tier's usage plan and record the tier."""
    check_tier(tier)
    record = require_tenant(tenancy, tenant_id)
    # The key moves first: the usage plan is what API Gateway enforces.
    provision.attach_api_key(
        tenancy.clients.apigateway, record.api_key_id, tenancy.plan_ids[tier], tenancy.plan_ids.values()
    )
    if record.tier == tier:
        OUTPUT.progress(f"{tenant_id}: already {tier}")
        return record
    record = record.with_changes(tier=tier)
    tenancy.registry.put(record)
    OUTPUT.progress(f"{tenant_id}: API key {record.api_key_id} moved to usage plan {tier}; tier recorded")
    OUTPUT.progress(f"{tenant_id}: {_limits_take_effect(tenancy)}")
    return record


def _remove_stray_clients(tenancy: Tenancy, record: TenantRecord) -> None:
    # Clients named after the tenant that the registry does not name were left by an interrupted rotation.
    for name, client_id in provision.list_app_clients(tenancy.clients.cognito, tenancy.pool_id):
        if name == record.tenant_id and client_id != record.client_id:
            provision.delete_app_client(tenancy.clients.cognito, tenancy.pool_id, client_id)
            tenant_data.remove_client_lookup(client_id)
            OUTPUT.progress(f"{record.tenant_id}: removed app client {client_id} left by an interrupted rotation")


def rotate_secret(tenancy: Tenancy, tenant_id: str) -> TenantRecord:
    """Replace the tenant's app client (Cognito cannot rotate a secret in place); the old one stops working."""
    record = require_tenant(tenancy, tenant_id)
    _remove_stray_clients(tenancy, record)
    cognito = tenancy.clients.cognito
    new_client = provision.create_app_client(
        cognito, tenancy.pool_id, tenant_id, tenancy.scopes, tenancy.resources.config.access_token_minutes
    )
    OUTPUT.progress(f"{tenant_id}: new app client {new_client.client_id}")
    # A copy is stored before the registry switches, so a failure after this never loses it (the
    # new client, named by the tenant, also keeps its secret in Cognito).
    arn = _store_secret(tenancy, tenant_id, new_client)
    OUTPUT.progress(f"{tenant_id}: new client secret {_secret_whereabouts(arn)}")
    old_client_id = record.client_id
    record = record.with_changes(client_id=new_client.client_id)
    tenancy.registry.put(record)
    tenant_data.remove_client_lookup(old_client_id)
    OUTPUT.progress(f"{tenant_id}: registry now names {new_client.client_id}; lookup of {old_client_id} removed")
    provision.delete_app_client(cognito, tenancy.pool_id, old_client_id)
    OUTPUT.progress(
        f"{tenant_id}: old app client {old_client_id} deleted; its tokens stop working within {_propagation(tenancy)}"
    )
    return record


def delete_tenant(
    tenancy: Tenancy, tenant_id: str, purge_data: bool = False, recovery_days: int = MIN_RECOVERY_DAYS
) -> bool:
    """Offboard a tenant: app clients, API key, registry items and secret; its data only with purge_data.

    Returns False when nothing of the tenant was left to delete.
    """
    check_tenant_id(tenant_id)
    if not MIN_RECOVERY_DAYS <= recovery_days <= MAX_RECOVERY_DAYS:
        raise TenantError(f"the recovery window must be {MIN_RECOVERY_DAYS} to {MAX_RECOVERY_DAYS} days")
    record = tenancy.registry.get(tenant_id)
    found = _delete_access(tenancy, tenant_id, record)
    if provision.schedule_secret_deletion(
        tenancy.clients.secretsmanager, tenancy.secret_name(tenant_id), recovery_days
    ):
        OUTPUT.progress(
            f"{tenant_id}: secret {tenancy.secret_name(tenant_id)} deleted (recoverable for {recovery_days} days)"
        )
        found = True
    if purge_data:
        deleted = tenant_data.purge_data(tenant_id)
        if any(deleted.values()):
            OUTPUT.progress(f"{tenant_id}: deleted " + ", ".join(f"{n} {what}" for what, n in deleted.items()))
            found = True
    elif tenant_data.has_data(tenant_id):
        counts = ", ".join(f"{n} {what}" for what, n in tenant_data.count_data(tenant_id).items())
        OUTPUT.progress(f"{tenant_id}: kept its data ({counts}); `delete {tenant_id} --purge-data` removes it")
    if not found:
        OUTPUT.progress(f"{tenant_id}: nothing left to delete")
    return found


def _delete_access(tenancy: Tenancy, tenant_id: str, record: TenantRecord | None) -> bool:
    cognito, apigateway = tenancy.clients.cognito, tenancy.clients.apigateway
    client_ids = [cid for name, cid in provision.list_app_clients(cognito, tenancy.pool_id) if name == tenant_id]
    if record is not None and record.client_id not in client_ids:
        client_ids.append(record.client_id)
    # The app clients go first, so no new token is issued while the rest is removed.
    for client_id in client_ids:
        if provision.delete_app_client(cognito, tenancy.pool_id, client_id):
            OUTPUT.progress(f"{tenant_id}: app client {client_id} deleted")
    if record is not None or client_ids:
        tenant_data.remove_registry_items(tenant_id, client_ids)
        if record is not None:
            OUTPUT.progress(f"{tenant_id}: registry record and client lookup deleted")
    key = provision.find_api_key(apigateway, tenancy.key_name(tenant_id))
    key_id = record.api_key_id if record and record.api_key_id else (key.key_id if key else None)
    if key_id and provision.delete_api_key(apigateway, key_id, tenancy.plan_ids.values()):
        OUTPUT.progress(f"{tenant_id}: API key {key_id} deleted")
    return record is not None or bool(client_ids) or key is not None


@dataclass(frozen=True)
class TenantRow:
    """One line of the tenant list."""

    tenant_id: str
    tier: str
    status: str
    client_id: str
    display_name: str


def list_tenants(tenancy: Tenancy) -> list[TenantRow]:
    """Every tenant of the stage, by tenant id, found through the pool's app clients (the table is never scanned).

    An app client named like a tenant with no registry record shows as "unregistered".
    """
    rows: dict[str, TenantRow] = {}
    for name, client_id in provision.list_app_clients(tenancy.clients.cognito, tenancy.pool_id):
        if name in rows or not keys.TENANT_ID.fullmatch(name):
            continue
        record = tenancy.registry.get(name)
        if record is None:
            rows[name] = TenantRow(name, "-", "unregistered", client_id, "")
        else:
            rows[name] = TenantRow(record.tenant_id, record.tier, record.status, record.client_id, record.display_name)
    return [rows[name] for name in sorted(rows)]


@dataclass(frozen=True)
class TenantDetails:
    """What show prints: the record, where its secret is, and the secret itself only when asked for."""

    record: TenantRecord
    secret_arn: str | None
    token_url: str | None
    client_secret: str | None


def show_tenant(tenancy: Tenancy, tenant_id: str, reveal_secret: bool = False) -> TenantDetails:
    """The tenant's record and where its credentials are; the client secret only with reveal_secret."""
    record = require_tenant(tenancy, tenant_id)
    secretsmanager = tenancy.clients.secretsmanager
    arn = provision.secret_arn(secretsmanager, tenancy.secret_name(tenant_id))
    secret = None
    if reveal_secret:
        # From Cognito, the source of truth, whether or not the stage keeps a copy.
        client = provision.app_client(tenancy.clients.cognito, tenancy.pool_id, record.client_id)
        if client is None:
            raise TenantError(f"the app client {record.client_id} of {tenant_id} is gone; run rotate-secret")
        secret = client.client_secret
    return TenantDetails(record, arn, tenancy.token_url or _hosted_token_url(tenancy), secret)


def _hosted_token_url(tenancy: Tenancy) -> str | None:
    domain = provision.user_pool_domain(tenancy.clients.cognito, tenancy.pool_id)
    return token_url(domain, tenancy.clients.region) if domain else None


def seed_demo(tenancy: Tenancy) -> list[TenantRecord]:
    """The local stack's three seed tenants, one per tier, each with its seed catalog if its catalog is empty."""
    records = []
    for tenant in seed.SEED_TENANTS:
        records.append(create_tenant(tenancy, tenant.tenant_id, tenant.tier, tenant.display_name))
        # An existing catalog is left alone: the demo may have been used since, and stock changed.
        if not CatalogRepository(tenant.tenant_id, dynamodb_client()).list(1)[0]:
            count = seed.write_catalog(tenant.tenant_id)
            OUTPUT.progress(f"{tenant.tenant_id}: {count} seed products")
    return records
