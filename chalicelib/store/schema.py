"""The single table's definition, shared by the bootstrap and local stack scripts and tests."""

from __future__ import annotations

from typing import Any

from chalicelib.store import keys

# Idempotency records carry their expiry here; DynamoDB's TTL deletes them after it passes.
TTL_ATTRIBUTE = "expires_at"

# What a catalog list shows of a product: the index carries these and nothing else, so a
# change to any other attribute of a product never writes the index.
CATALOG_INDEX_ATTRIBUTES = ["product_id", "name", "description", "price", "currency", "stock"]


def catalog_index_definition() -> dict[str, Any]:
    """The `catalog` global secondary index, as CreateTable and UpdateTable take it."""
    return {
        "IndexName": keys.CATALOG_INDEX,
        "KeySchema": [
            {"AttributeName": keys.CATALOG_INDEX_PK, "KeyType": "HASH"},
            {"AttributeName": keys.CATALOG_INDEX_SK, "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(CATALOG_INDEX_ATTRIBUTES)},
    }


def table_definition(table_name: str) -> dict[str, Any]:
    """Arguments for DynamoDB CreateTable: PK/SK strings, the catalog index, on-demand, encrypted."""
    return {
        "TableName": table_name,
        "KeySchema": [
            {"AttributeName": "PK", "KeyType": "HASH"},
            {"AttributeName": "SK", "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": "S"}
            for name in ("PK", "SK", keys.CATALOG_INDEX_PK, keys.CATALOG_INDEX_SK)
        ],
        "GlobalSecondaryIndexes": [catalog_index_definition()],
        "BillingMode": "PAY_PER_REQUEST",
        "SSESpecification": {"Enabled": True},
    }
