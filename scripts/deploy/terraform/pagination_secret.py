"""secrets.tf.json: the pagination signing key in Secrets Manager."""

from __future__ import annotations

from typing import Any

from scripts.deploy.terraform.blocks import SECRET, TerraformStage, checkov_skips, ref

# The signing key's length in characters; chalicelib.config refuses anything under 32.
PAGINATION_SECRET_LENGTH = 64


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
