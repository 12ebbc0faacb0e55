"""Read and write capacity units per partition key of a table and its indexes, from recorded DynamoDB calls.

Source: AWS DynamoDB Developer Guide, CapacityUnitCalculations, read-write-operations, transaction-apis, GSI pages.
"""

from __future__ import annotations

import base64
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Iterable, Mapping

# An item as DynamoDB's typed JSON: {"name": {"S": "..."}, "price": {"N": "216.9"}, ...}.
Item = dict[str, Any]
# An item's identity: its table and its key, frozen so that it can key a dict.
ItemId = tuple[str, tuple[tuple[str, str, str], ...]]
# Where units are consumed: (table, index name or None for the table itself, partition key value).
PartitionId = tuple[str, str | None, str]

READ_BLOCK = 4096
WRITE_BLOCK = 1024
# Transactions perform "two underlying reads or writes of every item": one to prepare, one to commit.
TRANSACTION_FACTOR = 2
EVENTUALLY_CONSISTENT = 0.5


# --- item sizes -----------------------------------------------------------------------------


def item_size(item: Mapping[str, Any] | None) -> int:
    """Size in bytes of an item in typed JSON, as DynamoDB counts it for capacity (0 for no item)."""
    if not item:
        return 0
    return sum(_name_size(name) + _value_size(value) for name, value in item.items())


def _name_size(name: str) -> int:
    return len(name.encode("utf-8"))


def _value_size(value: Mapping[str, Any]) -> int:
    ((kind, data),) = value.items()
    if kind == "S":
        return len(data.encode("utf-8"))
    if kind == "N":
        return number_size(data)
    if kind == "B":
        return _binary_size(data)
    if kind in ("BOOL", "NULL"):
        return 1
    # A List or Map costs 3 bytes whatever it holds, and each element 1 byte more than its own size.
    if kind == "L":
        return 3 + sum(1 + _value_size(element) for element in data)
    if kind == "M":
        return 3 + sum(1 + _name_size(name) + _value_size(element) for name, element in data.items())
    # The guide gives sets no overhead of their own: a set is the sum of its elements.
    if kind == "SS":
        return sum(len(element.encode("utf-8")) for element in data)
    if kind == "NS":
        return sum(number_size(element) for element in data)
    if kind == "BS":
        return sum(_binary_size(element) for element in data)
    raise ValueError(f"not a DynamoDB attribute type: {kind!r}")


def number_size(number: str) -> int:
    """Size in bytes of a Number: 1 byte per two significant digits, plus 1 (leading and trailing zeros trimmed)."""
    digits = "".join(str(digit) for digit in Decimal(number).as_tuple().digits).strip("0")
    return math.ceil(len(digits) / 2) + 1


def _binary_size(data: bytes | bytearray | str) -> int:
    # boto3's low-level client gives bytes; a str is the base64 text of DynamoDB JSON, and the raw length counts.
    if isinstance(data, str):
        return len(base64.b64decode(data))
    return len(data)


# --- the shape of a table -------------------------------------------------------------------


@dataclass(frozen=True)
class IndexShape:
    """A secondary index: its name, key attributes and which attributes it projects."""

    name: str
    partition_key: str
    sort_key: str | None
    projection: str
    non_key_attributes: frozenset[str] = frozenset()
    is_global: bool = True

    @property
    def key_attributes(self) -> tuple[str, ...]:
        """The index's own key attribute names, partition key first."""
        return (self.partition_key,) if self.sort_key is None else (self.partition_key, self.sort_key)


@dataclass(frozen=True)
class TableShape:
    """What pricing needs to know of a table: its key attribute names and its secondary indexes."""

    name: str
    partition_key: str
    sort_key: str | None
    indexes: tuple[IndexShape, ...] = ()

    @classmethod
    def from_definition(cls, definition: Mapping[str, Any]) -> TableShape:
        """The shape of a table from the arguments CreateTable takes (or a DescribeTable "Table")."""
        partition_key, sort_key = _key_schema(definition["KeySchema"])
        global_indexes = [_index_shape(index, True) for index in definition.get("GlobalSecondaryIndexes") or []]
        local_indexes = [_index_shape(index, False) for index in definition.get("LocalSecondaryIndexes") or []]
        return cls(definition["TableName"], partition_key, sort_key, tuple(global_indexes + local_indexes))

    @property
    def key_attributes(self) -> tuple[str, ...]:
        """The table's key attribute names, partition key first."""
        return (self.partition_key,) if self.sort_key is None else (self.partition_key, self.sort_key)

    def key_of(self, item: Mapping[str, Any]) -> Item:
        """The primary key of an item (raises KeyError if the item lacks a key attribute)."""
        return {name: item[name] for name in self.key_attributes}

    def index(self, name: str) -> IndexShape:
        """The secondary index of that name."""
        for index in self.indexes:
            if index.name == name:
                return index
        raise KeyError(f"table {self.name} has no index {name!r}")


