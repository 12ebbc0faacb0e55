"""The embedded-metric-format documents, checked against CloudWatch's EMF specification by a validator here."""

from __future__ import annotations

import copy
import json
import math
import sys
import threading
from decimal import Decimal
from typing import Any, Callable

import pytest
from chalice.app import Request, Response

from chalicelib.errors import OrderNotFound, RateLimited
from chalicelib.telemetry import emf
from chalicelib.telemetry.logs import SERVICE
from chalicelib.telemetry.metrics import METRICS_NAMESPACE
from chalicelib.web import middleware
from tests.support.capture import CapturedLogs

# The units CloudWatch accepts (PutMetricData's StandardUnit).
CLOUDWATCH_UNITS = frozenset(
    {
        "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
        "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
        "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
        "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
    }
)  # fmt: skip
MAX_DIMENSIONS_PER_SET = 30
MAX_METRICS_PER_DIRECTIVE = 100
MAX_VALUES_PER_METRIC = 100
REQUESTS_PER_THREAD = 12
REQUEST_METRICS = {"Requests", "ClientErrors", "ServerErrors", "Throttled", "Latency"}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _directive_problems(document: dict[str, Any], directive: Any, where: str) -> list[str]:
    if not isinstance(directive, dict):
        return [f"{where} is not an object"]
    problems = []
    namespace = directive.get("Namespace")
    if not isinstance(namespace, str) or not 1 <= len(namespace) <= 1024:
        problems.append(f"{where}.Namespace must be a string of 1 to 1024 characters")
    dimension_sets = directive.get("Dimensions")
    if not isinstance(dimension_sets, list):
        problems.append(f"{where}.Dimensions must be an array of arrays of strings")
        dimension_sets = []
    for number, dimension_set in enumerate(dimension_sets):
        if not isinstance(dimension_set, list) or not all(isinstance(name, str) for name in dimension_set):
            problems.append(f"{where}.Dimensions[{number}] must be an array of strings")
            continue
        if len(dimension_set) > MAX_DIMENSIONS_PER_SET:
            problems.append(f"{where}.Dimensions[{number}] has more than {MAX_DIMENSIONS_PER_SET} dimensions")
        for name in dimension_set:
            value = document.get(name)
            if not isinstance(value, str) or not 1 <= len(value) <= 1024:
                problems.append(f"dimension {name!r} must be a root member with a string value")
    metrics = directive.get("Metrics")
    if not isinstance(metrics, list):
        return [*problems, f"{where}.Metrics must be an array"]
    if len(metrics) > MAX_METRICS_PER_DIRECTIVE:
        problems.append(f"{where}.Metrics has more than {MAX_METRICS_PER_DIRECTIVE} metrics")
    for metric in metrics:
        if not isinstance(metric, dict) or not isinstance(metric.get("Name"), str) or not metric["Name"]:
            problems.append(f"{where}.Metrics has an entry without a Name")
            continue
        name = metric["Name"]
        if "Unit" in metric and metric["Unit"] not in CLOUDWATCH_UNITS:
            problems.append(f"metric {name!r} has a unit CloudWatch does not know: {metric['Unit']!r}")
        if "StorageResolution" in metric and metric["StorageResolution"] not in (1, 60):
            problems.append(f"metric {name!r} has a StorageResolution other than 1 or 60")
        value = document.get(name)
        if isinstance(value, list):
            if not value or len(value) > MAX_VALUES_PER_METRIC or not all(_is_number(item) for item in value):
                problems.append(f"metric {name!r} must be 1 to {MAX_VALUES_PER_METRIC} numbers")
        elif not _is_number(value):
            problems.append(f"metric {name!r} must be a root member with a number or an array of numbers")
    return problems


