"""The OpenAPI 3.1 description of the API, served at GET /openapi.json and kept in sync by tests.

The document is made for one stage: its `servers` entry is the stage's API and its OAuth 2.0
`tokenUrl` the stage's token endpoint (StageAddresses). Limits, error codes and retention
periods are read from the modules that enforce them, never restated here.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from chalicelib import errors, pagination
from chalicelib.config import DEFAULT_RESOURCE_SERVER, SettingsError, get_settings, in_aws_lambda
from chalicelib.ids import (
    IDEMPOTENCY_KEY,
    IDEMPOTENCY_KEY_LIFETIME_SECONDS,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    ORDER_ID,
    PRODUCT_ID,
)
from chalicelib.tenancy import CATALOG_READ, ORDERS_READ, ORDERS_WRITE
from chalicelib.tiers import TIERS
from chalicelib.web import gateway, validation

TITLE = "Tenant catalog and orders API"
VERSION = "1.0.0"
# Cognito's token path on a user pool domain; the local stack's token endpoint serves the same path.
TOKEN_PATH = "/oauth2/token"
# Where a deployed stage names its Cognito domain's token endpoint (the issuer's host is not that domain).
TOKEN_URL_VARIABLE = "TOKEN_URL"
# A Host header as HTTP allows it: a name or an IPv4 or bracketed IPv6 address, and an optional port.
HOST = re.compile(r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")

MONEY = {
    "type": "string",
    "pattern": r"^-?\d+(\.\d+)?$",
    "description": 'Exact decimal amount as a string, e.g. "19.99": parse it as a decimal, never as a float.',
    "example": "19.99",
}
# A pagination token (chalicelib.pagination) is the unpadded base64url of its payload, a dot, and
# the unpadded base64url of its HMAC-SHA256: the signature part always has the same length.
SIGNATURE_CHARACTERS = math.ceil(hashlib.sha256().digest_size * 4 / 3)
PAGINATION_TOKEN = rf"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{{{SIGNATURE_CHARACTERS}}}"

# One coherent set of sample values, shared by the examples of every operation.
EXAMPLE_TENANT = "tenant-premium"
EXAMPLE_REQUEST_ID = "3f1c2a9e-7b4d-4c58-9e0a-2d6b8f1e5c47"
EXAMPLE_ORDER_ID = "ord_01JDQ8Z5N3W6Y2K4M7P9R1T3V5"
EXAMPLE_ISSUED_AT = 1_796_252_146


def _example_token(list_name: str, sort_key: str) -> str:
    # Made as the API makes them, under a key of its own: the format is real, the token is not valid.
    return pagination.encode_token(b"example", EXAMPLE_TENANT, list_name, sort_key, now=EXAMPLE_ISSUED_AT)


EXAMPLE_PRODUCT = {
    "product_id": "prod-001",
    "name": "Trail Running Shoes",
    "description": "Light shoes with a grippy sole for rocky trails.",
    "price": "139.00",
    "currency": "USD",
    "stock": 100,
}
EXAMPLE_ORDER = {
    "order_id": EXAMPLE_ORDER_ID,
    "status": "placed",
    "created_at": "2026-12-02T22:55:46.311Z",
    "currency": "USD",
    "items": [
        {
            "product_id": "prod-001",
            "name": "Trail Running Shoes",
            "quantity": 2,
            "unit_price": "139.00",
            "line_total": "278.00",
        }
    ],
    "total": "278.00",
}
EXAMPLE_ENVELOPE = {"tenant_id": EXAMPLE_TENANT, "request_id": EXAMPLE_REQUEST_ID}


@dataclass(frozen=True)
class StageAddresses:
    """Where a stage's API and its OAuth 2.0 token endpoint are: the document's server and tokenUrl.

    api_url is absolute, or "/" for "where this document was served from" (OpenAPI's relative
    server URL) when a request did not say which host it called.
    """

    api_url: str
    token_url: str
    # The stage's Cognito resource server, which prefixes every scope a token carries.
    resource_server: str = DEFAULT_RESOURCE_SERVER

    def scope(self, name: str) -> str:
        """The full name of one of the API's scopes at this stage, as tokens carry it."""
        return f"{self.resource_server}/{name}"

    def __post_init__(self) -> None:
        if self.api_url != "/" and not _absolute_http_url(self.api_url):
            raise ValueError(f"the API URL must be an absolute http(s) URL, not {self.api_url!r}")
        if self.api_url.endswith("/") and self.api_url != "/":
            raise ValueError(f"the API URL must not end with a slash: {self.api_url!r}")
        if not _absolute_http_url(self.token_url):
            raise ValueError(f"the token URL must be an absolute http(s) URL, not {self.token_url!r}")


