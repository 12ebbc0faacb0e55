"""The tenant catalog and orders API: routes only; the application lives in chalicelib."""

from chalice import Chalice

from chalicelib import services
from chalicelib.deadline import within_invocation_deadline
from chalicelib.tenancy import CATALOG_READ, ORDERS_READ, ORDERS_WRITE, tenant_from_request
from chalicelib.tenant_repositories import repositories_for
from chalicelib.web import validation
from chalicelib.web.auth import answering_within_invocation, authorize
from chalicelib.web.middleware import lambda_request_keys, observe_request, request_id, surface_unexpected_errors
from chalicelib.web.openapi import openapi_document, served_addresses
from chalicelib.web.responses import RateLimitMiddleware, error_middleware, ok

app = Chalice(app_name="tenant-api")
# Outermost first: Lambda's request id in every log line, the error envelope, the request's deadline,
# then one trace span, access-log line and metrics document per request, then the local stage's
# rate limiter.
app.register_middleware(lambda_request_keys, "http")
app.register_middleware(error_middleware, "http")
app.register_middleware(within_invocation_deadline, "http")
app.register_middleware(observe_request, "http")
app.register_middleware(RateLimitMiddleware(), "http")

# Every route accepts any declared content type: Chalice would refuse others with its own 415
# (even on a GET); POST /orders checks for JSON itself and answers with our envelope.
ANY_CONTENT_TYPE = ["*/*"]


# API Gateway caches each token's answer for 60 s: a suspended tenant or changed tier takes
# effect within that plus the registry cache (TENANT_CACHE_SECONDS), while a busy tenant
# costs one authorizer call a minute per token instead of one per request.
@answering_within_invocation
@app.authorizer(ttl_seconds=60)
def tenant_authorizer(auth_request):
    """Verify the bearer token and name the tenant it belongs to."""
    return authorize(auth_request.token, auth_request.method_arn)


def _route(path, method="GET", **options):
    # Every view goes through this, so that its unexpected errors reach the middleware.
    def register(view):
        return app.route(path, methods=[method], content_types=ANY_CONTENT_TYPE, **options)(
            surface_unexpected_errors(view)
        )

    return register


def _protected(path, method="GET", **options):
    return _route(path, method, authorizer=tenant_authorizer, api_key_required=True, **options)


@_route("/health")
def health():
    """Liveness check, no authentication."""
    return {"status": "ok", "request_id": request_id(app.current_request)}


@_route("/openapi.json")
def openapi():
    """The OpenAPI 3 description of this API, naming this stage's addresses; no authentication."""
    request = app.current_request
    return openapi_document(served_addresses(request.context, request.headers))


@_protected("/catalog")
def list_catalog():
    """A page of the caller's catalog."""
    request = app.current_request
    tenant = tenant_from_request(request, CATALOG_READ)
    page = services.list_products(tenant, repositories_for(tenant), *validation.page_params(request.query_params))
    return ok(request, tenant, {"items": page.items, "next_token": page.next_token})


@_protected("/catalog/{product_id}")
def get_product(product_id):
    """One product of the caller's catalog."""
    request = app.current_request
    tenant = tenant_from_request(request, CATALOG_READ)
    product = services.get_product(repositories_for(tenant), validation.check_product_id(product_id))
    return ok(request, tenant, product.to_json())


@_protected("/orders", method="POST")
def place_order():
    """Place an order; an Idempotency-Key makes retries safe."""
    request = app.current_request
    tenant = tenant_from_request(request, ORDERS_WRITE)
    order_request = validation.read_order_request(request.headers.get("content-type"), request.raw_body)
    idempotency_key = validation.check_idempotency_key(request.headers.get("idempotency-key"))
    order, replayed = services.place_order(tenant, repositories_for(tenant), order_request, idempotency_key)
    headers = {"Location": f"/orders/{order.order_id}", "Idempotent-Replayed": str(replayed).lower()}
    return ok(request, tenant, order.to_json(), status=201, headers=headers)


@_protected("/orders")
def list_orders():
    """A page of the caller's orders, newest first."""
    request = app.current_request
    tenant = tenant_from_request(request, ORDERS_READ)
    page = services.list_orders(tenant, repositories_for(tenant), *validation.page_params(request.query_params))
    return ok(request, tenant, {"items": page.items, "next_token": page.next_token})


@_protected("/orders/{order_id}")
def get_order(order_id):
    """One of the caller's orders."""
    request = app.current_request
    tenant = tenant_from_request(request, ORDERS_READ)
    order = services.get_order(repositories_for(tenant), validation.check_order_id(order_id))
    return ok(request, tenant, order.to_json())
