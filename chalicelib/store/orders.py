"""A tenant's orders in DynamoDB, and the Idempotency-Key records written in the same transaction as the order they replay."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

from chalicelib import deadline
from chalicelib.errors import DeadlineExceeded, OrderOutcomeUnknown, ServiceUnavailable
from chalicelib.ids import IDEMPOTENCY_KEY_LIFETIME_SECONDS
from chalicelib.models import Order, OrderLine, Product
from chalicelib.store import keys
from chalicelib.store.catalog import product_from_item
from chalicelib.store.dynamodb import (
    MAX_BATCH_ATTEMPTS,
    dynamodb_errors,
    from_item,
    query_sharded_list,
    table_name,
    to_item,
)


def order_values(order: Order) -> dict[str, Any]:
    """The attributes that describe an order, as stored on the order and in its idempotency record."""
    return {
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


def order_from_values(values: dict[str, Any]) -> Order:
    """An order from its stored attributes (plain values, as from_item gives them)."""
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


@dataclass(frozen=True)
class IdempotencyRecord:
    """What an Idempotency-Key was first used for, and the order it answered with."""

    fingerprint: str
    order: Order


@dataclass(frozen=True)
class OrderInputs:
    """What placing an order reads first: the products it names and any earlier use of its key."""

    products: dict[str, Product]
    earlier: IdempotencyRecord | None


class OrderConflict(Exception):
    """The order transaction was cancelled; says which of its conditions failed."""

    def __init__(self, stock_or_price: bool, idempotency: bool, contended: bool = False):
        super().__init__("order transaction cancelled")
        self.stock_or_price = stock_or_price
        self.idempotency = idempotency
        # Another transaction held one of the items: a busy product, not a changed one.
        self.contended = contended


def _record_from_item(item: dict[str, Any] | None, now: float | None) -> IdempotencyRecord | None:
    if not item:
        return None
    values = from_item(item)
    # TTL deletes an expired record only eventually; until then it no longer binds the key.
    if values["expires_at"] <= (time.time() if now is None else now):
        return None
    return IdempotencyRecord(fingerprint=values["fingerprint"], order=order_from_values(values["order"]))


def _answer_lost(error: ServiceUnavailable) -> bool:
    """Whether a failed call was sent and left unanswered, so that it may have been applied."""
    if isinstance(error, DeadlineExceeded) and error.attempts_sent > 0:
        return True
    cause = error.__cause__
    if isinstance(cause, DeadlineExceeded):
        return cause.attempts_sent > 0
    return isinstance(cause, (ReadTimeoutError, ConnectionClosedError))


class OrderRepository:
    """The orders of one tenant and the Idempotency-Key records that replay them, reached with the client it is given."""

    IDEMPOTENCY_TTL_SECONDS = IDEMPOTENCY_KEY_LIFETIME_SECONDS

    def __init__(self, tenant_id: str, dynamodb: Any):
        self.tenant_id = tenant_id
        self.dynamodb = dynamodb
        self.partitions = keys.order_partitions(tenant_id)

    def list(self, limit: int, after_sort_key: str | None = None) -> tuple[list[Order], str | None]:
        """A page of orders, newest first, and the sort key to resume after (None at the end)."""
        items, last = query_sharded_list(
            self.dynamodb, self.partitions, limit=limit, after_sort_key=after_sort_key, newest_first=True
        )
        return [order_from_values(from_item(item)) for item in items], last

    def get(self, order_id: str) -> Order | None:
        """One order, or None if this tenant has no such order."""
        with dynamodb_errors():
            item = self.dynamodb.get_item(
                TableName=table_name(), Key=to_item(keys.order_key(self.tenant_id, order_id)), ConsistentRead=True
            ).get("Item")
        return order_from_values(from_item(item)) if item else None

    def read_inputs(self, product_ids: Sequence[str], key_digest: str | None, now: float | None = None) -> OrderInputs:
        """The named products (at most 99) and the key's unexpired record, in one consistent batch read."""
        product_keys = [to_item(keys.product_key(self.tenant_id, pid)) for pid in product_ids]
        record_key = to_item(keys.idempotency_key(self.tenant_id, key_digest)) if key_digest is not None else None
        pending = product_keys + ([record_key] if record_key else [])
        products: dict[str, Product] = {}
        record_item: dict[str, Any] | None = None
        for attempt in range(MAX_BATCH_ATTEMPTS):
            if not pending:
                break
            with dynamodb_errors():
                response = self.dynamodb.batch_get_item(
                    RequestItems={table_name(): {"Keys": pending, "ConsistentRead": True}}
                )
            for item in response["Responses"].get(table_name(), []):
                if record_key is not None and item["PK"] == record_key["PK"]:
                    record_item = item
                else:
                    product = product_from_item(item)
                    products[product.product_id] = product
            pending = response.get("UnprocessedKeys", {}).get(table_name(), {}).get("Keys", [])
            if pending and attempt < MAX_BATCH_ATTEMPTS - 1:
                time.sleep(deadline.check_pause(0.05 * 2**attempt))
        if pending:
            raise ServiceUnavailable()
        return OrderInputs(products=products, earlier=_record_from_item(record_item, now))

    def get_idempotency_record(self, key_digest: str, now: float | None = None) -> IdempotencyRecord | None:
        """The unexpired record of an Idempotency-Key's first use, if any."""
        with dynamodb_errors():
            item = self.dynamodb.get_item(
                TableName=table_name(),
                Key=to_item(keys.idempotency_key(self.tenant_id, key_digest)),
                ConsistentRead=True,
            ).get("Item")
        return _record_from_item(item, now)

    def place(self, order: Order, key_digest: str | None = None, fingerprint: str | None = None) -> None:
        """Write the order and take its stock in one transaction.

        Each product must still have enough stock at the price the order was priced with;
        otherwise nothing is written and OrderConflict says which condition failed. With a
        key, the same transaction records the order under it, unless the key is already bound.
        """
        now = int(time.time())
        actions: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": table_name(),
                    "Key": to_item(keys.product_key(self.tenant_id, line.product_id)),
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
        stored = {**keys.order_key(self.tenant_id, order.order_id), **order_values(order)}
        if key_digest is not None:
            # Lets an operator who removes the tenant's orders find their records too.
            stored["idempotency_key_digest"] = key_digest
        actions.append(
            {
                "Put": {
                    "TableName": table_name(),
                    "Item": to_item(stored),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            }
        )
        if key_digest is not None:
            record = {
                **keys.idempotency_key(self.tenant_id, key_digest),
                "fingerprint": fingerprint,
                "order_id": order.order_id,
                # The whole answer, so that a replay is one read.
                "order": order_values(order),
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
                # The SDK resends a transaction whose answer was lost; the same token makes DynamoDB
                # answer the resend as the first (for 10 minutes) instead of running it again.
                self.dynamodb.transact_write_items(TransactItems=actions, ClientRequestToken=order.order_id)
        except ServiceUnavailable as error:
            if _answer_lost(error):
                raise OrderOutcomeUnknown() from error
            raise
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = [reason.get("Code") for reason in error.response.get("CancellationReasons", [])]
            lines = len(order.lines)
            if len(reasons) > lines and reasons[lines] == "ConditionalCheckFailed":
                # The order itself is already there: its id is new to this call, so this very
                # transaction was committed by an earlier attempt whose answer was lost. Placed.
                return
            if any(code not in (None, "None", "ConditionalCheckFailed", "TransactionConflict") for code in reasons):
                # Throttling (a product past what one item can take) or an internal error: retry later.
                raise ServiceUnavailable() from error
            failed = {index for index, code in enumerate(reasons) if code == "ConditionalCheckFailed"}
            conflicted = any(code == "TransactionConflict" for code in reasons)
            raise OrderConflict(
                stock_or_price=conflicted or any(index < lines for index in failed) or not reasons,
                idempotency=key_digest is not None and (lines + 1) in failed,
                contended=conflicted and not failed,
            ) from error
