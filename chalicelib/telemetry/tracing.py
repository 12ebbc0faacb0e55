"""X-Ray tracing: one span per request, DynamoDB calls as subsegments, set up once on first use.

In Lambda, Lambda owns the trace's segment and each request is a subsegment of it. Where
there is no Lambda (chalice local, tests) each request opens a segment of its own, sent to
the X-Ray daemon's UDP address if one listens and dropped quietly otherwise.

A request whose trace is not sampled (most of them: the stage's sampling rule keeps a few per
cent) costs nothing here: no subsegment is begun, and the SDK's botocore wrapper, which would
look up the trace context on every AWS call, is passed over. The trace id still reaches the
log lines, from Lambda's environment.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import logging
import os
import re
import threading
import traceback
from contextvars import ContextVar
from typing import Any, Callable, Iterator, TypeVar

T = TypeVar("T")

MAX_METADATA_CHARS = 2048
MAX_PARSED_BODY_BYTES = 16 * 1024
REDACTED = "[redacted]"
# Keys whose values are never written to a trace, at any depth of a request or response body.
SECRET_KEY = re.compile(r"token|secret|password|authorization|api[_-]?key|credential|cookie", re.IGNORECASE)


def tracing_enabled() -> bool:
    """Whether requests are traced (TRACING=off turns it off, e.g. for a benchmark baseline)."""
    return os.environ.get("TRACING", "on").lower() not in ("off", "false", "0")


def in_lambda() -> bool:
    """Whether Lambda provides the trace's segment (it sets LAMBDA_TASK_ROOT)."""
    return bool(os.environ.get("LAMBDA_TASK_ROOT"))


_setup_lock = threading.Lock()
# Whether the span open in this context is recorded: AWS calls made in it become its subsegments.
# A context variable, so that the parallel Queries of a request, run in copies of its context, see it.
_in_recorded_span: ContextVar[bool] = ContextVar("in_recorded_span", default=False)


@functools.lru_cache(maxsize=1)
def recorder() -> Any:
    """The X-Ray recorder, configured for where it runs and with botocore patched, on first use."""
    # Two first requests on chalice local's threads must not configure and patch at once.
    with _setup_lock:
        return _configured_recorder()


def _configured_recorder() -> Any:
    from aws_xray_sdk.core import patch, xray_recorder
    from aws_xray_sdk.core.context import Context
    from aws_xray_sdk.core.lambda_launcher import LambdaContext

    lambda_mode = in_lambda()
    # Sampling is decided by Lambda (from the trace header) or per span below, not by rules
    # polled from the X-Ray API. The context is chosen here rather than when the SDK was
    # imported, so that it always agrees with span(). Lambda never sends its facade segment,
    # so there each subsegment must be sent as it ends (threshold 0); elsewhere a request's
    # segment is sent whole unless it grows past 100 subsegments.
    xray_recorder.configure(
        service=os.environ.get("POWERTOOLS_SERVICE_NAME", "tenant-api"),
        context=LambdaContext() if lambda_mode else Context(),
        context_missing="IGNORE_ERROR",
        sampling=False,
        streaming_threshold=0 if lambda_mode else 100,
    )
    # The SDK warns on every AWS call made outside a span (seeding, scripts, tests) even with
    # IGNORE_ERROR; nothing is lost by ignoring those, and real failures are logged as errors.
    logging.getLogger("aws_xray_sdk").setLevel(logging.ERROR)
    # Patching botocore (not boto3) covers every client, including ones made before this call.
    patch(["botocore"])
    _record_aws_calls_only_in_recorded_spans()
    return xray_recorder


def _record_aws_calls_only_in_recorded_spans() -> None:
    """The SDK's botocore wrappers, run only while a recorded span is open; the plain methods otherwise."""
    import botocore.client
    import botocore.endpoint
    from aws_xray_sdk.ext.boto_utils import inject_header

    # The package's `patch` attribute is a function that hides the module of the same name.
    traced_botocore = importlib.import_module("aws_xray_sdk.ext.botocore.patch")._xray_traced_botocore

    # Once per process, as the SDK's own patch: the recorder may be configured again (tests do).
    if getattr(botocore.client, "_xray_gated_by_span", False):
        return
    botocore.client._xray_gated_by_span = True
    sdk_wrappers = {"_make_api_call": traced_botocore, "prepare_request": inject_header}
    for owner, name in (
        (botocore.client.BaseClient, "_make_api_call"),
        (botocore.endpoint.Endpoint, "prepare_request"),
    ):
        traced = owner.__dict__[name]
        if getattr(traced, "_self_wrapper", None) is not sdk_wrappers[name]:
            # Another instrumentation wraps the SDK's wrapper: passing it over too would be wrong.
            continue
        # The SDK's wrapper keeps the method it wraps; it must be bound to the instance to be called.
        plain = traced.__wrapped__

        def gated(self: Any, *args: Any, _traced: Any = traced, _plain: Any = plain, **kwargs: Any) -> Any:
            if _in_recorded_span.get():
                return _traced.__get__(self, type(self))(*args, **kwargs)
            return _plain(self, *args, **kwargs)

        functools.update_wrapper(gated, plain)
        setattr(owner, name, gated)