def emf_problems(document: Any) -> list[str]:
    """What makes document an invalid CloudWatch embedded-metric-format document (empty when valid)."""
    if not isinstance(document, dict):
        return ["the document is not a JSON object"]
    metadata = document.get("_aws")
    if not isinstance(metadata, dict):
        return ["no _aws metadata object at the root"]
    problems = []
    timestamp = metadata.get("Timestamp")
    if not isinstance(timestamp, int) or isinstance(timestamp, bool) or timestamp <= 0:
        problems.append("_aws.Timestamp must be a positive integer (milliseconds since the epoch)")
    directives = metadata.get("CloudWatchMetrics")
    if not isinstance(directives, list):
        return [*problems, "_aws.CloudWatchMetrics must be an array of metric directives"]
    for number, directive in enumerate(directives):
        problems += _directive_problems(document, directive, f"CloudWatchMetrics[{number}]")
    return problems


def emf_documents(output: str) -> list[dict[str, Any]]:
    """The EMF documents among the lines of output (each line must be a JSON object)."""
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    return [line for line in lines if isinstance(line, dict) and "_aws" in line]


def dimension_sets(document: dict[str, Any]) -> set[frozenset[str]]:
    """The document's dimension sets, order ignored."""
    directives = document["_aws"]["CloudWatchMetrics"]
    return {frozenset(names) for directive in directives for names in directive["Dimensions"]}


def metric_values(document: dict[str, Any]) -> dict[str, float]:
    """Each metric of the document and its single value."""
    values = {}
    for directive in document["_aws"]["CloudWatchMetrics"]:
        for metric in directive["Metrics"]:
            value = document[metric["Name"]]
            [values[metric["Name"]]] = value if isinstance(value, list) else [value]
    return values


def metric_units(document: dict[str, Any]) -> dict[str, str]:
    directives = document["_aws"]["CloudWatchMetrics"]
    return {metric["Name"]: metric.get("Unit") for directive in directives for metric in directive["Metrics"]}


# --- the validator ---------------------------------------------------------------------------

VALID = {
    "_aws": {
        "Timestamp": 1_700_000_000_000,
        "CloudWatchMetrics": [
            {
                "Namespace": "TenantApi",
                "Dimensions": [["service", "tier"], []],
                "Metrics": [{"Name": "Requests", "Unit": "Count"}, {"Name": "Latency"}],
            }
        ],
    },
    "service": "tenant-api",
    "tier": "basic",
    "Requests": 1,
    "Latency": [1.5, 2.0],
}


def changed(change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    document = copy.deepcopy(VALID)
    change(document)
    return document


def test_the_validator_accepts_a_valid_document():
    assert emf_problems(VALID) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: d.pop("_aws"), "no _aws"),
        (lambda d: d["_aws"].update(Timestamp=1_700_000_000_000.5), "Timestamp"),
        (lambda d: d["_aws"].update(Timestamp="1700000000000"), "Timestamp"),
        (lambda d: d["_aws"].pop("Timestamp"), "Timestamp"),
        (lambda d: d["_aws"].update(CloudWatchMetrics={}), "CloudWatchMetrics"),
        (lambda d: d["_aws"]["CloudWatchMetrics"][0].pop("Namespace"), "Namespace"),
        (lambda d: d["_aws"]["CloudWatchMetrics"][0].update(Dimensions=["service"]), "array of strings"),
        (lambda d: d["_aws"]["CloudWatchMetrics"][0].update(Dimensions=[[1]]), "array of strings"),
        (lambda d: d["_aws"]["CloudWatchMetrics"][0].update(Dimensions=[[f"d{n}" for n in range(31)]]), "more than 30"),
        (lambda d: d.pop("tier"), "dimension 'tier'"),
        (lambda d: d.update(tier=3), "dimension 'tier'"),
        (lambda d: d["_aws"]["CloudWatchMetrics"][0].pop("Metrics"), "Metrics must be"),
        (lambda d: d["_aws"]["CloudWatchMetrics"][0]["Metrics"].append({"Unit": "Count"}), "without a Name"),
        (lambda d: d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0].update(Unit="Requests"), "unit"),
        (lambda d: d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0].update(Unit="milliseconds"), "unit"),
        (lambda d: d.pop("Requests"), "metric 'Requests'"),
        (lambda d: d.update(Requests="1"), "metric 'Requests'"),
        (lambda d: d.update(Requests=True), "metric 'Requests'"),
        (lambda d: d.update(Latency=[1.0] * 101), "metric 'Latency'"),
        (lambda d: d.update(Latency=[]), "metric 'Latency'"),
        (
            lambda d: d["_aws"]["CloudWatchMetrics"][0].update(Metrics=[{"Name": f"m{n}"} for n in range(101)]),
            "more than 100 metrics",
        ),
    ],
)
def test_the_validator_finds_each_breach_of_the_specification(change, problem):
    problems = emf_problems(changed(change))
    assert any(problem in found for found in problems), problems


