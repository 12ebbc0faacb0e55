"""The OpenAPI 3 description of the API, served at GET /openapi.json and kept in sync by a test."""

from __future__ import annotations

import functools
import hashlib
import math
from typing import Any

from chalicelib import errors, pagination, validation
from chalicelib.keys import ORDER_ID, PRODUCT_ID

MONEY = {
    "type": "string",
    "pattern": r"^-?\d+(\.\d+)?$",
    "description": 'Exact decimal amount, e.g. "19.99".',
    "example": "19.99",
}
# A pagination token (chalicelib.pagination) is the unpadded base64url of its payload, a dot, and
# the unpadded base64url of its HMAC-SHA256: the signature part always has the same length.
SIGNATURE_CHARACTERS = math.ceil(hashlib.sha256().digest_size * 4 / 3)
PAGINATION_TOKEN = rf"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{{{SIGNATURE_CHARACTERS}}}"
# The Idempotency-Key rule of validation.check_idempotency_key: printable ASCII, no spaces.
IDEMPOTENCY_KEY = rf"^[!-~]{{1,{validation.MAX_IDEMPOTENCY_KEY_LENGTH}}}$"

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
    "description": "",
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


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _schemas() -> dict[str, Any]:
    envelope = {"tenant_id": {"type": "string"}, "request_id": {"type": "string"}}
    product = {
        "type": "object",
        "required": ["product_id", "name", "description", "price", "currency", "stock"],
        "properties": {
            "product_id": {"type": "string", "pattern": PRODUCT_ID.pattern},
            "name": {"type": "string"},
            "description": {"type": "string"},
            "price": MONEY,
            "currency": {"type": "string", "example": "USD"},
            "stock": {"type": "integer", "minimum": 0},
        },
    }
    order_line = {
        "type": "object",
        "required": ["product_id", "name", "quantity", "unit_price", "line_total"],
        "properties": {
            "product_id": {"type": "string"},
            "name": {"type": "string"},
            "quantity": {"type": "integer", "minimum": 1, "maximum": validation.MAX_QUANTITY},
            "unit_price": MONEY,
            "line_total": MONEY,
        },
    }
    order = {
        "type": "object",
        "required": ["order_id", "status", "created_at", "currency", "items", "total"],
        "properties": {
            "order_id": {"type": "string", "pattern": ORDER_ID.pattern, "description": "Sorts by creation time."},
            "status": {"type": "string", "enum": ["placed"]},
            "created_at": {"type": "string", "format": "date-time"},
            "currency": {"type": "string"},
            "items": {"type": "array", "items": _ref("OrderLine")},
            "total": MONEY,
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
            "properties": {"status": {"type": "string", "enum": ["ok"]}, "request_id": {"type": "string"}},
        },
        "Error": {
            "type": "object",
            "required": ["error", "request_id"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                },
                "request_id": {"type": "string"},
            },
        },
    }


