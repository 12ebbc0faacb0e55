"""A tenant's items in the single table that only an operator removes: its registry items and, on request, its data.

The application never deletes a tenant, so chalicelib has no operation for it; the keys still
come from chalicelib.store.keys, and every read is a Query inside one of the tenant's partitions (of
the table or of its catalog index) or a read of a named item.
"""

from __future__ import annotations

from typing import Any, Iterator

from chalicelib.store import keys
from chalicelib.store.dynamodb import dynamodb_client, table_name, to_item

BATCH_SIZE = 25  # BatchWriteItem's limit
BATCH_READ_SIZE = 100  # BatchGetItem's limit
MAX_BATCH_ATTEMPTS = 8


def _query_keys(
    partition: str, *, index: str | None = None, attributes: str = "PK, SK", limit: int | None = None
) -> Iterator[dict[str, Any]]:
    pk = keys.CATALOG_INDEX_PK if index else "PK"
    request: dict[str, Any] = {
        "TableName": table_name(),
        "KeyConditionExpression": "#pk = :pk",
        "ExpressionAttributeNames": {"#pk": pk},
        "ExpressionAttributeValues": {":pk": {"S": partition}},
        "ProjectionExpression": attributes,
    }
    if index:
        # An index entry carries the table's key, which is all a purge needs.
        request["IndexName"] = index
    else:
        request["ConsistentRead"] = True
    if limit is not None:
        request["Limit"] = limit
    while True:
        page = dynamodb_client().query(**request)
        yield from page["Items"]
        if limit is not None or "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _product_keys(tenant_id: str, limit: int | None = None) -> Iterator[dict[str, Any]]:
    # Each product has a partition of its own; the catalog index is how to find them all.
    for partition in keys.catalog_partitions(tenant_id):
        for entry in _query_keys(partition, index=keys.CATALOG_INDEX, limit=limit):
            yield {"PK": entry["PK"], "SK": entry["SK"]}


def _orders(tenant_id: str, limit: int | None = None) -> Iterator[dict[str, Any]]:
    for partition in keys.order_partitions(tenant_id):
        yield from _query_keys(partition, attributes="PK, SK, idempotency_key_digest", limit=limit)


def _idempotency_record_keys(tenant_id: str, orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Each record has a partition of its own; the order it answered with names it. Records
    # whose order is gone already, or that TTL deleted, are not found, and need not be.
    # A key reused after its record expired names one record from two orders, and BatchGetItem
    # refuses a request that names a key twice.
    digests = dict.fromkeys(
        order["idempotency_key_digest"]["S"] for order in orders if "idempotency_key_digest" in order
    )
    candidates = [to_item(keys.idempotency_key(tenant_id, digest)) for digest in digests]
    found = []
    for start in range(0, len(candidates), BATCH_READ_SIZE):
        pending = candidates[start : start + BATCH_READ_SIZE]
        for _ in range(MAX_BATCH_ATTEMPTS):
            response = dynamodb_client().batch_get_item(
                RequestItems={table_name(): {"Keys": pending, "ProjectionExpression": "PK, SK", "ConsistentRead": True}}
            )
            found.extend(response["Responses"].get(table_name(), []))
            pending = response.get("UnprocessedKeys", {}).get(table_name(), {}).get("Keys", [])
            if not pending:
                break
        if pending:
            raise RuntimeError("DynamoDB left keys unread; run the command again")
    return found


def _order_and_record_keys(tenant_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    orders = list(_orders(tenant_id))
    return [{"PK": order["PK"], "SK": order["SK"]} for order in orders], _idempotency_record_keys(tenant_id, orders)


def tenant_items(tenant_id: str) -> dict[str, list[dict[str, Any]]]:
    """The keys of every item of the tenant's own data, by what they hold."""
    order_keys, record_keys = _order_and_record_keys(tenant_id)
    return {"products": list(_product_keys(tenant_id)), "orders": order_keys, "idempotency records": record_keys}


def has_data(tenant_id: str) -> bool:
    """Whether the tenant has any product or order (an idempotency record never outlives both)."""
    return (
        next(_product_keys(tenant_id, limit=1), None) is not None or next(_orders(tenant_id, limit=1), None) is not None
    )


def count_data(tenant_id: str) -> dict[str, int]:
    """How many items of each kind the tenant has."""
    return {what: len(item_keys) for what, item_keys in tenant_items(tenant_id).items()}


def _delete_batch(item_keys: list[dict[str, Any]]) -> None:
    requests = {table_name(): [{"DeleteRequest": {"Key": key}} for key in item_keys]}
    for _ in range(MAX_BATCH_ATTEMPTS):
        unprocessed = dynamodb_client().batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}
        if not unprocessed:
            return
        requests = unprocessed
    raise RuntimeError(f"DynamoDB left {len(requests[table_name()])} deletes unprocessed; run the command again")


def _delete_all(item_keys: list[dict[str, Any]]) -> int:
    for start in range(0, len(item_keys), BATCH_SIZE):
        _delete_batch(item_keys[start : start + BATCH_SIZE])
    return len(item_keys)


def purge_data(tenant_id: str) -> dict[str, int]:
    """Delete every item of the tenant's own data; returns how many of each were deleted.

    Products are found through the catalog index, which lags writes by a moment: a product
    created while the purge runs may be left, and a second run removes it.
    """
    order_keys, record_keys = _order_and_record_keys(tenant_id)
    # Records are found only through their orders, so they go first: an interrupted purge
    # leaves orders and products for the rerun to find, never records that nobody can find
    # (and that a tenant re-created under this id could replay).
    records = _delete_all(record_keys)
    orders = _delete_all(order_keys)
    products = _delete_all(list(_product_keys(tenant_id)))
    return {"products": products, "orders": orders, "idempotency records": records}


def remove_client_lookup(client_id: str) -> None:
    """Delete the item mapping client_id to its tenant (left behind when a client is replaced)."""
    dynamodb_client().delete_item(TableName=table_name(), Key=to_item(keys.client_lookup_key(client_id)))


def remove_registry_items(tenant_id: str, client_ids: list[str]) -> None:
    """Delete the tenant's registry record and the lookups of its clients, together."""
    items = [keys.tenant_meta_key(tenant_id), *(keys.client_lookup_key(client_id) for client_id in client_ids)]
    dynamodb_client().transact_write_items(
        TransactItems=[{"Delete": {"TableName": table_name(), "Key": to_item(key)}} for key in items]
    )
