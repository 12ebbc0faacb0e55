"""Structured logs, per-tenant metrics and request tracing, set up once and applied by middleware.

Logs are JSON lines (Powertools Logger). Metrics are CloudWatch embedded-metric-format
documents (Powertools Metrics), written to the log stream and turned into metrics by
CloudWatch at no API cost. Per request the application emits Requests, ClientErrors,
ServerErrors, Throttled and Latency, each under two dimension sets: (service, tier) and
(service, tenant_id). Every distinct dimension value is a separately billed custom metric,
so each tenant costs five metrics (about $1.50 a month at list price); orders placed and
their value are kept per tier only, since per-tenant business figures are cheaper to get
from the logs with Logs Insights than to keep as metrics.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
import uuid
from decimal import Decimal
from typing import Any, Callable

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from chalice.app import ChaliceUnhandledError, ChaliceViewError, Request, Response

from chalicelib import tracing
from chalicelib.errors import ApiError
from chalicelib.monitoring import (
    CLIENT_ERRORS,
    LATENCY,
    METRICS_NAMESPACE,
    ORDER_VALUE,
    ORDERS_PLACED,
    REQUESTS,
    SERVER_ERRORS,
    TENANT_DIMENSION,
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


class UnexpectedError(ApiError):
    """An exception no code expected, answered as the API's 500 once it is traced and logged."""


def surface_unexpected_errors(view: Callable[..., Any]) -> Callable[..., Any]:
    """The view, with its unexpected exceptions raised on as UnexpectedError.

    Chalice answers an unexpected exception from a view with a 500 of its own before any
    middleware runs: the request's span would not record it and its log line would not be
    ours. An UnexpectedError, like every ApiError, passes through Chalice to the middleware.
    """

    @functools.wraps(view)
    def view_surfacing_errors(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except (ChaliceUnhandledError, ChaliceViewError):
            raise
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


def _publish(metrics: EphemeralMetrics) -> None:
    """Write the metrics document as flush_metrics does, but in a single write.

    print() writes the line and its newline separately, so documents of concurrent requests
    (chalice local serves each on its own thread) could end up sharing a line.
    """
    try:
        if not is_metrics_disabled():
            sys.stdout.write(json.dumps(metrics.serialize_metric_set(), separators=(",", ":")) + "\n")
    except (OSError, ValueError):
        # A lost metrics document must not fail a request that has already done its work.
        pass
    finally:
        metrics.clear_metrics()


def _record_metrics(tenant: dict[str, str], status: int, latency_ms: float) -> None:
    if "tenant_id" not in tenant or "tier" not in tenant:
        # Unauthenticated routes (health, the OpenAPI document) are not tenant traffic.
        return
    # One document per request, built apart from Powertools' process-wide Metrics state, which
    # concurrent requests (chalice local serves each on its own thread) would otherwise mix.
    metrics = EphemeralMetrics(namespace=METRICS_NAMESPACE, service=SERVICE)
    metrics.add_dimension(TIER_DIMENSION, tenant["tier"])
    # A second dimension set carries the service too, so both sets can be searched alike.
    metrics.add_dimensions(service=SERVICE, **{TENANT_DIMENSION: tenant["tenant_id"]})
    metrics.add_metric(REQUESTS, MetricUnit.Count, 1)
    metrics.add_metric(CLIENT_ERRORS, MetricUnit.Count, int(400 <= status < 500))
    metrics.add_metric(SERVER_ERRORS, MetricUnit.Count, int(status >= 500))
    metrics.add_metric(THROTTLED, MetricUnit.Count, int(status == 429))
    metrics.add_metric(LATENCY, MetricUnit.Milliseconds, round(latency_ms, 3))
    _publish(metrics)


def order_placed(tier: str, total: Decimal) -> None:
    """Count a newly placed order and its value under its tier (not for idempotent replays)."""
    order_metrics = EphemeralMetrics(namespace=METRICS_NAMESPACE, service=SERVICE)
    order_metrics.add_dimension(TIER_DIMENSION, tier)
    order_metrics.add_metric(ORDERS_PLACED, MetricUnit.Count, 1)
    order_metrics.add_metric(ORDER_VALUE, MetricUnit.NoUnit, float(total))
    _publish(order_metrics)


def security_event(reason: str, **details: Any) -> None:
    """Log a refusal or probe worth an operator's attention, never with a token or secret."""
    logger.warning("security event", extra={"security_event": reason, **details})


def request_id(request: Request) -> str:
    """The request's id: API Gateway's requestId, or one made up where there is no gateway."""
    context = request.context
    if not context.get("requestId"):
        context["requestId"] = str(uuid.uuid4())
    return context["requestId"]


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
    logger.info("request", extra=access)
    _record_metrics(tenant, status, latency_ms)


def _report_unexpected(request: Request, span: tracing.Span, endpoint: str, error: BaseException) -> None:
    span.record_exception(error)
    extra = {"request_id": request_id(request), "route": endpoint, **_tenant_of(request)}
    logger.error("unhandled error", exc_info=error, extra=extra)


def observe_request(event: Request, get_response: Callable[[Request], Response]) -> Response:
    """Trace, log and measure one request: one span, one access-log line, one metrics document.

    An unexpected exception is recorded on the span with its stack and logged, then raised on
    as UnexpectedError for the error middleware to answer 500.
    """
    started = time.perf_counter()
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
        except Exception as error:  # noqa: BLE001 - from the middleware below the views
            unexpected = UnexpectedError()
            _report_unexpected(event, span, endpoint, error)
            _finish(event, span, endpoint, started, unexpected.status, error=unexpected)
            raise unexpected from error
        _finish(event, span, endpoint, started, response.status_code, body=response.body)
        return response