def _key_schema(schema: Iterable[Mapping[str, str]]) -> tuple[str, str | None]:
    by_type = {element["KeyType"]: element["AttributeName"] for element in schema}
    return by_type["HASH"], by_type.get("RANGE")


def _index_shape(definition: Mapping[str, Any], is_global: bool) -> IndexShape:
    partition_key, sort_key = _key_schema(definition["KeySchema"])
    projection = definition.get("Projection") or {}
    return IndexShape(
        name=definition["IndexName"],
        partition_key=partition_key,
        sort_key=sort_key,
        projection=projection.get("ProjectionType", "ALL"),
        non_key_attributes=frozenset(projection.get("NonKeyAttributes") or ()),
        is_global=is_global,
    )


# --- recorded calls -------------------------------------------------------------------------


def scalar_text(value: Mapping[str, Any]) -> str:
    """A key attribute value (S, N or B) as text: strings as they are, numbers canonical, binary as base64."""
    ((kind, data),) = value.items()
    if kind == "N":
        # "1.0" and "1" are the same number, and so the same key.
        return format(Decimal(data).normalize(), "f")
    if kind == "B":
        return data if isinstance(data, str) else base64.b64encode(bytes(data)).decode("ascii")
    return str(data)


def item_id(table: str, key: Mapping[str, Any]) -> ItemId:
    """The identity of the item with this primary key in this table."""
    return table, tuple(sorted((name, next(iter(value)), scalar_text(value)) for name, value in key.items()))


@dataclass
class RecordedCall:
    """One DynamoDB call: its request, its parsed answer, and the images of the items it wrote or checked.

    `before` and `after` map the identity of every item the call writes or condition-checks to the
    whole item read just before and just after the call (None where there was no item).
    """

    operation: str
    params: dict[str, Any]
    response: dict[str, Any]
    error_code: str | None = None
    before: dict[ItemId, Item | None] = field(default_factory=dict)
    after: dict[ItemId, Item | None] = field(default_factory=dict)


def touched_items(
    operation: str, params: Mapping[str, Any], shapes: Mapping[str, TableShape]
) -> list[tuple[str, Item]]:
    """(table, key) of every item a write call writes or condition-checks; [] for reads and other calls."""
    touched: list[tuple[str, Item]] = []
    for action, table, request in _write_actions(operation, params):
        key = _action_key(action, request, _shape(shapes, table))
        if key is not None:
            touched.append((table, key))
    return touched


def _write_actions(operation: str, params: Mapping[str, Any]) -> list[tuple[str, str, Mapping[str, Any]]]:
    """Each write of a call as (action, table, request), action being Put, Update, Delete or ConditionCheck."""
    if operation in ("PutItem", "UpdateItem", "DeleteItem"):
        return [(operation.removesuffix("Item"), params["TableName"], params)]
    if operation == "BatchWriteItem":
        return [
            (request_type.removesuffix("Request"), table, request)
            for table, requests in params.get("RequestItems", {}).items()
            for write in requests
            for request_type, request in write.items()
        ]
    if operation == "TransactWriteItems":
        return [
            (action, request["TableName"], request)
            for entry in params.get("TransactItems", [])
            for action, request in entry.items()
        ]
    return []


def _action_key(action: str, request: Mapping[str, Any], shape: TableShape) -> Item | None:
    try:
        return shape.key_of(request["Item"]) if action == "Put" else shape.key_of(request["Key"])
    except KeyError:
        # A request without its key is refused by DynamoDB before anything is read or written.
        return None


