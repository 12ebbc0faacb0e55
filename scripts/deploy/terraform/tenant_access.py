"""tenant_access.tf.json: the role the handler assumes to reach one tenant's items only."""

from __future__ import annotations

import json
import re
from typing import Any

from scripts import tenant_access_role
from scripts.deploy.terraform.blocks import (
    API_HANDLER,
    TABLE,
    TENANT_ACCESS,
    TerraformStage,
    account_expression,
    literal,
    partition_expression,
    ref,
)

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
    return tenant_access_role.handler_role_arn(partition_expression(), account_expression(), stage.resource_prefix)


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
                            _ACCOUNT_ROOT_STAND_IN: tenant_access_role.account_root_arn(
                                partition_expression(), account_expression()
                            ),
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
