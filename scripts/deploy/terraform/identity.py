"""identity.tf.json: the user pool, its resource server and domain, and one app client per tenant."""

from __future__ import annotations

from typing import Any

from chalicelib.tenancy import SCOPES
from scripts.deploy.terraform.blocks import (
    POOL_DOMAIN,
    RESOURCE_SERVER,
    TENANT,
    USER_POOL,
    TerraformStage,
    ref,
    region_expression,
    terraform_argument_name,
)


def _terraform_arguments(boto3_arguments: dict[str, Any]) -> dict[str, Any]:
    # CreateUserPoolClient's names map one to one onto aws_cognito_user_pool_client's.
    arguments = {}
    for name, value in boto3_arguments.items():
        if isinstance(value, dict):
            value = {terraform_argument_name(key): item for key, item in value.items()}
        arguments[terraform_argument_name(name)] = value
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
    return f"https://{domain}.auth.{region_expression()}.amazoncognito.com/oauth2/token"