# --- the documents the application emits -----------------------------------------------------


def request(tenant_id: str | None = "acme", tier: str | None = "basic", path: str = "/catalog") -> Request:
    """An API Gateway request as Chalice builds it, authorized for tenant_id unless None."""
    authorizer = {"tenant_id": tenant_id, "tier": tier} if tenant_id else {}
    context = {
        "httpMethod": "GET",
        "resourcePath": path,
        "path": path,
        "requestId": f"req-{tenant_id}",
        "authorizer": authorizer,
    }
    event = {
        "multiValueQueryStringParameters": None,
        "headers": {},
        "pathParameters": None,
        "requestContext": context,
        "stageVariables": None,
        "body": None,
        "isBase64Encoded": False,
    }
    return Request(event)


def answer(status: int = 200) -> Callable[[Request], Response]:
    return lambda _: Response(body={"ok": True}, status_code=status)


def failing(error: Exception) -> Callable[[Request], Response]:
    def get_response(_: Request) -> Response:
        raise error

    return get_response


def emitted(logs: CapturedLogs) -> list[dict[str, Any]]:
    documents = emf_documents(logs.text)
    for document in documents:
        assert emf_problems(document) == [], document
    return documents


def placing(total: Decimal, status: int = 201) -> Callable[[Request], Response]:
    def get_response(_: Request) -> Response:
        emf.order_placed("basic", total)
        return Response(body={"ok": True}, status_code=status)

    return get_response


@pytest.mark.parametrize(
    ("get_response", "expected"),
    [
        (answer(200), {"Requests": 1, "ClientErrors": 0, "ServerErrors": 0, "Throttled": 0}),
        (answer(201), {"Requests": 1, "ClientErrors": 0, "ServerErrors": 0, "Throttled": 0}),
        (failing(OrderNotFound()), {"Requests": 1, "ClientErrors": 1, "ServerErrors": 0, "Throttled": 0}),
        (failing(RateLimited()), {"Requests": 1, "ClientErrors": 1, "ServerErrors": 0, "Throttled": 1}),
        (answer(503), {"Requests": 1, "ClientErrors": 0, "ServerErrors": 1, "Throttled": 0}),
        (failing(RuntimeError("boom")), {"Requests": 1, "ClientErrors": 0, "ServerErrors": 1, "Throttled": 0}),
    ],
    ids=["200", "201", "404", "429", "503", "unexpected"],
)
def test_each_request_is_one_line_with_its_access_fields_and_a_valid_document_per_tier(logs, get_response, expected):
    try:
        middleware.observe_request(request("acme", "basic"), get_response)
    except Exception:  # noqa: BLE001 - the errors are the error middleware's to answer
        pass
    [line] = [record for record in logs.records() if record["message"] == "request"]
    [document] = emitted(logs)
    assert document == line
    assert [directive["Namespace"] for directive in document["_aws"]["CloudWatchMetrics"]] == [METRICS_NAMESPACE]
    # No tenant dimension: each tenant would be five more billed metrics.
    assert dimension_sets(document) == {frozenset({"service", "tier"})}
    assert (document["service"], document["tier"], document["tenant_id"]) == (SERVICE, "basic", "acme")
    assert document["status"] == line["status"] and document["request_id"] == "req-acme"
    values = metric_values(document)
    assert set(values) == REQUEST_METRICS
    assert {name: values[name] for name in expected} == expected
    # Milliseconds, not seconds or microseconds: a unit check; speed is measured by make bench, not here.
    assert 0 <= values["Latency"] < 10_000
    assert metric_units(document) == {
        "Requests": "Count",
        "ClientErrors": "Count",
        "ServerErrors": "Count",
        "Throttled": "Count",
        "Latency": "Milliseconds",
    }


