"""Idempotent provisioning of the table, user pool, usage plans, secrets and tenants through boto3.

Every function takes the boto3 clients it needs, so the same code provisions the embedded
local AWS (moto) and a real account; each one first looks for what it would create, so a
rerun changes only what differs.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from botocore.exceptions import ClientError

from chalicelib.store.registry import ACTIVE, TenantRecord, TenantRegistry
from chalicelib.store.schema import TTL_ATTRIBUTE, table_definition
from chalicelib.tenancy import SCOPES
from chalicelib.tiers import TIERS, Tier
from scripts import tenant_access_role
from scripts.aws_calls import error_code, paginate

CLIENT_CREDENTIALS = "client_credentials"
# Cognito's default lifetime for access tokens; short enough that a revoked client stops soon.
# A stage may set its own ("access_token_minutes" in .chalice/config.json; README "Token lifetime").
ACCESS_TOKEN_MINUTES = 60
# What Cognito accepts for an access token's lifetime: 5 minutes to one day.
ACCESS_TOKEN_MINUTES_RANGE = (5, 24 * 60)
# 48 random bytes: a 64-character URL-safe key, well above the 32 the application insists on.
GENERATED_SECRET_BYTES = 48


class ProvisioningError(Exception):
    """Something in the account stands in the way of provisioning; the message says what to do."""


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


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def _missing_tags(have: dict[str, str], want: dict[str, str]) -> dict[str, str]:
    # Tags someone else added are left alone: only ours are added or corrected.
    return {key: value for key, value in want.items() if have.get(key) != value}


def ensure_table(dynamodb: Any, table_name: str, tags: dict[str, str] | None = None) -> None:
    """Create the single table from chalicelib.store.schema unless it exists, and wait until it is active."""
    try:
        dynamodb.describe_table(TableName=table_name)
    except ClientError as error:
        if error_code(error) != "ResourceNotFoundException":
            raise
        extra = {"Tags": _tag_list(tags)} if tags else {}
        dynamodb.create_table(**table_definition(table_name), **extra)
    _wait_until_active(dynamodb, table_name)


def _wait_until_active(dynamodb: Any, table_name: str) -> None:
    dynamodb.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})


def index_names(table_name: str) -> list[str]:
    """The names of the global secondary indexes chalicelib.store.schema gives the table."""
    return [index["IndexName"] for index in table_definition(table_name).get("GlobalSecondaryIndexes", [])]


def _same_index(have: dict[str, Any], want: dict[str, Any]) -> bool:
    def projection(index: dict[str, Any]) -> tuple[str, list[str]]:
        shown = index.get("Projection", {})
        return shown.get("ProjectionType", ""), sorted(shown.get("NonKeyAttributes", []))

    return have.get("KeySchema") == want["KeySchema"] and projection(have) == projection(want)


def missing_indexes(dynamodb: Any, table_name: str) -> list[str]:
    """The schema's global secondary indexes the table lacks (a table made before they were added).

    An index of the same name but another key schema or projection is refused: DynamoDB cannot
    change either in place, and the application would read the wrong thing from it.
    """
    table = dynamodb.describe_table(TableName=table_name)["Table"]
    have = {index["IndexName"]: index for index in table.get("GlobalSecondaryIndexes", [])}
    missing = []
    for index in table_definition(table_name).get("GlobalSecondaryIndexes", []):
        name = index["IndexName"]
        if name not in have:
            missing.append(name)
        elif not _same_index(have[name], index):
            raise ProvisioningError(
                f"the table {table_name} has an index {name!r} that differs from chalicelib.store.schema; delete it "
                f"(aws dynamodb update-table --table-name {table_name} "
                f'--global-secondary-index-updates \'[{{"Delete":{{"IndexName":"{name}"}}}}]\'), '
                "wait until it is gone, and run this again"
            )
    return missing


def ensure_indexes(
    dynamodb: Any,
    table_name: str,
    *,
    poll_seconds: float = 10,
    max_wait_seconds: float = 3600,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Give the table the schema's global secondary indexes it lacks and wait until all are ACTIVE.

    Returns the names of the indexes it created. DynamoDB fills a new index from the items
    already in the table (minutes for a large one); the table stays readable and writable meanwhile.
    """
    definition = table_definition(table_name)
    wanted = {index["IndexName"]: index for index in definition.get("GlobalSecondaryIndexes", [])}
    created = []
    for name in missing_indexes(dynamodb, table_name):
        table = dynamodb.describe_table(TableName=table_name)["Table"]
        index = dict(wanted[name])
        if table.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED") == "PROVISIONED":
            # A provisioned table needs the index's own capacity; it gets the table's.
            capacity = table.get("ProvisionedThroughput", {})
            index["ProvisionedThroughput"] = {
                "ReadCapacityUnits": capacity.get("ReadCapacityUnits") or 1,
                "WriteCapacityUnits": capacity.get("WriteCapacityUnits") or 1,
            }
        # UpdateTable must define the new index's key attributes; the table's own are sent along.
        key_names = {key["AttributeName"] for key in index["KeySchema"]}
        definitions = {item["AttributeName"]: item for item in table.get("AttributeDefinitions", [])}
        definitions.update(
            {
                item["AttributeName"]: item
                for item in definition["AttributeDefinitions"]
                if item["AttributeName"] in key_names
            }
        )
        dynamodb.update_table(
            TableName=table_name,
            AttributeDefinitions=list(definitions.values()),
            GlobalSecondaryIndexUpdates=[{"Create": index}],
        )
        created.append(name)
        # DynamoDB creates one index at a time, and refuses other changes to the table meanwhile.
        _wait_for_indexes(dynamodb, table_name, [name], poll_seconds, max_wait_seconds, sleep)
    # An index an earlier, interrupted run created may still be filling.
    _wait_for_indexes(dynamodb, table_name, list(wanted), poll_seconds, max_wait_seconds, sleep)
    return created


