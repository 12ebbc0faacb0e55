"""monitoring.tf.json: log groups, alarms, the dashboard, Contributor Insights, saved queries, sampling."""

from __future__ import annotations

from typing import Any

from scripts import monitoring
from scripts.deploy.terraform.blocks import (
    ALARM_TOPIC,
    LOG_RETENTION_DAYS,
    REST_API,
    TerraformStage,
    checkov_skips,
    literal,
    partition_expression,
    ref,
    region_expression,
    terraform_argument_name,
)


def _dimensions(dimensions: list[dict[str, str]]) -> dict[str, str]:
    return {dimension["Name"]: dimension["Value"] for dimension in dimensions}


def _metric_query(query: dict[str, Any]) -> dict[str, Any]:
    known = {"Id", "Expression", "Label", "ReturnData", "MetricStat", "Period"}
    unknown = set(query) - known
    if unknown:
        raise ValueError(f"metric query has fields the Terraform rendering does not know: {sorted(unknown)}")
    block: dict[str, Any] = {"id": query["Id"], "return_data": query.get("ReturnData", True)}
    if "Expression" in query:
        block["expression"] = literal(query["Expression"])
    if "Label" in query:
        block["label"] = literal(query["Label"])
    if "Period" in query:
        block["period"] = query["Period"]
    if "MetricStat" in query:
        stat = query["MetricStat"]
        metric = stat["Metric"]
        block["metric"] = {
            "namespace": metric["Namespace"],
            "metric_name": metric["MetricName"],
            "dimensions": _dimensions(metric.get("Dimensions", [])),
            "period": stat["Period"],
            "stat": stat["Stat"],
            **({"unit": stat["Unit"]} if "Unit" in stat else {}),
        }
    return block


_ALARM_SCALARS = {
    "AlarmName",
    "AlarmDescription",
    "ComparisonOperator",
    "Threshold",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "TreatMissingData",
    "Namespace",
    "MetricName",
    "Statistic",
    "ExtendedStatistic",
    "Period",
    "Unit",
}


def metric_alarm(definition: dict[str, Any]) -> dict[str, Any]:
    """An aws_cloudwatch_metric_alarm from PutMetricAlarm keyword arguments."""
    alarm: dict[str, Any] = {}
    for name, value in definition.items():
        if name in _ALARM_SCALARS:
            alarm[terraform_argument_name(name)] = literal(value)
        elif name in ("AlarmActions", "OKActions"):
            alarm[terraform_argument_name(name)] = value  # Terraform references to the topic, kept as such.
        elif name == "Dimensions":
            alarm["dimensions"] = _dimensions(value)
        elif name == "Metrics":
            alarm["metric_query"] = [_metric_query(query) for query in value]
        else:
            raise ValueError(
                f"alarm {definition.get('AlarmName')} has {name}, which the Terraform rendering does not know"
            )
    return alarm


def _resource_name(name: str, prefix: str) -> str:
    return name.removeprefix(f"{prefix}-").replace("-", "_")


def function_log_groups(deployment: monitoring.Deployment, functions: dict[str, str]) -> dict[str, dict[str, Any]]:
    """A log group with the design's retention per function (Chalice's resource name -> function name)."""
    if sorted(functions.values()) != sorted(deployment.function_names):
        raise ValueError(
            f"chalice packaged functions {sorted(functions.values())} but scripts.monitoring.Deployment "
            f"expects {sorted(deployment.function_names)}: update Deployment.authorizer_names"
        )
    return {
        resource_name: {
            "name": deployment.log_group(function_name),
            "retention_in_days": LOG_RETENTION_DAYS,
            **checkov_skips("CKV_AWS_158", "CKV_AWS_338"),
        }
        for resource_name, function_name in functions.items()
    }


