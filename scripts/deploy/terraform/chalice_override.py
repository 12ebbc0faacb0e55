"""chalice_override.tf.json: what the stack changes in Chalice's own blocks."""

from __future__ import annotations

import json
import re
from typing import Any

from scripts import tenant_access_role
from scripts.deploy.terraform.api import API_KEY_SOURCE, api_swagger
from scripts.deploy.terraform.blocks import (
    REST_API,
    SECRET,
    STAGE,
    SWAGGER_LOCAL,
    TABLE,
    TENANT_ACCESS,
    TerraformStage,
    account_expression,
    checkov_skips,
    partition_expression,
    ref,
    region_expression,
)
from scripts.deploy.terraform.identity import token_issuer, token_url

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
    parts[1] = partition_expression()
    parts[3] = region_expression() if parts[3] else ""
    parts[4] = account_expression() if parts[4] else ""
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