def _wait_for_indexes(
    dynamodb: Any,
    table_name: str,
    names: list[str],
    poll_seconds: float,
    max_wait_seconds: float,
    sleep: Callable[[float], None],
) -> None:
    waited = 0.0
    while True:
        table = dynamodb.describe_table(TableName=table_name)["Table"]
        statuses = {index["IndexName"]: index.get("IndexStatus") for index in table.get("GlobalSecondaryIndexes", [])}
        pending = {name: statuses.get(name, "absent") for name in names if statuses.get(name) != "ACTIVE"}
        if not pending and table.get("TableStatus") == "ACTIVE":
            return
        if waited >= max_wait_seconds:
            states = ", ".join(f"{name} {status}" for name, status in pending.items()) or "the table is not ACTIVE"
            raise ProvisioningError(
                f"the indexes of {table_name} are not ready after {waited:.0f} s ({states}); "
                "DynamoDB is still filling them: run this again later"
            )
        sleep(poll_seconds)
        waited += poll_seconds


def ensure_point_in_time_recovery(
    dynamodb: Any, table_name: str, attempts: int = 12, sleep: Callable[[float], None] = time.sleep
) -> None:
    """Turn on point-in-time recovery unless it is on."""
    backups = dynamodb.describe_continuous_backups(TableName=table_name)["ContinuousBackupsDescription"]
    if backups.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus") in ("ENABLED", "ENABLING"):
        return
    for attempt in range(attempts):
        try:
            dynamodb.update_continuous_backups(
                TableName=table_name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            )
            return
        except ClientError as error:
            # A table created moments ago refuses this until its continuous backups are ready.
            if error_code(error) != "ContinuousBackupsUnavailableException" or attempt == attempts - 1:
                raise
            sleep(5)


def ensure_table_encryption(dynamodb: Any, table_name: str) -> None:
    """Encrypt the table with the AWS-managed KMS key, as chalicelib.store.schema creates it, unless it is."""
    table = dynamodb.describe_table(TableName=table_name)["Table"]
    if table.get("SSEDescription", {}).get("Status") in ("ENABLED", "ENABLING", "UPDATING"):
        return
    dynamodb.update_table(TableName=table_name, SSESpecification={"Enabled": True, "SSEType": "KMS"})
    # The table is UPDATING for a while and refuses further updates until it is ACTIVE again.
    _wait_until_active(dynamodb, table_name)


def ensure_deletion_protection(dynamodb: Any, table_name: str) -> None:
    """Turn on deletion protection unless it is on; it is never turned off here."""
    if dynamodb.describe_table(TableName=table_name)["Table"].get("DeletionProtectionEnabled"):
        return
    dynamodb.update_table(TableName=table_name, DeletionProtectionEnabled=True)
    _wait_until_active(dynamodb, table_name)


