"""Move a stage's products, orders and Idempotency-Key records from the legacy layout into the sharded one.

    python -m scripts.deploy.migrate_layout --stage dev [--dry-run] [--tenant ID ...]

Run it right after deploying the code that reads the new layout (chalicelib.store.keys): until it
has finished, the API does not see what a tenant kept in the old layout. Its catalog looks
empty, its old orders are not found, and a retried request with an Idempotency-Key of
before the deploy places a second order.

It first gives the table the `catalog` index and waits until DynamoDB has filled it. Then,
tenant by tenant, it moves the products, then the orders, then the Idempotency-Key records
(the new record carries a copy of its order, so the order moves first). Each item moves in a
transaction that writes the new item only if there is none and deletes the legacy item only
if it is still exactly as read, so nothing is lost or doubled and an interrupted run leaves only
whole moves behind. A legacy item that a Lambda of the old code changed meanwhile (a sale that
lowered a product's stock) is read again and moved as it is now. A product or order the new
code wrote meanwhile is kept and its legacy copy dropped; records that expired, or whose order
is gone, are dropped rather than moved.

Safe to rerun: a rerun after an interruption moves what is left, and one after success
moves nothing and says so. The tenants are those `python -m scripts.tenants list` shows;
--tenant adds one the registry no longer names (offboarded without --purge-data).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import ServiceUnavailable
from chalicelib.store import dynamodb, keys
from chalicelib.store.orders import order_from_values, order_values
from scripts import provision
from scripts.aws_calls import error_code
from scripts.command_output import AWS_UNREACHABLE, CommandOutput
from scripts.stage_config import PROJECT_DIR, StageConfigError
from scripts.stage_resources import AwsClients, StageResources, application_settings, load_stage
from scripts.tenants import lifecycle

OUTPUT = CommandOutput("migrate")


PRODUCTS, ORDERS, RECORDS = "products", "orders", "idempotency records"
MOVED = "moved"
KEPT = "kept newer"
EXPIRED = "dropped expired"
ORPHANED = "dropped orphaned"
# The legacy item vanished between reading it and moving it (another run moved it).
GONE = "already gone"
# Its key names an id the new layout cannot hold; nothing is written for it.
LEFT = "left in place"
OUTCOMES = (MOVED, KEPT, EXPIRED, ORPHANED, GONE, LEFT)
# What each kind's progress line shows even when it is zero.
SHOWN = {PRODUCTS: (MOVED, KEPT), ORDERS: (MOVED, KEPT), RECORDS: (MOVED, KEPT, EXPIRED, ORPHANED)}

# TransactWriteItems takes at most 100 actions and 4 MB; 25 moves of up to 3 actions stay well inside.
MOVES_PER_TRANSACTION = 25
MAX_TRANSACTION_ACTIONS = 100
MAX_TRANSACTION_BYTES = 3_500_000
BATCH_READ_SIZE = 100  # BatchGetItem's limit
# A partition of many items would otherwise be silent until it is done.
PROGRESS_EVERY = 5000
MAX_ATTEMPTS = 6
BACKOFF_SECONDS = 0.2
# Cancellation reasons that say "busy", not "this item is not as expected": the same transaction may succeed later.
BUSY_REASONS = {"ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded", "TransactionConflict"}
CONDITION_FAILED = "ConditionalCheckFailed"
# The attribute types a legacy Delete compares with what was read. Lists and maps (an order's
# lines) are left out: they are written once with the item, and comparing them would repeat the
# whole item in the request. A product's stock, price and currency are all scalars. Our items
# have about ten attributes, far from the 4 KB expression limit; an item beyond it is refused
# with a ValidationException, which names the item like any other refused move.
COMPARED_TYPES = {"S", "N", "B", "BOOL"}
LEGACY_PARTITIONS = {
    PRODUCTS: keys.legacy_product_partition,
    ORDERS: keys.legacy_order_partition,
    RECORDS: keys.legacy_idempotency_partition,
}

Key = tuple[str, str]


class MigrationError(Exception):
    """The migration cannot go on; the message says why and what to do."""


class Cancelled(Exception):
    """DynamoDB cancelled a transaction for a reason other than being busy."""

    def __init__(self, reasons: list[str]):
        super().__init__(", ".join(reasons))
        self.reasons = reasons


def _key_of(item: dict[str, Any]) -> Key:
    return item["PK"]["S"], item["SK"]["S"]


def _key(key: dict[str, str]) -> Key:
    return key["PK"], key["SK"]


def _typed(key: dict[str, str]) -> dict[str, Any]:
    return dynamodb.to_item(key)


def _as_read(item: dict[str, Any]) -> dict[str, Any]:
    """The condition that the item still exists with the scalar attributes it was read with."""
    names = sorted(
        name for name, value in item.items() if name not in ("PK", "SK") and next(iter(value)) in COMPARED_TYPES
    )
    if not names:
        return {"ConditionExpression": "attribute_exists(PK)"}
    # Placeholders, since attribute names such as `name` and `status` are reserved words.
    compared = " AND ".join(f"#a{number} = :a{number}" for number in range(len(names)))
    return {
        "ConditionExpression": f"attribute_exists(PK) AND {compared}",
        "ExpressionAttributeNames": {f"#a{number}": name for number, name in enumerate(names)},
        "ExpressionAttributeValues": {f":a{number}": item[name] for number, name in enumerate(names)},
    }


@dataclass(frozen=True)
class Move:
    """One legacy item's way out of the legacy layout, made in one transaction.

    With a new item, the item is written to the new layout (only if it is not there yet) as the
    legacy one is deleted (only if it is still as read); without one, the legacy item is dropped.
    With an order key, the order is marked with the record's digest in the same transaction.
    """

    label: str
    legacy_item: dict[str, Any]
    outcome: str
    new_item: dict[str, Any] | None = None
    order_key: dict[str, Any] | None = None
    digest: str | None = None

    def dropped(self, outcome: str) -> Move:
        """The same legacy item, deleted instead of moved."""
        return replace(self, outcome=outcome, new_item=None, order_key=None, digest=None)

    @property
    def legacy_key(self) -> dict[str, Any]:
        """The key of the legacy item."""
        return _legacy_key(self.legacy_item)

    def actions(self, table: str) -> list[dict[str, Any]]:
        """The transaction's actions: Put (if moved), Delete, Update of the order (if any), in that order."""
        actions: list[dict[str, Any]] = []
        if self.new_item is not None:
            put = {"TableName": table, "Item": self.new_item, "ConditionExpression": "attribute_not_exists(PK)"}
            actions.append({"Put": put})
        # Only the item as read: the new one was built from it, and an old Lambda may have sold from it since.
        actions.append({"Delete": {"TableName": table, "Key": self.legacy_key, **_as_read(self.legacy_item)}})
        if self.order_key is not None:
            update = {
                "TableName": table,
                "Key": self.order_key,
                "UpdateExpression": "SET idempotency_key_digest = :digest",
                "ConditionExpression": "attribute_exists(PK)",
                "ExpressionAttributeValues": {":digest": {"S": self.digest}},
            }
            actions.append({"Update": update})
        return actions

    def keys(self) -> set[Key]:
        """The items the transaction touches (one transaction may touch an item only once)."""
        items = [self.legacy_key, *(item for item in (self.new_item, self.order_key) if item is not None)]
        return {_key_of(item) for item in items}

    def size(self, table: str) -> int:
        """About how many bytes the actions take in a request: enough to stay under the 4 MB limit."""
        return len(json.dumps(self.actions(table), default=str))


