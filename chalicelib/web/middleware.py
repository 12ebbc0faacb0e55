"""The request middleware: Lambda's request id on every log line, and per request one span, one access line with its metrics.

Also the view wrapper that brings a view's unexpected errors (and missing settings) to the
middleware, where they are traced, logged and answered in the envelope.
"""

from __future__ import annotations

import functools
import time
import uuid
from typing import Any, Callable

from chalice.app import ChaliceUnhandledError, ChaliceViewError, Request, Response

from chalicelib.config import SettingsError
from chalicelib.errors import ApiError, ConfigurationError
from chalicelib.telemetry import emf, tracing
from chalicelib.telemetry.logs import logger
from chalicelib.telemetry.metrics import ACCESS_LINE_MESSAGE

# Request headers worth seeing in a trace; Authorization and cookies never are.
TRACED_HEADERS = ("content-type", "content-length", "user-agent", "idempotency-key", "x-forwarded-for")
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


class UnexpectedError(ApiError):
    """An exception no code expected, answered as the API's 500 once it is traced and logged."""


def answer_for(error: Exception) -> ApiError:
    """The ApiError an exception is answered with: itself, the 503 for missing settings, else the 500."""
    if isinstance(error, ApiError):
        return error
    if isinstance(error, SettingsError):
        return misconfigured(error)
    return UnexpectedError()


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
        except Exception as error:
            raise answer_for(error) from error

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
    logger.info(ACCESS_LINE_MESSAGE, extra={**emf.request_metrics(tenant, status, latency_ms), **access})


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
    token = emf.placed_order.set({})
    try:
        return _observe(event, get_response, started)
    finally:
        emf.placed_order.reset(token)


def _observe(event: Request, get_response: Callable[[Request], Response], started: float) -> Response:
    endpoint = f"{event.method} {event.context.get('resourcePath') or event.path}"
    with tracing.span(endpoint) as span:
        try:
            response = get_response(event)
        except Exception as error:  # noqa: BLE001 - the views' errors, and those of the middleware below them
            answer = answer_for(error)
            if isinstance(answer, UnexpectedError):
                # A view's arrives wrapped by surface_unexpected_errors; the middleware's arrives bare.
                cause = (error.__cause__ or error) if answer is error else error
                _report_unexpected(event, span, endpoint, cause)
            _finish(event, span, endpoint, started, answer.status, error=answer)
            if answer is error:
                raise
            raise answer from error
        _finish(event, span, endpoint, started, response.status_code, body=response.body)
        return response