def ensure_table_tags(dynamodb: Any, table_name: str, tags: dict[str, str]) -> str:
    """Give the table the tags it lacks; returns the table's ARN."""
    arn = dynamodb.describe_table(TableName=table_name)["Table"]["TableArn"]
    have = {tag["Key"]: tag["Value"] for tag in _paginate_tags(dynamodb, arn)}
    missing = _missing_tags(have, tags)
    if missing:
        dynamodb.tag_resource(ResourceArn=arn, Tags=_tag_list(missing))
    return arn


def _paginate_tags(dynamodb: Any, arn: str) -> Iterator[dict[str, str]]:
    # ListTagsOfResource has no paginator in botocore; follow NextToken by hand.
    request: dict[str, Any] = {"ResourceArn": arn}
    while True:
        page = dynamodb.list_tags_of_resource(**request)
        yield from page.get("Tags", [])
        if not page.get("NextToken"):
            return
        request["NextToken"] = page["NextToken"]


def ensure_ttl(dynamodb: Any, table_name: str, attribute: str = TTL_ATTRIBUTE) -> None:
    """Turn on DynamoDB TTL on attribute unless it is already on.

    A table has one TTL attribute, and DynamoDB refuses to move it while TTL is on; that case
    is refused here with what to do, rather than left to AWS's error.
    """
    description = dynamodb.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
    status, current = description.get("TimeToLiveStatus"), description.get("AttributeName")
    if status in ("ENABLED", "ENABLING"):
        if current == attribute:
            return
        raise ProvisioningError(
            f"the table {table_name} has TTL on {current!r}, but the application expires items by {attribute!r}; "
            f"turn TTL off (aws dynamodb update-time-to-live --table-name {table_name} "
            f"--time-to-live-specification Enabled=false,AttributeName={current}) and run this again "
            "once DynamoDB allows it (up to an hour later)"
        )
    dynamodb.update_time_to_live(
        TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute}
    )


def find_user_pool(cognito: Any, pool_name: str) -> str | None:
    """The id of the user pool called pool_name, or None."""
    for pool in paginate(cognito, "list_user_pools", "UserPools", PaginationConfig={"PageSize": 60}):
        if pool["Name"] == pool_name:
            return pool["Id"]
    return None


def ensure_user_pool(
    cognito: Any, pool_name: str, tags: dict[str, str] | None = None, deletion_protection: bool = False
) -> str:
    """The id of the user pool called pool_name, created (with tags) if there is none.

    deletion_protection creates a new pool protected; ensure_user_pool_deletion_protection
    protects one that exists.
    """
    pool_id = find_user_pool(cognito, pool_name)
    if pool_id is not None:
        return pool_id
    extra: dict[str, Any] = {"UserPoolTags": tags} if tags else {}
    if deletion_protection:
        extra["DeletionProtection"] = "ACTIVE"
    # Tenants are machines using client credentials: nobody signs up, so only admins create users.
    pool = cognito.create_user_pool(
        PoolName=pool_name, AdminCreateUserConfig={"AllowAdminCreateUserOnly": True}, **extra
    )
    return pool["UserPool"]["Id"]


def ensure_user_pool_deletion_protection(cognito: Any, pool_id: str) -> None:
    """Turn on the user pool's deletion protection unless it is on; it is never turned off here.

    UpdateUserPool resets every setting it is not given (the feature plan among them), so the
    pool's current settings are passed back with the one change.
    """
    pool = cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    if pool.get("DeletionProtection") == "ACTIVE":
        return
    updatable = cognito.meta.service_model.operation_model("UpdateUserPool").input_shape.members
    settings = {name: value for name, value in pool.items() if name in updatable}
    # DescribeUserPool reports the deprecated UnusedAccountValidityDays beside its replacement,
    # TemporaryPasswordValidityDays, and UpdateUserPool refuses to be given both.
    password_policy = settings.get("Policies", {}).get("PasswordPolicy", {})
    if "TemporaryPasswordValidityDays" in password_policy and "AdminCreateUserConfig" in settings:
        admin = settings["AdminCreateUserConfig"]
        settings["AdminCreateUserConfig"] = {k: v for k, v in admin.items() if k != "UnusedAccountValidityDays"}
    cognito.update_user_pool(**settings, UserPoolId=pool_id, DeletionProtection="ACTIVE")