def _absolute_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.query and not parts.fragment


def local_token_url(issuer: str) -> str:
    """The token endpoint beside an issuer that serves it on its own origin, as the local stack's does."""
    parts = urlsplit(issuer)
    return f"{parts.scheme}://{parts.netloc}{TOKEN_PATH}"


def served_addresses(context: Mapping[str, Any], headers: Mapping[str, str]) -> StageAddresses:
    """The addresses of the stage answering a request: its API as the client called it, and its token endpoint."""
    return StageAddresses(_served_api_url(context, headers), _served_token_url(), get_settings().resource_server)


def _served_api_url(context: Mapping[str, Any], headers: Mapping[str, str]) -> str:
    domain = context.get("domainName")
    if domain:
        # API Gateway sets the domain the client called and the path it called, which starts with the
        # stage (execute-api) or the base path (a custom domain) before the route's own path.
        path, resource = str(context.get("path", "")), str(context.get("resourcePath", ""))
        base = path[: -len(resource)] if resource and path.endswith(resource) else ""
        return f"https://{domain}{base.rstrip('/')}"
    # Locally the API is plain HTTP on the host and port the client connected to.
    host = headers.get("host") or ""
    return f"http://{host}" if HOST.fullmatch(host) else "/"


def _served_token_url() -> str:
    settings = get_settings()
    if in_aws_lambda():
        # A Cognito issuer's host is not the user pool's domain, so the stage names its token endpoint.
        if not settings.token_url:
            raise SettingsError(f"not set: {TOKEN_URL_VARIABLE}", [TOKEN_URL_VARIABLE])
        return settings.token_url
    return local_token_url(settings.issuer)


# --- error codes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorCode:
    """One code of the error envelope, the statuses it comes with, and when it is answered."""

    code: str
    statuses: tuple[str, ...]
    meaning: str


def _error_types() -> list[type[errors.ApiError]]:
    found: list[type[errors.ApiError]] = []
    pending: list[type[errors.ApiError]] = [errors.ApiError]
    while pending:
        error_type = pending.pop(0)
        found.append(error_type)
        pending.extend(error_type.__subclasses__())
    return found


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if text and text.strip() else ""


def _gateway_answers() -> list[tuple[str, str, str]]:
    """(response type, status, code) of each of API Gateway's own error responses, as chalicelib.web.gateway defines them."""
    answers = []
    for response_type, answer in gateway.GATEWAY_ANSWERS.items():
        # A response without a status keeps API Gateway's own: some 4xx or 5xx.
        status = answer.refusal.status or ("5xx" if response_type == "DEFAULT_5XX" else "4xx")
        answers.append((response_type, str(status), answer.refusal.code))
    return answers


def gateway_message(response_type: str) -> str:
    """The message of API Gateway's own error response of response_type."""
    return gateway.GATEWAY_ANSWERS[response_type].refusal.message


@functools.cache
def error_codes() -> tuple[ErrorCode, ...]:
    """Every code the API (chalicelib.errors) or API Gateway's own responses (chalicelib.web.gateway) can answer."""
    statuses: dict[str, set[str]] = {}
    meanings: dict[str, str] = {}
    for error_type in _error_types():
        if error_type is not errors.ApiError and "code" not in vars(error_type):
            continue  # answers with its parent's code
        statuses.setdefault(error_type.code, set()).add(str(error_type.status))
        # The base class's docstring describes the class; its message describes the answer.
        base = error_type is errors.ApiError
        meanings[error_type.code] = error_type.message if base else _first_line(error_type.__doc__)
    for response_type, status, code in _gateway_answers():
        statuses.setdefault(code, set()).add(status)
        meanings.setdefault(code, gateway_message(response_type))
    found = [ErrorCode(code, tuple(sorted(statuses[code])), meanings[code]) for code in statuses]
    return tuple(sorted(found, key=lambda error: (error.statuses[0], error.code)))


