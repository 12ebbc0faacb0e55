"""The Terraform JSON files that complete `chalice package --pkg-format terraform` for a stage.

Chalice's chalice.tf.json holds the functions, their roles and the REST API. Terraform merges
every *.tf.json of a folder, so these functions build the rest beside it (table, identity,
usage plans, registry, secret, the tenant-access role, monitoring) and an override file that
adjusts Chalice's own blocks. Everything is rendered from chalicelib's definitions, so a tier, a threshold or a key
shape changes in one place only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any

from chalicelib.store import keys
from chalicelib.store.dynamodb import to_item
from chalicelib.store.registry import ACTIVE, STATUSES, TenantRecord
from chalicelib.store.schema import TTL_ATTRIBUTE, table_definition
from chalicelib.tenancy import SCOPES
from chalicelib.tiers import TIERS, Tier
from chalicelib.web.gateway import gateway_responses
from scripts import monitoring, tenant_access_role

# Chalice's own resource names in chalice.tf.json, and the local holding the REST API's body.
REST_API = "rest_api"
API_HANDLER = "api_handler"
CHALICE_DATA = "chalice"
SWAGGER_LOCAL = "chalice_api_swagger"

# Names of the resources these files add.
TABLE = "tenant_table"
USER_POOL = "tenants"
RESOURCE_SERVER = "tenant_api"
POOL_DOMAIN = "tenants"
TENANT = "tenant"
STAGE = "rest_api"
SECRET = "pagination"
ALARM_TOPIC = "alarms"
API_GATEWAY_ACCOUNT = "cloudwatch"
ACCESS_LOGS = "api_access"
EXECUTION_LOGS = "api_execution"
TENANT_ACCESS = "tenant_access"

LOG_RETENTION_DAYS = 7
# The signing key's length in characters; chalicelib.config refuses anything under 32.
PAGINATION_SECRET_LENGTH = 64

# Checks that do not apply, and why. Each reason is written next to the resource it concerns
# ("//" comments); scripts/deploy/terraform/package.py --checkov accepts a failed check only when
# its resource carries one, since checkov's Terraform JSON runner reads no skip comments itself.
CHECKOV_SKIPS: dict[str, str] = {
    "CKV_AWS_119": "SSE uses the AWS managed key (aws/dynamodb); a customer managed key adds cost and a key "
    "policy without narrowing who can read the table, which IAM already does",
    "CKV_AWS_149": "encrypted with the AWS managed key (aws/secretsmanager); only the stage's API handler may read it",
    "CKV2_AWS_57": "rotating the pagination key would invalidate every outstanding next_token; tokens expire "
    "after 24 hours and `terraform apply -replace=random_password.pagination` replaces the key when needed",
    "CKV_AWS_26": "CloudWatch alarms cannot publish to a topic encrypted with the AWS managed SNS key; the "
    "notifications carry alarm names and states only",
    "CKV_AWS_158": "CloudWatch Logs encrypts log data at rest by default; the logs carry no secrets",
    "CKV_AWS_338": "seven days of logs is the design's retention; metrics, alarms and traces cover longer views",
    "CKV_AWS_120": "responses are per tenant and per token; a stage cache would need the caller in every "
    "cache key and would serve stale stock",
    "CKV_AWS_225": "responses are per tenant and per token; a stage cache would need the caller in every "
    "cache key and would serve stale stock",
    "CKV2_AWS_51": "clients authenticate with OAuth 2.0 client credentials and per-tenant API keys, not mTLS",
    "CKV_AWS_116": "API Gateway invokes both functions synchronously; a dead-letter queue only receives failed "
    "asynchronous invocations",
    "CKV_AWS_117": "the functions call only DynamoDB, STS, Cognito and Secrets Manager endpoints; a VPC would add NAT "
    "cost and cold-start time without narrowing what they can reach",
    "CKV_AWS_115": "reserved concurrency needs account headroom a new account lacks; usage plans cap each tenant "
    "at the gateway and the lambda-throttles alarm watches the account limit",
    "CKV_AWS_272": "Terraform uploads the zip chalice package built from this repository; code signing would "
    "need a Signer profile and a signing step that Chalice's packager does not have",
    "CKV_AWS_173": "the environment holds names and ARNs only (the pagination key is in Secrets Manager); Lambda "
    "encrypts it at rest with the AWS managed key",
    "CKV2_AWS_4": "outside protected stages per-route metrics are off to save their cost; errors are still "
    "logged, and the stage metrics and access logs cover the rest",
    "CKV2_AWS_29": "a WAF web ACL is an account-level choice with its own cost; usage plans throttle each "
    "tenant and the authorizer refuses unknown callers",
}


@dataclass(frozen=True)
class TerraformStage:
    """What the Terraform files need to know of one stage."""

    deployment: monitoring.Deployment
    resource_server_id: str
    resource_prefix: str
    tags: dict[str, str]
    usage_plan_names: dict[str, str]
    app_client_settings: dict[str, Any]
    protected: bool


# --- references and literals -------------------------------------------------------------


def ref(resource_type: str, name: str, attribute: str) -> str:
    """A Terraform interpolation of a resource's attribute."""
    return f"${{{resource_type}.{name}.{attribute}}}"


def literal(value: Any) -> Any:
    """value with every string escaped so Terraform reads it verbatim, not as a template."""
    if isinstance(value, str):
        return value.replace("${", "$${").replace("%{", "%%{")
    if isinstance(value, list):
        return [literal(item) for item in value]
    if isinstance(value, dict):
        return {name: literal(item) for name, item in value.items()}
    return value


