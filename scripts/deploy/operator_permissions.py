"""The least-privilege IAM policy for whoever deploys and runs a stage, as a document (the command that writes it: scripts.deploy.operator_policy).

It covers bootstrap, `chalice deploy`, post-deploy, the tenants command, the layout migration, the
smoke test's policy simulation and teardown (the Terraform package makes no AWS call). The scripts' actions are listed here
(tests/integration/test_operator_policy.py runs the scripts' tests against moto, records every
call they make and fails naming any action this list lacks or no longer needs); Chalice's are read
from the installed Chalice (scripts.deploy.chalice_calls).
Resources are narrowed to the stage's names wherever IAM can narrow an action at all; the
actions IAM authorizes only on "*" are in one statement of their own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chalicelib.store import schema
from scripts import monitoring
from scripts.deploy.chalice_calls import deploy_operations
from scripts.deploy.iam_permissions import UNAUTHORIZED_OPERATIONS, required_permissions
from scripts.deploy.operation_recorder import Operation
from scripts.stage_config import read_stage_config

# Every IAM action the operator scripts' calls need, by service (checked against their calls).
SCRIPT_ACTIONS: dict[str, tuple[str, ...]] = {
    "apigateway": ("DELETE", "GET", "PATCH", "POST", "PUT"),
    "cloudwatch": (
        "DeleteAlarms",
        "DeleteDashboards",
        "DeleteInsightRules",
        "DescribeAlarms",
        "DescribeInsightRules",
        "GetDashboard",
        "PutDashboard",
        "PutInsightRule",
        "PutMetricAlarm",
    ),
    "cognito-idp": (
        "CreateResourceServer",
        "CreateUserPool",
        "CreateUserPoolClient",
        "CreateUserPoolDomain",
        "DeleteUserPool",
        "DeleteUserPoolClient",
        "DeleteUserPoolDomain",
        "DescribeResourceServer",
        "DescribeUserPool",
        "DescribeUserPoolClient",
        "DescribeUserPoolDomain",
        "ListUserPoolClients",
        "ListUserPools",
        "UpdateUserPool",
        "UpdateUserPoolClient",
    ),
    "dynamodb": (
        "BatchGetItem",
        "BatchWriteItem",
        "CreateTable",
        "DeleteItem",
        "DeleteTable",
        "DescribeContinuousBackups",
        "DescribeTable",
        "DescribeTimeToLive",
        "GetItem",
        "ListTagsOfResource",
        "PutItem",
        "Query",
        # post_deploy reads every tenant's API key once per deploy; the request path never scans.
        "Scan",
        "TagResource",
        "UpdateContinuousBackups",
        "UpdateItem",
        "UpdateTable",
        "UpdateTimeToLive",
    ),
    # bootstrap makes the tenant-access role (removing any policy added to it by hand) and teardown removes it.
    "iam": (
        "CreateRole",
        "DeleteRole",
        "DeleteRolePolicy",
        "DetachRolePolicy",
        "GetRole",
        "GetRolePolicy",
        "ListAttachedRolePolicies",
        "ListRolePolicies",
        "PutRolePolicy",
        "TagRole",
        "UpdateAssumeRolePolicy",
        "UpdateRole",
    ),
    "logs": ("CreateLogGroup", "DeleteLogGroup", "DescribeLogGroups", "DescribeQueryDefinitions", "PutRetentionPolicy"),
    "secretsmanager": (
        "CreateSecret",
        "DeleteSecret",
        "DescribeSecret",
        "GetSecretValue",
        "ListSecrets",
        "PutSecretValue",
        "RestoreSecret",
        "TagResource",
    ),
    "sns": ("CreateTopic", "DeleteTopic", "ListSubscriptionsByTopic", "ListTopics", "Subscribe"),
    "xray": ("GetSamplingRules",),
}
# Actions of calls the scripts make that their tests cannot reach, each with the boto3 method the
# scripts call: moto does not implement Logs query definitions or X-Ray sampling rules, and no
# test changes a resource server's scopes after bootstrap; moto has no IAM policy simulator (smoke).
UNRECORDED_SCRIPT_ACTIONS: dict[str, str] = {
    "iam:SimulatePrincipalPolicy": "simulate_principal_policy",
    "cognito-idp:UpdateResourceServer": "update_resource_server",
    "logs:DeleteQueryDefinition": "delete_query_definition",
    "logs:PutQueryDefinition": "put_query_definition",
    "xray:CreateSamplingRule": "create_sampling_rule",
    "xray:DeleteSamplingRule": "delete_sampling_rule",
    "xray:UpdateSamplingRule": "update_sampling_rule",
}
# API Gateway is authorized by the path a call reaches; its ids are generated, so paths are narrowed by kind.
API_GATEWAY_PATHS = ("/restapis", "/restapis/*", "/usageplans", "/usageplans/*", "/apikeys", "/apikeys/*", "/tags/*")
# Chalice passes each function's role to Lambda when it creates or reconfigures the function.
PASSES_ROLE = {"lambda:CreateFunction", "lambda:UpdateFunctionConfiguration"}


def chalice_actions(project_dir: Path, stage: str) -> set[str]:
    """The IAM actions `chalice deploy --stage STAGE` needs, from the operations Chalice's source makes."""
    actions: set[str] = set()
    for service, name in deploy_operations(project_dir, stage):
        if (service, name) in UNAUTHORIZED_OPERATIONS:
            continue
        for permission in required_permissions(Operation(service, name, {}, "*"), "*"):
            actions.add(permission.action)
    if actions & PASSES_ROLE:
        actions.add("iam:PassRole")
    return actions


