"""Idempotent provisioning of the table, user pool, usage plans and tenants through boto3.

Every function takes the boto3 clients it needs, so the same code provisions the embedded
local AWS (moto) and a real account; each one first looks for what it would create, so a
rerun changes only what differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from botocore.exceptions import ClientError

from chalicelib.registry import ACTIVE, TenantRecord, TenantRegistry
from chalicelib.schema import TTL_ATTRIBUTE, table_definition
from chalicelib.tenancy import SCOPES
from chalicelib.tiers import TIERS, Tier

CLIENT_CREDENTIALS = "client_credentials"
# Cognito's default lifetime for access tokens; short enough that a revoked client stops soon.
ACCESS_TOKEN_MINUTES = 60


@dataclass(frozen=True)
class AppClient:
    """A Cognito app client's id and secret."""

    client_id: str
    client_secret: str


@dataclass(frozen=True)
class ApiKey:
    """An API Gateway API key's id and value."""

    key_id: str
    value: str


@dataclass(frozen=True)
class TenantCredentials:
    """What a tenant needs to call the API, and what the registry knows of it."""

    tenant_id: str
    tier: str
    client_id: str
    client_secret: str
    api_key_id: str


def _error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def _paginate(client: Any, operation: str, result_key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    for page in client.get_paginator(operation).paginate(**kwargs):
        yield from page.get(result_key, [])


def ensure_table(dynamodb: Any, table_name: str) -> None:
    """Create the single table from chalicelib.schema unless it exists, and wait until it is active."""
    try:
        dynamodb.describe_table(TableName=table_name)
    except ClientError as error:
        if _error_code(error) != "ResourceNotFoundException":
            raise
        dynamodb.create_table(**table_definition(table_name))
    dynamodb.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})


def ensure_ttl(dynamodb: Any, table_name: str, attribute: str = TTL_ATTRIBUTE) -> None:
    """Turn on DynamoDB TTL on attribute unless it is already on."""
    description = dynamodb.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
    if description.get("TimeToLiveStatus") in ("ENABLED", "ENABLING") and description.get("AttributeName") == attribute:
        return
    dynamodb.update_time_to_live(
        TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute}
    )


def ensure_user_pool(cognito: Any, pool_name: str) -> str:
    """The id of the user pool called pool_name, created if there is none."""
    for pool in _paginate(cognito, "list_user_pools", "UserPools", PaginationConfig={"PageSize": 60}):
        if pool["Name"] == pool_name:
            return pool["Id"]
    # Tenants are machines using client credentials: nobody signs up, so only admins create users.
    pool = cognito.create_user_pool(PoolName=pool_name, AdminCreateUserConfig={"AllowAdminCreateUserOnly": True})
    return pool["UserPool"]["Id"]


def ensure_resource_server(cognito: Any, pool_id: str, identifier: str, scopes: Iterable[str] = SCOPES) -> list[str]:
    """Create or update the resource server and return its full scope names ("identifier/scope")."""
    scope_list = [{"ScopeName": scope, "ScopeDescription": f"{scope} of the tenant API"} for scope in scopes]
    try:
        current = cognito.describe_resource_server(UserPoolId=pool_id, Identifier=identifier)["ResourceServer"]
    except ClientError as error:
        if _error_code(error) != "ResourceNotFoundException":
            raise
        cognito.create_resource_server(UserPoolId=pool_id, Identifier=identifier, Name=identifier, Scopes=scope_list)
    else:
        if sorted(s["ScopeName"] for s in current.get("Scopes", [])) != sorted(s["ScopeName"] for s in scope_list):
            cognito.update_resource_server(UserPoolId=pool_id, Identifier=identifier, Name=identifier, Scopes=scope_list)
    return [f"{identifier}/{scope['ScopeName']}" for scope in scope_list]


def usage_plan_name(prefix: str, tier: Tier) -> str:
    """The name of the usage plan that applies tier's limits."""
    return f"{prefix}-{tier.name}"


def _same(have: Any, want: float | int | str) -> bool:
    # The API returns numbers as numbers or, after a patch, as strings; compare their values.
    if isinstance(want, str) or have is None:
        return have == want
    try:
        return float(have) == float(want)
    except (TypeError, ValueError):
        return False


def _usage_plan_patch(plan: dict[str, Any], tier: Tier, api_stages: Iterable[str]) -> list[dict[str, str]]:
    throttle, quota = plan.get("throttle", {}), plan.get("quota", {})
    wanted = {
        "/throttle/rateLimit": (throttle.get("rateLimit"), tier.rate_per_second),
        "/throttle/burstLimit": (throttle.get("burstLimit"), tier.burst),
        "/quota/limit": (quota.get("limit"), tier.monthly_quota),
        "/quota/period": (quota.get("period"), "MONTH"),
    }
    patch = [
        {"op": "replace", "path": path, "value": str(want)}
        for path, (have, want) in wanted.items()
        if not _same(have, want)
    ]
    bound = {f"{stage['apiId']}:{stage['stage']}" for stage in plan.get("apiStages", [])}
    patch.extend({"op": "add", "path": "/apiStages", "value": stage} for stage in api_stages if stage not in bound)
    return patch