def checkov_skips(*check_ids: str) -> dict[str, list[str]]:
    """A "//" comment property (Terraform ignores it) carrying checkov skips and their reasons."""
    return {"//": [f"checkov:skip={check_id}:{CHECKOV_SKIPS[check_id]}" for check_id in check_ids]}


def _snake(name: str) -> str:
    # AWS API names to Terraform argument names: AllowedOAuthFlows -> allowed_oauth_flows, OKActions -> ok_actions.
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name.replace("OAuth", "Oauth").replace("OK", "Ok")).lower()


def _region() -> str:
    return f"${{data.aws_region.{CHALICE_DATA}.name}}"


def _account() -> str:
    return f"${{data.aws_caller_identity.{CHALICE_DATA}.account_id}}"


def _partition() -> str:
    return f"${{data.aws_partition.{CHALICE_DATA}.partition}}"


# --- providers and variables ---------------------------------------------------------------


def providers_document(stage: TerraformStage) -> dict[str, Any]:
    """The AWS provider: the packaged region, and the stage's tags on every resource for cost allocation."""
    # The dashboard names its region, so the stack must be applied in the region it was packaged for.
    return {"provider": {"aws": {"region": stage.deployment.region, "default_tags": {"tags": stage.tags}}}}


def _tenants_validation() -> list[dict[str, str]]:
    tenant_id = json.dumps(keys.TENANT_ID.pattern)
    tiers = json.dumps(sorted(TIERS))
    statuses = json.dumps(list(STATUSES))
    return [
        {
            "condition": f"${{alltrue([for id in keys(var.tenants) : can(regex({tenant_id}, id))])}}",
            "error_message": "Tenant ids are lowercase letters, digits and hyphens, 1 to 48 characters.",
        },
        {
            "condition": f"${{alltrue([for tenant in values(var.tenants) : contains({tiers}, tenant.tier)])}}",
            "error_message": f"A tenant's tier is one of {', '.join(TIERS)}.",
        },
        {
            "condition": f"${{alltrue([for tenant in values(var.tenants) : contains({statuses}, tenant.status)])}}",
            "error_message": f"A tenant's status is one of {', '.join(STATUSES)}.",
        },
    ]


def variables_document(stage: TerraformStage) -> dict[str, Any]:
    """Inputs: the tenants, where alarms go, the Cognito domain and the API Gateway account setting."""
    tenant_type = (
        f"map(object({{tier = string, status = optional(string, {json.dumps(ACTIVE)}), "
        'display_name = optional(string, "")}))'
    )
    return {
        "variable": {
            "tenants": {
                "description": "Tenants by tenant id: tier, and optionally status (active or suspended) and "
                "display_name. Terraform owns these tenants' registry records, app clients and API keys.",
                "type": tenant_type,
                "default": {},
                "validation": _tenants_validation(),
            },
            "alarm_email": {
                "description": "An e-mail address subscribed to the alarm topic; empty for none.",
                "type": "string",
                "default": "",
            },
            "cognito_domain_prefix": {
                "description": "The Cognito hosted domain prefix for /oauth2/token; empty for "
                f"{stage.resource_prefix}-<account id>. It must be unique in the region.",
                "type": "string",
                "default": "",
            },
            "manage_api_gateway_account": {
                "description": "Whether this stack sets the region's API Gateway CloudWatch role, which access "
                "and execution logs need. Set false where another stack already manages it.",
                "type": "bool",
                "default": True,
            },
        },
        "locals": {
            "cognito_domain_prefix": f'${{var.cognito_domain_prefix != "" ? var.cognito_domain_prefix : '
            f'"{stage.resource_prefix}-{_account()}"}}',
        },
    }


# --- the table and the tenant registry -----------------------------------------------------


def dynamodb_table(definition: dict[str, Any], protected: bool) -> dict[str, Any]:
    """An aws_dynamodb_table from chalicelib.store.schema's CreateTable arguments, with PITR and TTL."""
    known = {
        "TableName",
        "KeySchema",
        "AttributeDefinitions",
        "GlobalSecondaryIndexes",
        "BillingMode",
        "SSESpecification",
    }
    unknown = set(definition) - known
    if unknown:
        raise ValueError(f"table_definition has arguments the Terraform rendering does not know: {sorted(unknown)}")
    key = {part["KeyType"]: part["AttributeName"] for part in definition["KeySchema"]}
    table = {
        "name": definition["TableName"],
        "billing_mode": definition["BillingMode"],
        "hash_key": key["HASH"],
        "attribute": [
            {"name": attribute["AttributeName"], "type": attribute["AttributeType"]}
            for attribute in definition["AttributeDefinitions"]
        ],
        "server_side_encryption": {"enabled": definition["SSESpecification"]["Enabled"]},
        "point_in_time_recovery": {"enabled": True},
        "ttl": {"attribute_name": TTL_ATTRIBUTE, "enabled": True},
        "deletion_protection_enabled": protected,
        **checkov_skips("CKV_AWS_119"),
    }
    if "RANGE" in key:
        table["range_key"] = key["RANGE"]
    indexes = [_global_secondary_index(index) for index in definition.get("GlobalSecondaryIndexes", [])]
    if indexes:
        table["global_secondary_index"] = indexes
    return table


def _global_secondary_index(index: dict[str, Any]) -> dict[str, Any]:
    """A global_secondary_index block of aws_dynamodb_table from CreateTable's index arguments."""
    key = {part["KeyType"]: part["AttributeName"] for part in index["KeySchema"]}
    block = {
        "name": index["IndexName"],
        "hash_key": key["HASH"],
        "projection_type": index["Projection"]["ProjectionType"],
    }
    if "RANGE" in key:
        block["range_key"] = key["RANGE"]
    if "NonKeyAttributes" in index["Projection"]:
        block["non_key_attributes"] = list(index["Projection"]["NonKeyAttributes"])
    return block


