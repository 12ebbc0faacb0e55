"""The OpenTelemetry seam: X-Ray-shaped spans in and outside Lambda, AWS calls as child spans, the sampled flag honoured.

Spans go to the SDK's in-memory exporter instead of an OTLP endpoint. Later tests put the
module in chalicelib.telemetry.tracing's place in the app, as the migration would, and serve requests;
the last ones check scripts.measure.tracing_cold_start, which measures what the move costs a cold start.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

import pytest
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, format_span_id
from packaging.requirements import Requirement

from chalicelib.store import dynamodb, keys
from chalicelib.store.catalog import CatalogRepository
from chalicelib.store.dynamodb import dynamodb_client
from chalicelib.telemetry import logs as log_setup
from chalicelib.telemetry import tracing_otel
from chalicelib.web import auth, middleware
from scripts.measure import bench, tracing_cold_start
from tests.support.api import Api
from tests.support.capture import CapturedLogs
from tests.support.project import PROJECT_DIR
from tests.support.tenants import ACME, TABLE_NAME

XRAY_TRACE_ID = re.compile(r"^1-[0-9a-f]{8}-[0-9a-f]{24}$")
LAMBDA_TRACE_ID = "1-5759e988-bd862e3fe1be46a994272793"
LAMBDA_PARENT_ID = "53995c3f42cd8ad8"


def lambda_header(sampled: bool, trace_id: str = LAMBDA_TRACE_ID) -> str:
    """The _X_AMZN_TRACE_ID Lambda sets for an invocation."""
    return f"Root={trace_id};Parent={LAMBDA_PARENT_ID};Sampled={int(sampled)}"


def raise_and_catch() -> ValueError:
    try:
        raise ValueError("the catalog is on fire")
    except ValueError as error:
        return error


class Spans:
    """The spans the seam finished during a test, from the SDK's in-memory exporter."""

    def __init__(self, exporter: InMemorySpanExporter):
        self.exporter = exporter

    def all(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.all() if span.name == name]

    def one(self, name: str) -> ReadableSpan:
        [span] = self.named(name)
        return span

    def children_of(self, parent: ReadableSpan) -> list[ReadableSpan]:
        return [
            span for span in self.all() if span.parent is not None and span.parent.span_id == parent.context.span_id
        ]


def xray_id(span: ReadableSpan) -> str:
    return tracing_otel.xray_trace_id(span.context)