# Builds the moves of a page of a tenant's legacy items, one per item, in the order of the page.
Builder = Callable[[str, list[dict[str, Any]]], list[Move]]
# Builds the move of one legacy item again, from a fresh reading of it.
Remake = Callable[[dict[str, Any]], Move]


@dataclass
class Migration:
    """Moves one stage's legacy items, tenant by tenant, counting what happened to each."""

    dynamodb: Any
    table: str
    dry_run: bool
    now: int
    sleep: Callable[[float], None] = time.sleep
    totals: Counter[str] = field(default_factory=Counter)

    def tenant(self, tenant_id: str) -> None:
        """Move the tenant's products, orders and records, in that order, with one line for each."""
        for kind, build in ((PRODUCTS, self.products), (ORDERS, self.orders), (RECORDS, self.records)):
            counts: Counter[str] = Counter()
            try:
                self._migrate(tenant_id, kind, build, counts)
            except Exception:
                # What this run got done before it stopped; the rerun's line counts the rest.
                OUTPUT.progress(f"{tenant_id} {kind}: {_counts_line(kind, counts)} before it stopped")
                raise
            finally:
                self.totals.update(counts)
            OUTPUT.progress(f"{tenant_id} {kind}: {'would be ' if self.dry_run else ''}{_counts_line(kind, counts)}")

    def _migrate(self, tenant_id: str, kind: str, build: Builder, counts: Counter[str]) -> None:
        reported = 0

        def remake(item: dict[str, Any]) -> Move:
            return build(tenant_id, [item])[0]

        for page in self._legacy_pages(LEGACY_PARTITIONS[kind](tenant_id)):
            moves = build(tenant_id, page)
            for move in moves:
                if move.outcome == LEFT:
                    OUTPUT.progress(f"  {move.label}: {LEFT}: its key {_key_of(move.legacy_key)} names no valid id")
            if self.dry_run:
                counts.update(self._plan(moves))
            else:
                self._apply(moves, counts, remake)
            if counts.total() - reported >= PROGRESS_EVERY:
                reported = counts.total()
                OUTPUT.progress(f"{tenant_id} {kind}: {reported} so far")

    # What to move: the moves of a page of a legacy partition, one per item.

    def products(self, tenant_id: str, page: list[dict[str, Any]]) -> list[Move]:
        """The moves of legacy products: each to its own partition, listed in the catalog index."""
        return [self._product_move(tenant_id, item) for item in page]

    def _product_move(self, tenant_id: str, item: dict[str, Any]) -> Move:
        _, sort_key = _key_of(item)
        product_id = sort_key.removeprefix(keys.PRODUCT_PREFIX)
        label = f"product {product_id}"
        try:
            new_keys = {**keys.product_key(tenant_id, product_id), **keys.catalog_index_key(tenant_id, product_id)}
        except ValueError:
            return Move(label, item, LEFT)
        return Move(label, item, MOVED, new_item={**item, **_typed(new_keys)})

    def orders(self, tenant_id: str, page: list[dict[str, Any]]) -> list[Move]:
        """The moves of legacy orders, each to the shard its id hashes to."""
        return [self._order_move(tenant_id, item) for item in page]

    def _order_move(self, tenant_id: str, item: dict[str, Any]) -> Move:
        _, sort_key = _key_of(item)
        order_id = sort_key.removeprefix(keys.ORDER_PREFIX)
        label = f"order {order_id}"
        try:
            new_key = keys.order_key(tenant_id, order_id)
        except ValueError:
            return Move(label, item, LEFT)
        return Move(label, item, MOVED, new_item={**item, **_typed(new_key)})

    def records(self, tenant_id: str, page: list[dict[str, Any]]) -> list[Move]:
        """The moves of legacy Idempotency-Key records; expired and orphaned ones are dropped."""
        moves, live = [], []
        for item in page:
            values = dynamodb.from_item(item)
            digest, order_id = _key_of(item)[1].removeprefix("KEY#"), values.get("order_id", "")
            drop = Move(f"record of order {order_id or '(none)'}", item, LEFT)
            if not keys.KEY_DIGEST.fullmatch(digest):
                moves.append(drop)
            elif values.get("expires_at", 0) <= self.now:
                # TTL deletes an expired record only eventually; the application ignores it already.
                moves.append(drop.dropped(EXPIRED))
            elif not keys.ORDER_ID.fullmatch(order_id):
                moves.append(drop.dropped(ORPHANED))
            else:
                live.append((item, digest, order_id, drop))
        orders = self._orders(tenant_id, [order_id for _, _, order_id, _ in live])
        for item, digest, order_id, drop in live:
            if order_id not in orders:
                moves.append(drop.dropped(ORPHANED))
                continue
            order = order_from_values(dynamodb.from_item(orders[order_id]))
            new_item = {
                **_typed(keys.idempotency_key(tenant_id, digest)),
                **{name: item[name] for name in ("fingerprint", "order_id", "expires_at") if name in item},
                **dynamodb.to_item({"order": order_values(order)}),
            }
            order_key = _typed(keys.order_key(tenant_id, order_id))
            moves.append(replace(drop, outcome=MOVED, new_item=new_item, order_key=order_key, digest=digest))
        return moves

    def _orders(self, tenant_id: str, order_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The item of each of these orders that exists, by order id.

        A dry run's orders step moved nothing, so there an order still in the legacy layout counts too.
        """
        builders = [keys.order_key, keys.legacy_order_key] if self.dry_run else [keys.order_key]
        places = {order_id: [_key(build(tenant_id, order_id)) for build in builders] for order_id in order_ids}
        found = self._read(place for candidates in places.values() for place in candidates)
        orders = {}
        for order_id, candidates in places.items():
            item = next((found[place] for place in candidates if place in found), None)
            if item is not None:
                orders[order_id] = item
        return orders

    # Reading.

    def _legacy_pages(self, partition: str) -> Iterator[list[dict[str, Any]]]:
        """The legacy partition a page at a time, read consistently (each page is moved before the next is read)."""
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": partition}},
            "ConsistentRead": True,
        }
        while True:
            page = self._call("query", **request)
            if page["Items"]:
                yield page["Items"]
            if "LastEvaluatedKey" not in page:
                return
            # Reading on after the last key works even once the items before it are deleted.
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _read(self, wanted: Iterable[Key]) -> dict[Key, dict[str, Any]]:
        """The items of these keys that exist, read consistently."""
        pending_keys = [{"PK": {"S": pk}, "SK": {"S": sk}} for pk, sk in sorted(wanted)]
        found: dict[Key, dict[str, Any]] = {}
        for start in range(0, len(pending_keys), BATCH_READ_SIZE):
            pending = pending_keys[start : start + BATCH_READ_SIZE]
            for attempt in range(MAX_ATTEMPTS):
                request = {self.table: {"Keys": pending, "ConsistentRead": True}}
                response = self._call("batch_get_item", RequestItems=request)
                found.update({_key_of(item): item for item in response["Responses"].get(self.table, [])})
                pending = response.get("UnprocessedKeys", {}).get(self.table, {}).get("Keys", [])
                if not pending or attempt == MAX_ATTEMPTS - 1:
                    break
                self.sleep(BACKOFF_SECONDS * 2**attempt)
            if pending:
                raise MigrationError("DynamoDB kept leaving keys unread (throttling); run the command again")
        return found

    # Dry run: what a real run would do, from reads only.

    def _plan(self, moves: list[Move]) -> Counter[str]:
        existing = self._read(_key_of(move.new_item) for move in moves if move.new_item is not None)
        return Counter(
            KEPT if move.new_item is not None and _key_of(move.new_item) in existing else move.outcome for move in moves
        )

    # Writing.

    def _apply(self, moves: list[Move], counts: Counter[str], remake: Remake) -> None:
        """Make the moves, a batch per transaction, counting each batch's outcomes as soon as it is written."""
        counts.update(move.outcome for move in moves if move.outcome == LEFT)
        for batch in self._batches([move for move in moves if move.outcome != LEFT]):
            try:
                self._transact([action for move in batch for action in move.actions(self.table)])
            except (Cancelled, ClientError) as error:
                if isinstance(error, ClientError) and error_code(error) != "ValidationException":
                    raise
                # One move stopped the batch: each move alone finds which, and what became of it.
                for move in batch:
                    counts[self._apply_one(move, remake)] += 1
            else:
                counts.update(move.outcome for move in batch)

    def _batches(self, moves: list[Move]) -> Iterator[list[Move]]:
        batch: list[Move] = []
        touched: set[Key] = set()
        actions = size = 0
        for move in moves:
            move_actions, move_size = len(move.actions(self.table)), move.size(self.table)
            full = (
                len(batch) == MOVES_PER_TRANSACTION
                or actions + move_actions > MAX_TRANSACTION_ACTIONS
                or size + move_size > MAX_TRANSACTION_BYTES
                or bool(touched & move.keys())
            )
            if batch and full:
                yield batch
                batch, touched, actions, size = [], set(), 0, 0
            batch.append(move)
            touched |= move.keys()
            actions += move_actions
            size += move_size
        if batch:
            yield batch

    def _apply_one(self, move: Move, remake: Remake, rereads: int = 0) -> str:
        actions = move.actions(self.table)
        try:
            self._transact(actions)
        except Cancelled as cancelled:
            reasons = dict(zip([next(iter(action)) for action in actions], cancelled.reasons, strict=False))
            if reasons.get("Put") == CONDITION_FAILED:
                # The new code wrote this item after the deploy: it is the newer one.
                return self._apply_one(move.dropped(KEPT), remake, rereads)
            if reasons.get("Delete") == CONDITION_FAILED:
                return self._apply_again(move, remake, rereads)
            if reasons.get("Update") == CONDITION_FAILED:
                return self._apply_one(move.dropped(ORPHANED), remake, rereads)
            raise MigrationError(f"DynamoDB cancelled the move of {move.label}: {cancelled}") from None
        except ClientError as error:
            if error_code(error) != "ValidationException":
                raise
            # An item the new layout makes too large, for one: name it, so that it can be fixed by hand.
            message = error.response.get("Error", {}).get("Message", error_code(error))
            raise MigrationError(f"DynamoDB refused the move of {move.label}: {message}") from None
        return move.outcome

    def _apply_again(self, move: Move, remake: Remake, rereads: int) -> str:
        """Move the legacy item as it is now: it changed, or went, since it was read."""
        current = self._read([_key_of(move.legacy_key)]).get(_key_of(move.legacy_key))
        if current is None:
            return GONE
        # An old Lambda selling the product many times a second could outrun every try; a rerun finishes it.
        if rereads == MAX_ATTEMPTS:
            raise MigrationError(f"{move.label} kept changing while it was moved; run the command again")
        again = remake(current)
        if again.outcome == LEFT:
            return LEFT
        return self._apply_one(again, remake, rereads + 1)

    def _transact(self, actions: list[dict[str, Any]]) -> None:
        """One transaction, tried again while DynamoDB is only busy; Cancelled if a condition failed."""
        for attempt in range(MAX_ATTEMPTS):
            try:
                self._call("transact_write_items", TransactItems=actions)
                return
            except ClientError as error:
                if error_code(error) != "TransactionCanceledException":
                    raise
                reasons = [reason.get("Code") or "None" for reason in error.response.get("CancellationReasons", [])]
                if any(reason not in BUSY_REASONS | {"None"} for reason in reasons):
                    raise Cancelled(reasons) from None
            self.sleep(BACKOFF_SECONDS * 2**attempt)
        raise MigrationError("DynamoDB kept cancelling moves as busy or throttled; run the command again")

    def _call(self, operation: str, **params: Any) -> Any:
        """A DynamoDB call, tried again while DynamoDB throttles (beyond the client's own retries)."""
        call = getattr(self.dynamodb, operation)
        for attempt in range(MAX_ATTEMPTS - 1):
            try:
                return call(**params)
            except ClientError as error:
                if error_code(error) not in dynamodb.RETRYABLE_CODES:
                    raise
            self.sleep(BACKOFF_SECONDS * 2**attempt)
        return call(**params)


def _counts_line(kind: str, counts: Counter[str]) -> str:
    shown = [*SHOWN[kind], *(outcome for outcome in OUTCOMES if counts[outcome] and outcome not in SHOWN[kind])]
    return ", ".join(f"{counts[outcome]} {outcome}" for outcome in shown)


def _legacy_key(item: dict[str, Any]) -> dict[str, Any]:
    return {"PK": item["PK"], "SK": item["SK"]}


def stage_tenants(resources: StageResources, clients: AwsClients, pool_id: str, extra: list[str]) -> list[str]:
    """The stage's tenants as `tenants list` finds them (app clients and registry), and the extra ids."""
    # Read-only: neither a migration nor its dry run makes the usage plans a stage lacks.
    tenancy = lifecycle.open_tenancy(resources, clients, pool_id, read_only=True)
    listed = [row.tenant_id for row in lifecycle.list_tenants(tenancy)]
    return list(dict.fromkeys([*listed, *extra]))


def prepare_table(clients: AwsClients, resources: StageResources, dry_run: bool) -> None:
    """Check the table exists and give it the schema's indexes (a dry run only says which it lacks)."""
    name = resources.table_name
    try:
        missing = provision.missing_indexes(clients.dynamodb, name)
    except ClientError as error:
        if error_code(error) != "ResourceNotFoundException":
            raise
        raise MigrationError(
            f"the table {name} does not exist in {clients.region}; run `python -m scripts.deploy.bootstrap "
            f"--stage {resources.stage}` first"
        ) from None
    if not missing:
        OUTPUT.progress(f"table {name}: indexes ({', '.join(provision.index_names(name))}) present")
    elif dry_run:
        OUTPUT.progress(f"table {name}: would create the indexes {', '.join(missing)}")
    else:
        OUTPUT.progress(f"table {name}: creating the indexes {', '.join(missing)}; DynamoDB fills them from the table")
        provision.ensure_indexes(clients.dynamodb, name)
        OUTPUT.progress(f"table {name}: indexes {', '.join(missing)} created and ACTIVE")


def summary(totals: Counter[str], tenants: int, dry_run: bool) -> str:
    """The last line: what was done (or would be) over every tenant."""
    counts = ", ".join(f"{totals[outcome]} {outcome}" for outcome in OUTCOMES if totals[outcome])
    if dry_run:
        would = f"would be {counts}" if counts else "nothing to move"
        return f"dry run: {tenants} tenant(s); {would}; nothing was changed"
    if not counts:
        return f"nothing to move: no legacy items left for {tenants} tenant(s)"
    return f"done: {tenants} tenant(s); {counts}"


def run(args: argparse.Namespace) -> Counter[str]:
    """Migrate the stage's tenants; the totals of what happened."""
    extra_tenants = [lifecycle.check_tenant_id(tenant_id) for tenant_id in args.tenant]
    resources = load_stage(args.stage, args.project_dir)
    region, pool_id = resources.bootstrapped_pool()
    if args.region and args.region != region:
        raise MigrationError(f"stage {resources.stage} lives in {region} (TOKEN_ISSUER), not {args.region}")
    clients = AwsClients.for_region(region)
    suffix = " (dry run)" if args.dry_run else ""
    OUTPUT.progress(f"stage {resources.stage} in {region}, table {resources.table_name}{suffix}")
    prepare_table(clients, resources, args.dry_run)
    with application_settings(resources, region):
        tenants = stage_tenants(resources, clients, pool_id, extra_tenants)
        OUTPUT.progress(f"tenants: {', '.join(tenants) or '(none)'}")
        migration = Migration(dynamodb.dynamodb_client(), resources.table_name, args.dry_run, int(time.time()))
        for tenant_id in tenants:
            migration.tenant(tenant_id)
    OUTPUT.progress(summary(migration.totals, len(tenants), args.dry_run))
    return migration.totals


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.deploy.migrate_layout",
        description=__doc__.splitlines()[0] if __doc__ else None,
        epilog="Run it right after `chalice deploy` of the code that reads the new layout; a rerun is safe.",
    )
    parser.add_argument("--stage", required=True, help="the Chalice stage (dev, prod)")
    parser.add_argument("--region", help="AWS region (default: the one in the stage's TOKEN_ISSUER)")
    parser.add_argument("--dry-run", action="store_true", help="count what would move, write nothing")
    parser.add_argument(
        "--tenant",
        action="append",
        default=[],
        metavar="ID",
        help="also migrate this tenant, which the registry no longer names (repeatable)",
    )
    parser.add_argument(
        "--project-dir", type=Path, default=PROJECT_DIR, help="the project whose .chalice/config.json is read"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Migrate the stage; 0 when every legacy item was moved or dropped, 1 with a message otherwise."""
    args = parse_args(argv)
    rerun = "; moves already made stay made, run the command again to finish"
    try:
        totals = run(args)
    except (MigrationError, lifecycle.TenantError, StageConfigError, provision.ProvisioningError) as error:
        OUTPUT.error(error)
        return 1
    except (ClientError, BotoCoreError) as error:
        OUTPUT.error(f"{AWS_UNREACHABLE}: {error}{rerun}")
        return 1
    except ServiceUnavailable:
        # The registry's calls report DynamoDB throttling or outages this way.
        OUTPUT.error(f"DynamoDB is throttling or unreachable{rerun}")
        return 1
    if totals[LEFT]:
        print(
            f"[migrate] error: {totals[LEFT]} legacy item(s) have keys the new layout cannot hold and were left; "
            "see the lines marked 'left in place'",
            file=sys.stderr,
            flush=True,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
