"""Unit tests of the alarm and dashboard definitions: metrics named as AWS publishes them, alarms judged on traffic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts import monitoring
from scripts.stage_config import StageConfigError, read_stage_config
from tests.support.project import PROJECT_DIR
from tests.unit.alarm_evaluator import Datapoints, evaluate

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
    # By default a share of 5 % and no reservoir: X-Ray's reservoir of one a second would trace
    # nearly every request of a quiet stage.
    assert (rule["FixedRate"], rule["ReservoirSize"]) == (0.05, 0)


def test_a_stage_sizes_its_sampling_rule_and_a_wrong_size_is_refused(tmp_path: Path):
    config = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())
    config["stages"]["prod"].update(xray_traced_share=0.01, xray_reservoir_per_second=10)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    stage = read_stage_config("prod", path)
    rule = monitoring.sampling_rule(monitoring.Deployment("tenant-api", "prod", "us-east-1", "t", **stage.tracing), "a")
    assert (rule["FixedRate"], rule["ReservoirSize"]) == (0.01, 10)
    assert read_stage_config("dev", path).tracing == {"traced_share": 0.05, "trace_reservoir_per_second": 0}
    for wrong in ({"xray_traced_share": 1.5}, {"xray_traced_share": "5%"}, {"xray_reservoir_per_second": -1}):
        config["stages"]["prod"].update(wrong)
        path.write_text(json.dumps(config))
        with pytest.raises(StageConfigError):
            _ = read_stage_config("prod", path).tracing
        config["stages"]["prod"].update(xray_traced_share=0.01, xray_reservoir_per_second=10)


# --- the alarms against traffic: a stream of refused tokens is not trouble, failures are ------

API = {"ApiName": DEPLOYMENT.api_name, "Stage": DEPLOYMENT.api_stage}
AUTHORIZER = DEPLOYMENT.authorizer_functions[0]
MINUTES = 40


def request(
    points: Datapoints,
    second: float,
    status: int,
    authorizer: str | None,
    handler: str | None = None,
    authorizer_ms: float = 4.0,
) -> None:
    """The datapoints AWS publishes for one request through API Gateway.

    authorizer: None (answer cached by the gateway), "allowed", "refused" (raised Unauthorized)
    or "failed" (raised for a dependency); handler: None (not reached), "ok" or "crashed".
    """
    for metric, value in (
        ("Count", 1),
        ("4XXError", int(400 <= status < 500)),
        ("5XXError", int(status >= 500)),
        ("Latency", authorizer_ms + (30 if handler else 2)),
    ):
        points.add(second, "AWS/ApiGateway", metric, API, value)
    if authorizer is not None:
        # Lambda counts an authorizer that raises, Unauthorized included, as a function error.
        invocation(points, second, AUTHORIZER, errors=int(authorizer != "allowed"), duration_ms=authorizer_ms)
    if handler is not None:
        invocation(points, second, DEPLOYMENT.api_function, errors=int(handler == "crashed"), duration_ms=25.0)


def invocation(points: Datapoints, second: float, function: str, errors: int, duration_ms: float) -> None:
    """The datapoints Lambda publishes for one invocation."""
    dimensions = {"FunctionName": function}
    points.add(second, "AWS/Lambda", "Invocations", dimensions, 1)
    points.add(second, "AWS/Lambda", "Errors", dimensions, errors)
    points.add(second, "AWS/Lambda", "Duration", dimensions, duration_ms)


def steady_traffic(points: Datapoints, per_minute: int = 20) -> None:
    """Tenants with valid tokens: the gateway caches the authorizer's answer for a minute."""
    for minute in range(MINUTES):
        for n in range(per_minute):
            second = minute * 60 + n * 60 / per_minute
            request(points, second, 200, "allowed" if n == 0 else None, "ok")


def stale_client(points: Datapoints, per_minute: int = 1000, first: int = 0, last: int = MINUTES) -> None:
    """One client retrying an expired token: every request refused with 401, the authorizer run each time."""
    for minute in range(first, last):
        for n in range(per_minute):
            request(points, minute * 60 + n * 60 / per_minute, 401, "refused")


def breached(points: Datapoints, alarms: list[dict] | None = None) -> set[str]:
    """The names of the alarms that would go into ALARM over points."""
    definitions = monitoring.alarm_definitions(DEPLOYMENT, TOPIC) if alarms is None else alarms
    return {alarm["AlarmName"] for alarm in definitions if evaluate(alarm, points).breached}


def alarm(suffix: str) -> dict:
    return next(a for a in monitoring.alarm_definitions(DEPLOYMENT, TOPIC) if a["AlarmName"].endswith(suffix))


def test_a_stream_of_refused_tokens_breaches_no_alarm():
    points = Datapoints()
    steady_traffic(points)
    stale_client(points, per_minute=1000)
    assert breached(points) == set()
    # Not silent for want of data: the alarms saw the stream and found no failure in it.
    rate = evaluate(alarm("api-5xx-rate"), points).values
    assert rate and all(value == 0 for value in rate.values() if value is not None)
    assert any(value is not None for value in rate.values())


