"""The seed tenants and their catalogs, and the table, secret and scope names the test settings use."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from chalicelib.models import Product
from chalicelib.store.registry import ACTIVE, TenantRecord
from chalicelib.tenancy import SCOPES

# The local stage's own table name: chalice.test.Client applies the stage's environment during
# each request, so using the same name keeps the table the same inside and outside requests.
TABLE_NAME = "tenant-api-local"
PAGINATION_SECRET = "pagination-secret-for-tests-0123456789abcdef"
RESOURCE_SERVER = "tenant-api"
# moto's STS issues credentials for any role; the role itself is made where a test needs it.
TENANT_ACCESS_ROLE_ARN = "arn:aws:iam::123456789012:role/tenant-api-local-tenant-access"
ALL_SCOPES = [f"{RESOURCE_SERVER}/{scope}" for scope in SCOPES]


@dataclass(frozen=True)
class SeedTenant:
    """A tenant the table is seeded with, and the catalog it owns."""

    tenant_id: str
    tier: str
    client_id: str
    api_key_value: str
    price_base: Decimal

    def __repr__(self) -> str:
        return f"<tenant {self.tenant_id}>"

    def record(self, **changes: Any) -> TenantRecord:
        """The registry record of this tenant."""
        record = TenantRecord(
            tenant_id=self.tenant_id,
            tier=self.tier,
            status=ACTIVE,
            client_id=self.client_id,
            api_key_id=f"key-id-{self.tenant_id}",
            api_key_value=self.api_key_value,
            display_name=self.tenant_id.title(),
        )
        return record.with_changes(**changes)

    def product(self, number: int, stock: int = 10) -> Product:
        """The seeded product prod-00{number}; name and price are tagged with the tenant."""
        return Product(
            product_id=f"prod-{number:03d}",
            name=f"{self.tenant_id} widget {number}",
            description=f"Sold by {self.tenant_id}.",
            price=self.price_base + number,
            currency="USD",
            stock=stock,
        )


ACME = SeedTenant("acme", "basic", "acmeclient0001", "apikey-acme-0123456789", Decimal("19.99"))
GLOBEX = SeedTenant("globex", "standard", "globexclient0002", "apikey-globex-0123456789", Decimal("5.25"))
INITECH = SeedTenant("initech", "premium", "initechclient0003", "apikey-initech-0123456789", Decimal("0.10"))
TENANTS = (ACME, GLOBEX, INITECH)
PRODUCTS_PER_TENANT = 5
