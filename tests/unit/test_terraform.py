"""Unit tests of the Terraform rendering: literals, names, conversions that must fail loudly, and override merging."""

from __future__ import annotations

import json

import pytest

from scripts import terraform_files as terraform
from scripts.package_terraform import apply_overrides


def test_literals_are_not_templates() -> None:
    assert terraform.literal({"a": ["${x}", "%{if}"], "n": 3}) == {"a": ["$${x}", "%%{if}"], "n": 3}
    assert terraform.literal("$context.requestId") == "$context.requestId"


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
    assert terraform._snake(aws_name) == terraform_name


def test_a_table_argument_the_rendering_does_not_know_fails() -> None:
    with pytest.raises(ValueError, match="StreamSpecification"):
        terraform.dynamodb_table({"StreamSpecification": {}}, protected=False)


def test_an_alarm_field_the_rendering_does_not_know_fails() -> None:
    with pytest.raises(ValueError, match="ActionsEnabled"):
        terraform.metric_alarm({"AlarmName": "x", "ActionsEnabled": True})


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
    monkeypatch.setattr(terraform, "gateway_responses", lambda: responses)
    chalice = json.dumps({"swagger": "2.0", "paths": {"/": {"uri": "${aws_lambda_function.api_handler.invoke_arn}"}}})
    body = json.loads(terraform.api_swagger(chalice))
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
    monkeypatch.setattr(terraform, "gateway_responses", lambda: {"DEFAULT_4XX": {"responseModels": {}}})
    with pytest.raises(ValueError, match="responseModels"):
        terraform.api_swagger("{}")


def test_a_math_alarm_becomes_metric_queries() -> None:
    alarm = terraform.metric_alarm(
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
            ]
        }
    )
    narrowed = [statement["Resource"] for statement in json.loads(terraform.narrowed_policy(policy))["Statement"]]
    assert narrowed[0] == ["${aws_dynamodb_table.tenant_table.arn}", "${aws_dynamodb_table.tenant_table.arn}/index/*"]
    assert narrowed[1] == "${aws_secretsmanager_secret.pagination.arn}"
    assert narrowed[2] == (
        "arn:${data.aws_partition.chalice.partition}:logs:${data.aws_region.chalice.name}:"
        "${data.aws_caller_identity.chalice.account_id}:log-group:/aws/lambda/t*"
    )
    assert narrowed[3] == "*"
    assert narrowed[4] == "arn:${data.aws_partition.chalice.partition}:s3:::b"


def test_checkov_skips_carry_their_reasons() -> None:
    (comment,) = terraform.checkov_skips("CKV_AWS_119")["//"]
    assert comment == f"checkov:skip=CKV_AWS_119:{terraform.CHECKOV_SKIPS['CKV_AWS_119']}"


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