def _error_list() -> str:
    # A list rather than a table: long codes would wrap in a narrow table column.
    return "\n".join(f"- `{e.code}` ({', '.join(e.statuses)}): {e.meaning}" for e in error_codes())


# --- descriptions ---------------------------------------------------------------------------


def _hours(seconds: int) -> str:
    return f"{seconds // 3600} hours"


def _number(value: float) -> str:
    return f"{value:,g}" if isinstance(value, float) else f"{value:,}"


def _tier_table() -> str:
    rows = ["| tier | rate (requests/second) | burst | quota (requests/month) |", "| --- | ---: | ---: | ---: |"]
    rows += [
        f"| {tier.name} | {_number(tier.rate_per_second)} | {_number(tier.burst)} | {_number(tier.monthly_quota)} |"
        for tier in TIERS.values()
    ]
    return "\n".join(rows)


IDEMPOTENCY_HOURS = _hours(IDEMPOTENCY_KEY_LIFETIME_SECONDS)
PAGINATION_TOKEN_HOURS = _hours(pagination.TOKEN_LIFETIME_SECONDS)

LIMITS = f"""Each tenant has its own limits, set by its tier; no tenant's traffic counts against another's.

{_tier_table()}

The rate is how many requests a second the tenant's bucket refills with, and the burst how many it
holds: a quiet tenant may send a burst at once, then the rate. A request over them is answered
`429` with the code `too_many_requests` and a `Retry-After` header. Once the month's quota is
used up, every request is answered `429` with the code `quota_exceeded` and no `Retry-After`,
until the quota starts again on the first day of the next month. In AWS, API Gateway usage plans
enforce these limits, and enforce them on a best-effort basis: a tenant may now and then be let
through slightly above them, and should not rely on it. The local stack applies the rate and
burst only, not the quota."""

RETRIES = """Every `503` and every `429 too_many_requests` carries `Retry-After`: the whole number of
seconds to wait before the next attempt (at least 1). Wait at least that long; if the retry is
refused again, wait longer each time (exponential back-off with random jitter), so that many
clients do not come back at the same instant. A `503` means a dependency was unavailable or
the request ran out of time: the request changed nothing and may be retried, except that a
`POST /orders` answered `503` may have placed its order. Retry an order only with the same
`Idempotency-Key`, which answers with the order if it was placed and places it if it was not."""

IDEMPOTENCY = f"""`POST /orders` takes an optional `Idempotency-Key` header: a string of 1 to
{MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters without spaces, chosen by the
client, for example a UUID. The first order placed with a key binds the key to that order for
{IDEMPOTENCY_HOURS}. Until then, a request with the same key and the same body (the same products
and quantities, in any order) places nothing and is answered `201` with the first order, as it was
placed, and `Idempotent-Replayed: true`; this holds for concurrent requests too. The same key with
a different body is refused with `422 idempotency_key_reused`. A request that is refused (a `4xx`)
or that places nothing binds nothing, so its key may be used again. Keys are the tenant's own:
another tenant's keys never collide with them. After {IDEMPOTENCY_HOURS} the key is free, and a
request with it places a new order."""

ERRORS = f"""Every error has one JSON shape: `{{"error": {{"code": "...", "message": "..."}},
"request_id": "..."}}`, API Gateway's own refusals included. Branch on `code`, which is one of the
codes below and does not change; the `message` is for people and may. Quote `request_id` (also sent
as the `X-Request-Id` header) when reporting a problem.

{_error_list()}"""


def _description(addresses: StageAddresses) -> str:
    return f"""Each tenant sees only its own catalog and its own orders: another tenant's product or
order answers `404`, exactly as one that does not exist.

# Authentication

Call the token endpoint, `{addresses.token_url}`, with the OAuth 2.0 client-credentials grant:
HTTP Basic authentication with your client id and secret, and the form body
`grant_type=client_credentials` (optionally `scope=` the space-separated scopes you need). Send the
access token as `Authorization: Bearer <token>` until it expires (`expires_in` seconds), then get
another: reuse tokens rather than fetching one per request. Each operation names the scope it needs.

# Rate limits and quotas

{LIMITS}

# Retries and Retry-After

{RETRIES}

# Idempotent orders

{IDEMPOTENCY}

# Pagination

Lists answer a page of `items` and a `next_token`. Pass `next_token` back unchanged to get the
next page, until it is `null`. A token is signed, valid for {PAGINATION_TOKEN_HOURS}, and only for
the tenant and the list that issued it.

# Errors

{ERRORS}"""


