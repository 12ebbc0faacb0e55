"""The Terraform package against the AWS, random and null provider schemas, as `terraform validate` would check it."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

from scripts.deploy.terraform import package as package_terraform
from scripts.deploy.terraform.package import apply_overrides
from scripts.deploy.terraform.schema import (
    NODE_DIR,
    PROVIDER_PACKAGES,
    Reference,
    SchemaError,
    Schemas,
    check_configuration,
    expression_references,
    template_references,
)

STAGE = "dev"
REGION = "us-east-1"
# package.json pins the same versions as PROVIDER_PACKAGES (tests/unit/test_node_packages.py).
INSTALL = "npm ci"


def load_schemas(node_dir: Path = NODE_DIR) -> Schemas:
    """The provider schemas; without the packages a skip locally, a failure in CI (where make test installs them)."""
    try:
        return Schemas.load(node_dir)
    except SchemaError as error:
        if os.environ.get("CI", "").lower() == "true" or "expected" in str(error):
            pytest.fail(f"{error}; install with: {INSTALL}")
        pytest.skip(f"{error}; install with: {INSTALL}")


@pytest.fixture(scope="session")
def schemas() -> Schemas:
    return load_schemas()


@pytest.fixture(scope="session")
def documents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The dev stage's package as Terraform reads it: every *.tf.json, overrides merged."""
    out = tmp_path_factory.mktemp("terraform-schema") / f"terraform-{STAGE}"
    assert package_terraform.main(["--stage", STAGE, "--out", str(out), "--region", REGION]) == 0
    files = {path.name: json.loads(path.read_text()) for path in sorted(out.glob("*.tf.json"))}
    return apply_overrides(files)


def blocks(documents: dict[str, dict[str, Any]], role: str) -> list[tuple[str, str]]:
    return [
        (terraform_type, name)
        for document in documents.values()
        for terraform_type, named in document.get(role, {}).items()
        for name in named
    ]


# --- the package ------------------------------------------------------------------------------


def test_the_package_is_valid_against_the_provider_schemas(schemas: Schemas, documents: dict[str, Any]) -> None:
    problems = check_configuration(documents.values(), schemas)
    assert [str(problem) for problem in problems] == []
    # Every resource and data source was checked against a schema, not passed over.
    resources, data = blocks(documents, "resource"), blocks(documents, "data")
    assert len(resources) > 40 and len(data) >= 3
    for role, found in (("resource", resources), ("data", data)):
        for terraform_type, _ in found:
            assert schemas.schema(role, terraform_type) is not None, terraform_type


def test_a_fault_slipped_into_the_package_is_found(schemas: Schemas, documents: dict[str, Any]) -> None:
    broken = copy.deepcopy(documents)
    monitoring = broken["monitoring.tf.json"]["resource"]
    alarm = next(iter(monitoring["aws_cloudwatch_metric_alarm"].values()))
    alarm["treat_missing"] = alarm.pop("treat_missing_data")
    group = next(iter(monitoring["aws_cloudwatch_log_group"].values()))
    group["name"] = "${aws_lambda_function.no_such_function.function_name}"
    table = next(iter(broken["table.tf.json"]["resource"]["aws_dynamodb_table"].values()))
    table["point_in_time_recovery"] = [{"enabled": True}, {"enabled": False}]
    problems = [str(problem) for problem in check_configuration(broken.values(), schemas)]
    assert len(problems) == 3, problems
    assert any("unknown argument 'treat_missing'" in problem for problem in problems)
    assert any("aws_lambda_function.no_such_function" in problem for problem in problems)
    assert any("point_in_time_recovery: is a single block, given 2 times" in problem for problem in problems)


# --- the check, on documents made wrong on purpose -------------------------------------------


WRONG = {
    "variable": {"known": {"type": "string", "defualt": "x"}},
    "locals": {"here": "${var.known}"},
    "output": {"nothing": {"description": "no value"}},
    "data": {"aws_region": {"current": {}}},
    "resource": {
        "aws_sns_topic": {"topic": {"name": "alarms", "nmae": "typo"}},
        "aws_cloudwatch_metric_alarm": {
            "alarm": {
                "alarm_name": "a",
                "evaluation_periods": 1,
                "dimensions": [{"Name": "FunctionName", "Value": "f"}],
                "metric_query": {
                    "id": "m",
                    "metric": [
                        {"metric_name": "Errors", "period": 60, "stat": "Sum"},
                        {"metric_name": "Errors", "period": 60, "stat": "Sum"},
                    ],
                },
                "alarm_actions": [
                    "${aws_sns_topic.missing.arn}",
                    "${aws_sns_topic.topic.arnn}",
                    "${var.unknown}",
                    "${each.key}",
                    "${local.nope}",
                    "${data.aws_region.other.name}",
                    "${aws_nothing.x.y}",
                    "${aws_sns_topic.topic.arn}",
                    "${local.here}",
                    "${data.aws_region.current.name}",
                    "$${literal.not_a_reference}",
                ],
                "depends_on": ["aws_sns_topic.gone"],
            }
        },
        "aws_lambda_function": {
            "function": {"function_name": "f", "role": "r", "environment": "variables", "tags": ["a"]}
        },
        "aws_not_a_thing": {"x": {}},
    },
}