def _shape(shapes: Mapping[str, TableShape], table: str) -> TableShape:
    try:
        return shapes[table]
    except KeyError:
        # Pricing a table without its shape would misattribute or drop units: better to say so.
        raise ValueError(f"no TableShape given for table {table!r}") from None


# --- consumption ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Consumption:
    """Units one call consumed on one partition of a table (index None) or of one of its indexes."""

    table: str
    index: str | None
    partition: str
    read_units: float
    write_units: float


class _Tally:
    """Units of one call summed per partition, in the order the partitions were first charged."""

    def __init__(self) -> None:
        self._units: dict[PartitionId, list[float]] = {}

    def read(self, where: PartitionId, units: float) -> None:
        self._units.setdefault(where, [0.0, 0.0])[0] += units

    def write(self, where: PartitionId, units: float) -> None:
        self._units.setdefault(where, [0.0, 0.0])[1] += units

    def consumptions(self) -> list[Consumption]:
        return [Consumption(table, index, partition, r, w) for (table, index, partition), (r, w) in self._units.items()]


def read_blocks(size: int) -> int:
    """4 KB blocks a read of size bytes is charged for, at least 1 (a missing item is still a read)."""
    return max(1, math.ceil(size / READ_BLOCK))


def write_blocks(size: int) -> int:
    """1 KB blocks a write of size bytes is charged for, at least 1."""
    return max(1, math.ceil(size / WRITE_BLOCK))


def consumption(call: RecordedCall, shapes: Mapping[str, TableShape]) -> list[Consumption]:
    """The read and write units each partition consumed for one call; [] for calls this model does not price."""
    pricer = _PRICERS.get(call.operation)
    if pricer is None:
        return []
    tally = _Tally()
    pricer(call, shapes, tally)
    return tally.consumptions()


def load_by_partition(consumptions: Iterable[Consumption]) -> dict[PartitionId, tuple[float, float]]:
    """(read units, write units) summed per (table, index, partition)."""
    load: dict[PartitionId, tuple[float, float]] = {}
    for part in consumptions:
        where = (part.table, part.index, part.partition)
        reads, writes = load.get(where, (0.0, 0.0))
        load[where] = (reads + part.read_units, writes + part.write_units)
    return load


def _table_partition(shape: TableShape, key: Mapping[str, Any]) -> PartitionId:
    return shape.name, None, scalar_text(key[shape.partition_key])


# Reads (read-write-operations.html, "Capacity unit consumption for read operations"): an item's size is
# rounded up to the next 4 KB; eventually consistent reads cost half; a read of a missing item still
# costs the minimum; a transactional read costs two reads of every item.


def _price_get_item(call: RecordedCall, shapes: Mapping[str, TableShape], tally: _Tally) -> None:
    if call.error_code:
        # A refused read returns nothing, and the guide names no cost for it.
        return
    shape = _shape(shapes, call.params["TableName"])
    factor = 1.0 if call.params.get("ConsistentRead") else EVENTUALLY_CONSISTENT
    size = item_size(call.response.get("Item"))
    tally.read(_table_partition(shape, call.params["Key"]), read_blocks(size) * factor)


def _price_batch_get_item(call: RecordedCall, shapes: Mapping[str, TableShape], tally: _Tally) -> None:
    if call.error_code:
        return
    unprocessed = call.response.get("UnprocessedKeys") or {}
    responses = call.response.get("Responses") or {}
    for table, request in call.params.get("RequestItems", {}).items():
        shape = _shape(shapes, table)
        factor = 1.0 if request.get("ConsistentRead") else EVENTUALLY_CONSISTENT
        returned = {item_id(table, shape.key_of(item)): item for item in responses.get(table, [])}
        # Keys sent back as UnprocessedKeys were not read, so they cost nothing in this call.
        skipped = {item_id(table, key) for key in (unprocessed.get(table) or {}).get("Keys", [])}
        for key in request.get("Keys", []):
            identity = item_id(table, key)
            if identity in skipped:
                continue
            # Each key is priced as its own GetItem: rounded up to 4 KB one by one, not in total.
            tally.read(_table_partition(shape, key), read_blocks(item_size(returned.get(identity))) * factor)