TAGS = [
    {
        "name": "catalog",
        "x-displayName": "Catalog",
        "description": "The tenant's products, with their prices and stock, read-only. The same product id "
        "may exist for other tenants with another name and price; each tenant sees only its own.",
    },
    {
        "name": "orders",
        "x-displayName": "Orders",
        "description": "Orders the tenant has placed. Placing one prices it from the catalog and takes its "
        "stock in one atomic step: it is placed whole or not at all, and never oversells.",
    },
    {
        "name": "health",
        "x-displayName": "Health",
        "description": "Whether the API is up; needs no token.",
    },
    {
        "name": "openapi",
        "x-displayName": "OpenAPI document",
        "description": "This document, for client generators and tools; needs no token.",
    },
]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _schemas() -> dict[str, Any]:
    envelope = {
        "tenant_id": {"type": "string", "description": "The tenant the answer belongs to: the caller."},
        "request_id": {"type": "string", "description": "This request's id, also in the X-Request-Id header."},
    }
    product = {
        "type": "object",
        "required": ["product_id", "name", "description", "price", "currency", "stock"],
        "properties": {
            "product_id": {"type": "string", "pattern": PRODUCT_ID.pattern},
            "name": {"type": "string"},
            "description": {"type": "string"},
            "price": MONEY,
            "currency": {"type": "string", "description": "ISO 4217 currency code.", "example": "USD"},
            "stock": {"type": "integer", "minimum": 0, "description": "Units left to order."},
        },
    }
    order_line = {
        "type": "object",
        "required": ["product_id", "name", "quantity", "unit_price", "line_total"],
        "properties": {
            "product_id": {"type": "string"},
            "name": {"type": "string", "description": "The product's name when the order was placed."},
            "quantity": {"type": "integer", "minimum": 1, "maximum": validation.MAX_QUANTITY},
            "unit_price": {**MONEY, "description": "The catalog price when the order was placed."},
            "line_total": {**MONEY, "description": "unit_price times quantity."},
        },
    }
    order = {
        "type": "object",
        "required": ["order_id", "status", "created_at", "currency", "items", "total"],
        "properties": {
            "order_id": {"type": "string", "pattern": ORDER_ID.pattern, "description": "Sorts by creation time."},
            "status": {"type": "string", "enum": ["placed"]},
            "created_at": {"type": "string", "format": "date-time"},
            "currency": {"type": "string", "description": "ISO 4217 currency code."},
            "items": {"type": "array", "items": _ref("OrderLine")},
            "total": {**MONEY, "description": "The sum of the line totals."},
        },
    }

    def page_of(item: str) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["items", "next_token", "tenant_id", "request_id"],
            "properties": {
                "items": {"type": "array", "items": _ref(item)},
                "next_token": {
                    "oneOf": [_ref("PaginationToken"), {"type": "null"}],
                    "description": "Pass as next_token for the next page; null at the end.",
                },
                **envelope,
            },
        }

    return {
        "Product": product,
        "ProductResponse": {
            "allOf": [product, {"type": "object", "required": ["tenant_id", "request_id"], "properties": envelope}]
        },
        "ProductPage": page_of("Product"),
        "OrderLine": order_line,
        "Order": order,
        "OrderResponse": {
            "allOf": [order, {"type": "object", "required": ["tenant_id", "request_id"], "properties": envelope}]
        },
        "OrderPage": page_of("Order"),
        "PaginationToken": {
            "type": "string",
            "pattern": f"^{PAGINATION_TOKEN}$",
            "maxLength": validation.MAX_PAGINATION_TOKEN_LENGTH,
            "description": "Opaque and signed: base64url payload, a dot, base64url HMAC-SHA256 signature.",
        },
        "OrderRequest": {
            "type": "object",
            "additionalProperties": False,
            "required": ["items"],
            "properties": {
                "items": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": validation.MAX_ORDER_LINES,
                    "uniqueItems": True,
                    "description": "Each product_id at most once (a 422 otherwise). Prices come from the catalog.",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["product_id", "quantity"],
                        "properties": {
                            "product_id": {"type": "string", "pattern": PRODUCT_ID.pattern},
                            "quantity": {"type": "integer", "minimum": 1, "maximum": validation.MAX_QUANTITY},
                        },
                    },
                }
            },
        },
        "Health": {
            "type": "object",
            "required": ["status", "request_id"],
            "properties": {"status": {"type": "string", "enum": ["ok"]}, "request_id": envelope["request_id"]},
        },
        "Error": {
            "type": "object",
            "description": "Every error's body, the API's and API Gateway's alike.",
            "required": ["error", "request_id"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {
                            "type": "string",
                            "description": "What went wrong, for programs: branch on it. Each response lists "
                            "its codes; the Errors section says when each is answered.",
                            "enum": [error.code for error in error_codes()],
                        },
                        "message": {"type": "string", "description": "What went wrong, for people; may change."},
                    },
                },
                "request_id": envelope["request_id"],
            },
        },
    }


