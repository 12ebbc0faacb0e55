"""How the authorizer's refusals reach the client, in API Gateway and in Chalice's local gateway.

API Gateway turns an authorizer exception whose message is exactly "Unauthorized" into 401
and a Deny policy into 403, then renders its gateway responses. Chalice's local gateway (used
by `chalice local` and `chalice.test.Client`) only understands its own exception types, so
there the same refusal is raised as one of those, carrying the body our gateway responses
give in AWS.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

UNAUTHORIZED_MESSAGE = "Unauthorized"
FORBIDDEN_MESSAGE = "Forbidden"
SERVICE_UNAVAILABLE_MESSAGE = "The service is temporarily unavailable; retry later."


def in_aws_lambda() -> bool:
    """Whether this process is a Lambda function (Lambda always sets AWS_LAMBDA_FUNCTION_NAME)."""
    return "AWS_LAMBDA_FUNCTION_NAME" in os.environ


def _local_refusal(status: int, code: str, message: str) -> Exception:
    """Chalice's local gateway exception for status, carrying the envelope our gateway responses give.

    Imported here only: chalice.local is not part of the Lambda package.
    """
    from chalice.local import ForbiddenError, LocalGatewayException, NotAuthorizedError

    known = {401: NotAuthorizedError, 403: ForbiddenError}
    exception_type = known.get(status) or type(f"LocalGateway{status}", (LocalGatewayException,), {"CODE": status})
    request_id = str(uuid.uuid4())
    headers = {"Content-Type": "application/json", "X-Request-Id": request_id}
    body = json.dumps({"error": {"code": code, "message": message}, "request_id": request_id})
    return exception_type(headers, body.encode())


def unauthorized() -> Exception:
    """The exception an authorizer raises to make the gateway answer 401."""
    if in_aws_lambda():
        return Exception(UNAUTHORIZED_MESSAGE)
    return _local_refusal(401, "unauthorized", UNAUTHORIZED_MESSAGE)


def authorizer_failure() -> Exception:
    """The exception an authorizer raises when it cannot decide (a dependency failed): 503.

    Still closed, but not a 401: a client told its token is bad would fetch new tokens, which
    Cognito bills, while the fault is ours. API Gateway answers any other exception with its
    AUTHORIZER_FAILURE response, which the gateway responses render as 503.
    """
    if in_aws_lambda():
        return RuntimeError("authorizer dependency unavailable")
    return _local_refusal(503, "service_unavailable", SERVICE_UNAVAILABLE_MESSAGE)


def forbidden(method_arn: str, principal_id: str) -> dict[str, Any]:
    """The authorizer answer that makes the gateway answer 403 (a Deny policy in AWS)."""
    if not in_aws_lambda():
        raise _local_refusal(403, "forbidden", FORBIDDEN_MESSAGE)
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


def gateway_responses() -> dict[str, dict[str, Any]]:
    """API Gateway gateway responses that give the gateway's own errors our JSON envelope.

    Applied to the deployed API so that 401, 403 and 429 produced by API Gateway look like
    the API's own errors, as they do locally.
    """

    def envelope(code: str, message: str) -> dict[str, str]:
        body = {"error": {"code": code, "message": message}, "request_id": "$context.requestId"}
        return {"application/json": json.dumps(body)}

    return {
        "UNAUTHORIZED": {"statusCode": "401", "responseTemplates": envelope("unauthorized", UNAUTHORIZED_MESSAGE)},
        "ACCESS_DENIED": {"statusCode": "403", "responseTemplates": envelope("forbidden", FORBIDDEN_MESSAGE)},
        "MISSING_AUTHENTICATION_TOKEN": {
            "statusCode": "404",
            "responseTemplates": envelope("not_found", "No such route."),
        },
        "INVALID_API_KEY": {"statusCode": "403", "responseTemplates": envelope("forbidden", FORBIDDEN_MESSAGE)},
        "AUTHORIZER_FAILURE": {
            "statusCode": "503",
            "responseTemplates": envelope("service_unavailable", SERVICE_UNAVAILABLE_MESSAGE),
        },
        "THROTTLED": {
            "statusCode": "429",
            # Usage plans refill every second; the header matches the local limiter's answer.
            "responseParameters": {"gatewayresponse.header.Retry-After": "'1'"},
            "responseTemplates": envelope("too_many_requests", "Too Many Requests"),
        },
        "QUOTA_EXCEEDED": {
            "statusCode": "429",
            "responseTemplates": envelope(
                "quota_exceeded", "The monthly request quota of this tenant's tier is used up."
            ),
        },
        "DEFAULT_4XX": {"responseTemplates": envelope("bad_request", "The request was refused by the gateway.")},
        "DEFAULT_5XX": {"responseTemplates": envelope("internal_error", "An internal error occurred.")},
    }