def _price_transact_get_items(call: RecordedCall, shapes: Mapping[str, TableShape], tally: _Tally) -> None:
    if call.error_code:
        return
    responses = call.response.get("Responses") or []
    for position, entry in enumerate(call.params.get("TransactItems", [])):
        request = entry["Get"]
        shape = _shape(shapes, request["TableName"])
        item = responses[position].get("Item") if position < len(responses) else None
        tally.read(_table_partition(shape, request["Key"]), TRANSACTION_FACTOR * read_blocks(item_size(item)))


def _price_query(call: RecordedCall, shapes: Mapping[str, TableShape], tally: _Tally) -> None:
    if call.error_code:
        return
    params = call.params
    shape = _shape(shapes, params["TableName"])
    index_name = params.get("IndexName")
    index = shape.index(index_name) if index_name else None
    partition_key = index.partition_key if index else shape.partition_key
    # A global secondary index answers eventually consistent reads only (GSI.html, "Read capacity units").
    consistent = params.get("ConsistentRead") and (index is None or not index.is_global)
    factor = 1.0 if consistent else EVENTUALLY_CONSISTENT
    # All the items returned are one read: their sizes are summed, then rounded up to the next 4 KB.
    size = sum(item_size(item) for item in call.response.get("Items") or [])
    partition = scalar_text(query_partition_value(params, partition_key))
    tally.read((shape.name, index_name, partition), read_blocks(size) * factor)


def query_partition_value(params: Mapping[str, Any], partition_key: str) -> Mapping[str, Any]:
    """The value a Query binds to the partition key, from KeyConditionExpression (or legacy KeyConditions)."""
    legacy = (params.get("KeyConditions") or {}).get(partition_key)
    if legacy:
        return legacy["AttributeValueList"][0]
    names = params.get("ExpressionAttributeNames") or {}
    values = params.get("ExpressionAttributeValues") or {}
    for clause in re.split(r"\s+AND\s+", params.get("KeyConditionExpression", ""), flags=re.IGNORECASE):
        match = _EQUALITY.fullmatch(clause.strip().strip("()").strip())
        if not match:
            continue
        left, right = match.groups()
        for name, value in ((left, right), (right, left)):
            if names.get(name, name) == partition_key and value in values:
                return values[value]
    raise ValueError(f"no equality on {partition_key!r} in {params.get('KeyConditionExpression')!r}")


_EQUALITY = re.compile(r"([#:]?[\w.\-]+)\s*=\s*([#:]?[\w.\-]+)")


# Writes (read-write-operations.html, "Capacity unit consumption for write operations"): the larger of
# the item's sizes before and after, rounded up to the next 1 KB; a delete costs the deleted item's size;
# a write whose condition fails still costs the size of the item it found (1 unit if there was none).


def _price_single_write(call: RecordedCall, shapes: Mapping[str, TableShape], tally: _Tally) -> None:
    ((action, table, request),) = _write_actions(call.operation, call.params)
    shape = _shape(shapes, table)
    key = _action_key(action, request, shape)
    if key is None:
        return
    identity = item_id(table, key)
    before = _before(call, identity)
    if call.error_code == "ConditionalCheckFailedException":
        tally.write(_table_partition(shape, key), write_blocks(item_size(before)))
        return
    if call.error_code:
        # Refused before it ran (invalid, throttled, in conflict): the guide names no cost for these.
        return
    after = _after(call, identity, action, request, before)
    tally.write(_table_partition(shape, key), write_blocks(max(item_size(before), item_size(after))))
    _charge_index_writes(shape, before, after, tally)


def _price_batch_write_item(call: RecordedCall, shapes: Mapping[str, TableShape], tally: _Tally) -> None:
    if call.error_code:
        return
    unprocessed = set()
    for table, requests in (call.response.get("UnprocessedItems") or {}).items():
        for write in requests:
            for request_type, request in write.items():
                key = _action_key(request_type.removesuffix("Request"), request, _shape(shapes, table))
                if key is not None:
                    unprocessed.add(item_id(table, key))
    for action, table, request in _write_actions(call.operation, call.params):
        shape = _shape(shapes, table)
        key = _action_key(action, request, shape)
        if key is None or item_id(table, key) in unprocessed:
            # UnprocessedItems were not written, so they cost nothing in this call.
            continue
        # Each request is priced as its own PutItem or DeleteItem, rounded up to 1 KB one by one.
        identity = item_id(table, key)
        before = _before(call, identity)
        after = _after(call, identity, action, request, before)
        tally.write(_table_partition(shape, key), write_blocks(max(item_size(before), item_size(after))))
        _charge_index_writes(shape, before, after, tally)