# --- responses ------------------------------------------------------------------------------

ErrorCase = tuple["type[errors.ApiError] | str", str]


def _error(*cases: ErrorCase, intro: str = "") -> dict[str, Any]:
    """A documented error answer: each case is an error type (or a gateway response type) and when it is answered."""
    lines = []
    examples = {}
    for source, why in cases:
        refusal = gateway.GATEWAY_ANSWERS[source].refusal if isinstance(source, str) else source
        code, message = refusal.code, refusal.message
        lines.append(f"- `{code}`: {why}")
        examples[code] = {"summary": code, "value": errors.error_body(code, message, EXAMPLE_REQUEST_ID)}
    media: dict[str, Any] = {"schema": _ref("Error")}
    if len(examples) == 1:
        media["example"] = next(iter(examples.values()))["value"]
    else:
        # One example per code, so that a reader can pick the answer they are handling.
        media["examples"] = examples
    return {
        "description": "\n".join(([intro, ""] if intro else []) + lines),
        "content": {"application/json": media},
    }


def _ok(
    description: str,
    schema: str,
    example: Any,
    headers: dict[str, Any] | None = None,
    links: dict[str, Any] | None = None,
) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _ref(schema), "example": example}},
    }
    if headers:
        response["headers"] = headers
    if links:
        response["links"] = links
    return response


