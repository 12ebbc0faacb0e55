"""The single table's definition, shared by the bootstrap and local stack scripts and tests."""

from __future__ import annotations

from typing import Any

# Idempotency records carry their expiry here; DynamoDB's TTL deletes them after it passes.
TTL_ATTRIBUTE = "expires_at"


def table_definition(table_name: str) -> dict[str, Any]:
    """Arguments for DynamoDB CreateTable: PK/SK strings, on-demand, encrypted."""
    return {
        "TableName": table_name,
        "KeySchema": [
            {"AttributeName": "PK", "KeyType": "HASH"},
            {"AttributeName": "SK", "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "SK", "AttributeType": "S"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
        "SSESpecification": {"Enabled": True},
    }
