"""Structured logs, per-tier metrics and request tracing, set up once and applied by middleware.

Logs are JSON lines (Powertools Logger). Each request writes one line: its access fields and,
in the same object, a CloudWatch embedded-metric-format document (Powertools Metrics), which
CloudWatch turns into metrics at no API cost. EMF allows members beyond the metrics, so one
line carries both and Logs bills one event, not two or three. The metrics are Requests,
ClientErrors, ServerErrors, Throttled and Latency, and for a newly placed order OrdersPlaced
and OrderValue, all under the dimensions (service, tier). Every distinct dimension value is a
separately billed custom metric, so there is no tenant dimension: per-tenant requests, errors
and time come from Contributor Insights rules over these same lines
(scripts.monitoring.contributor_rules), whose price does not grow with the tenants.
The line is written at INFO: a log level above it would drop the metrics with the access line.
"""

from __future__ import annotations

import functools
import os
import time
import uuid
from contextvars import ContextVar
from decimal import Decimal
from typing import Any, Callable

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from chalice.app import ChaliceUnhandledError, ChaliceViewError, Request, Response

from chalicelib.config import SettingsError, local_stack_hint
from chalicelib.errors import ApiError, ConfigurationError
from chalicelib.telemetry import tracing
from chalicelib.telemetry.metrics import (
    ACCESS_LINE_MESSAGE,
    CLIENT_ERRORS,
    LATENCY,
    METRICS_NAMESPACE,
    ORDER_VALUE,
    ORDERS_PLACED,
    REQUESTS,
    SERVER_ERRORS,
    THROTTLED,
    TIER_DIMENSION,
)

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "tenant-api")
# Request headers worth seeing in a trace; Authorization and cookies never are.
TRACED_HEADERS = ("content-type", "content-length", "user-agent", "idempotency-key", "x-forwarded-for")


class TraceCorrelatingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON log format, with the trace id of the open span where Lambda gives none.

    In Lambda the trace id comes from the invocation's environment; under chalice local and
    in tests each request opens its own segment, whose id the log lines should carry instead.
    """

    def _get_latest_trace_id(self) -> str | None:
        return super()._get_latest_trace_id() or tracing.current_trace_id()


logger = Logger(
    service=SERVICE,
    logger_formatter=TraceCorrelatingFormatter(utc=True, datefmt="%Y-%m-%dT%H:%M:%S.%F%z"),
)
# An error's stack already says where; on every other line the logging call's location is noise,
# billed by the byte.
logger.remove_keys(["location"])
_cold_start = True


def lambda_request_keys(event: Request, get_response: Callable[[Request], Response]) -> Response:
    """HTTP middleware: Lambda's request id and whether this is a cold start, on every log line of the request.

    Powertools' inject_lambda_context would add the function's name, ARN and memory too, which
    the log group and Lambda's REPORT line already say, and rebuild its decorator per request.
    """
    global _cold_start
    context = event.lambda_context
    cold_start, _cold_start = _cold_start, False
    # Per context: chalice local serves each request on a thread of its own.
    logger.thread_safe_append_keys(cold_start=cold_start, function_request_id=getattr(context, "aws_request_id", None))
    try:
        return get_response(event)
    finally:
        # Lambda reuses the thread: a line logged before the next request's keys must not carry these.
        logger.thread_safe_clear_keys()


def misconfigured(error: SettingsError) -> ConfigurationError:
    """The 503 a request gets when the settings it needs are missing or malformed."""
    return ConfigurationError(error.detail, error.settings)


def report_misconfiguration(error: ConfigurationError, lead: str = "answering 503 service_unavailable") -> None:
    """Log one line: lead, then the settings at fault (and, under chalice local, how to get them)."""
    logger.error(
        f"{lead}: the API is not configured: {error.detail}.{local_stack_hint()}",
        extra={"misconfigured_settings": list(error.settings)},
    )


class UnexpectedError(ApiError):
    """An exception no code expected, answered as the API's 500 once it is traced and logged."""


