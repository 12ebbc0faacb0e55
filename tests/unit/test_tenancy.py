"""Unit tests of the tenant context: taken only from the authorizer context, checked for scopes."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from chalicelib.errors import InsufficientScope, Unauthenticated
from chalicelib.tenancy import (
    CATALOG_READ,
    ORDERS_READ,
    ORDERS_WRITE,
    SCOPES,
    TenantContext,
    authorizer_context,
    tenant_from_request,
)

ALL = "tenant-api/catalog.read tenant-api/orders.read tenant-api/orders.write"


def request(authorizer=None, **other) -> SimpleNamespace:
    context = {} if authorizer is None else {"authorizer": authorizer}
    return SimpleNamespace(
        context=context, headers={"x-tenant-id": "globex"}, query_params={"tenant_id": "globex"}, **other
    )


def test_the_scopes_are_the_three_of_the_api():
    assert SCOPES == ("catalog.read", "orders.read", "orders.write")


def test_the_tenant_comes_from_the_authorizer_context():
    tenant = tenant_from_request(request(authorizer_context("acme", "basic", ALL)), CATALOG_READ)
    assert tenant == TenantContext("acme", "basic", frozenset(ALL.split()))


def test_the_authorizer_context_is_strings_only():
    context = authorizer_context("acme", "premium", ALL)
    assert context == {"tenant_id": "acme", "tier": "premium", "scopes": ALL}
    assert all(isinstance(value, str) for value in context.values())


@pytest.mark.parametrize(
    "authorizer",
    [
        None,
        {},
        {"tenant_id": "acme"},
        {"tenant_id": "acme", "tier": "gold", "scopes": ALL},
        {"tenant_id": "acme#ORDER", "tier": "basic", "scopes": ALL},
        {"tenant_id": "", "tier": "basic", "scopes": ALL},
        {"tenant_id": 7, "tier": "basic", "scopes": ALL},
    ],
)
def test_without_a_valid_authorizer_context_the_request_is_unauthenticated(authorizer):
    with pytest.raises(Unauthenticated):
        tenant_from_request(request(authorizer), CATALOG_READ)


@pytest.mark.parametrize(
    ("scopes", "scope", "allowed"),
    [
        ("tenant-api/catalog.read", CATALOG_READ, True),
        ("tenant-api/catalog.read", ORDERS_READ, False),
        ("tenant-api/orders.read", ORDERS_WRITE, False),
        ("tenant-api/orders.write", ORDERS_WRITE, True),
        ("catalog.read", CATALOG_READ, False),
        ("other-api/catalog.read", CATALOG_READ, False),
        ("tenant-api/catalog.read.all", CATALOG_READ, False),
        ("", CATALOG_READ, False),
    ],
)
def test_each_scope_must_be_granted_by_the_resource_server(scopes, scope, allowed):
    context = request(authorizer_context("acme", "basic", scopes))
    if allowed:
        assert tenant_from_request(context, scope).tenant_id == "acme"
    else:
        with pytest.raises(InsufficientScope):
            tenant_from_request(context, scope)


def test_the_resource_server_comes_from_the_settings(env):
    env.set(RESOURCE_SERVER_ID="shop")
    assert tenant_from_request(request(authorizer_context("acme", "basic", "shop/catalog.read")), CATALOG_READ)
    with pytest.raises(InsufficientScope):
        tenant_from_request(request(authorizer_context("acme", "basic", ALL)), CATALOG_READ)
