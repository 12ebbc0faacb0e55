"""Seed data for the local stack: three tenants, one per tier, each with its own catalog.

Every tenant has the same product ids with its own names and prices, so a response that
mixed tenants up would show at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from chalicelib.models import Product
from chalicelib.store.catalog import CatalogRepository
from chalicelib.store.dynamodb import dynamodb_client

CURRENCY = "USD"
SEED_STOCK = 100


@dataclass(frozen=True)
class SeedTenant:
    """A tenant the local stack creates."""

    tenant_id: str
    tier: str
    display_name: str


SEED_TENANTS: tuple[SeedTenant, ...] = (
    SeedTenant("tenant-basic", "basic", "Corner Hardware"),
    SeedTenant("tenant-standard", "standard", "Daily Grind Coffee"),
    SeedTenant("tenant-premium", "premium", "Summit Outdoor Gear"),
)

# product id -> (name, price) for each tenant; prices are exact decimal strings.
CATALOGS: dict[str, dict[str, tuple[str, str]]] = {
    "tenant-basic": {
        "prod-001": ("Claw Hammer", "12.99"),
        "prod-002": ("Screwdriver Set", "18.50"),
        "prod-003": ("Tape Measure 5 m", "7.25"),
        "prod-004": ("Box of Wood Screws", "4.99"),
        "prod-005": ("Adjustable Wrench", "15.00"),
        "prod-006": ("Spirit Level", "21.40"),
        "prod-007": ("Utility Knife", "6.75"),
        "prod-008": ("Work Gloves", "9.95"),
        "prod-009": ("Duct Tape", "5.49"),
        "prod-010": ("Cordless Drill", "89.00"),
        "prod-011": ("Sandpaper Pack", "3.80"),
        "prod-012": ("Safety Glasses", "8.10"),
    },
    "tenant-standard": {
        "prod-001": ("House Blend 250 g", "9.50"),
        "prod-002": ("Single Origin Ethiopia 250 g", "14.25"),
        "prod-003": ("Decaf Colombia 250 g", "11.00"),
        "prod-004": ("Espresso Roast 1 kg", "34.90"),
        "prod-005": ("Pour-over Dripper", "22.00"),
        "prod-006": ("Paper Filters x100", "5.60"),
        "prod-007": ("Burr Grinder", "129.99"),
        "prod-008": ("Gooseneck Kettle", "59.00"),
        "prod-009": ("Ceramic Mug", "12.00"),
        "prod-010": ("Cold Brew Bottle", "27.45"),
        "prod-011": ("Milk Frother", "19.99"),
        "prod-012": ("Coffee Scale", "31.20"),
    },
    "tenant-premium": {
        "prod-001": ("Trail Running Shoes", "139.00"),
        "prod-002": ("Two-person Tent", "349.99"),
        "prod-003": ("Down Sleeping Bag", "289.50"),
        "prod-004": ("Trekking Poles", "79.95"),
        "prod-005": ("Headlamp", "44.00"),
        "prod-006": ("Water Filter", "39.90"),
        "prod-007": ("Insulated Jacket", "219.00"),
        "prod-008": ("Daypack 30 L", "119.25"),
        "prod-009": ("Camping Stove", "64.80"),
        "prod-010": ("Merino Base Layer", "89.00"),
        "prod-011": ("Climbing Harness", "74.60"),
        "prod-012": ("Navigation Compass", "29.99"),
    },
}


def seed_products(tenant_id: str) -> list[Product]:
    """The seed catalog of tenant_id as products (exact prices, USD, the same stock for each)."""
    return [
        Product(product_id=product_id, name=name, price=Decimal(price), currency=CURRENCY, stock=SEED_STOCK)
        for product_id, (name, price) in sorted(CATALOGS[tenant_id].items())
    ]


def write_catalog(tenant_id: str) -> int:
    """Write (or reset) tenant_id's seed catalog through the tenant's repository; returns the count."""
    repository = CatalogRepository(tenant_id, dynamodb_client())
    products = seed_products(tenant_id)
    for product in products:
        repository.put(product)
    return len(products)
