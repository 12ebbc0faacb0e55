"""X-Ray spans in and outside Lambda, redacted and capped metadata, tracing off, and no daemon needed."""

from __future__ import annotations

import json
import logging
import re
import socket
import time
from typing import Any, Iterator

import pytest
from aws_xray_sdk.core.emitters.udp_emitter import UDPEmitter

from chalicelib.process_caches import reset_process_caches
from chalicelib.store.dynamodb import dynamodb_client
from chalicelib.telemetry import tracing
from chalicelib.telemetry.logs import logger
from tests.support.capture import CapturedLogs, InMemoryEmitter

TRACE_ID = re.compile(r"^1-[0-9a-f]{8}-[0-9a-f]{24}$")
LAMBDA_TRACE_ID = "1-5759e988-bd862e3fe1be46a994272793"
LAMBDA_PARENT_ID = "53995c3f42cd8ad8"


def raise_and_catch() -> ValueError:
    try:
        raise ValueError("the catalog is on fire")
    except ValueError as error:
        return error


# --- redaction and capping -------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "token",
        "access_token",
        "next_token",
        "client_secret",
        "Authorization",
        "x-api-key",
        "apiKey",
        "api_key",
        "password",
        "Cookie",
        "credentials",
    ],
)
def test_a_secret_looking_key_is_redacted_at_any_depth(key):
    value = {"outer": [{"inner": {key: "s3cr3t-value", "kept": 1}}], key: {"nested": "s3cr3t-value"}}
    redacted = tracing.redact(value)
    assert redacted == {"outer": [{"inner": {key: tracing.REDACTED, "kept": 1}}], key: tracing.REDACTED}
    assert "s3cr3t-value" not in json.dumps(redacted)


def test_redaction_keeps_ordinary_values_and_leaves_the_original_alone():
    original = {"items": [{"product_id": "prod-001", "quantity": 2}], "secret": "x", "note": None}
    redacted = tracing.redact(original)
    assert redacted == {"items": [{"product_id": "prod-001", "quantity": 2}], "secret": tracing.REDACTED, "note": None}
    assert original["secret"] == "x"
    assert tracing.redact("plain") == "plain"
    assert tracing.redact([1, "two", {"token": "t"}]) == [1, "two", {"token": tracing.REDACTED}]


def test_a_small_value_is_kept_as_structure():
    value = {"items": [{"product_id": "prod-001", "quantity": 2}]}
    assert tracing.capped(value) == value


def test_a_large_value_becomes_a_truncated_redacted_string():
    items = [{"product_id": f"prod-{n:03d}", "quantity": n} for n in range(500)]
    value = {"client_secret": "s3cr3t-value", "items": items}
    capped = tracing.capped(value)
    assert isinstance(capped, str)
    assert capped.endswith("...[truncated]")
    assert len(capped) == tracing.MAX_METADATA_CHARS + len("...[truncated]")
    assert "s3cr3t-value" not in capped and tracing.REDACTED in capped


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        (b"", None),
        (b'{"items": [], "api_key": "k"}', {"items": [], "api_key": tracing.REDACTED}),
        ('{"token": "t"}', {"token": tracing.REDACTED}),
        (b"grant_type=client_credentials&client_secret=s3cr3t", {"unparsed_bytes": 50}),
        (b"\xff\xfe{", {"unparsed_bytes": 3}),
        (b"[" * 100_000, {"unparsed_bytes": 100_000}),
    ],
    ids=["none", "empty", "json", "json text", "form", "not utf-8", "too deep"],
)
def test_a_request_body_is_traced_parsed_and_redacted_or_as_its_size_only(raw, expected):
    assert tracing.body_for_trace(raw) == expected


# --- outside Lambda: one segment per span ----------------------------------------------------


