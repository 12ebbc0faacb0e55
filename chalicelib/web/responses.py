"""The JSON bodies the API answers with, and the middleware that renders every error alike."""

from __future__ import annotations

import math
from typing import Any, Callable

from chalice.app import Request, Response

from chalicelib.config import get_settings
from chalicelib.errors import (
    ApiError,
    ConfigurationError,
    InvalidRequest,
    MethodNotAllowed,
    RateLimited,
    UnsupportedMediaType,
    error_body,
)
from chalicelib.telemetry.logs import logger, report_misconfiguration
from chalicelib.tenancy import TenantContext
from chalicelib.tiers import TIERS
from chalicelib.web.middleware import request_id
from chalicelib.web.ratelimit import TenantRateLimiter

JSON_HEADERS = {"Content-Type": "application/json"}
# Sent with every answer: a browser must never sniff a JSON body (which may quote client input) into HTML.
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff"}
# Chalice renders a few failures itself as {"Code": ..., "Message": ...}; these give them our codes.
_CHALICE_ERRORS: dict[int, type[ApiError]] = {
    400: InvalidRequest,
    405: MethodNotAllowed,
    415: UnsupportedMediaType,
}


def ok(
    request: Request,
    tenant: TenantContext,
    body: dict[str, Any],
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """A success response: the payload plus the tenant and request it belongs to."""
    payload = {**body, "tenant_id": tenant.tenant_id, "request_id": request_id(request)}
    return Response(body=payload, status_code=status, headers={**JSON_HEADERS, **(headers or {})})


def error_response(error: ApiError, rid: str) -> Response:
    """An ApiError as its status and JSON envelope."""
    return Response(
        body=error_body(error.code, error.message, rid),
        status_code=error.status,
        headers={**JSON_HEADERS, **error.headers},
    )


def _from_chalice_error(response: Response, rid: str) -> Response:
    body = response.body
    if not (isinstance(body, dict) and "Code" in body and "Message" in body):
        return response
    if response.status_code >= 500:
        return error_response(ApiError(), rid)
    error = _CHALICE_ERRORS.get(response.status_code, InvalidRequest)()
    rendered = error_response(error, rid)
    rendered.headers.update({name: value for name, value in response.headers.items() if name.lower() == "allow"})
    return rendered


def error_middleware(event: Request, get_response: Callable[[Request], Response]) -> Response:
    """Render every error, ours or Chalice's, as the JSON envelope; tag the request id and security headers."""
    rid = request_id(event)
    try:
        response = get_response(event)
    except ConfigurationError as error:
        # The client sees a plain 503; the operator (or the developer running chalice local) sees why.
        report_misconfiguration(error)
        response = error_response(error, rid)
    except ApiError as error:
        response = error_response(error, rid)
    except Exception:  # noqa: BLE001 - the client gets an envelope, never a stack trace
        # Only failures outside observe_request get here: it reports the others as UnexpectedError.
        logger.exception("unhandled error", extra={"request_id": rid})
        response = error_response(ApiError(), rid)
    response = _from_chalice_error(response, rid)
    response.headers["X-Request-Id"] = rid
    response.headers.update(SECURITY_HEADERS)
    return response


class RateLimitMiddleware:
    """Applies each tenant's tier limits in-process where no usage plan does (RATE_LIMITER=in-app)."""

    def __init__(self, limiter: TenantRateLimiter | None = None):
        self.limiter = limiter or TenantRateLimiter()

    def __call__(self, event: Request, get_response: Callable[[Request], Response]) -> Response:
        """Answer 429 with Retry-After when the tenant's bucket is empty; else pass on."""
        context = event.context.get("authorizer") or {}
        tier = TIERS.get(context.get("tier", ""))
        if tier is None or get_settings().rate_limiter != "in-app":
            return get_response(event)
        wait = self.limiter.acquire(context["tenant_id"], tier)
        if wait > 0:
            # The same header API Gateway's THROTTLED response carries, plus when to come back.
            raise RateLimited(
                headers={"Retry-After": str(max(1, math.ceil(wait))), "x-amzn-ErrorType": "TooManyRequestsException"}
            )
        return get_response(event)