def _error(*error_types: type[errors.ApiError], also: tuple[str, ...] = (), why: str = "") -> dict[str, Any]:
    """A documented error answer: its codes (from the error types, plus codes the gateway gives) and when."""
    codes = ", ".join(sorted({error.code for error in error_types} | set(also)))
    first = error_types[0]
    example = {"error": {"code": first.code, "message": first.message}, "request_id": EXAMPLE_REQUEST_ID}
    return {
        "description": f"Error codes: {codes}.{' ' + why if why else ''}",
        "content": {"application/json": {"schema": _ref("Error"), "example": example}},
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


RETRY_AFTER = {
    "Retry-After": {"schema": {"type": "integer", "minimum": 1}, "description": "Seconds to wait before retrying."}
}
# Every answer carries it, the gateway's own included (chalicelib.gateway, chalicelib.responses).
NOSNIFF = {
    "X-Content-Type-Options": {
        "required": True,
        "schema": {"type": "string", "const": "nosniff"},
        "description": "The body is JSON and must never be sniffed as anything else.",
    }
}
AUTH_ERRORS = {
    "401": _error(
        errors.Unauthenticated, why="No bearer token, or one that is invalid, expired or of an unknown client."
    ),
    "403": _error(
        errors.Forbidden,
        errors.InsufficientScope,
        why="The tenant is suspended, or the token lacks the operation's scope.",
    ),
    "429": {
        **_error(
            errors.RateLimited,
            also=("quota_exceeded",),
            why="Over the tier's rate or burst; quota_exceeded once the tier's monthly quota is used up.",
        ),
        "headers": RETRY_AFTER,
    },
    "503": {
        # Every 503, the API's and the gateway's, says when to come back.
        **_error(
            errors.ServiceUnavailable,
            why="A dependency (the token issuer's keys, the tenant registry or the database) failed or is "
            "throttling; the request changed nothing and may be retried.",
        ),
        "headers": {"Retry-After": {**RETRY_AFTER["Retry-After"], "required": True}},
    },
}
PAGE_PARAMETERS = [
    {
        "name": "limit",
        "in": "query",
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
        "description": "The next_token of the previous page, valid for 24 hours and only for the same tenant "
        "and list; absent or empty for the first page. A well-formed token that was not issued for this "
        "tenant and list, or has expired, is a 400 invalid_pagination_token.",
    },
]
PAGE_ERRORS = _error(
    errors.InvalidPaginationToken,
    errors.InvalidRequest,
    why="invalid_pagination_token: next_token was not issued by this API for this tenant and list, was "
    "altered, or has expired (start the list again without it); invalid_request: limit or next_token is malformed.",
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
    operation_id: str, summary: str, scope: str | None, responses: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    operation: dict[str, Any] = {"operationId": operation_id, "summary": summary, **extra}
    if scope is None:
        operation["security"] = []
    else:
        operation["security"] = [{"cognito": [scope]}]
        responses = {**responses, **AUTH_ERRORS}
    operation["responses"] = {
        status: {**response, "headers": {**response.get("headers", {}), **NOSNIFF}}
        for status, response in responses.items()
    }
    return operation


def _paths() -> dict[str, Any]:
    def path_parameter(name: str, pattern: str, example: str) -> dict[str, Any]:
        return {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": pattern},
            "example": example,
        }

    product_id = path_parameter("product_id", PRODUCT_ID.pattern, str(EXAMPLE_PRODUCT["product_id"]))
    order_id = path_parameter("order_id", ORDER_ID.pattern, EXAMPLE_ORDER_ID)
    idempotency_key = {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY},
        "description": "1 to 128 printable ASCII characters, no spaces. Retrying with the same key and body "
        "returns the first order; the same key with a different body is a 422 idempotency_key_reused.",
        "example": "order-2026-12-02-0001",
    }
    product_page = {
        "items": [EXAMPLE_PRODUCT, {**EXAMPLE_PRODUCT, "product_id": "prod-002", "name": "Two-person Tent"}],
        "next_token": _example_token("catalog", "PRODUCT#prod-002"),
        **EXAMPLE_ENVELOPE,
    }
    return {
        "/health": {
            "get": _operation(
                "health",
                "Liveness check.",
                None,
                {"200": _ok("Alive.", "Health", {"status": "ok", "request_id": EXAMPLE_REQUEST_ID})},
            )
        },
        "/openapi.json": {
            "get": _operation(
                "openapi",
                "This document.",
                None,
                {
                    "200": {
                        "description": "The OpenAPI document.",
                        "content": {
                            "application/json": {
                                "schema": {"type": "object", "required": ["openapi", "info", "paths"]},
                                "example": {
                                    "openapi": "3.1.0",
                                    "info": {"title": "Tenant catalog and orders API", "version": "1.0.0"},
                                    "paths": {},
                                },
                            }
                        },
                    }
                },
            )
        },
        "/catalog": {
            "get": _operation(
                "listProducts",
                "List the caller's catalog in product id order.",
                "tenant-api/catalog.read",
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
                "getProduct",
                "Read one product of the caller's catalog.",
                "tenant-api/catalog.read",
                {
                    "200": _ok(
                        "The product.",
                        "ProductResponse",
                        {**EXAMPLE_PRODUCT, **EXAMPLE_ENVELOPE},
                        links={"orderThisProduct": _order_of("$response.body#/product_id")},
                    ),
                    "400": _error(errors.InvalidRequest, why="product_id is malformed."),
                    "404": _error(
                        errors.ProductNotFound,
                        why="No such product in the caller's catalog (another tenant's included).",
                    ),
                },
                parameters=[product_id],
            )
        },
        "/orders": {
            "get": _operation(
                "listOrders",
                "List the caller's orders, newest first.",
                "tenant-api/orders.read",
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
            "post": _operation(
                "placeOrder",
                "Place an order priced from the catalog; stock is taken atomically.",
                "tenant-api/orders.write",
                {
                    "201": _ok(
                        "The order (also for an idempotent replay).",
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
                                "description": "true when an earlier order with this Idempotency-Key is returned.",
                            },
                        },
                        links={"theOrder": _read_link("getOrder", "order_id", "$response.body#/order_id")},
                    ),
                    "400": _error(
                        errors.InvalidRequest,
                        why="The body is not valid JSON, repeats a key within an object, or the Idempotency-Key "
                        "header is malformed.",
                    ),
                    "409": _error(
                        errors.InsufficientStock,
                        errors.CatalogChanged,
                        why="Not enough stock, or the catalog kept changing under the order (retry).",
                    ),
                    "413": _error(
                        errors.PayloadTooLarge, why=f"The body is larger than {validation.MAX_BODY_BYTES} bytes."
                    ),
                    "415": _error(errors.UnsupportedMediaType, why="The body is not declared as UTF-8 JSON."),
                    "422": _error(
                        errors.UnknownProduct,
                        errors.ValidationFailed,
                        errors.IdempotencyKeyReused,
                        why="unknown_product: a well-formed product_id that is not in the caller's catalog; "
                        "validation_error: the body breaks the OrderRequest schema or repeats a product_id; "
                        "idempotency_key_reused: the Idempotency-Key was used before with a different body.",
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
        },
        "/orders/{order_id}": {
            "get": _operation(
                "getOrder",
                "Read one of the caller's orders.",
                "tenant-api/orders.read",
                {
                    "200": _ok("The order.", "OrderResponse", {**EXAMPLE_ORDER, **EXAMPLE_ENVELOPE}),
                    "400": _error(errors.InvalidRequest, why="order_id is malformed."),
                    "404": _error(
                        errors.OrderNotFound, why="No such order for the caller (another tenant's included)."
                    ),
                },
                parameters=[order_id],
            )
        },
    }


@functools.lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route, body, response and error."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tenant catalog and orders API",
            "version": "1.0.0",
            "description": "Multi-tenant product catalog and orders. Authenticate with an OAuth 2.0 "
            "client-credentials access token from the tenant's Cognito app client.",
        },
        "paths": _paths(),
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "cognito": {
                    "type": "oauth2",
                    "description": "Cognito client-credentials flow; the token URL is the user pool domain's /oauth2/token.",
                    "flows": {
                        "clientCredentials": {
                            "tokenUrl": "/oauth2/token",
                            "scopes": {
                                "tenant-api/catalog.read": "Read the catalog.",
                                "tenant-api/orders.read": "Read orders.",
                                "tenant-api/orders.write": "Place orders.",
                            },
                        }
                    },
                }
            },
        },
    }