def script_actions() -> set[str]:
    """The IAM actions the operator scripts need."""
    recorded = {f"{service}:{action}" for service, actions in SCRIPT_ACTIONS.items() for action in actions}
    return recorded | set(UNRECORDED_SCRIPT_ACTIONS)


def stage_resources(project_dir: Path, stage: str) -> dict[str, list[str]]:
    """The ARN patterns of the stage's own resources, by IAM service prefix (any region, any account)."""
    config = read_stage_config(stage, project_dir / ".chalice" / "config.json")
    prefix = config.resource_prefix
    table = f"arn:aws:dynamodb:*:*:table/{config.table_name}"
    indexes = [index["IndexName"] for index in schema.table_definition(config.table_name)["GlobalSecondaryIndexes"]]
    deployment = monitoring.Deployment(
        config.app_name, stage, "*", config.table_name, api_stage=config.api_gateway_stage
    )
    sampling_rule = monitoring.sampling_rule(deployment, "*")["RuleName"]
    return {
        "apigateway": [f"arn:aws:apigateway:*::{path}" for path in API_GATEWAY_PATHS],
        "cloudwatch": [
            f"arn:aws:cloudwatch::*:dashboard/{prefix}*",
            f"arn:aws:cloudwatch:*:*:alarm:{prefix}*",
            f"arn:aws:cloudwatch:*:*:insight-rule/{prefix}*",
        ],
        "cognito-idp": ["arn:aws:cognito-idp:*:*:userpool/*"],
        "dynamodb": [table, *(f"{table}/index/{name}" for name in indexes)],
        # Chalice names roles {app}-{stage}-{function}.
        "iam": [f"arn:aws:iam::*:role/{prefix}-*"],
        # Chalice names the API handler {app}-{stage} and every other function {app}-{stage}-{name}.
        "lambda": [f"arn:aws:lambda:*:*:function:{prefix}", f"arn:aws:lambda:*:*:function:{prefix}-*"],
        "logs": [
            f"arn:aws:logs:*:*:log-group:/aws/lambda/{prefix}",
            f"arn:aws:logs:*:*:log-group:/aws/lambda/{prefix}-*",
        ],
        "secretsmanager": [f"arn:aws:secretsmanager:*:*:secret:{prefix}/*"],
        "sns": [f"arn:aws:sns:*:*:{prefix}*"],
        "xray": [f"arn:aws:xray:*:*:sampling-rule/{sampling_rule}"],
    }


def _resource_level(action: str) -> bool:
    from policy_sentry.querying.actions import get_action_data

    service, name = action.split(":", 1)
    entries = get_action_data(service, name).get(service, [])
    if not entries:
        raise ValueError(f"{action} is not an IAM action")
    return any(entry["resource_arn_format"] != "*" for entry in entries)


def _sid(service: str) -> str:
    return "".join(part.capitalize() for part in service.replace("-", " ").split())


def operator_policy(project_dir: Path, stage: str) -> dict[str, Any]:
    """The policy document: one statement per service on the stage's resources, one for actions IAM cannot narrow."""
    resources = stage_resources(project_dir, stage)
    actions = script_actions() | chalice_actions(project_dir, stage)
    narrow: dict[str, list[str]] = {}
    anywhere: list[str] = []
    for action in sorted(actions):
        service = action.split(":", 1)[0]
        if action == "iam:PassRole":
            continue
        if _resource_level(action):
            if service not in resources:
                raise ValueError(f"no resources of the stage are known for {action}")
            narrow.setdefault(service, []).append(action)
        else:
            anywhere.append(action)
    statements: list[dict[str, Any]] = [
        {"Sid": _sid(service), "Effect": "Allow", "Action": service_actions, "Resource": resources[service]}
        for service, service_actions in sorted(narrow.items())
    ]
    if "iam:PassRole" in actions:
        statements.append(
            {
                "Sid": "PassFunctionRolesToLambda",
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": resources["iam"],
                "Condition": {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}},
            }
        )
    if anywhere:
        statements.append({"Sid": "NoResourceLevelPermissions", "Effect": "Allow", "Action": anywhere, "Resource": "*"})
    return {"Version": "2012-10-17", "Statement": statements}
