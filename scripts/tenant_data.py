"""A tenant's items in the single table that only an operator removes: its registry items and, on request, its data.

The application never deletes a tenant, so chalicelib has no operation for it; the keys still
come from chalicelib.keys, and every read is a Query inside one of the tenant's partitions.
"""

from __future__ import annotations

from typing import Any, Iterator

from chalicelib import keys
from chalicelib.repository import dynamodb_client, table_name, to_item

BATCH_SIZE = 25  # BatchWriteItem's limit
MAX_BATCH_ATTEMPTS = 8


def data_partitions(tenant_id: str) -> dict[str, str]:
    """The partitions holding a tenant's own data, by what they hold."""
    return {
        "products": keys.product_partition(tenant_id),
        "orders": keys.order_partition(tenant_id),
        "idempotency records": keys.idempotency_partition(tenant_id),
    }


def _keys_in(partition: str, limit: int | None = None) -> Iterator[dict[str, Any]]:
    request: dict[str, Any] = {
        "TableName": table_name(),
        "KeyConditionExpression": "PK = :pk",
        "ExpressionAttributeValues": {":pk": {"S": partition}},
        "ProjectionExpression": "PK, SK",
        "ConsistentRead": True,
    }
    if limit is not None:
        request["Limit"] = limit
    while True:
        page = dynamodb_client().query(**request)
        yield from page["Items"]
        if limit is not None or "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def has_data(tenant_id: str) -> bool:
    """Whether any of the tenant's partitions holds an item."""
    return any(next(_keys_in(partition, limit=1), None) for partition in data_partitions(tenant_id).values())


def count_data(tenant_id: str) -> dict[str, int]:
    """How many items each of the tenant's partitions holds."""
    return {what: sum(1 for _ in _keys_in(partition)) for what, partition in data_partitions(tenant_id).items()}


def _delete_batch(item_keys: list[dict[str, Any]]) -> None:
    requests = {table_name(): [{"DeleteRequest": {"Key": key}} for key in item_keys]}
    for _ in range(MAX_BATCH_ATTEMPTS):
        unprocessed = dynamodb_client().batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}
        if not unprocessed:
            return
        requests = unprocessed
    raise RuntimeError(f"DynamoDB left {len(requests[table_name()])} deletes unprocessed; run the command again")


def purge_data(tenant_id: str) -> dict[str, int]:
    """Delete every item of the tenant's partitions; returns how many of each were deleted."""
    deleted = {}
    for what, partition in data_partitions(tenant_id).items():
        item_keys = list(_keys_in(partition))
        for start in range(0, len(item_keys), BATCH_SIZE):
            _delete_batch(item_keys[start : start + BATCH_SIZE])
        deleted[what] = len(item_keys)
    return deleted


def remove_client_lookup(client_id: str) -> None:
    """Delete the item mapping client_id to its tenant (left behind when a client is replaced)."""
    dynamodb_client().delete_item(TableName=table_name(), Key=to_item(keys.client_lookup_key(client_id)))


def remove_registry_items(tenant_id: str, client_ids: list[str]) -> None:
    """Delete the tenant's registry record and the lookups of its clients, together."""
    items = [keys.tenant_meta_key(tenant_id), *(keys.client_lookup_key(client_id) for client_id in client_ids)]
    dynamodb_client().transact_write_items(
        TransactItems=[{"Delete": {"TableName": table_name(), "Key": to_item(key)}} for key in items]
    )
