"""Every failure a client can cause, with its HTTP status, error code and message, and the envelope it is sent in.

The ApiError classes are the API's own refusals; the Refusal constants at the end are those only
API Gateway gives (chalicelib.web.gateway renders both into its gateway responses).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from chalice.app import ChaliceUnhandledError


def error_body(code: str, message: str, request_id: str) -> dict[str, Any]:
    """The one error envelope, the API's and API Gateway's alike."""
    return {"error": {"code": code, "message": message}, "request_id": request_id}


class ApiError(ChaliceUnhandledError):
    """Base of the errors the API answers with; rendered as the JSON error envelope.

    It derives from ChaliceUnhandledError so that Chalice lets it propagate out of the view
    to our error middleware instead of rendering its own body.
    """

    status = 500
    code = "internal_error"
    message = "An internal error occurred."
    # Set on errors an operator should see as possible probing (logged as security_event).
    security_event: str | None = None

    def __init__(self, message: str | None = None, *, headers: dict[str, str] | None = None):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.headers = headers or {}


class InvalidRequest(ApiError):
    """A query parameter, header or path value is malformed."""

    status = 400
    code = "invalid_request"
    message = "The request is malformed."


class InvalidPaginationToken(ApiError):
    """The next_token was edited, expired or issued to another tenant or list."""

    status = 400
    code = "invalid_pagination_token"
    message = "The pagination token is not valid."
    security_event = "bad_pagination_token"


class Unauthenticated(ApiError):
    """No valid access token; detail is withheld on purpose."""

    status = 401
    code = "unauthorized"
    message = "Unauthorized"


class Forbidden(ApiError):
    """The tenant is authenticated but may not do this."""

    status = 403
    code = "forbidden"
    message = "Forbidden"


class InsufficientScope(Forbidden):
    """The access token lacks the OAuth scope this route requires."""

    code = "insufficient_scope"
    message = "The access token does not grant the scope this operation requires."
    security_event = "insufficient_scope"


class NotFound(ApiError):
    """The resource does not exist for this tenant (another tenant's resource included)."""

    status = 404
    code = "not_found"
    message = "Not found."
    # A miss may be an attempt at another tenant's id; every miss is logged so probing shows up.
    security_event = "unowned_resource_id"


class ProductNotFound(NotFound):
    """No such product in the tenant's catalog."""

    message = "Product not found."


class OrderNotFound(NotFound):
    """No such order for the tenant."""

    message = "Order not found."


class MethodNotAllowed(ApiError):
    """The route exists but not with this HTTP method."""

    status = 405
    code = "method_not_allowed"
    message = "This method is not allowed on this route."


class InsufficientStock(ApiError):
    """An order asks for more units than the catalog has."""

    status = 409
    code = "insufficient_stock"
    message = "Not enough stock for one or more products."


class CatalogChanged(ApiError):
    """Prices or products changed under a concurrent order too often to complete this one."""

    status = 409
    code = "catalog_changed"
    message = "The catalog changed while the order was placed; retry the request."


class PayloadTooLarge(ApiError):
    """The request body exceeds the size limit."""

    status = 413
    code = "payload_too_large"
    message = "The request body is too large."


class UnsupportedMediaType(ApiError):
    """The request body is not declared as JSON."""

    status = 415
    code = "unsupported_media_type"
    message = "The request body must be JSON (Content-Type: application/json)."


class ValidationFailed(ApiError):
    """The JSON body is well formed but breaks a rule of the payload."""

    status = 422
    code = "validation_error"
    message = "The request body is not valid."


class UnknownProduct(ValidationFailed):
    """An order line names a product that is not in the tenant's catalog."""

    code = "unknown_product"


class IdempotencyKeyReused(ApiError):
    """The Idempotency-Key was already used with a different request body."""

    status = 422
    code = "idempotency_key_reused"
    message = "This Idempotency-Key was already used with a different request body."


class RateLimited(ApiError):
    """The tenant is over its tier's rate or burst."""

    status = 429
    code = "too_many_requests"
    message = "Too Many Requests"


class ServiceUnavailable(ApiError):
    """A dependency is throttling or unreachable; the client may retry later."""

    status = 503
    code = "service_unavailable"
    message = "The service is temporarily unavailable; retry later."
    RETRY_AFTER_SECONDS = 1

    def __init__(self, message: str | None = None, *, headers: dict[str, str] | None = None):
        # Every 503 tells the client when to come back, as API Gateway's own 429 does.
        super().__init__(message, headers={"Retry-After": str(self.RETRY_AFTER_SECONDS), **(headers or {})})


class ConfigurationError(ServiceUnavailable):
    """The deployment lacks settings or has malformed ones (a chalicelib.config.SettingsError).

    The client gets the plain 503 service_unavailable envelope with Retry-After, never a 401
    (which would send it after new tokens, each billed by Cognito); which settings are at fault
    is for the function's log only (chalicelib.telemetry.logs.report_misconfiguration).
    """

    def __init__(self, detail: str, settings: Sequence[str] = ()):
        super().__init__()
        self.detail = detail
        self.settings = tuple(settings)

    def __str__(self) -> str:
        return self.detail


class DeadlineExceeded(ServiceUnavailable):
    """The request's time budget ran out before a dependency answered; nothing more was attempted."""

    message = "The request could not be completed in time; retry later."

    def __init__(self, message: str | None = None, *, attempts_sent: int = 0):
        super().__init__(message)
        # How many attempts of the call being refused had already been sent (and not answered).
        self.attempts_sent = attempts_sent


class TenantAccessUnavailable(ServiceUnavailable):
    """The tenant's scoped credentials could not be obtained from STS; nothing was read or written.

    Never answered by falling back to the function's own credentials, which reach no tenant data.
    """


class OrderOutcomeUnknown(DeadlineExceeded):
    """The order's transaction was sent, but its answer did not come within the request's time.

    DynamoDB applied it entirely or not at all; which one, this request cannot tell.
    """

    message = (
        "The order could not be confirmed in time and may have been placed; "
        "retry with the same Idempotency-Key to get its outcome."
    )


@dataclass(frozen=True)
class Refusal:
    """A refusal API Gateway gives without calling the function: its status (None keeps API Gateway's), code and message."""

    status: int | None
    code: str
    message: str


NO_SUCH_ROUTE = Refusal(404, "not_found", "No such route.")
QUOTA_EXCEEDED = Refusal(429, "quota_exceeded", "The monthly request quota of this tenant's tier is used up.")
# Any other 4xx of API Gateway's (a malformed request, say) keeps its own status.
GATEWAY_REFUSED = Refusal(None, "bad_request", "The request was refused by the gateway.")
# API Gateway's own 5xx (an integration that failed or timed out) keep their status and say what our 500 says.
GATEWAY_FAILURE = Refusal(None, ApiError.code, ApiError.message)