def _price_transact_write_items(call: RecordedCall, shapes: Mapping[str, TableShape], tally: _Tally) -> None:
    for action, table, request in _write_actions(call.operation, call.params):
        shape = _shape(shapes, table)
        key = _action_key(action, request, shape)
        if key is None:
            continue
        identity = item_id(table, key)
        before = _before(call, identity)
        if call.error_code:
            # Nothing was written, so there are no index writes. The guide does not say how a cancelled
            # transaction is billed: two units per 1 KB of each item as it stands is an upper bound.
            tally.write(_table_partition(shape, key), TRANSACTION_FACTOR * write_blocks(item_size(before)))
            continue
        after = _after(call, identity, action, request, before)
        # Two underlying writes of every item, prepare and commit (transaction-apis.html, "Capacity
        # management"); a ConditionCheck is priced on the item it checked.
        size = max(item_size(before), item_size(after))
        tally.write(_table_partition(shape, key), TRANSACTION_FACTOR * write_blocks(size))
        # The index writes are not doubled. AWS does not document this; it is what a conformance suite
        # reports measuring against DynamoDB: "the transactional 2x factor applies to the base table arm alone".
        _charge_index_writes(shape, before, after, tally)


def _before(call: RecordedCall, identity: ItemId) -> Item | None:
    return call.before.get(identity)


def _after(
    call: RecordedCall, identity: ItemId, action: str, request: Mapping[str, Any], before: Item | None
) -> Item | None:
    """The item after a successful write: as recorded, or else what the action itself says."""
    if identity in call.after:
        return call.after[identity]
    # Without a recorded image a Put leaves exactly its Item and a Delete leaves nothing; an Update's
    # result is unknown, so it is taken as unchanged (which charges no index write for it).
    if action == "Put":
        return dict(request["Item"])
    if action == "Delete":
        return None
    return before


# Index writes (GSI.html, "Write capacity units"): one write to put an entry that appears, one to delete
# an entry that disappears, two (a delete and a put) when the index key changes, one when only projected
# attributes change, and none when the entry is absent or unchanged; each sized on the index entry.


def index_entry(item: Mapping[str, Any] | None, table: TableShape, index: IndexShape) -> Item | None:
    """What the index stores for an item: None if the item lacks an index key attribute (a sparse index)."""
    if item is None or any(name not in item for name in index.key_attributes):
        return None
    if index.projection == "ALL":
        return dict(item)
    kept = set(table.key_attributes) | set(index.key_attributes)
    if index.projection == "INCLUDE":
        kept |= index.non_key_attributes
    return {name: value for name, value in item.items() if name in kept}


def _charge_index_writes(shape: TableShape, before: Item | None, after: Item | None, tally: _Tally) -> None:
    for index in shape.indexes:
        old = index_entry(before, shape, index)
        new = index_entry(after, shape, index)
        if old is None and new is None:
            continue
        if old is not None and new is not None and _index_key(old, index) == _index_key(new, index):
            if old != new:
                tally.write(_index_partition(shape, index, new), write_blocks(max(item_size(old), item_size(new))))
            continue
        if old is not None:
            tally.write(_index_partition(shape, index, old), write_blocks(item_size(old)))
        if new is not None:
            tally.write(_index_partition(shape, index, new), write_blocks(item_size(new)))


def _index_key(entry: Mapping[str, Any], index: IndexShape) -> tuple[str, ...]:
    return tuple(scalar_text(entry[name]) for name in index.key_attributes)


def _index_partition(shape: TableShape, index: IndexShape, entry: Mapping[str, Any]) -> PartitionId:
    return shape.name, index.name, scalar_text(entry[index.partition_key])


_PRICERS = {
    "GetItem": _price_get_item,
    "BatchGetItem": _price_batch_get_item,
    "TransactGetItems": _price_transact_get_items,
    "Query": _price_query,
    "PutItem": _price_single_write,
    "UpdateItem": _price_single_write,
    "DeleteItem": _price_single_write,
    "BatchWriteItem": _price_batch_write_item,
    "TransactWriteItems": _price_transact_write_items,
}