# Valid ids that stand in for Terraform expressions while chalicelib.store.keys builds the key strings.
_TENANT_STAND_IN = "terraform-tenant-id"
_CLIENT_STAND_IN = "terraform_client_id"


def tenant_record_expressions() -> dict[str, str]:
    """The Terraform expression giving each TenantRecord field for the tenant each.key."""
    return {
        "tenant_id": "each.key",
        "tier": "each.value.tier",
        "status": "each.value.status",
        "client_id": f"aws_cognito_user_pool_client.{TENANT}[each.key].id",
        "api_key_id": f"aws_api_gateway_api_key.{TENANT}[each.key].id",
        "api_key_value": f"aws_api_gateway_api_key.{TENANT}[each.key].value",
        "display_name": "each.value.display_name",
    }


def _item_template(item: dict[str, str], values: dict[str, str], stand_ins: dict[str, str]) -> str:
    # Attribute values become jsonencode() calls, so any display name stays valid JSON;
    # ids inside key strings are checked by the tenants variable or generated by AWS.
    text = json.dumps(to_item(item), sort_keys=True)
    for name, expression in values.items():
        text = text.replace(json.dumps(f"@{name}@"), f"${{jsonencode({expression})}}")
    for stand_in, expression in stand_ins.items():
        text = text.replace(stand_in, f"${{{expression}}}")
    return text


def tenant_meta_item() -> str:
    """The registry record of a tenant, as the `item` of an aws_dynamodb_table_item."""
    expressions = tenant_record_expressions()
    record_fields = [field.name for field in fields(TenantRecord)]
    if sorted(record_fields) != sorted(expressions):
        raise ValueError("TenantRecord's fields and tenant_record_expressions() differ")
    item = {**keys.tenant_meta_key(_TENANT_STAND_IN), **{name: f"@{name}@" for name in record_fields}}
    return _item_template(item, expressions, {_TENANT_STAND_IN: "each.key"})


def client_lookup_item() -> str:
    """The item that maps a tenant's app client id to the tenant, as an aws_dynamodb_table_item `item`."""
    expressions = tenant_record_expressions()
    item = {**keys.client_lookup_key(_CLIENT_STAND_IN), "tenant_id": "@tenant_id@"}
    return _item_template(item, {"tenant_id": expressions["tenant_id"]}, {_CLIENT_STAND_IN: expressions["client_id"]})


def _table_item(item: str) -> dict[str, Any]:
    key = table_definition("")["KeySchema"]
    key_names = {part["KeyType"]: part["AttributeName"] for part in key}
    return {
        "for_each": "${var.tenants}",
        "table_name": ref("aws_dynamodb_table", TABLE, "name"),
        "hash_key": key_names["HASH"],
        "range_key": key_names["RANGE"],
        "item": item,
    }


def table_document(stage: TerraformStage) -> dict[str, Any]:
    """The single table and the registry items of the tenants in var.tenants."""
    return {
        "resource": {
            "aws_dynamodb_table": {
                TABLE: dynamodb_table(table_definition(stage.deployment.table_name), stage.protected)
            },
            "aws_dynamodb_table_item": {
                "tenant_meta": _table_item(tenant_meta_item()),
                "tenant_client": _table_item(client_lookup_item()),
            },
        }
    }


# --- identity: user pool, resource server, domain, app clients -----------------------------


def _terraform_arguments(boto3_arguments: dict[str, Any]) -> dict[str, Any]:
    # CreateUserPoolClient's names map one to one onto aws_cognito_user_pool_client's.
    arguments = {}
    for name, value in boto3_arguments.items():
        if isinstance(value, dict):
            value = {_snake(key): item for key, item in value.items()}
        arguments[_snake(name)] = value
    return arguments


def app_client(stage: TerraformStage) -> dict[str, Any]:
    """One client-credentials app client with a secret per tenant, settings as scripts/provision.py has them."""
    settings = {name: value for name, value in stage.app_client_settings.items() if name != "AllowedOAuthScopes"}
    return {
        "for_each": "${var.tenants}",
        "name": "${each.key}",
        "user_pool_id": ref("aws_cognito_user_pool", USER_POOL, "id"),
        "generate_secret": True,
        **_terraform_arguments(settings),
        "allowed_oauth_scopes": ref("aws_cognito_resource_server", RESOURCE_SERVER, "scope_identifiers"),
    }


def identity_document(stage: TerraformStage) -> dict[str, Any]:
    """The user pool, the resource server with the API's scopes, the token domain and the tenants' clients."""
    return {
        "resource": {
            "aws_cognito_user_pool": {
                USER_POOL: {
                    "name": stage.resource_prefix,
                    # Tenants are machines using client credentials: nobody signs up.
                    "admin_create_user_config": {"allow_admin_create_user_only": True},
                    "deletion_protection": "ACTIVE" if stage.protected else "INACTIVE",
                }
            },
            "aws_cognito_resource_server": {
                RESOURCE_SERVER: {
                    "identifier": stage.resource_server_id,
                    "name": stage.resource_server_id,
                    "user_pool_id": ref("aws_cognito_user_pool", USER_POOL, "id"),
                    "scope": [
                        {"scope_name": scope, "scope_description": f"{scope} of the tenant API"} for scope in SCOPES
                    ],
                }
            },
            "aws_cognito_user_pool_domain": {
                POOL_DOMAIN: {
                    "domain": "${local.cognito_domain_prefix}",
                    "user_pool_id": ref("aws_cognito_user_pool", USER_POOL, "id"),
                }
            },
            "aws_cognito_user_pool_client": {TENANT: app_client(stage)},
        }
    }