def ensure_user_pool_tags(cognito: Any, pool_id: str, tags: dict[str, str]) -> None:
    """Give the user pool the tags it lacks."""
    pool = cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    missing = _missing_tags(pool.get("UserPoolTags") or {}, tags)
    if missing:
        cognito.tag_resource(ResourceArn=pool["Arn"], Tags=missing)


def user_pool_domain(cognito: Any, pool_id: str) -> str | None:
    """The prefix of the user pool's hosted domain, or None if it has none."""
    return cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"].get("Domain") or None


def ensure_user_pool_domain(cognito: Any, pool_id: str, domain_prefix: str) -> str:
    """The pool's hosted domain (where /oauth2/token is), created with domain_prefix if it has none.

    A pool has at most one domain, so an existing one is returned whatever domain_prefix says.
    """
    current = user_pool_domain(cognito, pool_id)
    if current:
        return current
    owner = cognito.describe_user_pool_domain(Domain=domain_prefix)["DomainDescription"]
    if owner:
        raise ProvisioningError(f"the Cognito domain prefix {domain_prefix!r} is taken; choose another one")
    try:
        cognito.create_user_pool_domain(UserPoolId=pool_id, Domain=domain_prefix)
    except ClientError as error:
        # Prefixes are unique per region across all accounts, and some words are reserved.
        message = error.response.get("Error", {}).get("Message", error_code(error))
        raise ProvisioningError(f"cannot create the Cognito domain {domain_prefix!r}: {message}") from None
    return domain_prefix


def ensure_resource_server(cognito: Any, pool_id: str, identifier: str, scopes: Iterable[str] = SCOPES) -> list[str]:
    """Create or update the resource server and return its full scope names ("identifier/scope")."""
    scope_list = [{"ScopeName": scope, "ScopeDescription": f"{scope} of the tenant API"} for scope in scopes]
    try:
        current = cognito.describe_resource_server(UserPoolId=pool_id, Identifier=identifier)["ResourceServer"]
    except ClientError as error:
        if error_code(error) != "ResourceNotFoundException":
            raise
        cognito.create_resource_server(UserPoolId=pool_id, Identifier=identifier, Name=identifier, Scopes=scope_list)
    else:
        if sorted(s["ScopeName"] for s in current.get("Scopes", [])) != sorted(s["ScopeName"] for s in scope_list):
            cognito.update_resource_server(
                UserPoolId=pool_id, Identifier=identifier, Name=identifier, Scopes=scope_list
            )
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


def _apigateway_arn(apigateway: Any, path: str) -> str:
    return f"arn:{apigateway.meta.partition}:apigateway:{apigateway.meta.region_name}::{path}"


def _ensure_apigateway_tags(apigateway: Any, resource: dict[str, Any], path: str, tags: dict[str, str] | None) -> None:
    missing = _missing_tags(resource.get("tags") or {}, tags or {})
    if missing:
        apigateway.tag_resource(resourceArn=_apigateway_arn(apigateway, path), tags=missing)


def find_usage_plans(apigateway: Any, prefix: str) -> dict[str, str]:
    """The ids of the tiers' usage plans that exist, by tier name; a tier without one is left out. Only reads."""
    existing = {plan["name"]: plan["id"] for plan in paginate(apigateway, "get_usage_plans", "items")}
    names = {tier.name: usage_plan_name(prefix, tier) for tier in TIERS.values()}
    return {tier: existing[name] for tier, name in names.items() if name in existing}


