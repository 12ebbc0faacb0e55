"""OpenTelemetry tracing behind the same seam as chalicelib.telemetry.tracing, for the move off the X-Ray SDK.

The X-Ray SDK for Python is in maintenance mode from 25 February 2026 and out of support from
25 February 2027; AWS points to OpenTelemetry. This module offers what chalicelib.telemetry.tracing
offers (span, Span, current_trace_id, carry_trace, body_for_trace and the rest) on the
OpenTelemetry SDK, so that the migration changes which module the app imports and nothing
else. The app does not import it yet: chalicelib.telemetry.tracing stays in use until the migration.

The traces keep X-Ray's shape. Trace ids carry their start time as X-Ray's do
(AwsXRayIdGenerator). In Lambda each request span is a child of Lambda's own segment, taken
from _X_AMZN_TRACE_ID (AwsXRayLambdaPropagator), and follows its Sampled flag, so the stage's
X-Ray sampling rule still decides; an unsampled invocation opens no span and its AWS calls
skip the instrumentation. Outside Lambda every request is a trace of its own. Every AWS call
made inside a recorded span is a child span of it (BotocoreInstrumentor), DynamoDB's with the
table's name. Annotations are span attributes whose keys are listed in `aws.xray.annotations`,
which X-Ray indexes as annotations; metadata are attributes X-Ray keeps unindexed.

Spans leave through an OTLP/HTTP exporter in batches, to OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
(by default http://localhost:4318/v1/traces, where a collector Lambda extension listens). Lambda
freezes the batch's thread between invocations, so in Lambda each request flushes its spans
before it answers.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace

from chalicelib.config import in_aws_lambda
from chalicelib.telemetry.tracing import (
    MAX_METADATA_CHARS,
    MAX_PARSED_BODY_BYTES,
    REDACTED,
    body_for_trace,
    capped,
    in_lambda,
    redact,
    tracing_enabled,
)

if TYPE_CHECKING:
    from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.sampling import Sampler

__all__ = [
    "MAX_METADATA_CHARS",
    "MAX_PARSED_BODY_BYTES",
    "REDACTED",
    "Span",
    "body_for_trace",
    "capped",
    "carry_trace",
    "current_trace_id",
    "in_lambda",
    "provider",
    "redact",
    "set_up",
    "shut_down",
    "span",
    "tracing_enabled",
    "xray_trace_id",
]

T = TypeVar("T")

TRACER_NAME = "chalicelib.telemetry.tracing"
# The span attribute X-Ray reads the names of a span's annotations from; other attributes become metadata.
ANNOTATIONS_ATTRIBUTE = "aws.xray.annotations"
METADATA_PREFIX = "metadata."
# How long a request in Lambda waits for its spans to reach the collector; a trace is worth less than the answer.
FLUSH_TIMEOUT_MILLIS = 1000

_setup_lock = threading.Lock()
_provider: TracerProvider | None = None


def provider() -> TracerProvider:
    """The process's tracer provider, set up on first use with spans exported over OTLP/HTTP."""
    global _provider
    current = _provider
    if current is not None:
        return current
    # Two first requests on chalice local's threads must not set up and instrument at once.
    with _setup_lock:
        if _provider is None:
            _provider = _configured_provider(None)
        return _provider


def set_up(processor: SpanProcessor | None = None) -> TracerProvider:
    """Trace the process from now on, its spans handed to processor (by default OTLP/HTTP in batches)."""
    global _provider
    with _setup_lock:
        if _provider is not None:
            _stop(_provider)
        _provider = _configured_provider(processor)
        return _provider


def shut_down() -> None:
    """Stop tracing the process: spans still queued are exported and botocore is no longer instrumented."""
    global _provider
    with _setup_lock:
        if _provider is not None:
            _stop(_provider)
            _provider = None


