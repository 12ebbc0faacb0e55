"""The repositories the routes hand the services: one tenant's data, reached with that tenant's own credentials."""

from __future__ import annotations

import functools

from chalicelib.store.catalog import CatalogRepository
from chalicelib.store.orders import OrderRepository
from chalicelib.store.tenant_access import tenant_dynamodb
from chalicelib.tenancy import TenantContext


class TenantRepositories:
    """One tenant's catalog and orders, each built with the tenant's client when a use case first reaches for it.

    Built on first use, not here: a use case first checks what it can on its own (a pagination
    token), and a request it refuses for that never costs the tenant's credentials.
    """

    def __init__(self, tenant_id: str):
        self.tenant_id = tenant_id

    @functools.cached_property
    def catalog(self) -> CatalogRepository:
        """The tenant's products."""
        return CatalogRepository(self.tenant_id, tenant_dynamodb(self.tenant_id))

    @functools.cached_property
    def orders(self) -> OrderRepository:
        """The tenant's orders and Idempotency-Key records."""
        return OrderRepository(self.tenant_id, tenant_dynamodb(self.tenant_id))


def repositories_for(tenant: TenantContext) -> TenantRepositories:
    """The repositories of the tenant a request acts for."""
    return TenantRepositories(tenant.tenant_id)