def ensure_usage_plan(
    apigateway: Any,
    name: str,
    tier: Tier,
    plan: dict[str, Any] | None,
    api_stages: Iterable[str] = (),
    tags: dict[str, str] | None = None,
) -> str:
    """tier's usage plan, made or brought to the tier's rate, burst and monthly quota; returns its id.

    plan is the plan named name as GetUsagePlans lists it, or None when there is none.
    api_stages ("apiId:stage") binds it to a deployed API; tags are added where missing.
    """
    stages = list(api_stages)
    if plan is None:
        created = apigateway.create_usage_plan(
            name=name,
            description=f"{tier.name} tier: {tier.rate_per_second:g} req/s, burst {tier.burst}",
            throttle={"rateLimit": float(tier.rate_per_second), "burstLimit": tier.burst},
            quota={"limit": tier.monthly_quota, "period": "MONTH"},
            apiStages=[{"apiId": s.split(":")[0], "stage": s.split(":")[1]} for s in stages],
            **({"tags": tags} if tags else {}),
        )
        return str(created["id"])
    patch = _usage_plan_patch(plan, tier, stages)
    if patch:
        apigateway.update_usage_plan(usagePlanId=plan["id"], patchOperations=patch)
    _ensure_apigateway_tags(apigateway, plan, f"/usageplans/{plan['id']}", tags)
    return str(plan["id"])


def ensure_usage_plans(
    apigateway: Any, prefix: str, api_stages: Iterable[str] = (), tags: dict[str, str] | None = None
) -> dict[str, str]:
    """One usage plan per tier (ensure_usage_plan); returns plan ids by tier name."""
    stages = list(api_stages)
    existing = {plan["name"]: plan for plan in paginate(apigateway, "get_usage_plans", "items")}
    plan_ids = {}
    for tier in TIERS.values():
        name = usage_plan_name(prefix, tier)
        plan_ids[tier.name] = ensure_usage_plan(apigateway, name, tier, existing.get(name), stages, tags)
    return plan_ids


def _as_document(policy: Any) -> Any:
    # boto3 decodes IAM's URL-encoded policy documents; a raw string is decoded here the same way.
    return json.loads(urllib.parse.unquote(policy)) if isinstance(policy, str) else policy


def ensure_role(
    iam: Any,
    name: str,
    *,
    trust: dict[str, Any],
    policy_name: str,
    policy: dict[str, Any],
    description: str,
    max_session_seconds: int,
    tags: dict[str, str],
) -> str:
    """The ARN of the role called name, with exactly this trust policy and this inline policy.

    A role that exists keeps its identity (sessions and CloudTrail history refer to it); only a
    trust, policy, session length, description or tag that differs is corrected, and any other
    inline policy or attached managed policy is removed, so that the role may do what policy allows
    and nothing more.
    """
    try:
        role = iam.get_role(RoleName=name)["Role"]
    except ClientError as error:
        if error_code(error) != "NoSuchEntity":
            raise
        role = iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(trust),
            Description=description,
            MaxSessionDuration=max_session_seconds,
            Tags=_tag_list(tags),
        )["Role"]
    else:
        if _as_document(role["AssumeRolePolicyDocument"]) != trust:
            iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
        if role.get("MaxSessionDuration") != max_session_seconds or role.get("Description") != description:
            iam.update_role(RoleName=name, Description=description, MaxSessionDuration=max_session_seconds)
        have = {tag["Key"]: tag["Value"] for tag in role.get("Tags", [])}
        missing = _missing_tags(have, tags)
        if missing:
            iam.tag_role(RoleName=name, Tags=_tag_list(missing))
    try:
        current = _as_document(iam.get_role_policy(RoleName=name, PolicyName=policy_name)["PolicyDocument"])
    except ClientError as error:
        if error_code(error) != "NoSuchEntity":
            raise
        current = None
    if current != policy:
        iam.put_role_policy(RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(policy))
    _remove_policies(iam, name, keep=policy_name)
    return role["Arn"]


def _remove_policies(iam: Any, name: str, *, keep: str | None = None) -> None:
    # A policy added by hand, inline or managed (AdministratorAccess, say), widens what the role may
    # do however right its own policy is; IAM also refuses to delete a role with a policy still
    # attached. A managed policy is detached, never deleted: it is not the role's, and may be
    # attached elsewhere.
    for policy_name in list(paginate(iam, "list_role_policies", "PolicyNames", RoleName=name)):
        if policy_name != keep:
            iam.delete_role_policy(RoleName=name, PolicyName=policy_name)
    for attached in list(paginate(iam, "list_attached_role_policies", "AttachedPolicies", RoleName=name)):
        iam.detach_role_policy(RoleName=name, PolicyArn=attached["PolicyArn"])


