"""variables.tf.json: the stack's inputs (tenants, alarm e-mail, Cognito domain, API Gateway account)."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.store import keys
from chalicelib.store.registry import ACTIVE, STATUSES
from chalicelib.tiers import TIERS
from scripts.deploy.terraform.blocks import TerraformStage, account_expression


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
            f'"{stage.resource_prefix}-{account_expression()}"}}',
        },
    }
