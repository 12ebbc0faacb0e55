"""outputs.tf.json: the addresses and names an operator needs after apply."""

from __future__ import annotations

from typing import Any

from scripts.deploy.terraform.blocks import ALARM_TOPIC, SECRET, STAGE, TABLE, TENANT, USER_POOL, ref
from scripts.deploy.terraform.identity import token_issuer, token_url


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