RETRY_AFTER_DESCRIPTION = (
    "Seconds to wait before retrying; wait longer on each refusal that follows. See Retries and Retry-After."
)
RETRY_AFTER = {
    "schema": {"type": "integer", "minimum": 1},
    "description": RETRY_AFTER_DESCRIPTION,
    "example": gateway.THROTTLED_RETRY_AFTER_SECONDS,
}
# Every answer carries it, the gateway's own included (chalicelib.web.gateway, chalicelib.web.responses).
NOSNIFF = {
    "X-Content-Type-Options": {
        "required": True,
        "schema": {"type": "string", "const": "nosniff"},
        "description": "The body is JSON and must never be sniffed as anything else.",
    }
}
TIER_LINES = "; ".join(
    f"{tier.name}: {_number(tier.rate_per_second)}/s, burst {_number(tier.burst)}, "
    f"{_number(tier.monthly_quota)} a month"
    for tier in TIERS.values()
)
AUTH_ERRORS = {
    "401": _error(
        (
            errors.Unauthenticated,
            "No bearer token, or one that is invalid, expired or of an unknown client: get a new token.",
        ),
    ),
    "403": _error(
        (errors.Forbidden, "The tenant is suspended."),
        (errors.InsufficientScope, "The token lacks the operation's scope: ask for it when getting the token."),
    ),
    "429": {
        **_error(
            (errors.RateLimited, "Over the tier's rate or burst; retry after `Retry-After` seconds."),
            (
                "QUOTA_EXCEEDED",
                "The tier's monthly quota is used up, until the first day of the next month; no `Retry-After`.",
            ),
            intro=f"The tenant's tier limits ({TIER_LINES}); see Rate limits and quotas.",
        ),
        "headers": {
            "Retry-After": {**RETRY_AFTER, "description": f"With too_many_requests only. {RETRY_AFTER_DESCRIPTION}"}
        },
    },
    "503": {
        # Every 503, the API's and the gateway's, says when to come back.
        **_error(
            (
                errors.ServiceUnavailable,
                "A dependency (the token issuer's keys, the tenant registry or the database) failed or is "
                "throttling, or the request ran out of time; retry after `Retry-After` seconds.",
            ),
        ),
        "headers": {"Retry-After": {**RETRY_AFTER, "required": True}},
    },
}
# Answered when the stage lacks a setting the answer needs; the operator's log names it.
MISCONFIGURED = {
    "503": {
        **_error(
            (
                errors.ServiceUnavailable,
                "The stage is not fully configured (its operator's log says how); retry after `Retry-After` seconds.",
            )
        ),
        "headers": {"Retry-After": {**RETRY_AFTER, "required": True}},
    }
}
# Routes without a token have no tier: only API Gateway's limit for the whole API applies to them.
PUBLIC_ERRORS = {
    "429": {
        **_error(
            (
                "THROTTLED",
                "API Gateway's limit for the whole API (not a tenant's tier) is reached; retry after "
                "`Retry-After` seconds.",
            )
        ),
        "headers": {"Retry-After": {**RETRY_AFTER, "required": True}},
    }
}
PAGE_PARAMETERS = [
    {
        "name": "limit",
        "in": "query",
        "description": "How many items a page holds at most.",
        "schema": {
            "type": "integer",
            "minimum": 1,
            "maximum": validation.MAX_LIMIT,
            "default": validation.DEFAULT_LIMIT,
        },
        "example": 2,
    },
    {
        "name": "next_token",
        "in": "query",
        "schema": {
            "type": "string",
            # Empty is the same as absent: the first page.
            "pattern": f"^({PAGINATION_TOKEN})?$",
            "maxLength": validation.MAX_PAGINATION_TOKEN_LENGTH,
        },
        "description": f"The next_token of the previous page, valid for {PAGINATION_TOKEN_HOURS} and only for "
        "the same tenant and list; absent or empty for the first page.",
    },
]
PAGE_ERRORS = _error(
    (
        errors.InvalidPaginationToken,
        "next_token was not issued by this API for this tenant and list, was altered, or has expired: "
        "start the list again without it.",
    ),
    (errors.InvalidRequest, "limit or next_token is malformed."),
)


def _read_link(operation_id: str, parameter: str, value: str) -> dict[str, Any]:
    return {"operationId": operation_id, "parameters": {parameter: value}}


def _next_page(operation_id: str) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "parameters": {"next_token": "$response.body#/next_token"},
        "description": "The next page, while next_token is not null.",
    }


def _order_of(product_id: str) -> dict[str, Any]:
    return {
        "operationId": "placeOrder",
        "requestBody": {"items": [{"product_id": product_id, "quantity": 1}]},
        "description": "Order one unit of this product.",
    }


def _operation(
    tag: str,
    operation_id: str,
    summary: str,
    description: str,
    scope: str | None,
    responses: dict[str, Any],
    **extra: Any,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "tags": [tag],
        "operationId": operation_id,
        "summary": summary,
        "description": description,
        **extra,
    }
    if scope is None:
        operation["security"] = []
        responses = {**responses, **PUBLIC_ERRORS}
    else:
        operation["security"] = [{"cognito": [scope]}]
        responses = {**responses, **AUTH_ERRORS}
    operation["responses"] = {
        status: {**response, "headers": {**response.get("headers", {}), **NOSNIFF}}
        for status, response in sorted(responses.items())
    }
    return operation