def test_a_span_outside_lambda_is_a_segment_sent_when_it_ends(traces: InMemoryEmitter):
    with tracing.span("GET /catalog") as span:
        assert TRACE_ID.match(span.trace_id)
        assert tracing.current_trace_id() == span.trace_id
        span.annotate(tenant_id="acme", tier="basic", status=200, skipped=None)
        span.metadata(request={"headers": {"authorization": "Bearer abc.def.ghi"}, "query": {"limit": "2"}}, empty=None)
        span.http("GET", "/catalog", 200)
        assert traces.documents == []
    assert tracing.current_trace_id() is None
    [segment] = traces.documents
    assert segment["name"] == tracing.recorder().service
    assert segment["trace_id"] == span.trace_id
    assert segment["annotations"] == {"tenant_id": "acme", "tier": "basic", "status": 200}
    assert segment["metadata"]["default"] == {
        "request": {"headers": {"authorization": tracing.REDACTED}, "query": {"limit": "2"}}
    }
    assert segment["http"] == {"request": {"method": "GET", "url": "/catalog"}, "response": {"status": 200}}
    assert not segment["in_progress"] and "fault" not in segment and "error" not in segment
    assert "abc.def.ghi" not in json.dumps(traces.documents)


@pytest.mark.parametrize(("status", "flags"), [(404, {"error"}), (429, {"error", "throttle"}), (503, {"fault"})])
def test_the_status_flags_the_segment_as_error_throttle_or_fault(traces: InMemoryEmitter, status, flags):
    with tracing.span("GET /catalog") as span:
        span.http("GET", "/catalog", status)
    [segment] = traces.documents
    assert {flag for flag in ("error", "throttle", "fault") if segment.get(flag)} == flags


def test_an_exception_is_recorded_with_its_stack(traces: InMemoryEmitter):
    error = raise_and_catch()
    with tracing.span("GET /catalog") as span:
        span.record_exception(error)
    [segment] = traces.documents
    assert segment["fault"] is True
    [exception] = segment["cause"]["exceptions"]
    assert (exception["type"], exception["message"]) == ("ValueError", "the catalog is on fire")
    assert {"path": "test_tracing.py", "label": "raise_and_catch"} == {
        key: exception["stack"][-1][key] for key in ("path", "label")
    }


def test_each_span_is_a_trace_of_its_own(traces: InMemoryEmitter):
    for _ in range(3):
        with tracing.span("GET /health"):
            pass
    assert len({segment["trace_id"] for segment in traces.documents}) == 3


def test_log_lines_inside_a_span_carry_its_trace_id(logs: CapturedLogs):
    with tracing.span("GET /health") as span:
        logger.info("inside")
    logger.info("outside")
    inside, outside = logs.records()
    assert inside["xray_trace_id"] == span.trace_id
    assert "xray_trace_id" not in outside


# --- in Lambda: a subsegment of Lambda's facade segment --------------------------------------


@pytest.fixture
def in_lambda(monkeypatch) -> Iterator[pytest.MonkeyPatch]:
    """The environment Lambda gives a traced, sampled invocation; the recorder set up for it."""
    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")
    monkeypatch.setenv("_X_AMZN_TRACE_ID", f"Root={LAMBDA_TRACE_ID};Parent={LAMBDA_PARENT_ID};Sampled=1")
    reset_process_caches()
    yield monkeypatch
    monkeypatch.delenv("LAMBDA_TASK_ROOT")
    monkeypatch.delenv("_X_AMZN_TRACE_ID")
    reset_process_caches()
    tracing.recorder()


def test_a_span_in_lambda_is_a_subsegment_of_the_facade_segment_sent_as_it_ends(in_lambda, traces: InMemoryEmitter):
    with tracing.span("GET /orders/{order_id}") as span:
        assert type(span.entity).__name__ == "Subsegment"
        assert span.trace_id == LAMBDA_TRACE_ID
        span.annotate(tenant_id="acme", status=200)
    [subsegment] = traces.documents
    assert subsegment["type"] == "subsegment"
    assert subsegment["name"] == "GET /orders/{order_id}"
    assert (subsegment["trace_id"], subsegment["parent_id"]) == (LAMBDA_TRACE_ID, LAMBDA_PARENT_ID)
    assert subsegment["annotations"] == {"tenant_id": "acme", "status": 200}


