"""A tenant's products in DynamoDB, reached with the client the repository is given."""

from __future__ import annotations

from typing import Any

from chalicelib.models import Product
from chalicelib.store import keys
from chalicelib.store.dynamodb import (
    dynamodb_errors,
    from_item,
    query_sharded_list,
    table_name,
    to_item,
)


def product_from_item(item: dict[str, Any]) -> Product:
    """A product from its DynamoDB item."""
    values = from_item(item)
    return Product(
        product_id=values["product_id"],
        name=values["name"],
        description=values.get("description", ""),
        price=values["price"],
        currency=values["currency"],
        stock=int(values["stock"]),
    )


class CatalogRepository:
    """The products of one tenant, reached with the DynamoDB client it is given (the API's: the tenant's own)."""

    def __init__(self, tenant_id: str, dynamodb: Any):
        self.tenant_id = tenant_id
        self.dynamodb = dynamodb
        # Built now, so that a repository cannot exist for a malformed tenant id.
        self.partitions = keys.catalog_partitions(tenant_id)

    def list(self, limit: int, after_sort_key: str | None = None) -> tuple[list[Product], str | None]:
        """A page of products in id order, and the sort key to resume after (None at the end)."""
        items, last = query_sharded_list(
            self.dynamodb,
            self.partitions,
            limit=limit,
            after_sort_key=after_sort_key,
            newest_first=False,
            index=keys.CATALOG_INDEX,
        )
        return [product_from_item(item) for item in items], last

    def get(self, product_id: str) -> Product | None:
        """One product, or None if this tenant has no such product."""
        with dynamodb_errors():
            item = self.dynamodb.get_item(
                TableName=table_name(), Key=to_item(keys.product_key(self.tenant_id, product_id))
            ).get("Item")
        return product_from_item(item) if item else None

    def put(self, product: Product) -> None:
        """Create or replace a product (seeding and administration, not the public API)."""
        values = {
            **keys.product_key(self.tenant_id, product.product_id),
            **keys.catalog_index_key(self.tenant_id, product.product_id),
            "product_id": product.product_id,
            "name": product.name,
            "description": product.description,
            "price": product.price,
            "currency": product.currency,
            "stock": product.stock,
        }
        with dynamodb_errors():
            self.dynamodb.put_item(TableName=table_name(), Item=to_item(values))