def test_a_request_without_a_tenant_emits_no_document(logs):
    middleware.observe_request(request(None, None, "/health"), answer(200))
    assert emitted(logs) == []
    assert [record["message"] for record in logs.records()] == ["request"]


def test_an_order_placed_in_a_request_joins_its_line(logs):
    middleware.observe_request(request("acme", "basic"), placing(Decimal("1234.56")))
    [document] = emitted(logs)
    assert len(logs.records()) == 1
    assert dimension_sets(document) == {frozenset({"service", "tier"})}
    values = metric_values(document)
    assert set(values) == REQUEST_METRICS | {"OrdersPlaced", "OrderValue"}
    assert (values["OrdersPlaced"], values["OrderValue"]) == (1, 1234.56)
    assert metric_units(document)["OrderValue"] == "None"


def test_a_request_that_placed_no_order_counts_none(logs):
    middleware.observe_request(request("acme", "basic"), placing(Decimal("5")))
    middleware.observe_request(request("acme", "basic"), answer(200))
    first, second = emitted(logs)
    assert "OrdersPlaced" in metric_values(first) and "OrdersPlaced" not in metric_values(second)


def test_an_order_outside_a_request_is_a_line_of_its_own(logs):
    emf.order_placed("premium", Decimal("1234.56"))
    [document] = emitted(logs)
    assert document["message"] == "order placed"
    assert dimension_sets(document) == {frozenset({"service", "tier"})}
    assert (document["service"], document["tier"]) == (SERVICE, "premium")
    assert "tenant_id" not in document
    assert metric_values(document) == {"OrdersPlaced": 1, "OrderValue": 1234.56}
    assert metric_units(document) == {"OrdersPlaced": "Count", "OrderValue": "None"}


def test_disabled_metrics_leave_the_access_line_alone(logs, monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    middleware.observe_request(request("acme", "basic"), placing(Decimal("5")))
    assert emitted(logs) == []
    [line] = logs.records()
    assert (line["message"], line["tenant_id"], line["status"]) == ("request", "acme", 201)


@pytest.fixture
def frequent_thread_switches():
    """Threads switched every microsecond, so that shared state between requests shows up."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


def test_concurrent_requests_never_mix_their_tenants_documents_or_orders(logs, frequent_thread_switches):
    tenants = [(f"tenant{number}", ("basic", "standard", "premium")[number % 3]) for number in range(8)]
    start = threading.Barrier(len(tenants))

    def serve(tenant_id: str, tier: str) -> None:
        start.wait()
        # Every other request places an order worth the tenant's number, which only its own line may carry.
        value = Decimal(tenant_id.removeprefix("tenant"))
        for number in range(REQUESTS_PER_THREAD):
            middleware.observe_request(request(tenant_id, tier), placing(value) if number % 2 else answer(200))

    threads = [threading.Thread(target=serve, args=tenant) for tenant in tenants]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    documents = emitted(logs)
    assert len(documents) == REQUESTS_PER_THREAD * len(tenants)
    tier_of = dict(tenants)
    for document in documents:
        assert dimension_sets(document) == {frozenset({"service", "tier"})}
        assert document["tier"] == tier_of[document["tenant_id"]]
        values = metric_values(document)
        assert values["Requests"] == 1
        if "OrderValue" in values:
            assert values["OrderValue"] == int(document["tenant_id"].removeprefix("tenant"))
    orders = [document for document in documents if "OrdersPlaced" in metric_values(document)]
    assert len(orders) == REQUESTS_PER_THREAD // 2 * len(tenants)