def token_issuer() -> str:
    """The issuer of the pool's access tokens, as TOKEN_ISSUER expects it."""
    return f"https://{ref('aws_cognito_user_pool', USER_POOL, 'endpoint')}"


def token_url() -> str:
    """The pool domain's OAuth 2.0 token endpoint."""
    domain = ref("aws_cognito_user_pool_domain", POOL_DOMAIN, "domain")
    return f"https://{domain}.auth.{_region()}.amazoncognito.com/oauth2/token"


# --- usage plans and API keys --------------------------------------------------------------


def usage_plan(tier: Tier, name: str) -> dict[str, Any]:
    """The usage plan applying tier's rate, burst and monthly quota on the API's stage."""
    return {
        "name": name,
        "description": f"{tier.name} tier: {tier.rate_per_second:g} req/s, burst {tier.burst}",
        "api_stages": [
            {
                "api_id": ref("aws_api_gateway_rest_api", REST_API, "id"),
                "stage": ref("aws_api_gateway_stage", STAGE, "stage_name"),
            }
        ],
        "throttle_settings": {"rate_limit": tier.rate_per_second, "burst_limit": tier.burst},
        "quota_settings": {"limit": tier.monthly_quota, "period": "MONTH"},
    }


def usage_plans_document(stage: TerraformStage) -> dict[str, Any]:
    """One usage plan per tier, one API key per tenant, and each key in its tier's plan."""
    return {
        "locals": {
            "usage_plan_ids": {tier: ref("aws_api_gateway_usage_plan", tier, "id") for tier in TIERS},
        },
        "resource": {
            "aws_api_gateway_usage_plan": {
                tier.name: usage_plan(tier, stage.usage_plan_names[tier.name]) for tier in TIERS.values()
            },
            # One key per tenant: a key shared by a tier would make its tenants throttle each other.
            "aws_api_gateway_api_key": {
                TENANT: {
                    "for_each": "${var.tenants}",
                    "name": f"{stage.resource_prefix}-${{each.key}}",
                    "enabled": True,
                }
            },
            "aws_api_gateway_usage_plan_key": {
                TENANT: {
                    "for_each": "${var.tenants}",
                    "key_id": f"${{aws_api_gateway_api_key.{TENANT}[each.key].id}}",
                    "key_type": "API_KEY",
                    "usage_plan_id": "${local.usage_plan_ids[each.value.tier]}",
                }
            },
        },
    }


# --- the API stage, its logs, and what the API's body carries ------------------------------


def access_log_format() -> str:
    """One JSON line per request, with the tenant the authorizer named (gateway 401/429 never reach Lambda)."""
    fields_ = {
        "request_id": "$context.requestId",
        "time": "$context.requestTime",
        "ip": "$context.identity.sourceIp",
        "method": "$context.httpMethod",
        "path": "$context.path",
        "status": "$context.status",
        "response_length": "$context.responseLength",
        "latency_ms": "$context.responseLatency",
        "tenant_id": "$context.authorizer.tenant_id",
        "tier": "$context.authorizer.tier",
        "api_key_id": "$context.identity.apiKeyId",
        "error": "$context.error.responseType",
        "xray_trace_id": "$context.xrayTraceId",
    }
    return json.dumps(fields_, separators=(",", ":"))


# The OpenAPI extensions API Gateway reads from the imported body.
GATEWAY_RESPONSES_EXTENSION = "x-amazon-apigateway-gateway-responses"
API_KEY_SOURCE_EXTENSION = "x-amazon-apigateway-api-key-source"
API_KEY_SOURCE = "AUTHORIZER"


def gateway_responses_extension() -> dict[str, dict[str, Any]]:
    """chalicelib.web.gateway.gateway_responses() as the body's x-amazon-apigateway-gateway-responses."""
    known = {"statusCode", "responseTemplates", "responseParameters"}
    responses = gateway_responses()
    for response_type, response in responses.items():
        unknown = set(response) - known
        if unknown:
            raise ValueError(
                f"gateway response {response_type} has fields the OpenAPI extension does not take: {sorted(unknown)}"
            )
    return responses


def api_swagger(swagger: str) -> str:
    """Chalice's API definition (local.chalice_api_swagger) with the gateway responses and key source in it.

    The REST API imports this body in overwrite mode, so gateway responses managed beside it
    (aws_api_gateway_gateway_response) would be wiped whenever the body changes; inside it they
    are re-imported with it, as is the key source. The text is a Terraform template (Chalice's
    parts interpolate the functions' ARNs), so what is added is escaped to stay literal.
    """
    document = json.loads(swagger)
    document[API_KEY_SOURCE_EXTENSION] = API_KEY_SOURCE
    document[GATEWAY_RESPONSES_EXTENSION] = literal(gateway_responses_extension())
    return json.dumps(document)


def _api_gateway_account() -> dict[str, Any]:
    role = f"{API_GATEWAY_ACCOUNT}_api_gateway"
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "apigateway.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    count = "${var.manage_api_gateway_account ? 1 : 0}"
    return {
        "aws_iam_role": {
            role: {"count": count, "name_prefix": "api-gateway-cloudwatch-", "assume_role_policy": json.dumps(trust)}
        },
        "aws_iam_role_policy_attachment": {
            role: {
                "count": count,
                "role": f"${{aws_iam_role.{role}[0].name}}",
                "policy_arn": f"arn:{_partition()}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs",
            }
        },
        "aws_api_gateway_account": {
            API_GATEWAY_ACCOUNT: {
                "count": count,
                "cloudwatch_role_arn": f"${{aws_iam_role.{role}[0].arn}}",
                "depends_on": [f"aws_iam_role_policy_attachment.{role}"],
            }
        },
    }