def _configured_provider(processor: SpanProcessor | None) -> TracerProvider:
    from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ParentBased

    resource = Resource.create({SERVICE_NAME: os.environ.get("POWERTOOLS_SERVICE_NAME", "tenant-api")})
    if in_aws_lambda():
        from opentelemetry.sdk.extension.aws.resource import AwsLambdaResourceDetector

        # The function's name, version, memory and region, from the variables Lambda sets.
        resource = resource.merge(AwsLambdaResourceDetector().detect())
    # A span with a parent follows the parent's sampling: in Lambda, the Sampled flag Lambda was given.
    tracer_provider = TracerProvider(
        resource=resource,
        id_generator=AwsXRayIdGenerator(),
        sampler=ParentBased(root=_requests_only()),
    )
    tracer_provider.add_span_processor(processor or _batch_to_otlp())
    # botocore, not boto3: every client, including ones made before this call. The instrumentor
    # checks its dependency ranges against every installed distribution's metadata unless told
    # not to; the lock files pin botocore, and the check would be paid at every cold start.
    _botocore_instrumentor().instrument(tracer_provider=tracer_provider, skip_dep_check=True)
    return tracer_provider


def _batch_to_otlp() -> SpanProcessor:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    return BatchSpanProcessor(OTLPSpanExporter())


def _requests_only() -> Sampler:
    """The sampler of spans without a parent: a request's span is sampled, an AWS call outside any request is not.

    The X-Ray SDK drops an AWS call made outside a segment (seeding, scripts, set-up); OpenTelemetry
    would make each one a trace of its own.
    """
    from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult

    class RequestsOnly(Sampler):
        def should_sample(
            self,
            parent_context: otel_context.Context | None,
            trace_id: int,
            name: str,
            kind: trace.SpanKind | None = None,
            attributes: Any = None,
            links: Sequence[trace.Link] | None = None,
            trace_state: trace.TraceState | None = None,
        ) -> SamplingResult:
            if kind is trace.SpanKind.SERVER:
                return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)
            return SamplingResult(Decision.DROP)

        def get_description(self) -> str:
            return "RequestsOnly"

    return RequestsOnly()


def _stop(tracer_provider: TracerProvider) -> None:
    _botocore_instrumentor().uninstrument()
    tracer_provider.shutdown()


def _botocore_instrumentor() -> BotocoreInstrumentor:
    """The process's one botocore instrumentor (instrumentors are singletons)."""
    from opentelemetry.instrumentation.botocore import BotocoreInstrumentor

    # Its constructor alone carries no annotations.
    return BotocoreInstrumentor()  # type: ignore[no-untyped-call]


def xray_trace_id(span_context: trace.SpanContext) -> str:
    """A span's trace id as X-Ray writes it: 1-<start time, 8 hex digits>-<24 hex digits>."""
    digits = trace.format_trace_id(span_context.trace_id)
    return f"1-{digits[:8]}-{digits[8:]}"


def _lambda_parent() -> otel_context.Context:
    """A context whose span is Lambda's segment for this invocation, as _X_AMZN_TRACE_ID names it."""
    from opentelemetry.propagators.aws import AwsXRayLambdaPropagator

    # An empty context: the propagator reads the environment only when no span is current in it.
    return AwsXRayLambdaPropagator().extract({}, context=otel_context.Context())


def current_trace_id() -> str | None:
    """The X-Ray trace id of the span open in this context, if tracing is on and a span is open."""
    if not tracing_enabled() or _provider is None:
        return None
    span_context = trace.get_current_span().get_span_context()
    return xray_trace_id(span_context) if span_context.is_valid else None


def carry_trace(function: Callable[[], T]) -> Callable[[], T]:
    """function, to be run on another thread as part of the span open on this one.

    A thread starts with an empty context: without this, the DynamoDB calls of a parallel
    Query would be traces of their own rather than children of the request's span.
    """
    if not tracing_enabled() or _provider is None:
        return function
    current = otel_context.get_current()
    if not trace.get_current_span(current).is_recording():
        return function

    def in_span() -> T:
        token = otel_context.attach(current)
        try:
            return function()
        finally:
            otel_context.detach(token)

    return in_span


