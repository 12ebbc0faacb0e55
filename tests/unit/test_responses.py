"""Unit tests of the response middleware: one error envelope for every failure, and the in-app rate limit."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from chalice.app import Response

from chalicelib.errors import InsufficientStock, RateLimited
from chalicelib.tenancy import TenantContext
from chalicelib.web.ratelimit import TenantRateLimiter
from chalicelib.web.responses import RateLimitMiddleware, error_middleware, ok, request_id
from tests.support.clock import FakeClock


def event(context: dict | None = None) -> SimpleNamespace:
    return SimpleNamespace(context={} if context is None else context)


def test_the_request_id_is_api_gateways_or_a_new_one_kept_for_the_request():
    assert request_id(event({"requestId": "gw-123"})) == "gw-123"
    request = event()
    made = request_id(request)
    assert made and request_id(request) == made


def test_success_bodies_carry_the_tenant_and_request_id():
    response = ok(
        event({"requestId": "r1"}),
        TenantContext("acme", "basic", frozenset()),
        {"x": 1},
        status=201,
        headers={"Location": "/o"},
    )
    assert response.status_code == 201
    assert response.body == {"x": 1, "tenant_id": "acme", "request_id": "r1"}
    assert response.headers == {"Content-Type": "application/json", "Location": "/o"}


def test_an_api_error_becomes_the_envelope():
    def view(_):
        raise InsufficientStock("Not enough stock for: prod-001.")

    response = error_middleware(event({"requestId": "r2"}), view)
    assert response.status_code == 409
    assert response.body == {
        "error": {"code": "insufficient_stock", "message": "Not enough stock for: prod-001."},
        "request_id": "r2",
    }
    assert response.headers["X-Request-Id"] == "r2"


def test_an_unexpected_exception_is_a_500_envelope_without_details():
    def view(_):
        raise KeyError("secret internals")

    response = error_middleware(event({"requestId": "r3"}), view)
    assert response.status_code == 500
    assert response.body == {
        "error": {"code": "internal_error", "message": "An internal error occurred."},
        "request_id": "r3",
    }
    assert "secret internals" not in str(response.body)


@pytest.mark.parametrize(
    ("status", "code"),
    # The statuses Chalice renders itself: a binary Accept mismatch, 405, 415 and unhandled errors.
    [(400, "invalid_request"), (405, "method_not_allowed"), (415, "unsupported_media_type"), (500, "internal_error")],
)
def test_chalices_own_error_bodies_get_our_codes(status, code):
    chalice_body = {"Code": "Whatever", "Message": "chalice says no"}
    response = error_middleware(
        event({"requestId": "r4"}), lambda _: Response(chalice_body, status_code=status, headers={"Allow": "GET"})
    )
    assert response.status_code == (500 if status >= 500 else status)
    assert response.body["error"]["code"] == code
    assert response.body["request_id"] == "r4"
    assert ("Allow" in response.headers) == (status < 500)


def test_other_responses_pass_through_with_the_request_id():
    original = Response({"Code": "only code"}, status_code=200)
    response = error_middleware(event({"requestId": "r5"}), lambda _: original)
    assert response.body == {"Code": "only code"}
    assert response.headers["X-Request-Id"] == "r5"


def tenant_event(tier: str = "basic") -> SimpleNamespace:
    return event({"authorizer": {"tenant_id": "acme", "tier": tier, "scopes": ""}})


def test_in_app_limits_raise_429_with_retry_after(env):
    env.set(RATE_LIMITER="in-app")
    clock = FakeClock()
    middleware = RateLimitMiddleware(TenantRateLimiter(clock=clock))
    passed = [middleware(tenant_event(), lambda _: "ok") for _ in range(20)]
    assert passed == ["ok"] * 20
    with pytest.raises(RateLimited) as raised:
        middleware(tenant_event(), lambda _: "ok")
    assert raised.value.headers["Retry-After"] == "1"
    assert raised.value.status == 429


def test_usage_plan_mode_and_unauthenticated_requests_are_not_limited_in_app(env):
    middleware = RateLimitMiddleware(TenantRateLimiter(clock=FakeClock()))
    assert all(middleware(tenant_event(), lambda _: "ok") == "ok" for _ in range(50))
    env.set(RATE_LIMITER="in-app")
    assert all(middleware(event(), lambda _: "ok") == "ok" for _ in range(50))
    assert all(middleware(tenant_event("gold"), lambda _: "ok") == "ok" for _ in range(50))


def raising(error: Exception):
    def view(_):
        raise error

    return view


@pytest.mark.parametrize(
    "view",
    [
        lambda _: Response({"ok": True}, status_code=200),
        lambda _: Response({"Code": "Whatever", "Message": "chalice says no"}, status_code=415),
        raising(InsufficientStock()),
        raising(RuntimeError("boom")),
    ],
    ids=["success", "chalice-error", "api-error", "unexpected-error"],
)
def test_every_answer_forbids_content_type_sniffing(view):
    response = error_middleware(event({"requestId": "r6"}), view)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
