"""usage_plans.tf.json: one usage plan per tier, and each tenant's API key in its tier's plan."""

from __future__ import annotations

from typing import Any

from chalicelib.tiers import TIERS, Tier
from scripts.deploy.terraform.blocks import REST_API, STAGE, TENANT, TerraformStage, ref


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