def ensure_tenant_access_role(
    iam: Any, *, partition: str, region: str, account: str, resource_prefix: str, table_name: str, tags: dict[str, str]
) -> str:
    """The ARN of the stage's tenant-access role, made from its one definition (scripts.tenant_access_role)."""
    return ensure_role(
        iam,
        tenant_access_role.role_name(resource_prefix),
        trust=tenant_access_role.trust_policy(
            tenant_access_role.account_root_arn(partition, account),
            tenant_access_role.handler_role_arn(partition, account, resource_prefix),
        ),
        policy_name=tenant_access_role.POLICY_NAME,
        policy=tenant_access_role.access_policy(f"arn:{partition}:dynamodb:{region}:{account}:table/{table_name}"),
        description=tenant_access_role.DESCRIPTION,
        max_session_seconds=tenant_access_role.MAX_SESSION_SECONDS,
        tags=tags,
    )


def delete_role(iam: Any, name: str) -> bool:
    """Delete the role, its inline policies and its managed policies' attachments; False if there was no such role."""
    try:
        _remove_policies(iam, name)
    except ClientError as error:
        if error_code(error) != "NoSuchEntity":
            raise
        return False
    iam.delete_role(RoleName=name)
    return True


def _describe_secret(secretsmanager: Any, name: str) -> dict[str, Any] | None:
    try:
        return secretsmanager.describe_secret(SecretId=name)
    except ClientError as error:
        if error_code(error) != "ResourceNotFoundException":
            raise
        return None


def _revive_secret(secretsmanager: Any, described: dict[str, Any], tags: dict[str, str]) -> None:
    # A secret scheduled for deletion keeps its name until it is gone; restoring it is the only way back.
    if described.get("DeletedDate"):
        secretsmanager.restore_secret(SecretId=described["ARN"])
    have = {tag["Key"]: tag["Value"] for tag in described.get("Tags", [])}
    missing = _missing_tags(have, tags)
    if missing:
        secretsmanager.tag_resource(SecretId=described["ARN"], Tags=_tag_list(missing))


def ensure_generated_secret(secretsmanager: Any, name: str, tags: dict[str, str], min_length: int = 32) -> str:
    """The ARN of the secret called name, created once with a random value that is never shown.

    An existing secret keeps its value (the pagination key must not change under issued tokens),
    but one shorter than min_length is refused, as the application would refuse it.
    """
    described = _describe_secret(secretsmanager, name)
    if described is None:
        created = secretsmanager.create_secret(
            Name=name,
            Description="Signs pagination tokens; generated by bootstrap",
            SecretString=secrets.token_urlsafe(GENERATED_SECRET_BYTES),
            Tags=_tag_list(tags),
        )
        return created["ARN"]
    _revive_secret(secretsmanager, described, tags)
    value = secretsmanager.get_secret_value(SecretId=described["ARN"])["SecretString"]
    if len(value.strip()) < min_length:
        raise ProvisioningError(f"the secret {name} is shorter than {min_length} characters; replace its value")
    return described["ARN"]


def put_secret_json(secretsmanager: Any, name: str, value: dict[str, str], tags: dict[str, str]) -> str:
    """Make value (as JSON) the secret's current version unless it already is; returns the secret's ARN."""
    document = json.dumps(value, sort_keys=True)
    described = _describe_secret(secretsmanager, name)
    if described is None:
        return secretsmanager.create_secret(Name=name, SecretString=document, Tags=_tag_list(tags))["ARN"]
    _revive_secret(secretsmanager, described, tags)
    if read_secret_json(secretsmanager, name) != value:
        secretsmanager.put_secret_value(SecretId=described["ARN"], SecretString=document)
    return described["ARN"]


def read_secret_json(secretsmanager: Any, name: str) -> dict[str, Any] | None:
    """The secret's current JSON value, or None if there is no such secret (or it is being deleted)."""
    try:
        value = secretsmanager.get_secret_value(SecretId=name)["SecretString"]
    except ClientError as error:
        # InvalidRequestException: the secret is scheduled for deletion.
        if error_code(error) in ("ResourceNotFoundException", "InvalidRequestException"):
            return None
        raise
    return json.loads(value)


def secret_arn(secretsmanager: Any, name: str) -> str | None:
    """The ARN of a live secret called name, or None."""
    described = _describe_secret(secretsmanager, name)
    return described["ARN"] if described and not described.get("DeletedDate") else None


