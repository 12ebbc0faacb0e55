"""Every DynamoDB call of the application; each repository is bound to exactly one tenant."""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import keys
from chalicelib.config import get_settings
from chalicelib.errors import ServiceUnavailable
from chalicelib.models import Order, OrderLine, Product

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

# Errors that mean "DynamoDB is busy or unreachable", which the client may retry.
RETRYABLE_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionInProgressException",
}
MAX_BATCH_ATTEMPTS = 5


# boto3's default session is not safe to use from several threads at once, and chalice local
# serves each request on its own thread: clients are created one at a time.
CLIENT_CREATION_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1)
def dynamodb_client() -> Any:
    """The process's one DynamoDB client, created on first use (it honours AWS_ENDPOINT_URL)."""
    config = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3})
    with CLIENT_CREATION_LOCK:
        return boto3.client("dynamodb", region_name=get_settings().region, config=config)


def table_name() -> str:
    """The single table's name."""
    return get_settings().table_name


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    """A plain dict as a DynamoDB item (numbers must be int or Decimal)."""
    return {name: _serializer.serialize(value) for name, value in values.items()}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item as a plain dict (numbers come back as Decimal)."""
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


@contextlib.contextmanager
def dynamodb_errors() -> Iterator[None]:
    """Turn DynamoDB throttling and outages into ServiceUnavailable; let other faults surface."""
    try:
        yield
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in RETRYABLE_CODES:
            raise ServiceUnavailable() from error
        raise
    except BotoCoreError as error:
        raise ServiceUnavailable() from error


def _product_from_item(item: dict[str, Any]) -> Product:
    values = from_item(item)
    return Product(
        product_id=values["product_id"],
        name=values["name"],
        description=values.get("description", ""),
        price=values["price"],
        currency=values["currency"],
        stock=int(values["stock"]),
    )


def _order_from_item(item: dict[str, Any]) -> Order:
    values = from_item(item)
    lines = tuple(
        OrderLine(
            product_id=line["product_id"],
            name=line["name"],
            quantity=int(line["quantity"]),
            unit_price=line["unit_price"],
        )
        for line in values["lines"]
    )
    return Order(
        order_id=values["order_id"],
        lines=lines,
        currency=values["currency"],
        created_at=values["created_at"],
        status=values.get("status", "placed"),
    )


def _query_page(
    partition: str, limit: int, after_sort_key: str | None, newest_first: bool
) -> tuple[list[dict], str | None]:
    # One item more than asked tells whether another page exists without an empty last page.
    request: dict[str, Any] = {
        "TableName": table_name(),
        "KeyConditionExpression": "PK = :pk",
        "ExpressionAttributeValues": {":pk": {"S": partition}},
        "Limit": limit + 1,
        "ScanIndexForward": not newest_first,
    }
    if after_sort_key is not None:
        request["ExclusiveStartKey"] = {"PK": {"S": partition}, "SK": {"S": after_sort_key}}
    items: list[dict] = []
    with dynamodb_errors():
        while True:
            response = dynamodb_client().query(**request)
            items.extend(response["Items"])
            # DynamoDB ends a response at 1 MB even short of Limit: read on, or the list would end early.
            if len(items) > limit or "LastEvaluatedKey" not in response:
                break
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
            request["Limit"] = limit + 1 - len(items)
    if len(items) > limit:
        items = items[:limit]
        return items, items[-1]["SK"]["S"]
    return items, None


class CatalogRepository:
    """The products of one tenant."""

    def __init__(self, tenant_id: str):
        self.tenant_id = tenant_id
        self.partition = keys.product_partition(tenant_id)

    def list(self, limit: int, after_sort_key: str | None = None) -> tuple[list[Product], str | None]:
        """A page of products in id order, and the sort key to resume after (None at the end)."""
        items, last = _query_page(self.partition, limit, after_sort_key, newest_first=False)
        return [_product_from_item(item) for item in items], last

    def get(self, product_id: str) -> Product | None:
        """One product, or None if this tenant has no such product."""
        with dynamodb_errors():
            item = (
                dynamodb_client()
                .get_item(TableName=table_name(), Key=to_item(keys.product_key(self.tenant_id, product_id)))
                .get("Item")
            )
        return _product_from_item(item) if item else None

    def get_many(self, product_ids: list[str]) -> dict[str, Product]:
        """The named products this tenant has (at most 100), read consistently, by id."""
        pending = [to_item(keys.product_key(self.tenant_id, pid)) for pid in product_ids]
        found: dict[str, Product] = {}
        for attempt in range(MAX_BATCH_ATTEMPTS):
            if not pending:
                break
            with dynamodb_errors():
                response = dynamodb_client().batch_get_item(
                    RequestItems={table_name(): {"Keys": pending, "ConsistentRead": True}}
                )
            for item in response["Responses"].get(table_name(), []):
                product = _product_from_item(item)
                found[product.product_id] = product
            pending = response.get("UnprocessedKeys", {}).get(table_name(), {}).get("Keys", [])
            if pending:
                time.sleep(0.05 * 2**attempt)
        if pending:
            raise ServiceUnavailable()
        return found

    def put(self, product: Product) -> None:
        """Create or replace a product (seeding and administration, not the public API)."""
        values = {
            **keys.product_key(self.tenant_id, product.product_id),
            "product_id": product.product_id,
            "name": product.name,
            "description": product.description,
            "price": product.price,
            "currency": product.currency,
            "stock": product.stock,
        }
        with dynamodb_errors():
            dynamodb_client().put_item(TableName=table_name(), Item=to_item(values))


@dataclass(frozen=True)
class IdempotencyRecord:
    """What an Idempotency-Key was first used for."""

    fingerprint: str
    order_id: str


class OrderConflict(Exception):
    """The order transaction was cancelled; says which of its conditions failed."""

    def __init__(self, stock_or_price: bool, idempotency: bool):
        super().__init__("order transaction cancelled")
        self.stock_or_price = stock_or_price
        self.idempotency = idempotency


class OrderRepository:
    """The orders of one tenant."""

    IDEMPOTENCY_TTL_SECONDS = 24 * 3600

    def __init__(self, tenant_id: str):
        self.tenant_id = tenant_id
        self.partition = keys.order_partition(tenant_id)

    def list(self, limit: int, after_sort_key: str | None = None) -> tuple[list[Order], str | None]:
        """A page of orders, newest first, and the sort key to resume after (None at the end)."""
        items, last = _query_page(self.partition, limit, after_sort_key, newest_first=True)
        return [_order_from_item(item) for item in items], last

    def get(self, order_id: str) -> Order | None:
        """One order, or None if this tenant has no such order."""
        with dynamodb_errors():
            item = (
                dynamodb_client()
                .get_item(
                    TableName=table_name(), Key=to_item(keys.order_key(self.tenant_id, order_id)), ConsistentRead=True
                )
                .get("Item")
            )
        return _order_from_item(item) if item else None

    def get_idempotency_record(self, key_digest: str, now: float | None = None) -> IdempotencyRecord | None:
        """The unexpired record of an Idempotency-Key's first use, if any."""
        with dynamodb_errors():
            item = (
                dynamodb_client()
                .get_item(
                    TableName=table_name(),
                    Key=to_item(keys.idempotency_key(self.tenant_id, key_digest)),
                    ConsistentRead=True,
                )
                .get("Item")
            )
        if not item:
            return None
        values = from_item(item)
        if values["expires_at"] <= (time.time() if now is None else now):
            return None
        return IdempotencyRecord(fingerprint=values["fingerprint"], order_id=values["order_id"])

    def forget_idempotency_record(self, key_digest: str, order_id: str) -> None:
        """Delete an Idempotency-Key's record that names order_id (an order that no longer exists)."""
        try:
            with dynamodb_errors():
                dynamodb_client().delete_item(
                    TableName=table_name(),
                    Key=to_item(keys.idempotency_key(self.tenant_id, key_digest)),
                    # A concurrent request may already have bound the key to a new order: keep that.
                    ConditionExpression="order_id = :order_id",
                    ExpressionAttributeValues=to_item({":order_id": order_id}),
                )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    def place(self, order: Order, key_digest: str | None = None, fingerprint: str | None = None) -> None:
        """Write the order and take its stock in one transaction.

        Each product must still have enough stock at the price the order was priced with;
        otherwise nothing is written and OrderConflict says which condition failed.
        """
        now = int(time.time())
        catalog = CatalogRepository(self.tenant_id)
        actions: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": table_name(),
                    "Key": to_item(keys.product_key(catalog.tenant_id, line.product_id)),
                    "UpdateExpression": "SET stock = stock - :quantity",
                    "ConditionExpression": (
                        "attribute_exists(PK) AND stock >= :quantity AND price = :price AND currency = :currency"
                    ),
                    "ExpressionAttributeValues": to_item(
                        {":quantity": line.quantity, ":price": line.unit_price, ":currency": order.currency}
                    ),
                }
            }
            for line in order.lines
        ]
        actions.append(
            {
                "Put": {
                    "TableName": table_name(),
                    "Item": to_item(self._order_values(order)),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            }
        )
        if key_digest is not None:
            record = {
                **keys.idempotency_key(self.tenant_id, key_digest),
                "fingerprint": fingerprint,
                "order_id": order.order_id,
                "expires_at": now + self.IDEMPOTENCY_TTL_SECONDS,
            }
            actions.append(
                {
                    "Put": {
                        "TableName": table_name(),
                        "Item": to_item(record),
                        # An expired record may linger until TTL deletes it; it no longer binds the key.
                        "ConditionExpression": "attribute_not_exists(PK) OR expires_at <= :now",
                        "ExpressionAttributeValues": to_item({":now": now}),
                    }
                }
            )
        try:
            with dynamodb_errors():
                dynamodb_client().transact_write_items(TransactItems=actions)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = [reason.get("Code") for reason in error.response.get("CancellationReasons", [])]
            if any(code not in (None, "None", "ConditionalCheckFailed", "TransactionConflict") for code in reasons):
                # Throttling or an internal error: the client may retry later.
                raise ServiceUnavailable() from error
            lines = len(order.lines)
            failed = {index for index, code in enumerate(reasons) if code == "ConditionalCheckFailed"}
            # Another transaction on the same product at the same moment (a busy product) is
            # retried like a moved price: read again, price again, try again.
            conflicted = any(code == "TransactionConflict" for code in reasons)
            raise OrderConflict(
                stock_or_price=conflicted or any(index < lines for index in failed) or not reasons,
                idempotency=key_digest is not None and (lines + 1) in failed,
            ) from error

    def _order_values(self, order: Order) -> dict[str, Any]:
        return {
            **keys.order_key(self.tenant_id, order.order_id),
            "order_id": order.order_id,
            "status": order.status,
            "created_at": order.created_at,
            "currency": order.currency,
            "total": order.total,
            "lines": [
                {
                    "product_id": line.product_id,
                    "name": line.name,
                    "quantity": line.quantity,
                    "unit_price": line.unit_price,
                }
                for line in order.lines
            ],
        }