def contributor_insight_rules(
    deployment: monitoring.Deployment, functions: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """scripts.monitoring's Contributor Insights rules, each made after the API function's log group."""
    (log_group,) = [name for name, function_name in functions.items() if function_name == deployment.api_function]
    return {
        _resource_name(rule["RuleName"], deployment.prefix): {
            "rule_name": rule["RuleName"],
            "rule_state": rule["RuleState"],
            "rule_definition": literal(rule["RuleDefinition"]),
            # Made after the group it reads and destroyed before it, a rule never names a group that is not there.
            "depends_on": [f"aws_cloudwatch_log_group.{log_group}"],
        }
        for rule in monitoring.insight_rules(deployment)
    }


# X-Ray's CreateSamplingRule fields and the Terraform arguments they become.
SAMPLING_RULE_ARGUMENTS = {
    "RuleName": "rule_name",
    "ResourceARN": "resource_arn",
    "Priority": "priority",
    "FixedRate": "fixed_rate",
    "ReservoirSize": "reservoir_size",
    "ServiceName": "service_name",
    "ServiceType": "service_type",
    "Host": "host",
    "HTTPMethod": "http_method",
    "URLPath": "url_path",
    "Version": "version",
}


def sampling_rule(stage: TerraformStage) -> dict[str, Any]:
    """scripts.monitoring's X-Ray sampling rule, for this stack's REST API."""
    rule = monitoring.sampling_rule(
        stage.deployment, ref("aws_api_gateway_rest_api", REST_API, "id"), partition_expression()
    )
    unknown = set(rule) - set(SAMPLING_RULE_ARGUMENTS)
    if unknown:
        raise ValueError(f"sampling rule fields without a Terraform argument: {sorted(unknown)}")
    arguments = {SAMPLING_RULE_ARGUMENTS[name]: value for name, value in rule.items()}
    # The rule's ARN names the region literally; the stack's region comes from the provider.
    arguments["resource_arn"] = arguments["resource_arn"].replace(
        f":{stage.deployment.region}:", f":{region_expression()}:", 1
    )
    return arguments


def monitoring_document(stage: TerraformStage, functions: dict[str, str]) -> dict[str, Any]:
    """The functions' log groups, dashboard, alarms and their topic, Contributor Insights rules, saved queries, sampling."""
    deployment = stage.deployment
    topic_arn = ref("aws_sns_topic", ALARM_TOPIC, "arn")
    alarms = {
        _resource_name(definition["AlarmName"], deployment.prefix): metric_alarm(definition)
        for definition in monitoring.alarm_definitions(deployment, topic_arn)
    }
    return {
        "resource": {
            "aws_cloudwatch_log_group": function_log_groups(deployment, functions),
            "aws_cloudwatch_dashboard": {
                "main": {
                    "dashboard_name": monitoring.dashboard_name(deployment),
                    "dashboard_body": literal(monitoring.dashboard_json(deployment)),
                }
            },
            "aws_sns_topic": {
                ALARM_TOPIC: {"name": monitoring.alarm_topic_name(deployment), **checkov_skips("CKV_AWS_26")}
            },
            "aws_sns_topic_subscription": {
                "alarm_email": {
                    "count": '${var.alarm_email == "" ? 0 : 1}',
                    "topic_arn": topic_arn,
                    "protocol": "email",
                    "endpoint": "${var.alarm_email}",
                }
            },
            "aws_cloudwatch_metric_alarm": alarms,
            "aws_cloudwatch_contributor_insight_rule": contributor_insight_rules(deployment, functions),
            "aws_cloudwatch_query_definition": saved_queries(deployment),
            "aws_xray_sampling_rule": {"main": sampling_rule(stage)},
        }
    }


def saved_queries(deployment: monitoring.Deployment) -> dict[str, dict[str, Any]]:
    """The saved Logs Insights queries of scripts.monitoring as query definitions."""
    return {
        query["name"].rsplit("/", 1)[-1].replace("-", "_"): {
            "name": query["name"],
            "log_group_names": query["logGroupNames"],
            "query_string": literal(query["queryString"]),
        }
        for query in monitoring.saved_queries(deployment)
    }