def _lambda_trace_sampled() -> bool:
    """Whether Lambda's trace header for this invocation says the trace is sampled."""
    header = os.environ.get("_X_AMZN_TRACE_ID", "")
    return "Sampled=1" in header.split(";")


def redact(value: Any) -> Any:
    """A copy of a JSON-like value with every secret-looking key's value replaced."""
    if isinstance(value, dict):
        return {key: REDACTED if SECRET_KEY.search(str(key)) else redact(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def capped(value: Any) -> Any:
    """The value redacted, and as a truncated string when its JSON is longer than the cap."""
    safe = redact(value)
    text = json.dumps(safe, default=str)
    if len(text) <= MAX_METADATA_CHARS:
        return safe
    return text[:MAX_METADATA_CHARS] + "...[truncated]"


def body_for_trace(raw: bytes | str | None) -> Any:
    """A request body as trace metadata: parsed and redacted if JSON, else only its size."""
    if not raw:
        return None
    if len(raw) > MAX_PARSED_BODY_BYTES:
        # Bodies the API refuses as too large are not worth parsing just to trace them.
        return {"unparsed_bytes": len(raw)}
    try:
        return capped(json.loads(raw))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return {"unparsed_bytes": len(raw)}


def current_trace_id() -> str | None:
    """The trace id of the span open on this thread, if tracing is on and a span is open."""
    if not tracing_enabled() or recorder.cache_info().currsize == 0:
        return None
    entity = recorder().get_trace_entity()
    return getattr(entity, "trace_id", None)


def carry_trace(function: Callable[[], T]) -> Callable[[], T]:
    """function, to be run on another thread as part of the span open on this one.

    The X-Ray context is per thread: without this, the DynamoDB calls of a parallel Query
    would be missing from the request's trace.
    """
    if not tracing_enabled() or recorder.cache_info().currsize == 0 or not _in_recorded_span.get():
        return function
    xray = recorder()
    entity = xray.get_trace_entity()
    if entity is None:
        return function

    def in_span() -> T:
        xray.set_trace_entity(entity)
        try:
            return function()
        finally:
            xray.clear_trace_entities()

    return in_span


class Span:
    """The trace entity of one request (or authorization): annotations, metadata, errors."""

    def __init__(self, entity: Any):
        self.entity = entity

    @property
    def trace_id(self) -> str | None:
        """The X-Ray trace id, for correlating logs with the trace."""
        return getattr(self.entity, "trace_id", None) if self.entity is not None else None

    def annotate(self, **values: Any) -> None:
        """Indexed, filterable values (annotation.tenant_id = "...")."""
        if self.entity is None:
            return
        for key, value in values.items():
            if value is not None:
                self.entity.put_annotation(key, value)

    @property
    def recording(self) -> bool:
        """Whether this span is sent anywhere (tracing on and the request sampled)."""
        return self.entity is not None and getattr(self.entity, "sampled", True)

    def metadata(self, **values: Any) -> None:
        """Unindexed detail, redacted and size-capped."""
        if not self.recording:
            return
        for key, value in values.items():
            if value is not None:
                self.entity.put_metadata(key, capped(value))

    def http(self, method: str, path: str, status: int) -> None:
        """The request line and answer; X-Ray flags a 4xx as error, 429 as throttle, 5xx as fault."""
        if self.entity is None:
            return
        self.entity.put_http_meta("method", method)
        self.entity.put_http_meta("url", path)
        self.entity.put_http_meta("status", status)

    def record_exception(self, error: BaseException) -> None:
        """Mark the span as failed with the error and its stack."""
        if self.entity is None:
            return
        stack = traceback.extract_tb(error.__traceback__)
        self.entity.add_exception(error, stack)


@contextlib.contextmanager
def span(name: str) -> Iterator[Span]:
    """Trace the block as one request: a subsegment in Lambda, a segment elsewhere; nothing if unsampled."""
    if not tracing_enabled() or (in_lambda() and not _lambda_trace_sampled()):
        yield Span(None)
        return
    xray = recorder()
    token = _in_recorded_span.set(True)
    try:
        if in_lambda():
            entity = xray.begin_subsegment(name)
            try:
                yield Span(entity)
            finally:
                if entity is not None:
                    xray.end_subsegment()
            return
        entity = xray.begin_segment(name=xray.service, sampling=1)
        try:
            yield Span(entity)
        finally:
            xray.end_segment()
    finally:
        _in_recorded_span.reset(token)
