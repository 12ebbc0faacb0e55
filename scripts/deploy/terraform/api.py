"""api.tf.json: the API stage, its access and execution logs, and what the API's imported body carries."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from chalicelib.web.gateway import gateway_responses
from scripts.deploy.terraform.blocks import (
    ACCESS_LOGS,
    API_GATEWAY_ACCOUNT,
    EXECUTION_LOGS,
    LOG_RETENTION_DAYS,
    REST_API,
    SECRET,
    STAGE,
    TerraformStage,
    checkov_skips,
    literal,
    partition_expression,
    ref,
)


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
                "policy_arn": f"arn:{partition_expression()}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs",
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