@pytest.fixture
def in_lambda(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The environment Lambda gives a traced, sampled invocation."""
    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")
    monkeypatch.setenv("_X_AMZN_TRACE_ID", lambda_header(sampled=True))
    return monkeypatch


@pytest.fixture
def spans() -> Iterator[Spans]:
    """The seam set up for the test, its spans kept in memory; torn down (botocore uninstrumented) after."""
    exporter = InMemorySpanExporter()
    tracing_otel.set_up(SimpleSpanProcessor(exporter))
    try:
        yield Spans(exporter)
    finally:
        tracing_otel.shut_down()


# --- outside Lambda: each request a trace of its own -----------------------------------------


def test_a_span_outside_lambda_is_a_trace_of_its_own_with_an_xray_trace_id(spans: Spans):
    before = int(time.time())
    with tracing_otel.span("GET /catalog") as span:
        assert XRAY_TRACE_ID.match(span.trace_id)
        assert tracing_otel.current_trace_id() == span.trace_id
        span.annotate(tenant_id="acme", tier="basic", status=200, skipped=None)
        span.metadata(request={"headers": {"authorization": "Bearer abc.def.ghi"}, "query": {"limit": "2"}}, empty=None)
        span.http("GET", "/catalog", 200)
    assert tracing_otel.current_trace_id() is None
    request = spans.one("GET /catalog")
    assert request.kind is SpanKind.SERVER and request.parent is None
    assert xray_id(request) == span.trace_id
    # X-Ray refuses trace ids whose time is too old: the first 8 digits are the span's start, in seconds.
    assert before <= int(span.trace_id[2:10], 16) <= int(time.time())
    assert request.resource.attributes["service.name"] == "tenant-api"
    attributes = dict(request.attributes)
    assert {key: attributes[key] for key in ("tenant_id", "tier", "status")} == {
        "tenant_id": "acme",
        "tier": "basic",
        "status": 200,
    }
    assert attributes["aws.xray.annotations"] == ("tenant_id", "tier", "status")
    assert json.loads(attributes["metadata.request"]) == {
        "headers": {"authorization": tracing_otel.REDACTED},
        "query": {"limit": "2"},
    }
    assert "skipped" not in attributes and "metadata.empty" not in attributes
    assert (attributes["http.request.method"], attributes["url.path"], attributes["http.response.status_code"]) == (
        "GET",
        "/catalog",
        200,
    )
    assert request.status.status_code is StatusCode.UNSET
    assert "abc.def.ghi" not in json.dumps(attributes)


def test_annotations_made_in_several_calls_are_all_listed_for_xray(spans: Spans):
    with tracing_otel.span("authorizer") as span:
        span.annotate(tenant_id="acme", tier="basic")
        span.annotate(outcome="allowed", tier="basic")
    assert spans.one("authorizer").attributes["aws.xray.annotations"] == ("tenant_id", "tier", "outcome")


def test_each_span_is_a_trace_of_its_own(spans: Spans):
    for _ in range(3):
        with tracing_otel.span("GET /health"):
            pass
    assert len({span.context.trace_id for span in spans.all()}) == 3


@pytest.mark.parametrize(("status", "failed"), [(200, False), (404, False), (429, False), (503, True)])
def test_only_a_server_error_marks_the_request_failed(spans: Spans, status: int, failed: bool):
    with tracing_otel.span("GET /catalog") as span:
        span.http("GET", "/catalog", status)
    request = spans.one("GET /catalog")
    assert request.attributes["http.response.status_code"] == status
    assert (request.status.status_code is StatusCode.ERROR) is failed


def test_an_exception_is_recorded_with_its_stack(spans: Spans):
    error = raise_and_catch()
    with tracing_otel.span("GET /catalog") as span:
        span.record_exception(error)
    request = spans.one("GET /catalog")
    assert request.status.status_code is StatusCode.ERROR
    [event] = request.events
    assert (event.name, event.attributes["exception.type"], event.attributes["exception.message"]) == (
        "exception",
        "ValueError",
        "the catalog is on fire",
    )
    assert "raise_and_catch" in event.attributes["exception.stacktrace"]


def test_an_exception_leaving_the_span_is_left_to_the_caller_to_judge(spans: Spans):
    # An ApiError (a 404, a 429) passes through the request's span: it is no failure of the server.
    with pytest.raises(LookupError):
        with tracing_otel.span("GET /orders/{order_id}"):
            raise LookupError("no such order")
    request = spans.one("GET /orders/{order_id}")
    assert request.status.status_code is StatusCode.UNSET and not request.events
    assert request.end_time is not None


def test_aws_calls_outside_any_span_record_nothing(spans: Spans, aws: None):
    dynamodb_client().list_tables()
    with tracing_otel.span("GET /health"):
        pass
    dynamodb_client().list_tables()
    assert [span.name for span in spans.all()] == ["GET /health"]


def test_with_tracing_off_spans_do_nothing_and_nothing_is_set_up(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TRACING", "off")
    tracing_otel.shut_down()
    with tracing_otel.span("GET /catalog") as span:
        assert span.otel_span is None and span.trace_id is None and not span.recording
        span.annotate(tenant_id="acme")
        span.metadata(request={"a": 1})
        span.http("GET", "/catalog", 500)
        span.record_exception(raise_and_catch())
        assert tracing_otel.current_trace_id() is None
        assert tracing_otel.carry_trace(len) is len
    assert tracing_otel._provider is None


# --- in Lambda: children of Lambda's segment, as its trace header says -----------------------


def test_a_request_in_lambda_continues_the_invocations_trace(in_lambda: pytest.MonkeyPatch, spans: Spans):
    with tracing_otel.span("GET /orders/{order_id}") as span:
        assert span.trace_id == LAMBDA_TRACE_ID
        assert tracing_otel.current_trace_id() == LAMBDA_TRACE_ID
        span.annotate(tenant_id="acme", status=200)
    request = spans.one("GET /orders/{order_id}")
    assert request.kind is SpanKind.SERVER
    assert xray_id(request) == LAMBDA_TRACE_ID
    assert request.parent is not None and request.parent.is_remote
    assert format_span_id(request.parent.span_id) == LAMBDA_PARENT_ID
    assert request.context.trace_flags.sampled


def test_each_lambda_invocation_continues_its_own_trace(in_lambda: pytest.MonkeyPatch, spans: Spans):
    second = "1-5759e988-000000000000000000000002"
    with tracing_otel.span("authorizer"):
        pass
    in_lambda.setenv("_X_AMZN_TRACE_ID", lambda_header(sampled=True, trace_id=second))
    with tracing_otel.span("GET /catalog"):
        pass
    assert [(span.name, xray_id(span)) for span in spans.all()] == [
        ("authorizer", LAMBDA_TRACE_ID),
        ("GET /catalog", second),
    ]


def test_a_dynamodb_call_in_a_sampled_request_is_its_child_span_with_the_table_name(
    in_lambda: pytest.MonkeyPatch, spans: Spans, table: None
):
    with tracing_otel.span("GET /catalog/{product_id}"):
        product = CatalogRepository(ACME.tenant_id, dynamodb_client()).get("prod-001")
    assert product is not None
    request = spans.one("GET /catalog/{product_id}")
    [call] = spans.children_of(request)
    assert call.name == "DynamoDB.GetItem" and call.kind is SpanKind.CLIENT
    assert xray_id(call) == LAMBDA_TRACE_ID
    attributes = dict(call.attributes)
    assert (attributes["rpc.system"], attributes["rpc.service"], attributes["rpc.method"]) == (
        "aws-api",
        "DynamoDB",
        "GetItem",
    )
    assert attributes["aws.dynamodb.table_names"] == (TABLE_NAME,)
    assert attributes["http.status_code"] == 200
    # Seeding the table made calls outside any request: none of them is a trace.
    assert len(spans.all()) == 2


def test_an_unsampled_invocation_records_nothing_and_its_aws_calls_skip_the_instrumentation(
    in_lambda: pytest.MonkeyPatch, spans: Spans, aws: None
):
    in_lambda.setenv("_X_AMZN_TRACE_ID", lambda_header(sampled=False))
    with tracing_otel.span("GET /catalog") as span:
        assert not span.recording and span.trace_id is None
        assert not is_instrumentation_enabled()
        span.annotate(tenant_id="acme")
        span.record_exception(raise_and_catch())
        dynamodb_client().list_tables()
        assert tracing_otel.carry_trace(len) is len
    assert is_instrumentation_enabled()
    assert spans.all() == []


def test_a_lambda_invocation_without_a_trace_header_is_not_traced(
    in_lambda: pytest.MonkeyPatch, spans: Spans, aws: None
):
    in_lambda.delenv("_X_AMZN_TRACE_ID")
    with tracing_otel.span("GET /catalog") as span:
        dynamodb_client().list_tables()
    assert span.otel_span is None and spans.all() == []


def test_a_sampled_invocation_after_an_unsampled_one_is_traced_again(
    in_lambda: pytest.MonkeyPatch, spans: Spans, aws: None
):
    in_lambda.setenv("_X_AMZN_TRACE_ID", lambda_header(sampled=False))
    with tracing_otel.span("GET /catalog"):
        dynamodb_client().list_tables()
    in_lambda.setenv("_X_AMZN_TRACE_ID", lambda_header(sampled=True))
    with tracing_otel.span("GET /catalog"):
        dynamodb_client().list_tables()
    assert [span.name for span in spans.all()] == ["DynamoDB.ListTables", "GET /catalog"]


def test_the_spans_of_a_lambda_request_are_exported_before_it_answers(in_lambda: pytest.MonkeyPatch):
    """With the default batching processor: Lambda freezes its thread once the invocation answers."""
    exporter = InMemorySpanExporter()
    # A schedule far longer than the test: only the request's own flush can export in time.
    tracing_otel.set_up(BatchSpanProcessor(exporter, schedule_delay_millis=60_000))
    try:
        with tracing_otel.span("GET /catalog"):
            pass
        assert [span.name for span in exporter.get_finished_spans()] == ["GET /catalog"]
    finally:
        tracing_otel.shut_down()


# --- other threads ---------------------------------------------------------------------------


def test_calls_on_pool_threads_are_children_of_the_request_only_when_carried(spans: Spans, aws: None):
    client = dynamodb_client()
    with ThreadPoolExecutor(max_workers=4) as pool:
        with tracing_otel.span("GET /catalog"):
            # A pool thread does not inherit the submitting thread's context.
            carried = [pool.submit(tracing_otel.carry_trace(client.list_tables)) for _ in range(4)]
            bare = pool.submit(client.list_tables)
            for future in [*carried, bare]:
                future.result()
    request = spans.one("GET /catalog")
    assert [span.name for span in spans.children_of(request)] == ["DynamoDB.ListTables"] * 4
    assert len(spans.all()) == 5


def test_carry_trace_leaves_the_other_threads_context_as_it_found_it(spans: Spans):
    seen: list[str | None] = []

    def trace_id() -> str | None:
        return tracing_otel.current_trace_id()

    with tracing_otel.span("GET /catalog") as span:
        carried = tracing_otel.carry_trace(trace_id)

    def run_twice() -> None:
        seen.append(carried())
        seen.append(trace_id())

    thread = threading.Thread(target=run_twice)
    thread.start()
    thread.join()
    assert seen == [span.trace_id, None]


# --- the seam in the app ---------------------------------------------------------------------


@pytest.fixture
def app_on_otel(monkeypatch: pytest.MonkeyPatch, spans: Spans) -> Spans:
    """The app with this module in chalicelib.telemetry.tracing's place, where the four modules that trace import it."""
    monkeypatch.setattr(middleware, "tracing", tracing_otel)
    monkeypatch.setattr(log_setup, "tracing", tracing_otel)
    monkeypatch.setattr(auth, "tracing", tracing_otel)
    monkeypatch.setattr(dynamodb, "carry_trace", tracing_otel.carry_trace)
    return spans


def annotations(span: ReadableSpan) -> dict[str, Any]:
    """The attributes X-Ray would index as annotations."""
    return {key: span.attributes[key] for key in span.attributes["aws.xray.annotations"]}


def test_an_app_request_in_lambda_is_traced_in_the_invocations_trace_with_its_tenant(
    in_lambda: pytest.MonkeyPatch, app_on_otel: Spans, api: Api
):
    reply = api.get("/catalog/prod-001")
    assert reply.status == 200
    request = app_on_otel.one("GET /catalog/{product_id}")
    authorizer = app_on_otel.one("authorizer")
    for span in (request, authorizer):
        assert xray_id(span) == LAMBDA_TRACE_ID
        assert format_span_id(span.parent.span_id) == LAMBDA_PARENT_ID
    assert annotations(request) == {
        "request_id": reply.header("X-Request-Id"),
        "endpoint": "GET /catalog/{product_id}",
        "status": 200,
        "tenant_id": ACME.tenant_id,
        "tier": ACME.tier,
    }
    assert annotations(authorizer)["outcome"] == "allowed"
    assert annotations(authorizer)["tenant_id"] == ACME.tenant_id
    calls = app_on_otel.children_of(request)
    [get_item] = [call for call in calls if call.name == "DynamoDB.GetItem"]
    assert get_item.attributes["aws.dynamodb.table_names"] == (TABLE_NAME,)
    # The tenant's first request assumes its role: that call is the request's too.
    assert {call.name for call in calls} == {"DynamoDB.GetItem", "STS.AssumeRole"}
    response = json.loads(request.attributes["metadata.response"])
    assert response["status"] == 200 and response["body"]["product_id"] == "prod-001"


def test_an_app_request_in_an_unsampled_invocation_records_nothing(
    in_lambda: pytest.MonkeyPatch, app_on_otel: Spans, api: Api
):
    in_lambda.setenv("_X_AMZN_TRACE_ID", lambda_header(sampled=False))
    assert api.get("/catalog").status == 200
    assert app_on_otel.all() == []


def test_an_app_catalog_page_has_each_of_its_parallel_queries_as_a_child(app_on_otel: Spans, api: Api):
    assert api.get("/catalog").status == 200
    request = app_on_otel.one("GET /catalog")
    queries = [call for call in app_on_otel.children_of(request) if call.name == "DynamoDB.Query"]
    assert len(queries) == len(keys.catalog_partitions(ACME.tenant_id))
    assert {query.attributes["aws.dynamodb.table_names"] for query in queries} == {(TABLE_NAME,)}


def test_an_app_request_outside_lambda_logs_the_trace_id_of_its_own_trace(
    app_on_otel: Spans, api: Api, logs: CapturedLogs
):
    reply = api.get("/catalog/prod-999")
    assert reply.status == 404
    request = app_on_otel.one("GET /catalog/{product_id}")
    assert request.parent is None
    assert request.attributes["http.response.status_code"] == 404
    assert request.status.status_code is StatusCode.UNSET
    [line] = [record for record in logs.access() if record["request_id"] == reply.header("X-Request-Id")]
    assert line["xray_trace_id"] == xray_id(request)


# --- the cold-start measurement (scripts.measure.tracing_cold_start) ---------------------------------


def test_the_measurement_snippets_are_python():
    for code in tracing_cold_start.SET_UPS.values():
        compile(tracing_cold_start.SET_UP % {"set_up": code}, "<set-up>", "exec")
    for variant in tracing_cold_start.APP_VARIANTS.values():
        snippet = tracing_cold_start.APP % {"before_import": variant.before_import, "set_up": variant.set_up}
        compile(bench.EVENT + snippet, "<app>", "exec")


def test_the_measured_app_has_this_module_in_chalicelib_tracings_place():
    check = (
        "import sys\n"
        + tracing_cold_start.SWAP_TO_OPENTELEMETRY
        + "import app\n"
        + "from chalicelib.store import dynamodb\nfrom chalicelib.telemetry import logs, tracing_otel\n"
        + "from chalicelib.web import auth, middleware\n"
        + "assert middleware.tracing is logs.tracing is auth.tracing is tracing_otel\n"
        + "assert dynamodb.carry_trace is tracing_otel.carry_trace\n"
    )
    output = subprocess.run([sys.executable, "-c", check], cwd=tracing_cold_start.ROOT, capture_output=True, text=True)
    assert output.returncode == 0, output.stderr


def test_a_closure_follows_requested_extras_and_leaves_other_extras_out():
    closure = tracing_cold_start.installed_closure([Requirement("opentelemetry-exporter-otlp-proto-http")])
    # requests comes through opentelemetry-exporter-http-transport[requests].
    assert {"opentelemetry-sdk", "opentelemetry-exporter-http-transport", "requests", "protobuf"} <= closure
    # aws-lambda-powertools[tracer] would pull in the X-Ray SDK; without the extra it does not.
    assert "aws-xray-sdk" not in tracing_cold_start.installed_closure([Requirement("aws-lambda-powertools")])
    assert "aws-xray-sdk" in tracing_cold_start.installed_closure([Requirement("aws-lambda-powertools[tracer]")])


def test_each_library_is_charged_only_what_the_app_does_not_already_need():
    sizes = tracing_cold_start.package_sizes()
    assert "aws-xray-sdk" in sizes["X-Ray SDK"].distributions
    otel = set(sizes["OpenTelemetry"].distributions)
    assert set(tracing_cold_start.OPENTELEMETRY_REQUIREMENTS) <= otel and "opentelemetry-api" in otel
    for needed_anyway in ("boto3", "botocore", "urllib3", "aws-xray-sdk"):
        assert needed_anyway not in otel
    assert sizes["OpenTelemetry"].size_bytes > sizes["X-Ray SDK"].size_bytes > 0


def test_the_report_gives_ratios_to_the_same_runs_baselines():
    def phases(wall: float, cpu: float) -> dict[str, float]:
        return {
            figure: value
            for phase in ("import", "set_up", "first_request")
            for figure, value in ((phase, wall / 3), (phase + "_cpu", cpu / 3))
        }

    figures = tracing_cold_start.Figures(
        runs=5,
        set_up={
            "boto3 alone (baseline)": {"boto3": 0.140, "boto3_cpu": 0.100, "set_up": 0.0, "set_up_cpu": 0.0},
            "X-Ray SDK": {"boto3": 0.140, "boto3_cpu": 0.100, "set_up": 0.030, "set_up_cpu": 0.020},
            "OpenTelemetry": {"boto3": 0.140, "boto3_cpu": 0.100, "set_up": 0.150, "set_up_cpu": 0.090},
        },
        app={
            "tracing off (baseline)": phases(0.400, 0.300),
            "X-Ray SDK": phases(0.450, 0.330),
            "OpenTelemetry": phases(0.500, 0.390),
        },
        sizes={
            "X-Ray SDK": tracing_cold_start.PackageSize(("aws-xray-sdk", "wrapt"), 1_300_000),
            "OpenTelemetry": tracing_cold_start.PackageSize(("opentelemetry-sdk",), 7_500_000),
        },
    )
    text = "\n".join(tracing_cold_start.report(figures))
    assert "median of 5 fresh interpreters" in text
    assert "(CPU: 0.20x boto3's import)" in text and "(CPU: 0.90x boto3's import, 4.50x X-Ray's)" in text
    assert "(+30.0 ms CPU, 1.10x)" in text and "(+90.0 ms CPU, 1.30x)" in text
    assert "+6.2 MB (OpenTelemetry's in, the X-Ray SDK's out)" in text


def test_the_app_imports_no_opentelemetry_module():
    """The Lambda package has no OpenTelemetry: importing the app must not reach for it."""
    probe = "import sys, app; print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "[]"