def api_document(stage: TerraformStage, functions: Iterable[str]) -> dict[str, Any]:
    """The API's stage with X-Ray and access logs, its method settings and logging role.

    functions are Chalice's Lambda resource names: no request reaches them before the stage
    exists, so the stage waits for their log groups and the secret they read.
    """
    api_stage = stage.deployment.api_stage
    rest_api_id = ref("aws_api_gateway_rest_api", REST_API, "id")
    stage_logs_skips = ("CKV_AWS_158", "CKV_AWS_338")
    return {
        "resource": {
            "aws_api_gateway_stage": {
                STAGE: {
                    "rest_api_id": rest_api_id,
                    "deployment_id": ref("aws_api_gateway_deployment", REST_API, "id"),
                    "stage_name": api_stage,
                    # Chalice's packager turns on tracing for the functions only; the stage is ours.
                    "xray_tracing_enabled": True,
                    "access_log_settings": {
                        "destination_arn": ref("aws_cloudwatch_log_group", ACCESS_LOGS, "arn"),
                        "format": literal(access_log_format()),
                    },
                    "depends_on": [
                        f"aws_api_gateway_account.{API_GATEWAY_ACCOUNT}",
                        f"aws_secretsmanager_secret_version.{SECRET}",
                        *(f"aws_cloudwatch_log_group.{name}" for name in functions),
                    ],
                    **checkov_skips(
                        "CKV_AWS_120", "CKV2_AWS_51", "CKV2_AWS_29", *([] if stage.protected else ["CKV2_AWS_4"])
                    ),
                }
            },
            "aws_api_gateway_method_settings": {
                "all": {
                    "rest_api_id": rest_api_id,
                    "stage_name": ref("aws_api_gateway_stage", STAGE, "stage_name"),
                    "method_path": "*/*",
                    # Errors only, and never request bodies: they carry tenants' orders. Per-route
                    # metrics are billed per metric, so only protected stages pay for them.
                    "settings": {
                        "logging_level": "ERROR",
                        "data_trace_enabled": False,
                        "metrics_enabled": stage.protected,
                    },
                    "depends_on": [f"aws_cloudwatch_log_group.{EXECUTION_LOGS}"],
                    **checkov_skips("CKV_AWS_225"),
                }
            },
            "aws_cloudwatch_log_group": {
                ACCESS_LOGS: {
                    "name": f"/aws/apigateway/{stage.resource_prefix}/access",
                    "retention_in_days": LOG_RETENTION_DAYS,
                    **checkov_skips(*stage_logs_skips),
                },
                # API Gateway would create this group itself, without retention.
                EXECUTION_LOGS: {
                    "name": f"API-Gateway-Execution-Logs_{rest_api_id}/{api_stage}",
                    "retention_in_days": LOG_RETENTION_DAYS,
                    **checkov_skips(*stage_logs_skips),
                },
            },
            **_api_gateway_account(),
        }
    }


# --- the pagination secret -----------------------------------------------------------------


def pagination_secret_name(stage: TerraformStage) -> str:
    """The secret's name; the API handler's policy file grants reading secrets named like it."""
    return f"{stage.resource_prefix}/pagination"


def secrets_document(stage: TerraformStage) -> dict[str, Any]:
    """The key that signs pagination tokens: a random value kept in Secrets Manager."""
    return {
        "resource": {
            "aws_secretsmanager_secret": {
                SECRET: {
                    "name": pagination_secret_name(stage),
                    "description": "Signs the API's pagination tokens (PAGINATION_SECRET_ARN).",
                    # Deleted at once on every stage, prod included. A recovery window would keep the
                    # name taken for its 7 to 30 days, so an apply after a destroy (or after a prod
                    # destroy that the table's deletion protection stopped halfway) would fail on it,
                    # while what it could recover is worth little: the key only signs next_tokens,
                    # which expire within 24 hours, and a new key merely restarts listings.
                    "recovery_window_in_days": 0,
                    **checkov_skips("CKV_AWS_149", "CKV2_AWS_57"),
                }
            },
            "random_password": {SECRET: {"length": PAGINATION_SECRET_LENGTH, "special": False}},
            "aws_secretsmanager_secret_version": {
                SECRET: {
                    "secret_id": ref("aws_secretsmanager_secret", SECRET, "id"),
                    "secret_string": ref("random_password", SECRET, "result"),
                }
            },
        }
    }


# --- the tenant-access role ----------------------------------------------------------------

# Stand-ins for Terraform expressions while scripts.tenant_access_role builds the policies; none
# holds a character JSON escapes, so each survives json.dumps as it is.
_TABLE_ARN_STAND_IN = "terraform-table-arn"
_ACCOUNT_ROOT_STAND_IN = "terraform-account-root-arn"
_HANDLER_ROLE_STAND_IN = "terraform-handler-role-arn"
_ROLE_REFERENCE = re.compile(r"\$\{aws_iam_role\.(?P<name>[A-Za-z0-9_-]+)\.arn\}")


def policy_json(document: dict[str, Any], expressions: dict[str, str]) -> str:
    """An IAM policy as a Terraform string: IAM's own ${...} variables escaped, each stand-in made its expression."""
    # IAM policy variables (${aws:PrincipalTag/TenantID}) would otherwise be read as Terraform interpolations.
    text = json.dumps(literal(document))
    for stand_in, expression in expressions.items():
        text = text.replace(stand_in, expression)
    return text


def handler_role_arn(stage: TerraformStage, chalice: dict[str, Any]) -> str:
    """The API function's role's ARN: its reference in chalice.tf.json, else the ARN Chalice gives it in the account."""
    resources = chalice.get("resource", {})
    role = resources.get("aws_lambda_function", {}).get(API_HANDLER, {}).get("role", "")
    reference = _ROLE_REFERENCE.fullmatch(role)
    if reference and reference["name"] in resources.get("aws_iam_role", {}):
        return role
    if role.startswith("arn:"):
        return role  # a role the stage names itself (manage_iam_role false)
    return tenant_access_role.handler_role_arn(_partition(), _account(), stage.resource_prefix)