def test_each_lambda_span_is_sent_on_its_own(in_lambda, traces: InMemoryEmitter):
    for name in ("authorizer", "GET /catalog"):
        with tracing.span(name):
            pass
    assert [document["name"] for document in traces.documents] == ["authorizer", "GET /catalog"]


def test_log_lines_in_lambda_carry_the_invocations_trace_id(in_lambda, logs: CapturedLogs):
    with tracing.span("GET /catalog"):
        logger.info("inside")
    logger.info("outside")
    assert [record["xray_trace_id"] for record in logs.records()] == [LAMBDA_TRACE_ID, LAMBDA_TRACE_ID]


def test_an_unsampled_lambda_invocation_sends_nothing(in_lambda, traces: InMemoryEmitter):
    in_lambda.setenv("_X_AMZN_TRACE_ID", f"Root={LAMBDA_TRACE_ID};Parent={LAMBDA_PARENT_ID};Sampled=0")
    with tracing.span("GET /catalog") as span:
        span.annotate(tenant_id="acme")
        span.record_exception(raise_and_catch())
    assert traces.documents == []


@pytest.fixture
def xray_work(monkeypatch) -> list[str]:
    """What the SDK does for AWS calls: each subsegment it begins, each call it records."""
    done: list[str] = []
    recorder = tracing.recorder()
    for method in ("begin_subsegment", "record_subsegment"):
        original = getattr(recorder, method)

        def spy(*args: Any, _original: Any = original, _method: str = method, **kwargs: Any) -> Any:
            done.append(f"{_method} {kwargs.get('name', args[0] if args else '')}")
            return _original(*args, **kwargs)

        monkeypatch.setattr(recorder, method, spy)
    return done


def trace_headers_sent() -> tuple[Any, list[str | None]]:
    """A DynamoDB client, and the X-Amzn-Trace-Id header of each request it sends."""
    client = dynamodb_client()
    sent: list[str | None] = []

    def record(request: Any, **_: Any) -> None:
        header = request.headers.get("X-Amzn-Trace-Id")
        sent.append(header.decode() if isinstance(header, bytes) else header)

    client.meta.events.register("before-send.dynamodb", record)
    return client, sent


def test_an_unsampled_lambda_invocation_costs_no_xray_work_for_its_aws_calls(
    in_lambda, aws, xray_work: list[str], traces: InMemoryEmitter
):
    in_lambda.setenv("_X_AMZN_TRACE_ID", f"Root={LAMBDA_TRACE_ID};Parent={LAMBDA_PARENT_ID};Sampled=0")
    client, headers = trace_headers_sent()
    with tracing.span("GET /catalog") as span:
        assert span.entity is None and not span.recording
        client.list_tables()
        assert tracing.carry_trace(len) is len
    assert xray_work == [] and traces.documents == []
    # No header from X-Ray; in Lambda botocore adds Lambda's own (AWS_LAMBDA_FUNCTION_NAME, unset here).
    assert headers == [None]


def test_a_sampled_lambda_invocations_aws_calls_are_its_subsegments(
    in_lambda, aws, xray_work: list[str], traces: InMemoryEmitter
):
    client, headers = trace_headers_sent()
    with tracing.span("GET /catalog"):
        client.list_tables()
    assert xray_work[:2] == ["begin_subsegment GET /catalog", "record_subsegment dynamodb"]
    assert [document["name"] for document in traces.documents] == ["dynamodb", "GET /catalog"]
    [header] = headers
    assert header is not None and f"Root={LAMBDA_TRACE_ID}" in header


def test_a_sampled_lambda_invocations_parallel_queries_are_each_its_subsegment(in_lambda, aws, traces: InMemoryEmitter):
    from chalicelib.store.dynamodb import _run_in_parallel

    client = dynamodb_client()
    with tracing.span("GET /catalog"):
        # Each call on a pool thread of its own, as a catalog page's Queries run.
        _run_in_parallel([lambda: client.list_tables()["TableNames"] for _ in range(4)])
    calls = [document for document in traces.documents if document["name"] == "dynamodb"]
    [request] = [document for document in traces.documents if document["name"] == "GET /catalog"]
    assert len(calls) == 4
    assert {call["parent_id"] for call in calls} == {request["id"]}