def _paths(addresses: StageAddresses) -> dict[str, Any]:
    def path_parameter(name: str, pattern: str, example: str, description: str) -> dict[str, Any]:
        return {
            "name": name,
            "in": "path",
            "required": True,
            "description": description,
            "schema": {"type": "string", "pattern": pattern},
            "example": example,
        }

    product_id = path_parameter(
        "product_id", PRODUCT_ID.pattern, str(EXAMPLE_PRODUCT["product_id"]), "The product's id in the catalog."
    )
    order_id = path_parameter("order_id", ORDER_ID.pattern, EXAMPLE_ORDER_ID, "The order id placeOrder answered.")
    idempotency_key = {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY.pattern},
        "description": f"Makes retrying this request safe. For {IDEMPOTENCY_HOURS} after the first order placed "
        "with the key, the same key and body answer that order again without placing another; the same key "
        "with another body is a 422 idempotency_key_reused. See Idempotent orders.",
        "example": "order-2026-12-02-0001",
    }
    product_page = {
        "items": [
            EXAMPLE_PRODUCT,
            {
                **EXAMPLE_PRODUCT,
                "product_id": "prod-002",
                "name": "Two-person Tent",
                "description": "A three-season tent that packs to 2 kg.",
                "price": "329.00",
                "stock": 12,
            },
        ],
        "next_token": _example_token("catalog", "PRODUCT#prod-002"),
        **EXAMPLE_ENVELOPE,
    }
    return {
        "/catalog": {
            "get": _operation(
                "catalog",
                "listProducts",
                "List products",
                "A page of the caller's catalog, in product id order.",
                addresses.scope(CATALOG_READ),
                {
                    "200": _ok(
                        "A page of products.",
                        "ProductPage",
                        product_page,
                        links={
                            "nextPage": _next_page("listProducts"),
                            "firstProduct": _read_link(
                                "getProduct", "product_id", "$response.body#/items/0/product_id"
                            ),
                            "orderFirstProduct": _order_of("$response.body#/items/0/product_id"),
                        },
                    ),
                    "400": PAGE_ERRORS,
                },
                parameters=PAGE_PARAMETERS,
            )
        },
        "/catalog/{product_id}": {
            "get": _operation(
                "catalog",
                "getProduct",
                "Get a product",
                "One product of the caller's catalog, with its current price and stock.",
                addresses.scope(CATALOG_READ),
                {
                    "200": _ok(
                        "The product.",
                        "ProductResponse",
                        {**EXAMPLE_PRODUCT, **EXAMPLE_ENVELOPE},
                        links={"orderThisProduct": _order_of("$response.body#/product_id")},
                    ),
                    "400": _error((errors.InvalidRequest, "product_id is malformed.")),
                    "404": _error(
                        (errors.ProductNotFound, "No such product in the caller's catalog (another tenant's included).")
                    ),
                },
                parameters=[product_id],
            )
        },
        "/orders": {
            "post": _operation(
                "orders",
                "placeOrder",
                "Place an order",
                "Prices each line from the catalog and takes the stock in one atomic step: the order is "
                "placed whole or not at all. Send an `Idempotency-Key` to make a retry safe: without one, a "
                "retried request may place a second order.",
                addresses.scope(ORDERS_WRITE),
                {
                    "201": _ok(
                        "The order: placed now, or placed earlier with the same Idempotency-Key and body.",
                        "OrderResponse",
                        {**EXAMPLE_ORDER, **EXAMPLE_ENVELOPE},
                        headers={
                            "Location": {
                                "schema": {"type": "string"},
                                "description": "The order's path.",
                                "example": f"/orders/{EXAMPLE_ORDER_ID}",
                            },
                            "Idempotent-Replayed": {
                                "schema": {"type": "string", "enum": ["true", "false"]},
                                "description": "true when the order was placed earlier with this Idempotency-Key "
                                "and nothing new was placed.",
                                "example": "false",
                            },
                        },
                        links={"theOrder": _read_link("getOrder", "order_id", "$response.body#/order_id")},
                    ),
                    "400": _error(
                        (
                            errors.InvalidRequest,
                            "The body is not valid JSON or repeats a key within an object, or the "
                            "Idempotency-Key header is malformed.",
                        )
                    ),
                    "409": _error(
                        (errors.InsufficientStock, "Not enough stock for a line; nothing was placed."),
                        (errors.CatalogChanged, "Prices kept changing while the order was priced; retry."),
                    ),
                    "413": _error(
                        (errors.PayloadTooLarge, f"The body is larger than {validation.MAX_BODY_BYTES:,} bytes.")
                    ),
                    "415": _error(
                        (
                            errors.UnsupportedMediaType,
                            "The body is not declared as JSON (Content-Type: application/json).",
                        )
                    ),
                    "422": _error(
                        (errors.ValidationFailed, "The body breaks the OrderRequest schema or repeats a product_id."),
                        (errors.UnknownProduct, "A well-formed product_id that is not in the caller's catalog."),
                        (
                            errors.IdempotencyKeyReused,
                            f"The Idempotency-Key placed an order with a different body in the last {IDEMPOTENCY_HOURS}.",
                        ),
                    ),
                },
                parameters=[idempotency_key],
                requestBody={
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": _ref("OrderRequest"),
                            "example": {"items": [{"product_id": EXAMPLE_PRODUCT["product_id"], "quantity": 2}]},
                        }
                    },
                },
            ),
            "get": _operation(
                "orders",
                "listOrders",
                "List orders",
                "A page of the caller's orders, newest first.",
                addresses.scope(ORDERS_READ),
                {
                    "200": _ok(
                        "A page of orders.",
                        "OrderPage",
                        {
                            "items": [EXAMPLE_ORDER],
                            "next_token": _example_token("orders", f"ORDER#{EXAMPLE_ORDER_ID}"),
                            **EXAMPLE_ENVELOPE,
                        },
                        links={
                            "nextPage": _next_page("listOrders"),
                            "firstOrder": _read_link("getOrder", "order_id", "$response.body#/items/0/order_id"),
                        },
                    ),
                    "400": PAGE_ERRORS,
                },
                parameters=PAGE_PARAMETERS,
            ),
        },
        "/orders/{order_id}": {
            "get": _operation(
                "orders",
                "getOrder",
                "Get an order",
                "One of the caller's orders, as it was placed.",
                addresses.scope(ORDERS_READ),
                {
                    "200": _ok("The order.", "OrderResponse", {**EXAMPLE_ORDER, **EXAMPLE_ENVELOPE}),
                    "400": _error((errors.InvalidRequest, "order_id is malformed.")),
                    "404": _error((errors.OrderNotFound, "No such order for the caller (another tenant's included).")),
                },
                parameters=[order_id],
            )
        },
        "/health": {
            "get": _operation(
                "health",
                "getHealth",
                "Check health",
                "Answers while the API runs; checks no dependency.",
                None,
                {"200": _ok("The API is up.", "Health", {"status": "ok", "request_id": EXAMPLE_REQUEST_ID})},
            )
        },
        "/openapi.json": {
            "get": _operation(
                "openapi",
                "getOpenApiDocument",
                "Get the document",
                "This document, naming this stage's API and token endpoint.",
                None,
                {
                    **MISCONFIGURED,
                    "200": {
                        "description": "The OpenAPI document.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["openapi", "info", "paths"],
                                    "properties": {
                                        "openapi": {"type": "string", "description": "The OpenAPI version."},
                                        "info": {"type": "object"},
                                        "paths": {"type": "object"},
                                    },
                                },
                                "example": {
                                    "openapi": "3.1.0",
                                    "info": {"title": TITLE, "version": VERSION},
                                    "paths": {},
                                },
                            }
                        },
                    },
                },
            )
        },
    }


@functools.lru_cache(maxsize=8)
def openapi_document(addresses: StageAddresses) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route, body, response and error, for the stage at addresses."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": VERSION,
            "summary": "A tenant's product catalog and orders, behind OAuth 2.0 client credentials.",
            "description": _description(addresses),
            # The license of this document, as of the rest of the project.
            "license": {"name": "MIT-0", "identifier": "MIT-0"},
        },
        "servers": [{"url": addresses.api_url, "description": "This stage's API."}],
        "tags": TAGS,
        "paths": _paths(addresses),
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "cognito": {
                    "type": "oauth2",
                    "description": "OAuth 2.0 client credentials: HTTP Basic with the tenant's client id and secret. "
                    "See Authentication.",
                    "flows": {
                        "clientCredentials": {
                            "tokenUrl": addresses.token_url,
                            "scopes": {
                                addresses.scope(CATALOG_READ): "Read the catalog.",
                                addresses.scope(ORDERS_READ): "Read orders.",
                                addresses.scope(ORDERS_WRITE): "Place orders.",
                            },
                        }
                    },
                }
            },
        },
    }