def tenant_access_document(stage: TerraformStage, chalice: dict[str, Any]) -> dict[str, Any]:
    """The role the API function assumes for one tenant at a time, and its one policy (scripts.tenant_access_role)."""
    trust = tenant_access_role.trust_policy(_ACCOUNT_ROOT_STAND_IN, _HANDLER_ROLE_STAND_IN)
    policy = tenant_access_role.access_policy(_TABLE_ARN_STAND_IN)
    return {
        "resource": {
            "aws_iam_role": {
                TENANT_ACCESS: {
                    "name": tenant_access_role.role_name(stage.resource_prefix),
                    "description": literal(tenant_access_role.DESCRIPTION),
                    "max_session_duration": tenant_access_role.MAX_SESSION_SECONDS,
                    "assume_role_policy": policy_json(
                        trust,
                        {
                            _ACCOUNT_ROOT_STAND_IN: tenant_access_role.account_root_arn(_partition(), _account()),
                            _HANDLER_ROLE_STAND_IN: handler_role_arn(stage, chalice),
                        },
                    ),
                }
            },
            "aws_iam_role_policy": {
                TENANT_ACCESS: {
                    "name": tenant_access_role.POLICY_NAME,
                    "role": ref("aws_iam_role", TENANT_ACCESS, "id"),
                    "policy": policy_json(policy, {_TABLE_ARN_STAND_IN: ref("aws_dynamodb_table", TABLE, "arn")}),
                }
            },
        }
    }


# --- monitoring ----------------------------------------------------------------------------


def _dimensions(dimensions: list[dict[str, str]]) -> dict[str, str]:
    return {dimension["Name"]: dimension["Value"] for dimension in dimensions}


def _metric_query(query: dict[str, Any]) -> dict[str, Any]:
    known = {"Id", "Expression", "Label", "ReturnData", "MetricStat", "Period"}
    unknown = set(query) - known
    if unknown:
        raise ValueError(f"metric query has fields the Terraform rendering does not know: {sorted(unknown)}")
    block: dict[str, Any] = {"id": query["Id"], "return_data": query.get("ReturnData", True)}
    if "Expression" in query:
        block["expression"] = literal(query["Expression"])
    if "Label" in query:
        block["label"] = literal(query["Label"])
    if "Period" in query:
        block["period"] = query["Period"]
    if "MetricStat" in query:
        stat = query["MetricStat"]
        metric = stat["Metric"]
        block["metric"] = {
            "namespace": metric["Namespace"],
            "metric_name": metric["MetricName"],
            "dimensions": _dimensions(metric.get("Dimensions", [])),
            "period": stat["Period"],
            "stat": stat["Stat"],
            **({"unit": stat["Unit"]} if "Unit" in stat else {}),
        }
    return block


_ALARM_SCALARS = {
    "AlarmName",
    "AlarmDescription",
    "ComparisonOperator",
    "Threshold",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "TreatMissingData",
    "Namespace",
    "MetricName",
    "Statistic",
    "ExtendedStatistic",
    "Period",
    "Unit",
}


def metric_alarm(definition: dict[str, Any]) -> dict[str, Any]:
    """An aws_cloudwatch_metric_alarm from PutMetricAlarm keyword arguments."""
    alarm: dict[str, Any] = {}
    for name, value in definition.items():
        if name in _ALARM_SCALARS:
            alarm[_snake(name)] = literal(value)
        elif name in ("AlarmActions", "OKActions"):
            alarm[_snake(name)] = value  # Terraform references to the topic, kept as such.
        elif name == "Dimensions":
            alarm["dimensions"] = _dimensions(value)
        elif name == "Metrics":
            alarm["metric_query"] = [_metric_query(query) for query in value]
        else:
            raise ValueError(
                f"alarm {definition.get('AlarmName')} has {name}, which the Terraform rendering does not know"
            )
    return alarm


def _resource_name(name: str, prefix: str) -> str:
    return name.removeprefix(f"{prefix}-").replace("-", "_")


def function_log_groups(deployment: monitoring.Deployment, functions: dict[str, str]) -> dict[str, dict[str, Any]]:
    """A log group with the design's retention per function (Chalice's resource name -> function name)."""
    if sorted(functions.values()) != sorted(deployment.function_names):
        raise ValueError(
            f"chalice packaged functions {sorted(functions.values())} but scripts.monitoring.Deployment "
            f"expects {sorted(deployment.function_names)}: update Deployment.authorizer_names"
        )
    return {
        resource_name: {
            "name": deployment.log_group(function_name),
            "retention_in_days": LOG_RETENTION_DAYS,
            **checkov_skips("CKV_AWS_158", "CKV_AWS_338"),
        }
        for resource_name, function_name in functions.items()
    }