def ensure_usage_plans(apigateway: Any, prefix: str, api_stages: Iterable[str] = ()) -> dict[str, str]:
    """One usage plan per tier with its rate, burst and monthly quota; returns plan ids by tier name.

    api_stages ("apiId:stage") binds the plans to a deployed API; locally there is none.
    """
    stages = list(api_stages)
    existing = {plan["name"]: plan for plan in _paginate(apigateway, "get_usage_plans", "items")}
    plan_ids = {}
    for tier in TIERS.values():
        name = usage_plan_name(prefix, tier)
        plan = existing.get(name)
        if plan is None:
            plan = apigateway.create_usage_plan(
                name=name,
                description=f"{tier.name} tier: {tier.rate_per_second:g} req/s, burst {tier.burst}",
                throttle={"rateLimit": float(tier.rate_per_second), "burstLimit": tier.burst},
                quota={"limit": tier.monthly_quota, "period": "MONTH"},
                apiStages=[{"apiId": s.split(":")[0], "stage": s.split(":")[1]} for s in stages],
            )
        else:
            patch = _usage_plan_patch(plan, tier, stages)
            if patch:
                apigateway.update_usage_plan(usagePlanId=plan["id"], patchOperations=patch)
        plan_ids[tier.name] = plan["id"]
    return plan_ids


def _client_settings(scopes: list[str]) -> dict[str, Any]:
    return {
        "AllowedOAuthFlows": [CLIENT_CREDENTIALS],
        "AllowedOAuthFlowsUserPoolClient": True,
        "AllowedOAuthScopes": scopes,
        "ExplicitAuthFlows": ["ALLOW_REFRESH_TOKEN_AUTH"],
        "SupportedIdentityProviders": ["COGNITO"],
        "AccessTokenValidity": ACCESS_TOKEN_MINUTES,
        "TokenValidityUnits": {"AccessToken": "minutes"},
        "PreventUserExistenceErrors": "ENABLED",
        "EnableTokenRevocation": True,
    }


def _find_app_client(cognito: Any, pool_id: str, client_name: str) -> str | None:
    for client in _paginate(cognito, "list_user_pool_clients", "UserPoolClients", UserPoolId=pool_id):
        if client["ClientName"] == client_name:
            return client["ClientId"]
    return None


def ensure_app_client(cognito: Any, pool_id: str, client_name: str, scopes: list[str]) -> AppClient:
    """A client-credentials app client with a secret and the given scopes, created or brought up to date."""
    settings = _client_settings(scopes)
    client_id = _find_app_client(cognito, pool_id, client_name)
    if client_id is None:
        created = cognito.create_user_pool_client(
            UserPoolId=pool_id, ClientName=client_name, GenerateSecret=True, **settings
        )["UserPoolClient"]
        return AppClient(created["ClientId"], created["ClientSecret"])
    # UpdateUserPoolClient resets every setting it is not given, so all of them are passed.
    cognito.update_user_pool_client(UserPoolId=pool_id, ClientId=client_id, ClientName=client_name, **settings)
    described = cognito.describe_user_pool_client(UserPoolId=pool_id, ClientId=client_id)["UserPoolClient"]
    return AppClient(client_id, described["ClientSecret"])


def ensure_api_key(apigateway: Any, name: str) -> ApiKey:
    """The enabled API key called name, created if there is none."""
    for key in _paginate(apigateway, "get_api_keys", "items", nameQuery=name, includeValues=True):
        if key["name"] == name:
            return ApiKey(key["id"], key["value"])
    key = apigateway.create_api_key(name=name, enabled=True)
    return ApiKey(key["id"], key["value"])


def attach_api_key(apigateway: Any, key_id: str, plan_id: str, all_plan_ids: Iterable[str]) -> None:
    """Put the key in plan_id and in no other of all_plan_ids (a tier change moves it)."""
    # plan_id is visited even when all_plan_ids does not name it, so the key always lands there.
    for other in dict.fromkeys([plan_id, *all_plan_ids]):
        keys_in_plan = {key["id"] for key in _paginate(apigateway, "get_usage_plan_keys", "items", usagePlanId=other)}
        if other == plan_id and key_id not in keys_in_plan:
            apigateway.create_usage_plan_key(usagePlanId=plan_id, keyId=key_id, keyType="API_KEY")
        elif other != plan_id and key_id in keys_in_plan:
            apigateway.delete_usage_plan_key(usagePlanId=other, keyId=key_id)


def onboard_tenant(
    cognito: Any,
    apigateway: Any,
    registry: TenantRegistry,
    *,
    pool_id: str,
    scopes: list[str],
    plan_ids: dict[str, str],
    key_prefix: str,
    tenant_id: str,
    tier: str,
    display_name: str = "",
) -> TenantCredentials:
    """Give a tenant its app client, its own API key in its tier's usage plan, and its registry record.

    A rerun keeps the tenant's status, so onboarding again does not reactivate a suspended tenant.
    """
    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}; expected one of {', '.join(TIERS)}")
    client = ensure_app_client(cognito, pool_id, tenant_id, scopes)
    key = ensure_api_key(apigateway, f"{key_prefix}-{tenant_id}")
    attach_api_key(apigateway, key.key_id, plan_ids[tier], plan_ids.values())
    existing = registry.get(tenant_id)
    registry.put(
        TenantRecord(
            tenant_id=tenant_id,
            tier=tier,
            status=existing.status if existing else ACTIVE,
            client_id=client.client_id,
            api_key_id=key.key_id,
            api_key_value=key.value,
            display_name=display_name or (existing.display_name if existing else ""),
        )
    )
    return TenantCredentials(tenant_id, tier, client.client_id, client.client_secret, key.key_id)
