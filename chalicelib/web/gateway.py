"""How the authorizer's answers reach the client, in API Gateway and in Chalice's local gateway.

API Gateway turns an authorizer exception whose message is exactly "Unauthorized" into 401
and a Deny policy into 403; any other exception, a malformed answer, and an authorizer it
cannot run (timed out, throttled) into a 500 of type AUTHORIZER_CONFIGURATION_ERROR or
AUTHORIZER_FAILURE. It renders each with its gateway response of that type, which this module
defines: our JSON envelope, and 503 with Retry-After for the failures a client should retry. Chalice's local gateway (used by
`chalice local` and `chalice.test.Client`) only understands its own exception types, so there
the same refusal is raised as one of those, carrying the very gateway response AWS would send.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from chalicelib.config import in_aws_lambda
from chalicelib.errors import (
    GATEWAY_FAILURE,
    GATEWAY_REFUSED,
    NO_SUCH_ROUTE,
    QUOTA_EXCEEDED,
    ApiError,
    Forbidden,
    PayloadTooLarge,
    RateLimited,
    Refusal,
    ServiceUnavailable,
    Unauthenticated,
    error_body,
)

# The exception message API Gateway reads as "answer 401" (its contract, not our envelope's text).
UNAUTHORIZED_MESSAGE = "Unauthorized"
HEADER = "gatewayresponse.header."
# Every gateway response: a browser must never sniff an error body into something executable.
NOSNIFF = {f"{HEADER}X-Content-Type-Options": "'nosniff'"}


@dataclass(frozen=True)
class AuthorizerOutcome:
    """One way a Lambda authorizer can end, the gateway response types API Gateway may give it, and our status."""

    description: str
    response_types: tuple[str, ...]
    status: int


# API Gateway's documentation names AUTHORIZER_CONFIGURATION_ERROR ("failing to connect to" the
# authorizer) and AUTHORIZER_FAILURE ("failed to authenticate the caller"), both 500, but not which
# failure gets which; community reports show AuthorizerConfigurationException for an exception and
# for a malformed answer. Both are defined alike, so every failure answers the same 503.
AUTHORIZER_FAILURE_TYPES = ("AUTHORIZER_CONFIGURATION_ERROR", "AUTHORIZER_FAILURE")
AUTHORIZER_OUTCOMES = (
    AuthorizerOutcome("raises Unauthorized (bad, expired or unknown token)", ("UNAUTHORIZED",), 401),
    AuthorizerOutcome("no Authorization header (API Gateway refuses before calling it)", ("UNAUTHORIZED",), 401),
    AuthorizerOutcome("returns a Deny policy (suspended tenant)", ("ACCESS_DENIED",), 403),
    AuthorizerOutcome(
        "raises anything else (JWKS or registry unavailable, settings missing, budget spent)",
        AUTHORIZER_FAILURE_TYPES,
        503,
    ),
    AuthorizerOutcome("returns a malformed answer", AUTHORIZER_FAILURE_TYPES, 503),
    AuthorizerOutcome("times out (the function is killed)", AUTHORIZER_FAILURE_TYPES, 503),
    AuthorizerOutcome("is throttled (no concurrency left)", AUTHORIZER_FAILURE_TYPES, 503),
)


def render(
    responses: dict[str, dict[str, Any]],
    response_type: str,
    request_id: str,
    *,
    default_status: int,
    message: str = "",
) -> tuple[int, dict[str, str], str]:
    """The status, headers and body API Gateway gives for response_type under the gateway responses defined.

    A type without a definition falls back to DEFAULT_4XX or DEFAULT_5XX (by default_status);
    the status is the definition's, else the fallback's, else default_status (API Gateway's own).
    """
    fallback = responses.get("DEFAULT_5XX" if default_status >= 500 else "DEFAULT_4XX", {})
    definition = responses.get(response_type, fallback)
    status = int(definition.get("statusCode") or fallback.get("statusCode") or default_status)
    headers = {"Content-Type": "application/json"}
    # responseParameters map "gatewayresponse.header.NAME" to a quoted literal or a context value.
    for key, value in definition.get("responseParameters", {}).items():
        if not key.startswith(HEADER):
            continue
        name = key.removeprefix(HEADER)
        if len(value) >= 2 and value[0] == value[-1] == "'":
            headers[name] = value[1:-1]
        elif value == "context.requestId":
            headers[name] = request_id
    headers["X-Request-Id"] = request_id
    template = definition.get("responseTemplates", {}).get(
        "application/json", '{"message":$context.error.messageString}'
    )
    body = (
        template.replace("$context.requestId", request_id)
        .replace("$context.error.responseType", response_type)
        .replace("$context.error.messageString", json.dumps(message))
    )
    return status, headers, body


def _local_refusal(response_type: str) -> Exception:
    """Chalice's local gateway exception carrying our gateway response of response_type, as AWS renders it.

    Imported here only: chalice.local is not part of the Lambda package.
    """
    from chalice.local import ForbiddenError, LocalGatewayException, NotAuthorizedError

    status, headers, body = render(gateway_responses(), response_type, str(uuid.uuid4()), default_status=500)
    known = {401: NotAuthorizedError, 403: ForbiddenError}
    exception_type: type[Exception] = known.get(status) or type(
        f"LocalGateway{status}", (LocalGatewayException,), {"CODE": status}
    )
    return exception_type(headers, body.encode())


def unauthorized() -> Exception:
    """The exception an authorizer raises to make the gateway answer 401."""
    if in_aws_lambda():
        return Exception(UNAUTHORIZED_MESSAGE)
    return _local_refusal("UNAUTHORIZED")


def authorizer_failure() -> Exception:
    """The exception an authorizer raises when it cannot decide (a dependency or setting missing, time ran out): 503.

    Still closed, but not a 401: a client told its token is bad would fetch new tokens, which
    Cognito bills, while the fault is ours. API Gateway answers any exception but
    "Unauthorized" with AUTHORIZER_CONFIGURATION_ERROR, which our gateway responses render as 503.
    """
    if in_aws_lambda():
        return RuntimeError("authorizer dependency unavailable")
    return _local_refusal("AUTHORIZER_CONFIGURATION_ERROR")


def forbidden(method_arn: str, principal_id: str) -> dict[str, Any]:
    """The authorizer answer that makes the gateway answer 403 (a Deny policy in AWS)."""
    if not in_aws_lambda():
        raise _local_refusal("ACCESS_DENIED")
    return {
        "principalId": principal_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": [api_wide_arn(method_arn)]}],
        },
    }


def api_wide_arn(method_arn: str) -> str:
    """The ARN covering every method and path of the API and stage in method_arn.

    API Gateway caches the authorizer's answer per token, so a policy naming only the first
    route called would refuse the same token on every other route.
    """
    prefix, _, resource = method_arn.partition(":execute-api:")
    # Split on the ARN's own separators only: the request path at the end may contain ":".
    region, account, path = resource.split(":", 2)
    api_id, stage = path.split("/")[:2]
    return f"{prefix}:execute-api:{region}:{account}:{api_id}/{stage}/*/*"


@dataclass(frozen=True)
class GatewayAnswer:
    """What one gateway response type answers: a refusal (an ApiError type or a Refusal) and any Retry-After."""

    refusal: type[ApiError] | Refusal
    retry_after: int | None = None


# Usage plans refill every second; the header matches the local limiter's answer.
THROTTLED_RETRY_AFTER_SECONDS = 1
# Each gateway response type the project defines, in the order they are applied. DEFAULT_4XX and
# DEFAULT_5XX keep API Gateway's status for the types not named here.
GATEWAY_ANSWERS: dict[str, GatewayAnswer] = {
    "UNAUTHORIZED": GatewayAnswer(Unauthenticated),
    "ACCESS_DENIED": GatewayAnswer(Forbidden),
    "MISSING_AUTHENTICATION_TOKEN": GatewayAnswer(NO_SUCH_ROUTE),
    "INVALID_API_KEY": GatewayAnswer(Forbidden),
    **{
        response_type: GatewayAnswer(ServiceUnavailable, ServiceUnavailable.RETRY_AFTER_SECONDS)
        for response_type in AUTHORIZER_FAILURE_TYPES
    },
    "THROTTLED": GatewayAnswer(RateLimited, THROTTLED_RETRY_AFTER_SECONDS),
    "QUOTA_EXCEEDED": GatewayAnswer(QUOTA_EXCEEDED),
    "REQUEST_TOO_LARGE": GatewayAnswer(PayloadTooLarge),
    "DEFAULT_4XX": GatewayAnswer(GATEWAY_REFUSED),
    "DEFAULT_5XX": GatewayAnswer(GATEWAY_FAILURE),
}


def _response(answer: GatewayAnswer) -> dict[str, Any]:
    refusal = answer.refusal
    response: dict[str, Any] = {}
    if refusal.status is not None:
        response["statusCode"] = str(refusal.status)
    parameters = dict(NOSNIFF)
    if answer.retry_after is not None:
        parameters[f"{HEADER}Retry-After"] = f"'{answer.retry_after}'"
    response["responseParameters"] = parameters
    # API Gateway fills $context.requestId in when it renders the template.
    body = error_body(refusal.code, refusal.message, "$context.requestId")
    response["responseTemplates"] = {"application/json": json.dumps(body)}
    return response


def gateway_responses() -> dict[str, dict[str, Any]]:
    """API Gateway gateway responses that give the gateway's own errors our JSON envelope.

    Applied to the deployed API so that 401, 403, 429 and 503 produced by API Gateway look like
    the API's own errors, as they do locally. DEFAULT_4XX and DEFAULT_5XX keep API Gateway's
    status for the types not named here.
    """
    return {response_type: _response(answer) for response_type, answer in GATEWAY_ANSWERS.items()}
