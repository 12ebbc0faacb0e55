"""Unit tests of the Terraform rendering: literals, names, conversions that must fail loudly, and override merging."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from scripts import monitoring, tenant_access_role
from scripts.deploy.terraform.api import api_swagger
from scripts.deploy.terraform.blocks import (
    CHECKOV_SKIPS,
    TerraformStage,
    checkov_skips,
    literal,
    terraform_argument_name,
)
from scripts.deploy.terraform.chalice_override import function_environment, narrowed_policy, stack_arn
from scripts.deploy.terraform.monitoring import metric_alarm
from scripts.deploy.terraform.package import apply_overrides
from scripts.deploy.terraform.table import dynamodb_table
from scripts.deploy.terraform.tenant_access import tenant_access_document

PREFIX = "tenant-api-dev"
TABLE_REF = "${aws_dynamodb_table.tenant_table.arn}"
ROLE_REF = "${aws_iam_role.tenant_access.arn}"
HANDLER_ROLE_REF = "${aws_iam_role.api_handler_role.arn}"
PARTITION = "${data.aws_partition.chalice.partition}"
ACCOUNT = "${data.aws_caller_identity.chalice.account_id}"


def stage() -> TerraformStage:
    """A dev stage made by hand, so these tests read no .chalice file."""
    return TerraformStage(
        deployment=monitoring.Deployment("tenant-api", "dev", "us-east-1", PREFIX),
        resource_server_id="tenant-api",
        resource_prefix=PREFIX,
        tags={"project": "tenant-api", "stage": "dev"},
        usage_plan_names={},
        app_client_settings={},
        protected=False,
    )


def chalice_document(handler_role: str = HANDLER_ROLE_REF) -> dict[str, Any]:
    """The part of chalice.tf.json the tenant-access role reads: the API function and its role."""
    return {
        "resource": {
            "aws_lambda_function": {"api_handler": {"function_name": PREFIX, "role": handler_role}},
            "aws_iam_role": {"api_handler_role": {"name": tenant_access_role.handler_role_name(PREFIX)}},
        }
    }


def live_interpolations(text: str) -> set[str]:
    """The ${...} Terraform would evaluate in a string (escaped $${...} are literal text)."""
    return set(re.findall(r"(?<!\$)\$\{[^}]*\}", text))


def test_literals_are_not_templates() -> None:
    assert literal({"a": ["${x}", "%{if}"], "n": 3}) == {"a": ["$${x}", "%%{if}"], "n": 3}
    assert literal("$context.requestId") == "$context.requestId"


@pytest.mark.parametrize(
    ("aws_name", "terraform_name"),
    [
        ("AllowedOAuthFlows", "allowed_oauth_flows"),
        ("AllowedOAuthFlowsUserPoolClient", "allowed_oauth_flows_user_pool_client"),
        ("OKActions", "ok_actions"),
        ("DatapointsToAlarm", "datapoints_to_alarm"),
        ("TokenValidityUnits", "token_validity_units"),
    ],
)
def test_aws_names_become_terraform_arguments(aws_name: str, terraform_name: str) -> None:
    assert terraform_argument_name(aws_name) == terraform_name


def test_a_table_argument_the_rendering_does_not_know_fails() -> None:
    with pytest.raises(ValueError, match="StreamSpecification"):
        dynamodb_table({"StreamSpecification": {}}, protected=False)


def test_an_alarm_field_the_rendering_does_not_know_fails() -> None:
    with pytest.raises(ValueError, match="ActionsEnabled"):
        metric_alarm({"AlarmName": "x", "ActionsEnabled": True})


def test_the_api_body_carries_gateway_responses_escaped_and_keeps_chalices_interpolations(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    responses = {
        "THROTTLED": {
            "statusCode": "429",
            "responseParameters": {"gatewayresponse.header.Retry-After": "'1'"},
            "responseTemplates": {"application/json": '{"id": "$context.requestId", "x": "${not_terraform}"}'},
        }
    }
    monkeypatch.setattr("scripts.deploy.terraform.api.gateway_responses", lambda: responses)
    chalice = json.dumps({"swagger": "2.0", "paths": {"/": {"uri": "${aws_lambda_function.api_handler.invoke_arn}"}}})
    body = json.loads(api_swagger(chalice))
    assert body["paths"] == {"/": {"uri": "${aws_lambda_function.api_handler.invoke_arn}"}}
    assert body["x-amazon-apigateway-api-key-source"] == "AUTHORIZER"
    throttled = body["x-amazon-apigateway-gateway-responses"]["THROTTLED"]
    assert throttled["statusCode"] == "429"
    assert throttled["responseParameters"] == {"gatewayresponse.header.Retry-After": "'1'"}
    # Terraform reads the body as a template: only Chalice's own interpolations may stay live.
    assert (
        throttled["responseTemplates"]["application/json"] == '{"id": "$context.requestId", "x": "$${not_terraform}"}'
    )


def test_a_gateway_response_field_the_body_does_not_take_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "scripts.deploy.terraform.api.gateway_responses", lambda: {"DEFAULT_4XX": {"responseModels": {}}}
    )
    with pytest.raises(ValueError, match="responseModels"):
        api_swagger("{}")


def test_a_math_alarm_becomes_metric_queries() -> None:
    alarm = metric_alarm(
        {
            "AlarmName": "rate",
            "Metrics": [
                {
                    "Id": "m0",
                    "ReturnData": False,
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "AWS/Lambda",
                            "MetricName": "Errors",
                            "Dimensions": [{"Name": "FunctionName", "Value": "f"}],
                        },
                        "Period": 300,
                        "Stat": "Sum",
                    },
                },
                {"Id": "total", "Expression": "FILL(m0, 0)", "Label": "all", "ReturnData": True},
            ],
            "AlarmActions": ["${aws_sns_topic.alarms.arn}"],
        }
    )
    assert alarm["alarm_actions"] == ["${aws_sns_topic.alarms.arn}"]
    first, total = alarm["metric_query"]
    assert first["metric"] == {
        "namespace": "AWS/Lambda",
        "metric_name": "Errors",
        "dimensions": {"FunctionName": "f"},
        "period": 300,
        "stat": "Sum",
    }
    assert total == {"id": "total", "return_data": True, "expression": "FILL(m0, 0)", "label": "all"}


def test_policy_arns_are_pinned_to_the_stacks_own_resources() -> None:
    policy = json.dumps(
        {
            "Statement": [
                {
                    "Resource": [
                        "arn:aws:dynamodb:*:*:table/t",
                        "arn:aws:dynamodb:eu-west-1:111122223333:table/t/index/*",
                    ]
                },
                {"Resource": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:t/pagination-AbCdEf"},
                {"Resource": "arn:aws:logs:*:*:log-group:/aws/lambda/t*"},
                {"Resource": "*"},
                {"Resource": "arn:aws:s3:::b"},
                {
                    "Sid": "AssumeTenantAccessRole",
                    "Effect": "Allow",
                    "Action": ["sts:AssumeRole", "sts:TagSession"],
                    "Resource": f"arn:aws:iam::*:role/{PREFIX}-tenant-access",
                },
            ]
        }
    )
    narrowed = [statement["Resource"] for statement in json.loads(narrowed_policy(policy, PREFIX))["Statement"]]
    assert narrowed[0] == ["${aws_dynamodb_table.tenant_table.arn}", "${aws_dynamodb_table.tenant_table.arn}/index/*"]
    assert narrowed[1] == "${aws_secretsmanager_secret.pagination.arn}"
    assert narrowed[2] == (
        "arn:${data.aws_partition.chalice.partition}:logs:${data.aws_region.chalice.name}:"
        "${data.aws_caller_identity.chalice.account_id}:log-group:/aws/lambda/t*"
    )
    assert narrowed[3] == "*"
    assert narrowed[4] == "arn:${data.aws_partition.chalice.partition}:s3:::b"
    # The handler may assume exactly the role this stack makes.
    assert narrowed[5] == ROLE_REF


@pytest.mark.parametrize("account", ["*", "111122223333"])
@pytest.mark.parametrize("partition", ["aws", "aws-cn"])
def test_the_stacks_tenant_access_role_is_the_one_this_stack_makes(partition: str, account: str) -> None:
    arn = f"arn:{partition}:iam::{account}:role/{tenant_access_role.role_name(PREFIX)}"
    assert stack_arn(arn, PREFIX) == ROLE_REF


@pytest.mark.parametrize(
    "name",
    [
        tenant_access_role.role_name("tenant-api-prod"),  # another stage's role
        tenant_access_role.handler_role_name(PREFIX),
        f"{tenant_access_role.role_name(PREFIX)}-old",
        f"path/{tenant_access_role.role_name(PREFIX)}",
    ],
)
def test_other_roles_are_only_pinned_to_the_stacks_account(name: str) -> None:
    assert stack_arn(f"arn:aws:iam::*:role/{name}", PREFIX) == f"arn:{PARTITION}:iam::{ACCOUNT}:role/{name}"


def test_the_functions_environment_names_the_tenant_access_role() -> None:
    environment = function_environment({"TENANT_ACCESS_ROLE_ARN": "", "KEEP": "1"})
    assert environment["TENANT_ACCESS_ROLE_ARN"] == ROLE_REF
    assert environment["KEEP"] == "1"


def test_the_tenant_access_role_is_scripts_tenant_access_role() -> None:
    role = tenant_access_document(stage(), chalice_document())["resource"]["aws_iam_role"]["tenant_access"]
    assert role["name"] == tenant_access_role.role_name(PREFIX) == f"{PREFIX}-tenant-access"
    assert role["description"] == tenant_access_role.DESCRIPTION
    assert role["max_session_duration"] == tenant_access_role.MAX_SESSION_SECONDS
    # The account is the principal; the API function's role, as chalice.tf.json declares it, the condition.
    assert json.loads(role["assume_role_policy"]) == tenant_access_role.trust_policy(
        f"arn:{PARTITION}:iam::{ACCOUNT}:root", HANDLER_ROLE_REF
    )


def test_the_trust_falls_back_to_the_handler_roles_name_when_chalice_declares_no_role() -> None:
    expected = tenant_access_role.trust_policy(
        f"arn:{PARTITION}:iam::{ACCOUNT}:root", f"arn:{PARTITION}:iam::{ACCOUNT}:role/{PREFIX}-api_handler"
    )
    for chalice in ({"resource": {}}, chalice_document("${aws_iam_role.undeclared.arn}")):
        role = tenant_access_document(stage(), chalice)["resource"]["aws_iam_role"]["tenant_access"]
        assert json.loads(role["assume_role_policy"]) == expected
    # A role the stage names itself (manage_iam_role false) is the one the function runs with.
    given = "arn:aws:iam::111122223333:role/given"
    role = tenant_access_document(stage(), chalice_document(given))["resource"]["aws_iam_role"]
    assert json.loads(role["tenant_access"]["assume_role_policy"])["Statement"][0]["Condition"] == {
        "ArnEquals": {"aws:PrincipalArn": given}
    }


def test_the_tenant_access_policy_keeps_iams_tenant_variable_from_terraform() -> None:
    policy = tenant_access_document(stage(), chalice_document())["resource"]["aws_iam_role_policy"]
    block = policy["tenant_access"]
    assert block["name"] == tenant_access_role.POLICY_NAME
    assert block["role"] == "${aws_iam_role.tenant_access.id}"
    text = block["policy"]
    # Only the table's ARN is a Terraform interpolation; IAM's ${aws:PrincipalTag/TenantID} is escaped.
    assert live_interpolations(text) == {TABLE_REF}
    assert "$${aws:PrincipalTag/TenantID}" in text
    table_arn = "arn:aws:dynamodb:us-east-1:111122223333:table/tenant-api-dev"
    as_iam_reads_it = text.replace(TABLE_REF, table_arn).replace("$${", "${")
    assert json.loads(as_iam_reads_it) == tenant_access_role.access_policy(table_arn)
    assert as_iam_reads_it == json.dumps(tenant_access_role.access_policy(table_arn))


def test_the_trust_policy_interpolates_only_the_account_and_the_handlers_role() -> None:
    role = tenant_access_document(stage(), chalice_document())["resource"]["aws_iam_role"]["tenant_access"]
    assert live_interpolations(role["assume_role_policy"]) == {PARTITION, ACCOUNT, HANDLER_ROLE_REF}


def test_checkov_skips_carry_their_reasons() -> None:
    (comment,) = checkov_skips("CKV_AWS_119")["//"]
    assert comment == f"checkov:skip=CKV_AWS_119:{CHECKOV_SKIPS['CKV_AWS_119']}"


def test_overrides_merge_as_terraform_does() -> None:
    files = {
        "main.tf.json": {
            "terraform": {"required_version": "< 1", "required_providers": {"aws": {"version": "< 5"}, "null": {}}},
            "resource": {"t": {"r": {"keep": 1, "drop": 2, "replace": 3, "lifecycle": {"a": True}}}},
            "locals": {"l": 1},
            "output": {"o": {"value": "old"}},
        },
        "x_override.tf.json": {
            "terraform": {
                "required_version": ">= 1.5",
                "required_providers": {"aws": {"version": "~> 5.0"}, "random": {}},
            },
            "resource": {"t": {"r": {"drop": None, "replace": 4, "lifecycle": {"b": True}, "//": ["note"]}}},
            "locals": {"l": 2},
            "output": {"o": {"value": "new"}},
        },
    }
    merged = apply_overrides(files)
    assert list(merged) == ["main.tf.json"]
    main = merged["main.tf.json"]
    assert main["terraform"] == {
        "required_version": ">= 1.5",
        "required_providers": {"aws": {"version": "~> 5.0"}, "null": {}, "random": {}},
    }
    assert main["resource"]["t"]["r"] == {"keep": 1, "replace": 4, "lifecycle": {"a": True, "b": True}, "//": ["note"]}
    assert main["locals"] == {"l": 2}
    assert main["output"]["o"] == {"value": "new"}
    assert files["main.tf.json"]["resource"]["t"]["r"]["drop"] == 2  # the input is left as it was


def test_an_override_without_a_base_block_fails() -> None:
    with pytest.raises(ValueError, match="t.missing"):
        apply_overrides({"a.tf.json": {}, "a_override.tf.json": {"resource": {"t": {"missing": {}}}}})


def test_an_override_may_not_set_depends_on() -> None:
    files = {
        "a.tf.json": {"resource": {"t": {"r": {}}}},
        "a_override.tf.json": {"resource": {"t": {"r": {"depends_on": []}}}},
    }
    with pytest.raises(ValueError, match="depends_on"):
        apply_overrides(files)