def surface_unexpected_errors(view: Callable[..., Any]) -> Callable[..., Any]:
    """The view, with its unexpected exceptions raised on as UnexpectedError.

    Chalice answers an unexpected exception from a view with a 500 of its own before any
    middleware runs: the request's span would not record it and its log line would not be
    ours. An UnexpectedError, like every ApiError, passes through Chalice to the middleware.
    Settings found missing or malformed on the way are the 503 ConfigurationError instead.
    """

    @functools.wraps(view)
    def view_surfacing_errors(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except (ChaliceUnhandledError, ChaliceViewError):
            raise
        except SettingsError as error:
            raise misconfigured(error) from error
        except Exception as error:
            raise UnexpectedError() from error

    return view_surfacing_errors


def _tenant_of(request: Request) -> dict[str, str]:
    context = request.context.get("authorizer") or {}
    return {key: context[key] for key in ("tenant_id", "tier") if isinstance(context.get(key), str)}


def _request_metadata(request: Request) -> dict[str, Any]:
    headers = {name: request.headers[name] for name in TRACED_HEADERS if name in request.headers}
    return {
        "method": request.method,
        "path": request.context.get("path") or request.path,
        "path_parameters": dict(request.uri_params or {}),
        "query": dict(request.query_params or {}),
        "headers": headers,
        "body": tracing.body_for_trace(request.raw_body if request.method in ("POST", "PUT", "PATCH") else None),
    }


# The order a request placed, if any, so its figures join the request's one line.
_placed_order: ContextVar[dict[str, Any] | None] = ContextVar("placed_order", default=None)


METRIC_UNITS = {
    REQUESTS: MetricUnit.Count,
    CLIENT_ERRORS: MetricUnit.Count,
    SERVER_ERRORS: MetricUnit.Count,
    THROTTLED: MetricUnit.Count,
    LATENCY: MetricUnit.Milliseconds,
    ORDERS_PLACED: MetricUnit.Count,
    ORDER_VALUE: MetricUnit.NoUnit,
}


@functools.lru_cache(maxsize=64)
def _metrics_template(tier: str, names: tuple[str, ...]) -> dict[str, Any]:
    """Powertools' EMF document for these metrics under (service, tier), made once per tier and set of metrics."""
    document = EphemeralMetrics(namespace=METRICS_NAMESPACE, service=SERVICE)
    document.add_dimension(TIER_DIMENSION, tier)
    for name in names:
        document.add_metric(name, METRIC_UNITS[name], 0)
    return dict(document.serialize_metric_set())


def _metrics_document(tier: str, figures: dict[str, float]) -> dict[str, Any]:
    """The EMF members of figures under the dimensions (service, tier); empty when metrics are disabled.

    Powertools builds and validates the document's shape once per tier; each request only puts in
    its timestamp and values (building it whole took a tenth of the request's own time).
    """
    if is_metrics_disabled():
        return {}
    template = _metrics_template(tier, tuple(figures))
    document = {**template, "_aws": {**template["_aws"], "Timestamp": int(time.time() * 1000)}}
    document.update((name, [float(value)]) for name, value in figures.items())
    return document


def _order_figures(total: Decimal) -> dict[str, float]:
    return {ORDERS_PLACED: 1, ORDER_VALUE: float(total)}


def _request_metrics(tenant: dict[str, str], status: int, latency_ms: float) -> dict[str, Any]:
    if "tenant_id" not in tenant or "tier" not in tenant:
        # Unauthenticated routes (health, the OpenAPI document) are not tenant traffic.
        return {}
    figures: dict[str, float] = {
        REQUESTS: 1,
        CLIENT_ERRORS: int(400 <= status < 500),
        SERVER_ERRORS: int(status >= 500),
        THROTTLED: int(status == 429),
        LATENCY: round(latency_ms, 3),
    }
    order = _placed_order.get()
    if order:
        figures |= _order_figures(order["total"])
    return _metrics_document(tenant["tier"], figures)


def order_placed(tier: str, total: Decimal) -> None:
    """Count a newly placed order and its value under its tier (not for idempotent replays).

    Inside a request the figures join its one line; elsewhere they are a line of their own.
    """
    order = _placed_order.get()
    if order is not None:
        # The request's line carries it, under the request's tier.
        order["total"] = total
        return
    logger.info("order placed", extra=_metrics_document(tier, _order_figures(total)))


def security_event(reason: str, **details: Any) -> None:
    """Log a refusal or probe worth an operator's attention, never with a token or secret."""
    logger.warning("security event", extra={"security_event": reason, **details})


def request_id(request: Request) -> str:
    """The request's id: API Gateway's requestId, or one made up where there is no gateway."""
    context = request.context
    if not context.get("requestId"):
        context["requestId"] = str(uuid.uuid4())
    return str(context["requestId"])


def _finish(
    request: Request,
    span: tracing.Span,
    endpoint: str,
    started: float,
    status: int,
    error: ApiError | None = None,
    body: Any = None,
) -> None:
    latency_ms = (time.perf_counter() - started) * 1000
    tenant = _tenant_of(request)
    rid = request_id(request)
    span.annotate(request_id=rid, endpoint=endpoint, status=status, **tenant)
    span.http(request.method, request.context.get("path") or request.path, status)
    if span.recording:
        # Parsing and redacting bodies is paid only for requests whose trace is kept.
        response = {"status": status, "body": body, "error_code": error.code if error else None}
        span.metadata(request=_request_metadata(request), response=response)
    access: dict[str, Any] = {
        "request_id": rid,
        "route": endpoint,
        "status": status,
        "latency_ms": round(latency_ms, 3),
        **tenant,
    }
    if error is not None:
        access["error_code"] = error.code
        if error.security_event:
            access["security_event"] = error.security_event
    # The metrics go first so that no metric can take the name of an access field.
    logger.info(ACCESS_LINE_MESSAGE, extra={**_request_metrics(tenant, status, latency_ms), **access})


def _report_unexpected(request: Request, span: tracing.Span, endpoint: str, error: BaseException) -> None:
    span.record_exception(error)
    extra = {"request_id": request_id(request), "route": endpoint, **_tenant_of(request)}
    logger.error("unhandled error", exc_info=error, extra=extra)


def observe_request(event: Request, get_response: Callable[[Request], Response]) -> Response:
    """Trace, log and measure one request: one span and one line of access fields and metrics.

    An unexpected exception is recorded on the span with its stack and logged, then raised on
    as UnexpectedError for the error middleware to answer 500.
    """
    started = time.perf_counter()
    token = _placed_order.set({})
    try:
        return _observe(event, get_response, started)
    finally:
        _placed_order.reset(token)


def _observe(event: Request, get_response: Callable[[Request], Response], started: float) -> Response:
    endpoint = f"{event.method} {event.context.get('resourcePath') or event.path}"
    with tracing.span(endpoint) as span:
        try:
            response = get_response(event)
        except UnexpectedError as error:
            _report_unexpected(event, span, endpoint, error.__cause__ or error)
            _finish(event, span, endpoint, started, error.status, error=error)
            raise
        except ApiError as error:
            _finish(event, span, endpoint, started, error.status, error=error)
            raise
        except SettingsError as error:
            # From the middleware below the views, which read settings too.
            configuration = misconfigured(error)
            _finish(event, span, endpoint, started, configuration.status, error=configuration)
            raise configuration from error
        except Exception as error:  # noqa: BLE001 - from the middleware below the views
            unexpected = UnexpectedError()
            _report_unexpected(event, span, endpoint, error)
            _finish(event, span, endpoint, started, unexpected.status, error=unexpected)
            raise unexpected from error
        _finish(event, span, endpoint, started, response.status_code, body=response.body)
        return response
