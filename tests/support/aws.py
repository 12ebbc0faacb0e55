"""The seeded table in moto's AWS, and a way to intercept every DynamoDB call."""

from __future__ import annotations

import functools
from typing import Any, Callable

import pytest
from botocore.client import BaseClient

from chalicelib.store import schema
from chalicelib.store.catalog import CatalogRepository
from chalicelib.store.dynamodb import dynamodb_client
from chalicelib.store.registry import TenantRegistry
from tests.support.tenants import PRODUCTS_PER_TENANT, TABLE_NAME, TENANTS, SeedTenant


def dynamodb_calls_through(
    monkeypatch: pytest.MonkeyPatch, replacement: Callable[[str, dict[str, Any], Callable[..., Any]], Any]
) -> None:
    """Send every DynamoDB call of every client (the process's own and each tenant's) through replacement.

    replacement(operation_name, params, original) answers the call; original(operation_name, params)
    makes it as it would have been made.
    """
    make_call = BaseClient._make_api_call

    def call(client: BaseClient, operation_name: str, params: dict[str, Any]) -> Any:
        if client.meta.service_model.service_name != "dynamodb":
            return make_call(client, operation_name, params)
        return replacement(operation_name, params, functools.partial(make_call, client))

    monkeypatch.setattr(BaseClient, "_make_api_call", call)


def seed_table(tenants: tuple[SeedTenant, ...] = TENANTS) -> None:
    """Create the table and put each tenant's record and its products prod-001..prod-005."""
    dynamodb_client().create_table(**schema.table_definition(TABLE_NAME))
    registry = TenantRegistry()
    for tenant in tenants:
        registry.put(tenant.record())
        catalog = CatalogRepository(tenant.tenant_id, dynamodb_client())
        for number in range(1, PRODUCTS_PER_TENANT + 1):
            catalog.put(tenant.product(number))