def test_a_lambda_invocation_without_a_trace_header_is_not_traced(in_lambda, aws, traces: InMemoryEmitter):
    in_lambda.delenv("_X_AMZN_TRACE_ID")
    with tracing.span("GET /catalog") as span:
        dynamodb_client().list_tables()
    assert span.entity is None and traces.documents == []
    in_lambda.setenv("_X_AMZN_TRACE_ID", f"Root={LAMBDA_TRACE_ID};Parent={LAMBDA_PARENT_ID};Sampled=1")


def test_aws_calls_outside_any_span_cost_no_xray_work(aws, xray_work: list[str]):
    client, headers = trace_headers_sent()
    client.list_tables()
    with tracing.span("GET /catalog"):
        pass
    client.list_tables()
    assert [work for work in xray_work if "dynamodb" in work] == []
    assert headers == [None, None]


# --- tracing off -----------------------------------------------------------------------------


def test_with_tracing_off_spans_do_nothing(monkeypatch, traces: InMemoryEmitter, logs: CapturedLogs):
    monkeypatch.setenv("TRACING", "off")
    with tracing.span("GET /catalog") as span:
        assert span.entity is None and span.trace_id is None
        span.annotate(tenant_id="acme")
        span.metadata(request={"a": 1})
        span.http("GET", "/catalog", 500)
        span.record_exception(raise_and_catch())
        assert tracing.current_trace_id() is None
        logger.info("inside")
    assert traces.documents == []
    assert "xray_trace_id" not in logs.records()[0]


@pytest.mark.parametrize("value", ["off", "OFF", "false", "0"])
def test_tracing_is_off_for_each_spelling(monkeypatch, value):
    monkeypatch.setenv("TRACING", value)
    assert not tracing.tracing_enabled()


# --- no X-Ray daemon -------------------------------------------------------------------------


@pytest.fixture
def no_daemon() -> Iterator[None]:
    """The SDK's own UDP emitter, aimed at a loopback port where nothing listens."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    recorder = tracing.recorder()
    previous = recorder.emitter
    recorder.emitter = UDPEmitter(f"127.0.0.1:{port}")
    try:
        yield
    finally:
        recorder.emitter = previous


def warnings_from_the_sdk(caplog: pytest.LogCaptureFixture) -> list[Any]:
    return [record.getMessage() for record in caplog.records if record.name.startswith("aws_xray_sdk")]


def test_spans_without_a_daemon_are_quiet_and_fast(no_daemon, caplog):
    started = time.perf_counter()
    with caplog.at_level(logging.WARNING):
        for _ in range(200):
            with tracing.span("GET /catalog") as span:
                span.annotate(tenant_id="acme")
                span.metadata(response={"status": 200})
    assert time.perf_counter() - started < 1.0
    assert warnings_from_the_sdk(caplog) == []


def test_aws_calls_outside_any_span_are_not_warned_about(aws, caplog):
    tracing.recorder()
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            dynamodb_client().list_tables()
    assert warnings_from_the_sdk(caplog) == []


def test_aws_calls_inside_a_span_are_its_subsegments(aws, traces: InMemoryEmitter):
    with tracing.span("GET /catalog"):
        dynamodb_client().list_tables()
    [segment] = traces.documents
    [call] = segment["subsegments"]
    assert (call["name"], call["namespace"], call["aws"]["operation"]) == ("dynamodb", "aws", "ListTables")


def test_an_unsampled_span_skips_metadata_so_bodies_are_not_parsed_for_nothing():
    class Unsampled:
        sampled = False
        trace_id = "1-00000000-000000000000000000000000"

        def put_metadata(self, *args):
            raise AssertionError("metadata of an unsampled span is never built")

    span = tracing.Span(Unsampled())
    assert not span.recording
    span.metadata(request={"body": {"items": []}})
    assert tracing.Span(None).recording is False
