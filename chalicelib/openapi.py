"""The OpenAPI 3 description of the API, served at GET /openapi.json and kept in sync by a test."""

from __future__ import annotations

import functools
from typing import Any

from chalicelib import errors, validation
from chalicelib.keys import ORDER_ID, PRODUCT_ID

MONEY = {
    "type": "string",
    "pattern": r"^-?\d+(\.\d+)?$",
    "description": 'Exact decimal amount, e.g. "19.99".',
    "example": "19.99",
}


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
                    "type": ["string", "null"],
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
        "OrderRequest": {
            "type": "object",
            "additionalProperties": False,
            "required": ["items"],
            "properties": {
                "items": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": validation.MAX_ORDER_LINES,
                    "description": "Each product at most once. Prices come from the catalog.",
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


def _error(*error_types: type[errors.ApiError]) -> dict[str, Any]:
    codes = ", ".join(sorted({error.code for error in error_types}))
    return {"description": f"Error codes: {codes}.", "content": {"application/json": {"schema": _ref("Error")}}}


def _ok(description: str, schema: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}
    if headers:
        response["headers"] = headers
    return response


RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}
AUTH_ERRORS = {
    "401": _error(errors.Unauthenticated),
    "403": _error(errors.Forbidden, errors.InsufficientScope),
    "429": {**_error(errors.RateLimited), "headers": RETRY_AFTER},
    "503": {**_error(errors.ServiceUnavailable), "headers": RETRY_AFTER},
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
    },
    {
        "name": "next_token",
        "in": "query",
        "schema": {"type": "string", "maxLength": validation.MAX_PAGINATION_TOKEN_LENGTH},
        "description": "Opaque token from the previous page; valid only for the same tenant and list.",
    },
]


def _operation(
    operation_id: str, summary: str, scope: str | None, responses: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    operation: dict[str, Any] = {"operationId": operation_id, "summary": summary, "responses": responses, **extra}
    if scope is None:
        operation["security"] = []
    else:
        operation["security"] = [{"cognito": [scope]}]
        operation["responses"] = {**responses, **AUTH_ERRORS}
    return operation


def _paths() -> dict[str, Any]:
    product_id = {
        "name": "product_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": PRODUCT_ID.pattern},
    }
    order_id = {
        "name": "order_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": ORDER_ID.pattern},
    }
    idempotency_key = {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "minLength": 1, "maxLength": validation.MAX_IDEMPOTENCY_KEY_LENGTH},
        "description": "Retrying with the same key and body returns the first order; a different body is a 422.",
    }
    return {
        "/health": {"get": _operation("health", "Liveness check.", None, {"200": _ok("Alive.", "Health")})},
        "/openapi.json": {
            "get": _operation(
                "openapi",
                "This document.",
                None,
                {
                    "200": {
                        "description": "The OpenAPI document.",
                        "content": {"application/json": {"schema": {"type": "object"}}},
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
                    "200": _ok("A page of products.", "ProductPage"),
                    "400": _error(errors.InvalidRequest, errors.InvalidPaginationToken),
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
                    "200": _ok("The product.", "ProductResponse"),
                    "400": _error(errors.InvalidRequest),
                    "404": _error(errors.ProductNotFound),
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
                    "200": _ok("A page of orders.", "OrderPage"),
                    "400": _error(errors.InvalidRequest, errors.InvalidPaginationToken),
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
                        headers={
                            "Location": {"schema": {"type": "string"}},
                            "Idempotent-Replayed": {"schema": {"type": "string", "enum": ["true", "false"]}},
                        },
                    ),
                    "400": _error(errors.InvalidRequest),
                    "409": _error(errors.InsufficientStock, errors.CatalogChanged),
                    "413": _error(errors.PayloadTooLarge),
                    "415": _error(errors.UnsupportedMediaType),
                    "422": _error(errors.ValidationFailed, errors.UnknownProduct, errors.IdempotencyKeyReused),
                },
                parameters=[idempotency_key],
                requestBody={"required": True, "content": {"application/json": {"schema": _ref("OrderRequest")}}},
            ),
        },
        "/orders/{order_id}": {
            "get": _operation(
                "getOrder",
                "Read one of the caller's orders.",
                "tenant-api/orders.read",
                {
                    "200": _ok("The order.", "OrderResponse"),
                    "400": _error(errors.InvalidRequest),
                    "404": _error(errors.OrderNotFound),
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
