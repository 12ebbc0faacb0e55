"""What every rendered file shares: the stage, the resource names, references, literals and checkov skips."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from scripts import monitoring

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


def terraform_argument_name(name: str) -> str:
    """An AWS API field name as the Terraform argument it becomes."""
    # AWS API names to Terraform argument names: AllowedOAuthFlows -> allowed_oauth_flows, OKActions -> ok_actions.
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name.replace("OAuth", "Oauth").replace("OK", "Ok")).lower()


def region_expression() -> str:
    """The packaged region, as Terraform reads it from Chalice's data source."""
    return f"${{data.aws_region.{CHALICE_DATA}.name}}"


def account_expression() -> str:
    """The applying account's id, as Terraform reads it from Chalice's data source."""
    return f"${{data.aws_caller_identity.{CHALICE_DATA}.account_id}}"


def partition_expression() -> str:
    """The AWS partition (aws, aws-cn, aws-us-gov), as Terraform reads it from Chalice's data source."""
    return f"${{data.aws_partition.{CHALICE_DATA}.partition}}"