def schedule_secret_deletion(secretsmanager: Any, name: str, recovery_days: int) -> bool:
    """Schedule the secret's deletion after recovery_days (7 to 30); False if there was nothing to delete."""
    described = _describe_secret(secretsmanager, name)
    if described is None or described.get("DeletedDate"):
        return False
    secretsmanager.delete_secret(SecretId=described["ARN"], RecoveryWindowInDays=recovery_days)
    return True


def client_settings(scopes: list[str], access_token_minutes: int = ACCESS_TOKEN_MINUTES) -> dict[str, Any]:
    """A tenant app client's OAuth settings: client credentials only, with these scopes and token lifetime."""
    return {
        "AllowedOAuthFlows": [CLIENT_CREDENTIALS],
        "AllowedOAuthFlowsUserPoolClient": True,
        "AllowedOAuthScopes": scopes,
        "ExplicitAuthFlows": ["ALLOW_REFRESH_TOKEN_AUTH"],
        "SupportedIdentityProviders": ["COGNITO"],
        "AccessTokenValidity": access_token_minutes,
        "TokenValidityUnits": {"AccessToken": "minutes"},
        "PreventUserExistenceErrors": "ENABLED",
        "EnableTokenRevocation": True,
    }


def list_app_clients(cognito: Any, pool_id: str) -> list[tuple[str, str]]:
    """Every app client of the pool as (name, client id)."""
    return [
        (client["ClientName"], client["ClientId"])
        for client in paginate(cognito, "list_user_pool_clients", "UserPoolClients", UserPoolId=pool_id)
    ]


def _find_app_client(cognito: Any, pool_id: str, client_name: str) -> str | None:
    return next((client_id for name, client_id in list_app_clients(cognito, pool_id) if name == client_name), None)


def create_app_client(
    cognito: Any, pool_id: str, client_name: str, scopes: list[str], access_token_minutes: int = ACCESS_TOKEN_MINUTES
) -> AppClient:
    """A new client-credentials app client with a generated secret and the given scopes."""
    created = cognito.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName=client_name,
        GenerateSecret=True,
        **client_settings(scopes, access_token_minutes),
    )["UserPoolClient"]
    return AppClient(created["ClientId"], created["ClientSecret"])


def ensure_app_client(
    cognito: Any, pool_id: str, client_name: str, scopes: list[str], access_token_minutes: int = ACCESS_TOKEN_MINUTES
) -> AppClient:
    """A client-credentials app client with a secret and the given scopes, created or brought up to date."""
    settings = client_settings(scopes, access_token_minutes)
    client_id = _find_app_client(cognito, pool_id, client_name)
    if client_id is None:
        return create_app_client(cognito, pool_id, client_name, scopes, access_token_minutes)
    # UpdateUserPoolClient resets every setting it is not given, so all of them are passed.
    cognito.update_user_pool_client(UserPoolId=pool_id, ClientId=client_id, ClientName=client_name, **settings)
    described = cognito.describe_user_pool_client(UserPoolId=pool_id, ClientId=client_id)["UserPoolClient"]
    return AppClient(client_id, described["ClientSecret"])


def app_client(cognito: Any, pool_id: str, client_id: str) -> AppClient | None:
    """An app client's id and secret, as Cognito returns them to whoever may describe it; None if it is gone."""
    described = _describe_app_client(cognito, pool_id, client_id)
    return AppClient(client_id, described["ClientSecret"]) if described else None


def app_client_named(cognito: Any, pool_id: str, client_name: str) -> AppClient | None:
    """The app client called client_name (a tenant's is named by its tenant id), if there is one."""
    client_id = _find_app_client(cognito, pool_id, client_name)
    return app_client(cognito, pool_id, client_id) if client_id else None


def _describe_app_client(cognito: Any, pool_id: str, client_id: str) -> dict[str, Any] | None:
    try:
        return cognito.describe_user_pool_client(UserPoolId=pool_id, ClientId=client_id)["UserPoolClient"]
    except ClientError as error:
        if error_code(error) != "ResourceNotFoundException":
            raise
        return None


def _setting_differs(have: Any, want: Any) -> bool:
    if isinstance(want, dict):
        return any(_setting_differs((have or {}).get(key), value) for key, value in want.items())
    if isinstance(want, list):
        return sorted(have or []) != sorted(want)
    return have != want