def test_a_wrong_document_is_reported_in_every_way_it_is_wrong(schemas: Schemas) -> None:
    problems = {str(problem) for problem in check_configuration([WRONG], schemas)}
    alarm = "aws_cloudwatch_metric_alarm.alarm"
    assert problems == {
        "var.known: unknown argument 'defualt'",
        "output.nothing: required argument 'value' is missing",
        "aws_sns_topic.topic: unknown argument 'nmae'",
        f"{alarm}: required argument 'comparison_operator' is missing",
        f"{alarm}.dimensions: is a map attribute (stringMap), not a list",
        f"{alarm}.metric_query[0].metric: is a single block, given 2 times",
        f"{alarm}.alarm_actions: aws_sns_topic.missing.arn names no declared resource",
        f"{alarm}.alarm_actions: aws_sns_topic.topic.arnn: the type has no attribute 'arnn'",
        f"{alarm}.alarm_actions: var.unknown names no declared variable",
        f"{alarm}.alarm_actions: each.key outside a block with for_each",
        f"{alarm}.alarm_actions: local.nope names no declared local",
        f"{alarm}.alarm_actions: data.aws_region.other.name names no declared data source",
        f"{alarm}.alarm_actions: aws_nothing.x.y names nothing declared "
        "(no resource of type 'aws_nothing', nor a variable, local or data source)",
        f"{alarm}.depends_on: aws_sns_topic.gone names no declared resource",
        "aws_lambda_function.function.environment: is a block: write it as a JSON object (or a list of objects), "
        "not a value",
        "aws_lambda_function.function.tags: is a map attribute (stringMap), not a list",
        "aws_not_a_thing.x: the providers have no resource type 'aws_not_a_thing'",
    }


def test_dynamic_blocks_are_checked_by_their_content(schemas: Schemas) -> None:
    def problems(dynamic: dict[str, Any]) -> list[str]:
        table = {"name": "t", "hash_key": "pk", "dynamic": dynamic}
        document = {"variable": {"keys": {}}, "resource": {"aws_dynamodb_table": {"t": table}}}
        return [str(problem) for problem in check_configuration([document], schemas)]

    attribute = {"for_each": "${var.keys}", "content": {"name": "${attribute.key}", "type": "${attribute.value}"}}
    assert problems({"attribute": attribute}) == []
    renamed = {**attribute, "iterator": "key", "content": {"name": "${key.key}", "type": "${attribute.value}"}}
    assert problems({"attribute": renamed}) == [
        "aws_dynamodb_table.t.dynamic.attribute.content.type: attribute.value names nothing declared "
        "(no resource of type 'attribute', nor a variable, local or data source)"
    ]
    assert problems({"attribute": {**attribute, "content": {"name": "x"}}}) == [
        "aws_dynamodb_table.t.dynamic.attribute.content: required argument 'type' is missing"
    ]
    assert problems({"hash_key": attribute}) == [
        "aws_dynamodb_table.t.dynamic: dynamic 'hash_key' is not a block of this type"
    ]


def test_the_reader_reads_the_generated_shapes(schemas: Schemas) -> None:
    alarm = schemas.schema("resource", "aws_cloudwatch_metric_alarm")
    assert alarm is not None
    assert alarm.required == ["alarm_name", "comparison_operator", "evaluation_periods"]
    query = alarm.arguments["metric_query"]
    assert (query.is_block, query.kind) == (True, "many")
    assert query.nested is not None and query.nested.required == ["id"]
    metric = query.nested.arguments["metric"]
    assert (metric.is_block, metric.kind) == (True, "single")
    assert metric.nested is not None and metric.nested.required == ["metric_name", "period", "stat"]
    assert (alarm.arguments["dimensions"].kind, alarm.arguments["alarm_actions"].kind) == ("map", "set")
    assert "arn" in alarm.readable and "arn" not in alarm.arguments
    function = schemas.schema("resource", "aws_lambda_function")
    assert function is not None and function.required == ["function_name", "role"]
    assert function.arguments["timeouts"].kind == "object"
    assert function.arguments["tracing_config"].kind == "single"
    # Folders whose names are not the type's: random_string lives in string-resource.
    random_string = schemas.schema("resource", "random_string")
    assert random_string is not None and random_string.required == ["length"]
    null_source = schemas.schema("data", "null_data_source")
    assert null_source is not None and "outputs" in null_source.readable
    assert schemas.schema("resource", "aws_region") is None
    # cdktf renders every provider block through a list, so there a single block reads as "many".
    assert schemas.providers["aws"].provider().arguments["default_tags"].is_block


def test_references_are_read_as_terraform_reads_them() -> None:
    def roots(text: str) -> list[str]:
        return [str(reference) for reference in template_references(text)]

    assert roots("plain text, $${escaped.reference} and %%{ directive }") == []
    assert roots("${aws_iam_role.role[0].arn}-${each.value.tier}") == ["aws_iam_role.role.arn", "each.value.tier"]
    # A for expression's own names (id, client) are not references.
    assert roots("${{for id, client in aws_cognito_user_pool_client.tenant : id => client.id}}") == [
        "aws_cognito_user_pool_client.tenant"
    ]
    # Quoted strings may hold braces and templates of their own; function names are not references.
    assert roots('${can(regex("^[a-z]{0,46}$", var.name)) ? "${local.a}-x" : upper(var.b)}') == [
        "var.name",
        "local.a",
        "var.b",
    ]
    assert roots("${{ key = var.value, other: local.other }}") == ["var.value", "local.other"]
    assert expression_references("data.aws_region.chalice") == [Reference("data", ("aws_region", "chalice"))]


# --- the packages themselves ------------------------------------------------------------------


def test_the_schemas_come_from_the_pinned_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SchemaError, match="is not installed"):
        Schemas.load(tmp_path)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception):
        load_schemas(tmp_path)
    for package, _version in PROVIDER_PACKAGES.values():
        manifest = tmp_path / "node_modules" / package / "package.json"
        manifest.parent.mkdir(parents=True)
        manifest.write_text(json.dumps({"name": package, "version": "0.0.1"}))
    with pytest.raises(SchemaError, match="expected"):
        Schemas.load(tmp_path)
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.fail.Exception):
        load_schemas(tmp_path)