def contributor_insight_rules(
    deployment: monitoring.Deployment, functions: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """scripts.monitoring's Contributor Insights rules, each made after the API function's log group."""
    (log_group,) = [name for name, function_name in functions.items() if function_name == deployment.api_function]
    return {
        _resource_name(rule["RuleName"], deployment.prefix): {
            "rule_name": rule["RuleName"],
            "rule_state": rule["RuleState"],
            "rule_definition": literal(rule["RuleDefinition"]),
            # Made after the group it reads and destroyed before it, a rule never names a group that is not there.
            "depends_on": [f"aws_cloudwatch_log_group.{log_group}"],
        }
        for rule in monitoring.insight_rules(deployment)
    }


# X-Ray's CreateSamplingRule fields and the Terraform arguments they become.
SAMPLING_RULE_ARGUMENTS = {
    "RuleName": "rule_name",
    "ResourceARN": "resource_arn",
    "Priority": "priority",
    "FixedRate": "fixed_rate",
    "ReservoirSize": "reservoir_size",
    "ServiceName": "service_name",
    "ServiceType": "service_type",
    "Host": "host",
    "HTTPMethod": "http_method",
    "URLPath": "url_path",
    "Version": "version",
}


def sampling_rule(stage: TerraformStage) -> dict[str, Any]:
    """scripts.monitoring's X-Ray sampling rule, for this stack's REST API."""
    rule = monitoring.sampling_rule(stage.deployment, ref("aws_api_gateway_rest_api", REST_API, "id"), _partition())
    unknown = set(rule) - set(SAMPLING_RULE_ARGUMENTS)
    if unknown:
        raise ValueError(f"sampling rule fields without a Terraform argument: {sorted(unknown)}")
    arguments = {SAMPLING_RULE_ARGUMENTS[name]: value for name, value in rule.items()}
    # The rule's ARN names the region literally; the stack's region comes from the provider.
    arguments["resource_arn"] = arguments["resource_arn"].replace(f":{stage.deployment.region}:", f":{_region()}:", 1)
    return arguments


def monitoring_document(stage: TerraformStage, functions: dict[str, str]) -> dict[str, Any]:
    """The functions' log groups, dashboard, alarms and their topic, Contributor Insights rules, saved queries, sampling."""
    deployment = stage.deployment
    topic_arn = ref("aws_sns_topic", ALARM_TOPIC, "arn")
    alarms = {
        _resource_name(definition["AlarmName"], deployment.prefix): metric_alarm(definition)
        for definition in monitoring.alarm_definitions(deployment, topic_arn)
    }
    return {
        "resource": {
            "aws_cloudwatch_log_group": function_log_groups(deployment, functions),
            "aws_cloudwatch_dashboard": {
                "main": {
                    "dashboard_name": monitoring.dashboard_name(deployment),
                    "dashboard_body": literal(monitoring.dashboard_json(deployment)),
                }
            },
            "aws_sns_topic": {
                ALARM_TOPIC: {"name": monitoring.alarm_topic_name(deployment), **checkov_skips("CKV_AWS_26")}
            },
            "aws_sns_topic_subscription": {
                "alarm_email": {
                    "count": '${var.alarm_email == "" ? 0 : 1}',
                    "topic_arn": topic_arn,
                    "protocol": "email",
                    "endpoint": "${var.alarm_email}",
                }
            },
            "aws_cloudwatch_metric_alarm": alarms,
            "aws_cloudwatch_contributor_insight_rule": contributor_insight_rules(deployment, functions),
            "aws_cloudwatch_query_definition": saved_queries(deployment),
            "aws_xray_sampling_rule": {"main": sampling_rule(stage)},
        }
    }


def saved_queries(deployment: monitoring.Deployment) -> dict[str, dict[str, Any]]:
    """The saved Logs Insights queries of scripts.monitoring as query definitions."""
    return {
        query["name"].rsplit("/", 1)[-1].replace("-", "_"): {
            "name": query["name"],
            "log_group_names": query["logGroupNames"],
            "query_string": literal(query["queryString"]),
        }
        for query in monitoring.saved_queries(deployment)
    }


# --- outputs -------------------------------------------------------------------------------


def outputs_document() -> dict[str, Any]:
    """What a deployer needs next: URLs, names, ids, and the tenants' credentials (secrets marked sensitive)."""
    clients = f"aws_cognito_user_pool_client.{TENANT}"
    return {
        "output": {
            "api_url": {"value": ref("aws_api_gateway_stage", STAGE, "invoke_url")},
            "token_url": {"value": token_url()},
            "token_issuer": {"value": token_issuer()},
            "table_name": {"value": ref("aws_dynamodb_table", TABLE, "name")},
            "user_pool_id": {"value": ref("aws_cognito_user_pool", USER_POOL, "id")},
            "pagination_secret_arn": {"value": ref("aws_secretsmanager_secret", SECRET, "arn")},
            "alarm_topic_arn": {"value": ref("aws_sns_topic", ALARM_TOPIC, "arn")},
            "tenant_client_ids": {
                "value": f"${{{{for id, client in {clients} : id => client.id}}}}",
            },
            "tenant_client_secrets": {
                "value": f"${{{{for id, client in {clients} : id => client.client_secret}}}}",
                "sensitive": True,
            },
        }
    }


# --- overrides of Chalice's own blocks -----------------------------------------------------

TERRAFORM_VERSION = ">= 1.5"
PROVIDER_VERSIONS = {
    # The package is checked against 5.99.1's schema (scripts/deploy/terraform/schema.py); releases before
    # 2025 lack aws_cloudwatch_contributor_insight_rule, among others.
    "aws": {"source": "hashicorp/aws", "version": ">= 5.99.1, < 6.0"},
    # chalice.tf.json reads data.null_data_source, which null 4 may drop.
    "null": {"source": "hashicorp/null", "version": ">= 3.0, < 4"},
    "random": {"source": "hashicorp/random", "version": "~> 3.6"},
}

_TABLE_ARN = re.compile(r"^arn:[^:]*:dynamodb:[^:]*:[^:]*:table/[^/]+(?P<rest>/.*)?$")
_ROLE_ARN = re.compile(r"^arn:[^:]*:iam::[^:]*:role/(?P<name>[^/]+)$")


def stack_arn(arn: str, resource_prefix: str) -> str:
    """arn with its partition, region and account set to the stack's, whatever the policy file has there.

    The policy file may name "*" or the account bootstrap found; the stack is the account
    Terraform applies to. Services whose ARNs have no region or account (IAM, S3) keep them empty.
    """
    if arn.startswith("arn:aws:secretsmanager:"):
        # The API handler reads one secret, the pagination key: the one this stack creates.
        return ref("aws_secretsmanager_secret", SECRET, "arn")
    table = _TABLE_ARN.match(arn)
    if table:
        return ref("aws_dynamodb_table", TABLE, "arn") + (table["rest"] or "")
    role = _ROLE_ARN.match(arn)
    if role and role["name"] == tenant_access_role.role_name(resource_prefix):
        # The handler may assume exactly the role this stack makes, and Terraform makes it first.
        return ref("aws_iam_role", TENANT_ACCESS, "arn")
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return arn
    parts[1] = _partition()
    parts[3] = _region() if parts[3] else ""
    parts[4] = _account() if parts[4] else ""
    return ":".join(parts)


def narrowed_policy(policy: str, resource_prefix: str) -> str:
    """A function's role policy (from its policy file) with every ARN pinned to this stack's resources."""
    document = json.loads(policy)
    for statement in document["Statement"]:
        resources = statement["Resource"]
        if resources == "*":
            continue  # X-Ray has no resource-level permissions
        statement["Resource"] = (
            [stack_arn(item, resource_prefix) for item in resources]
            if isinstance(resources, list)
            else stack_arn(resources, resource_prefix)
        )
    return json.dumps(document)


def function_environment(variables: dict[str, str]) -> dict[str, str]:
    """The functions' environment with the stack's table, secret, token issuer and URL, and tenant-access role filled in."""
    return {
        **variables,
        "TABLE_NAME": ref("aws_dynamodb_table", TABLE, "name"),
        "PAGINATION_SECRET_ARN": ref("aws_secretsmanager_secret", SECRET, "arn"),
        "TOKEN_ISSUER": token_issuer(),
        "TOKEN_URL": token_url(),
        "TENANT_ACCESS_ROLE_ARN": ref("aws_iam_role", TENANT_ACCESS, "arn"),
    }


def _function_overrides(chalice: dict[str, Any]) -> dict[str, Any]:
    overrides = {}
    for name, function in chalice["resource"]["aws_lambda_function"].items():
        variables = function.get("environment", {}).get("variables", {})
        overrides[name] = {
            **checkov_skips("CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_115", "CKV_AWS_272", "CKV_AWS_173"),
            "environment": {"variables": function_environment(variables)},
        }
    return overrides


def override_document(stage: TerraformStage, chalice: dict[str, Any]) -> dict[str, Any]:
    """chalice_override.tf.json: newer pins, the API's full body, an explicit stage, each role's policy pinned."""
    resources = chalice["resource"]
    return {
        "terraform": {"required_version": TERRAFORM_VERSION, "required_providers": PROVIDER_VERSIONS},
        # The REST API's body: Chalice's definition plus the gateway responses and the key source.
        "locals": {SWAGGER_LOCAL: api_swagger(chalice["locals"][SWAGGER_LOCAL])},
        "resource": {
            # The authorizer names each tenant's own key, so its usage plan applies. The body says so
            # too; the argument agrees with it, so neither undoes the other.
            "aws_api_gateway_rest_api": {
                REST_API: {"api_key_source": API_KEY_SOURCE, "lifecycle": {"create_before_destroy": True}}
            },
            "aws_api_gateway_deployment": {
                REST_API: {
                    # aws_api_gateway_stage.rest_api owns the stage (AWS provider 5), so that tracing,
                    # logs and usage plans attach to a stage Terraform manages.
                    "stage_name": None,
                    "stage_description": None,
                    # Any change to the body (routes, gateway responses, key source) deploys anew.
                    "triggers": {"swagger": f"${{md5(local.{SWAGGER_LOCAL})}}", "api_key_source": API_KEY_SOURCE},
                }
            },
            "aws_lambda_function": _function_overrides(chalice),
            "aws_iam_role_policy": {
                name: {"policy": narrowed_policy(policy["policy"], stage.resource_prefix)}
                for name, policy in resources["aws_iam_role_policy"].items()
            },
        },
        "output": {"EndpointURL": {"value": ref("aws_api_gateway_stage", STAGE, "invoke_url")}},
    }


# --- the whole set -------------------------------------------------------------------------


def packaged_functions(chalice: dict[str, Any]) -> dict[str, str]:
    """Chalice's Lambda resource names and the function names they deploy."""
    return {name: function["function_name"] for name, function in chalice["resource"]["aws_lambda_function"].items()}


def terraform_files(stage: TerraformStage, chalice: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every file to write beside chalice.tf.json, by file name."""
    return {
        "providers.tf.json": providers_document(stage),
        "variables.tf.json": variables_document(stage),
        "table.tf.json": table_document(stage),
        "identity.tf.json": identity_document(stage),
        "usage_plans.tf.json": usage_plans_document(stage),
        "api.tf.json": api_document(stage, packaged_functions(chalice)),
        "secrets.tf.json": secrets_document(stage),
        "tenant_access.tf.json": tenant_access_document(stage, chalice),
        "monitoring.tf.json": monitoring_document(stage, packaged_functions(chalice)),
        "outputs.tf.json": outputs_document(),
        "chalice_override.tf.json": override_document(stage, chalice),
    }


def resource_addresses(documents: Iterable[dict[str, Any]]) -> set[str]:
    """Every "type.name" the documents declare."""
    return {
        f"{resource_type}.{name}"
        for document in documents
        for resource_type, resources in document.get("resource", {}).items()
        for name in resources
    }