class Span:
    """The span of one request (or authorization): annotations, metadata, errors; inert when nothing is recorded."""

    def __init__(self, otel_span: trace.Span | None):
        self.otel_span = otel_span
        self._annotations: list[str] = []

    @property
    def trace_id(self) -> str | None:
        """The X-Ray trace id, for correlating logs with the trace."""
        return xray_trace_id(self.otel_span.get_span_context()) if self.otel_span is not None else None

    @property
    def recording(self) -> bool:
        """Whether this span is sent anywhere (tracing on and the request sampled)."""
        return self._recorded() is not None

    def _recorded(self) -> trace.Span | None:
        return self.otel_span if self.otel_span is not None and self.otel_span.is_recording() else None

    def annotate(self, **values: Any) -> None:
        """Indexed, filterable values (annotation.tenant_id = "..."): attributes X-Ray indexes."""
        recorded = self._recorded()
        if recorded is None:
            return
        for key, value in values.items():
            if value is None:
                continue
            recorded.set_attribute(key, value)
            if key not in self._annotations:
                self._annotations.append(key)
        recorded.set_attribute(ANNOTATIONS_ATTRIBUTE, self._annotations)

    def metadata(self, **values: Any) -> None:
        """Unindexed detail, redacted and size-capped, as JSON text under metadata.<key>."""
        recorded = self._recorded()
        if recorded is None:
            return
        for key, value in values.items():
            if value is not None:
                recorded.set_attribute(METADATA_PREFIX + key, json.dumps(capped(value), default=str))

    def http(self, method: str, path: str, status: int) -> None:
        """The request line and answer; X-Ray flags a 4xx as error, 429 as throttle, 5xx as fault."""
        recorded = self._recorded()
        if recorded is None:
            return
        recorded.set_attribute("http.request.method", method)
        recorded.set_attribute("url.path", path)
        recorded.set_attribute("http.response.status_code", status)
        if status >= 500:
            # A server span's 4xx is the client's error, not the server's: only a 5xx marks it failed.
            recorded.set_status(trace.StatusCode.ERROR)

    def record_exception(self, error: BaseException) -> None:
        """Mark the span as failed with the error and its stack."""
        recorded = self._recorded()
        if recorded is None:
            return
        recorded.record_exception(error)
        recorded.set_status(trace.Status(trace.StatusCode.ERROR, type(error).__name__))


@contextlib.contextmanager
def span(name: str) -> Iterator[Span]:
    """Trace the block as one request: in Lambda a child of Lambda's segment, elsewhere a trace; nothing if unsampled."""
    if not tracing_enabled():
        yield Span(None)
        return
    parent: otel_context.Context | None = None
    if in_lambda():
        parent = _lambda_parent()
        lambda_segment = trace.get_current_span(parent).get_span_context()
        if not (lambda_segment.is_valid and lambda_segment.trace_flags.sampled):
            with _instrumentation_suppressed():
                yield Span(None)
            return
    tracer_provider = provider()
    tracer = tracer_provider.get_tracer(TRACER_NAME)
    # Exceptions are recorded by the caller, which knows an ApiError's 4xx from a failure.
    with tracer.start_as_current_span(
        name,
        context=parent,
        kind=trace.SpanKind.SERVER,
        record_exception=False,
        set_status_on_exception=False,
        end_on_exit=False,
    ) as otel_span:
        try:
            yield Span(otel_span)
        finally:
            otel_span.end()
            if parent is not None:
                # Lambda freezes the batch's thread once the invocation answers: export the spans now.
                tracer_provider.force_flush(FLUSH_TIMEOUT_MILLIS)


@contextlib.contextmanager
def _instrumentation_suppressed() -> Iterator[None]:
    """The AWS calls of the block skip botocore's instrumentation, which would only make spans nobody keeps."""
    if _provider is None:
        # Not set up yet, so botocore is not instrumented: there is nothing to skip.
        yield
        return
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    with suppress_instrumentation():
        yield