def test_summing_the_authorizers_errors_would_page_on_that_stream():
    # The evaluator is not blind to the stream: the alarm as it was (both functions' errors
    # summed, threshold 0) goes off on it, and on nothing but it.
    functions = [("m0", DEPLOYMENT.api_function), ("m1", AUTHORIZER)]
    summed = {
        "AlarmName": "summed-lambda-errors",
        "Metrics": [
            {
                "Id": query_id,
                "ReturnData": False,
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/Lambda",
                        "MetricName": "Errors",
                        "Dimensions": [{"Name": "FunctionName", "Value": name}],
                    },
                    "Period": 300,
                    "Stat": "Sum",
                },
            }
            for query_id, name in functions
        ]
        + [{"Id": "total", "Expression": "FILL(m0, 0) + FILL(m1, 0)", "ReturnData": True}],
        "ComparisonOperator": "GreaterThanThreshold",
        "Threshold": 0,
        "EvaluationPeriods": 1,
        "TreatMissingData": "notBreaching",
    }
    quiet, stream = Datapoints(), Datapoints()
    steady_traffic(quiet)
    steady_traffic(stream)
    stale_client(stream, per_minute=1, first=10, last=11)
    assert breached(quiet, [summed]) == set()
    assert breached(stream, [summed]) == {"summed-lambda-errors"}


def test_authorizer_503s_breach_even_under_a_stream_of_refused_tokens():
    # The registry cannot be read for ten minutes: valid tokens get 503; the stale client's
    # expired token is still refused before any lookup.
    points = Datapoints()
    stale_client(points, per_minute=1000)
    for minute in range(MINUTES):
        for n in range(20):
            second = minute * 60 + n * 3
            if 15 <= minute < 25:
                request(points, second, 503, "failed", authorizer_ms=150.0)
            else:
                request(points, second, 200, "allowed" if n == 0 else None, "ok")
    assert f"{DEPLOYMENT.prefix}-api-5xx-rate" in breached(points)
    evaluation = evaluate(alarm("api-5xx-rate"), points)
    window = min(start for start in evaluation.values if start >= 15 * 60)
    assert evaluation.values[window] == 100.0
    # With every request in the denominator the stream would have hidden them (2 % < 5 %).
    every_request = {
        **alarm("api-5xx-rate"),
        "Metrics": [
            *(query for query in alarm("api-5xx-rate")["Metrics"] if "MetricStat" in query),
            {"Id": "rate", "Expression": "IF(requests > 0, 100 * errors / requests, 0)", "ReturnData": True},
        ],
    }
    assert not evaluate(every_request, points).breached


def test_an_authorizer_near_its_timeout_breaches():
    points = Datapoints()
    steady_traffic(points)
    stale_client(points, per_minute=1000)
    timeout_ms = DEPLOYMENT.authorizer_timeout_seconds * 1000
    request(points, 20 * 60, 503, "failed", authorizer_ms=timeout_ms)
    assert breached(points) == {f"{DEPLOYMENT.prefix}-tenant-authorizer-duration"}


def test_api_function_errors_breach():
    points = Datapoints()
    steady_traffic(points)
    stale_client(points, per_minute=1000)
    request(points, 30 * 60, 502, None, "crashed")
    assert f"{DEPLOYMENT.prefix}-lambda-errors" in breached(points)


def test_the_evaluator_applies_datapoints_to_alarm_and_missing_data():
    definition = {
        "AlarmName": "m-of-n",
        "Namespace": "X",
        "MetricName": "Y",
        "Dimensions": [],
        "Statistic": "Sum",
        "Period": 60,
        "EvaluationPeriods": 3,
        "DatapointsToAlarm": 2,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "Threshold": 5,
        "TreatMissingData": "notBreaching",
    }
    one, two = Datapoints(), Datapoints()
    one.add(30, "X", "Y", {}, 7)
    two.add(30, "X", "Y", {}, 7)
    two.add(150, "X", "Y", {}, 5)
    assert not evaluate(definition, one, end=600).breached
    # Only the window ending at 180 s holds both breaching minutes.
    assert evaluate(definition, two, end=600).alarm_at == [180]
    assert evaluate({**definition, "TreatMissingData": "breaching"}, one, end=600).breached


def test_the_default_authorizer_timeout_is_the_stages():
    # Chalice resolves a function's timeout from lambda_functions.<name>, then the stage, then the top level.
    config = json.loads((Path(__file__).resolve().parents[2] / ".chalice" / "config.json").read_text())
    for stage in ("dev", "prod"):
        settings = config["stages"][stage]
        own = settings.get("lambda_functions", {}).get("tenant_authorizer", {})
        timeout = own.get("lambda_timeout", settings.get("lambda_timeout", config.get("lambda_timeout", 60)))
        assert monitoring.Deployment("tenant-api", stage, "us-east-1", "t").authorizer_timeout_seconds == timeout
