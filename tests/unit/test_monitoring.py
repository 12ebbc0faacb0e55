"""Unit tests of the alarm and dashboard definitions: they name metrics the way AWS publishes them."""

from __future__ import annotations

from chalicelib import monitoring

DEPLOYMENT = monitoring.Deployment("tenant-api", "dev", "us-east-1", "tenant-api-dev")
TOPIC = "arn:aws:sns:us-east-1:123456789012:tenant-api-dev-alarms"


def _series(alarm: dict) -> list[dict]:
    if "Metrics" in alarm:
        return [query["MetricStat"]["Metric"] for query in alarm["Metrics"] if "MetricStat" in query]
    return [{"Namespace": alarm["Namespace"], "MetricName": alarm["MetricName"], "Dimensions": alarm["Dimensions"]}]


def test_dynamodb_throttles_are_watched_per_operation_as_dynamodb_publishes_them():
    # ThrottledRequests exists only with TableName and Operation; a table-only alarm never sees data.
    alarm = next(
        a for a in monitoring.alarm_definitions(DEPLOYMENT, TOPIC) if a["AlarmName"].endswith("dynamodb-throttles")
    )
    series = _series(alarm)
    assert {metric["MetricName"] for metric in series} == {"ThrottledRequests"}
    operations = set()
    for metric in series:
        dimensions = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        assert dimensions["TableName"] == DEPLOYMENT.table_name
        operations.add(dimensions["Operation"])
    assert {"GetItem", "Query", "BatchGetItem", "TransactWriteItems"} <= operations
    returned = [query for query in alarm["Metrics"] if query.get("ReturnData")]
    assert len(returned) == 1 and all(f"FILL(m{i}, 0)" in returned[0]["Expression"] for i in range(len(series)))


def test_every_alarm_notifies_the_topic_and_carries_a_runbook_line():
    for alarm in monitoring.alarm_definitions(DEPLOYMENT, TOPIC):
        assert alarm["AlarmActions"] == [TOPIC]
        assert "Runbook:" in alarm["AlarmDescription"]


def test_math_alarms_return_exactly_one_series_and_set_no_top_level_statistic():
    for alarm in monitoring.alarm_definitions(DEPLOYMENT, TOPIC):
        if "Metrics" in alarm:
            assert sum(1 for query in alarm["Metrics"] if query.get("ReturnData")) == 1
            assert not {"Namespace", "MetricName", "Statistic", "ExtendedStatistic", "Period"} & set(alarm)


def test_the_sampling_rule_matches_the_api_stage():
    rule = monitoring.sampling_rule(DEPLOYMENT, "abc123")
    assert len(rule["RuleName"]) <= 32
    assert rule["ResourceARN"] == "arn:aws:apigateway:us-east-1::/restapis/abc123/stages/api"
    assert rule["ServiceName"] == "tenant-api/api"