def ensure_app_client_settings(
    cognito: Any, pool_id: str, client_id: str, scopes: list[str], access_token_minutes: int = ACCESS_TOKEN_MINUTES
) -> AppClient | None:
    """The app client client_id, its settings repaired only if they drifted; None if it does not exist."""
    described = _describe_app_client(cognito, pool_id, client_id)
    if described is None:
        return None
    settings = client_settings(scopes, access_token_minutes)
    if any(_setting_differs(described.get(name), value) for name, value in settings.items()):
        cognito.update_user_pool_client(
            UserPoolId=pool_id, ClientId=client_id, ClientName=described["ClientName"], **settings
        )
    return AppClient(client_id, described["ClientSecret"])


def delete_app_client(cognito: Any, pool_id: str, client_id: str) -> bool:
    """Delete an app client; False if it was already gone."""
    try:
        cognito.delete_user_pool_client(UserPoolId=pool_id, ClientId=client_id)
    except ClientError as error:
        if error_code(error) != "ResourceNotFoundException":
            raise
        return False
    return True


def _find_api_key(apigateway: Any, name: str) -> dict[str, Any] | None:
    keys = paginate(apigateway, "get_api_keys", "items", nameQuery=name, includeValues=True)
    return next((key for key in keys if key["name"] == name), None)


def find_api_key(apigateway: Any, name: str) -> ApiKey | None:
    """The API key called name, or None."""
    key = _find_api_key(apigateway, name)
    return ApiKey(key["id"], key["value"]) if key else None


def ensure_api_key(apigateway: Any, name: str, tags: dict[str, str] | None = None) -> ApiKey:
    """The enabled API key called name, created (with tags) if there is none."""
    key = _find_api_key(apigateway, name)
    if key is not None:
        _ensure_apigateway_tags(apigateway, key, f"/apikeys/{key['id']}", tags)
    else:
        key = apigateway.create_api_key(name=name, enabled=True, **({"tags": tags} if tags else {}))
    return ApiKey(key["id"], key["value"])


def delete_api_key(apigateway: Any, key_id: str, plan_ids: Iterable[str]) -> bool:
    """Take the key out of the usage plans and delete it; False if it was already gone."""
    for plan_id in plan_ids:
        if key_id in _plan_key_ids(apigateway, plan_id):
            apigateway.delete_usage_plan_key(usagePlanId=plan_id, keyId=key_id)
    try:
        apigateway.delete_api_key(apiKey=key_id)
    except ClientError as error:
        if error_code(error) != "NotFoundException":
            raise
        return False
    return True


def api_key_name(prefix: str, tenant_id: str) -> str:
    """The name of a tenant's own API key."""
    return f"{prefix}-{tenant_id}"


def _plan_key_ids(apigateway: Any, plan_id: str) -> set[str]:
    return {key["id"] for key in paginate(apigateway, "get_usage_plan_keys", "items", usagePlanId=plan_id)}


def attach_api_key(apigateway: Any, key_id: str, plan_id: str, all_plan_ids: Iterable[str]) -> None:
    """Put the key in plan_id and in no other of all_plan_ids (a tier change moves it)."""
    # API Gateway lets a key be in one plan per API stage, so it leaves the others first.
    for other in dict.fromkeys(all_plan_ids):
        if other != plan_id and key_id in _plan_key_ids(apigateway, other):
            apigateway.delete_usage_plan_key(usagePlanId=other, keyId=key_id)
    # plan_id is checked even when all_plan_ids does not name it, so the key always lands there.
    if key_id not in _plan_key_ids(apigateway, plan_id):
        apigateway.create_usage_plan_key(usagePlanId=plan_id, keyId=key_id, keyType="API_KEY")


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
    tags: dict[str, str] | None = None,
    access_token_minutes: int = ACCESS_TOKEN_MINUTES,
) -> TenantCredentials:
    """Give a tenant its app client, its own API key in its tier's usage plan, and its registry record.

    A rerun keeps the tenant's status, so onboarding again does not reactivate a suspended tenant.
    """
    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}; expected one of {', '.join(TIERS)}")
    client = ensure_app_client(cognito, pool_id, tenant_id, scopes, access_token_minutes)
    key = ensure_api_key(apigateway, api_key_name(key_prefix, tenant_id), tags)
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
