"""Unit tests of scripts.measure.dynamodb_units: hand-made calls whose capacity units are known keep the model honest."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.store import schema
from scripts.measure.dynamodb_units import (
    Consumption,
    RecordedCall,
    TableShape,
    consumption,
    item_id,
    item_size,
    load_by_partition,
    number_size,
    query_partition_value,
)

TABLE = "units"
# The project's layout, written out here so that these exact figures do not move with chalicelib.
DEFINITION = {
    "TableName": TABLE,
    "KeySchema": [{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
    "GlobalSecondaryIndexes": [
        {
            "IndexName": "catalog",
            "KeySchema": [
                {"AttributeName": "CatalogPK", "KeyType": "HASH"},
                {"AttributeName": "CatalogSK", "KeyType": "RANGE"},
            ],
            "Projection": {
                "ProjectionType": "INCLUDE",
                "NonKeyAttributes": ["product_id", "name", "description", "price", "currency", "stock"],
            },
        }
    ],
}
SHAPES = {TABLE: TableShape.from_definition(DEFINITION)}
SHARD_3 = "TENANT#acme#CATALOG#03"
SHARD_7 = "TENANT#acme#CATALOG#07"


def s(value: str) -> dict[str, str]:
    return {"S": value}


def n(value: str) -> dict[str, str]:
    return {"N": value}


def product(number: int, shard: str = SHARD_3, stock: str = "10", **extra: Any) -> dict[str, Any]:
    """A product item as the catalog stores it, on a catalog index shard."""
    return {
        "PK": s(f"TENANT#acme#PRODUCT#prod-{number:03d}"),
        "SK": s("PRODUCT"),
        "CatalogPK": s(shard),
        "CatalogSK": s(f"PRODUCT#prod-{number:03d}"),
        "product_id": s(f"prod-{number:03d}"),
        "name": s("widget"),
        "price": n("216.90"),
        "currency": s("USD"),
        "stock": n(stock),
        **extra,
    }


# PK 2+28, SK 2+7, CatalogPK 9+22, CatalogSK 9+16, product_id 10+8, name 4+6, price 5+3, currency 8+3, stock 5+2.
PRODUCT_SIZE = 149


def key_of(item: dict[str, Any]) -> dict[str, Any]:
    return {"PK": item["PK"], "SK": item["SK"]}


def ident(item: dict[str, Any]) -> Any:
    return item_id(TABLE, key_of(item))


def padded(size: int, pk: str = "p") -> dict[str, Any]:
    """An item of exactly size bytes: "PK" + pk, "SK" + "s", and "data" padded with x."""
    fixed = len("PK") + len(pk) + len("SK") + len("s") + len("data")
    return {"PK": s(pk), "SK": s("s"), "data": s("x" * (size - fixed))}


def load(*calls: RecordedCall) -> dict[tuple[str, str | None, str], tuple[float, float]]:
    return load_by_partition(part for call in calls for part in consumption(call, SHAPES))


def update(before: dict[str, Any], after: dict[str, Any], error_code: str | None = None) -> RecordedCall:
    """An UpdateItem of one item, with its images."""
    return RecordedCall(
        "UpdateItem",
        {"TableName": TABLE, "Key": key_of(before), "UpdateExpression": "SET #a = :v"},
        {},
        error_code,
        before={ident(before): before},
        after={ident(before): after},
    )


# --- item sizes -----------------------------------------------------------------------------


def test_a_string_counts_the_utf8_bytes_of_its_name_and_value():
    assert item_size({"a": s("abc")}) == 1 + 3
    # "€" is three bytes in UTF-8 and "é" two.
    assert item_size({"prix€": s("é")}) == 7 + 2


@pytest.mark.parametrize(
    ("number", "size"),
    [
        # Trailing zeros are trimmed: 216.90 is stored as 216.9, four significant digits.
        ("216.90", 3),
        ("216.95", 4),
        ("100", 2),
        ("-0.5", 2),
        ("0.001", 2),
        ("12345", 4),
        ("0", 1),
    ],
)
def test_a_number_is_one_byte_per_two_significant_digits_plus_one(number, size):
    assert number_size(number) == size
    assert item_size({"p": n(number)}) == 1 + size


def test_binary_boolean_and_null_values():
    assert item_size({"b": {"B": b"\x00\x01\x02"}}) == 1 + 3
    assert item_size({"t": {"BOOL": True}, "z": {"NULL": True}}) == (1 + 1) + (1 + 1)


def test_lists_and_maps_cost_three_bytes_and_one_byte_per_element():
    assert item_size({"e": {"M": {}}}) == 1 + 3
    assert item_size({"l": {"L": [s("ab"), {"BOOL": True}, {"NULL": True}]}}) == 1 + 3 + (1 + 2) + (1 + 1) + (1 + 1)
    # A map's keys count like attribute names; "ü" is two bytes.
    assert item_size({"m": {"M": {"kü": s("vv"), "n": n("7")}}}) == 1 + 3 + (1 + 3 + 2) + (1 + 1 + 2)


def test_sets_are_the_sum_of_their_elements():
    assert item_size({"ss": {"SS": ["a", "bb"]}}) == 2 + 1 + 2
    assert item_size({"ns": {"NS": ["1", "22"]}}) == 2 + 2 + 2
    assert item_size({"bs": {"BS": [b"\x00\x01", b"x"]}}) == 2 + 2 + 1


def test_the_items_made_here_have_the_sizes_the_figures_assume():
    assert item_size(product(1)) == PRODUCT_SIZE
    assert item_size(padded(4096)) == 4096
    assert item_size(padded(4097)) == 4097


# --- table shapes ---------------------------------------------------------------------------


def test_the_project_table_definition_gives_the_catalog_index_shape():
    shape = TableShape.from_definition(schema.table_definition("units-test"))
    assert shape.name == "units-test"
    assert shape.key_attributes == ("PK", "SK")
    (index,) = shape.indexes
    assert index.key_attributes == ("CatalogPK", "CatalogSK")
    assert index.projection == "INCLUDE"
    assert index.non_key_attributes == frozenset(schema.CATALOG_INDEX_ATTRIBUTES)


def test_a_table_without_an_index_is_charged_on_the_table_alone():
    shape = TableShape.from_definition(
        {"TableName": "plain", "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}]}
    )
    assert shape.indexes == () and shape.key_attributes == ("id",)
    item = {"id": n("42"), "CatalogPK": s(SHARD_3), "CatalogSK": s("x")}
    call = RecordedCall("PutItem", {"TableName": "plain", "Item": item}, {})
    assert consumption(call, {"plain": shape}) == [Consumption("plain", None, "42", 0.0, 1.0)]


# --- reads ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "consistent", "units"),
    [(4096, True, 1.0), (4097, True, 2.0), (4096, False, 0.5), (4097, False, 1.0)],
)
def test_a_get_item_is_charged_per_4_kb_and_half_when_eventually_consistent(size, consistent, units):
    item = padded(size)
    params = {"TableName": TABLE, "Key": key_of(item), "ConsistentRead": consistent}
    call = RecordedCall("GetItem", params, {"Item": item})
    assert consumption(call, SHAPES) == [Consumption(TABLE, None, "p", units, 0.0)]


@pytest.mark.parametrize(("consistent", "units"), [(True, 1.0), (False, 0.5)])
def test_reading_a_missing_item_still_costs_the_minimum(consistent, units):
    params = {"TableName": TABLE, "Key": {"PK": s("gone"), "SK": s("s")}, "ConsistentRead": consistent}
    assert consumption(RecordedCall("GetItem", params, {}), SHAPES) == [Consumption(TABLE, None, "gone", units, 0.0)]


def test_a_query_sums_the_items_returned_before_rounding_up_to_4_kb():
    items = [padded(1000, pk="q"), padded(1000, pk="q"), padded(1000, pk="q")]
    params = {
        "TableName": TABLE,
        "KeyConditionExpression": "PK = :pk",
        "ExpressionAttributeValues": {":pk": s("q")},
        "ConsistentRead": True,
    }
    # 3000 bytes are one 4 KB read, where three GetItems would be three.
    assert consumption(RecordedCall("Query", params, {"Items": items}), SHAPES) == [
        Consumption(TABLE, None, "q", 1.0, 0.0)
    ]
    five = RecordedCall("Query", {**params, "ConsistentRead": False}, {"Items": items + items[:2]})
    assert consumption(five, SHAPES) == [Consumption(TABLE, None, "q", 1.0, 0.0)]
    empty = RecordedCall("Query", {**params, "ConsistentRead": False}, {"Items": []})
    assert consumption(empty, SHAPES) == [Consumption(TABLE, None, "q", 0.5, 0.0)]


def test_a_query_on_the_index_is_charged_to_the_index_partition_and_always_eventually_consistent():
    entries = [{"CatalogPK": s(SHARD_7), "CatalogSK": s(f"PRODUCT#{i}"), "blob": s("x" * 2000)} for i in range(3)]
    params = {
        "TableName": TABLE,
        "IndexName": "catalog",
        "KeyConditionExpression": "#pk = :pk AND #sk > :after",
        "ExpressionAttributeNames": {"#pk": "CatalogPK", "#sk": "CatalogSK"},
        "ExpressionAttributeValues": {":pk": s(SHARD_7), ":after": s("PRODUCT#prod-001")},
        "ConsistentRead": True,
    }
    # 3 x 2,053 bytes = 6,159 bytes: two 4 KB blocks, at half price whatever ConsistentRead says.
    assert item_size(entries[0]) == (9 + 22) + (9 + 9) + (4 + 2000)
    assert consumption(RecordedCall("Query", params, {"Items": entries}), SHAPES) == [
        Consumption(TABLE, "catalog", SHARD_7, 1.0, 0.0)
    ]


@pytest.mark.parametrize(
    ("condition", "names"),
    [
        ("PK = :pk", {}),
        ("#pk = :pk AND #sk > :after", {"#pk": "PK", "#sk": "SK"}),
        ("(#pk = :pk) AND begins_with(#sk, :after)", {"#pk": "PK", "#sk": "SK"}),
        (":pk = PK and SK BETWEEN :after AND :after", {}),
        ("SK >= :after AND PK=:pk", {}),
    ],
)
def test_the_queried_partition_is_the_value_bound_to_the_partition_key(condition, names):
    params = {
        "KeyConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": {":pk": s("part"), ":after": s("a")},
    }
    assert query_partition_value(params, "PK") == s("part")


def test_legacy_key_conditions_and_a_missing_partition_key_condition():
    legacy = {"KeyConditions": {"PK": {"AttributeValueList": [s("part")], "ComparisonOperator": "EQ"}}}
    assert query_partition_value(legacy, "PK") == s("part")
    with pytest.raises(ValueError):
        query_partition_value({"KeyConditionExpression": "SK = :v", "ExpressionAttributeValues": {":v": s("x")}}, "PK")


def test_a_batch_get_charges_each_key_read_and_nothing_for_unprocessed_keys():
    found = padded(5000, pk="found")
    missing = {"PK": s("missing"), "SK": s("s")}
    later = {"PK": s("later"), "SK": s("s")}
    params = {"RequestItems": {TABLE: {"Keys": [key_of(found), missing, later], "ConsistentRead": True}}}
    response = {"Responses": {TABLE: [found]}, "UnprocessedKeys": {TABLE: {"Keys": [later], "ConsistentRead": True}}}
    assert consumption(RecordedCall("BatchGetItem", params, response), SHAPES) == [
        Consumption(TABLE, None, "found", 2.0, 0.0),
        Consumption(TABLE, None, "missing", 1.0, 0.0),
    ]


def test_a_transactional_read_costs_two_reads_per_4_kb_of_each_item():
    big = padded(4097, pk="big")
    params = {
        "TransactItems": [
            {"Get": {"TableName": TABLE, "Key": key_of(big)}},
            {"Get": {"TableName": TABLE, "Key": {"PK": s("none"), "SK": s("s")}}},
        ]
    }
    response = {"Responses": [{"Item": big}, {}]}
    assert consumption(RecordedCall("TransactGetItems", params, response), SHAPES) == [
        Consumption(TABLE, None, "big", 4.0, 0.0),
        Consumption(TABLE, None, "none", 2.0, 0.0),
    ]


# --- writes ---------------------------------------------------------------------------------


def test_a_put_is_charged_per_1_kb_of_the_larger_of_the_old_and_new_item():
    old = padded(2500, pk="w")
    new = padded(700, pk="w")
    call = RecordedCall("PutItem", {"TableName": TABLE, "Item": new}, {}, None, {ident(old): old}, {ident(new): new})
    assert consumption(call, SHAPES) == [Consumption(TABLE, None, "w", 0.0, 3.0)]


def test_a_delete_is_charged_on_the_deleted_item_and_deletes_its_index_entry():
    old = product(1, description=s("x" * 1500))
    call = RecordedCall(
        "DeleteItem", {"TableName": TABLE, "Key": key_of(old)}, {}, None, {ident(old): old}, {ident(old): None}
    )
    # 149 + 11 + 1500 = 1,660 bytes; the index projects the description too, so its entry is as large.
    assert item_size(old) == PRODUCT_SIZE + len("description") + 1500
    assert consumption(call, SHAPES) == [
        Consumption(TABLE, None, "TENANT#acme#PRODUCT#prod-001", 0.0, 2.0),
        Consumption(TABLE, "catalog", SHARD_3, 0.0, 2.0),
    ]


def test_a_stock_update_that_changes_a_projected_attribute_writes_the_index_once():
    before = product(1, stock="10")
    after = product(1, stock="9")
    assert load(update(before, after)) == {
        (TABLE, None, "TENANT#acme#PRODUCT#prod-001"): (0.0, 1.0),
        (TABLE, "catalog", SHARD_3): (0.0, 1.0),
    }


def test_an_update_of_an_attribute_the_index_does_not_project_does_not_write_it():
    before = product(1, reserved=n("0"))
    after = product(1, reserved=n("3"))
    assert load(update(before, after)) == {(TABLE, None, "TENANT#acme#PRODUCT#prod-001"): (0.0, 1.0)}


def test_an_update_that_moves_the_index_key_deletes_and_puts_on_two_index_partitions():
    before = product(1, shard=SHARD_3)
    after = product(1, shard=SHARD_7)
    assert load(update(before, after)) == {
        (TABLE, None, "TENANT#acme#PRODUCT#prod-001"): (0.0, 1.0),
        (TABLE, "catalog", SHARD_3): (0.0, 1.0),
        (TABLE, "catalog", SHARD_7): (0.0, 1.0),
    }


def test_the_index_is_written_per_1_kb_of_its_own_entry_not_of_the_item():
    # 2.5 KB the index does not project: 2,654 bytes are three units on the table, one on the index.
    before = product(1, stock="10", notes=s("x" * 2500))
    after = product(1, stock="9", notes=s("x" * 2500))
    assert load(update(before, after)) == {
        (TABLE, None, "TENANT#acme#PRODUCT#prod-001"): (0.0, 3.0),
        (TABLE, "catalog", SHARD_3): (0.0, 1.0),
    }


def test_an_item_without_the_index_keys_has_no_index_entry():
    before = {"PK": s("TENANT#acme#ORDER#01"), "SK": s("ORDER#1"), "status": s("new")}
    after = {**before, "status": s("paid")}
    assert load(update(before, after)) == {(TABLE, None, "TENANT#acme#ORDER#01"): (0.0, 1.0)}
    # Giving it the index keys puts an entry into the index: one write.
    indexed = {**after, "CatalogPK": s(SHARD_7), "CatalogSK": s("x")}
    assert load(update(before, indexed)) == {
        (TABLE, None, "TENANT#acme#ORDER#01"): (0.0, 1.0),
        (TABLE, "catalog", SHARD_7): (0.0, 1.0),
    }


def test_a_failed_conditional_write_is_charged_on_the_item_found_and_writes_no_index():
    existing = product(1, notes=s("x" * 1500))
    failed = update(existing, existing, error_code="ConditionalCheckFailedException")
    assert load(failed) == {(TABLE, None, "TENANT#acme#PRODUCT#prod-001"): (0.0, 2.0)}
    new = product(2)
    put = RecordedCall(
        "PutItem", {"TableName": TABLE, "Item": new}, {}, "ConditionalCheckFailedException", {ident(new): None}
    )
    assert load(put) == {(TABLE, None, "TENANT#acme#PRODUCT#prod-002"): (0.0, 1.0)}


def test_a_batch_write_charges_each_request_and_nothing_for_unprocessed_items():
    written = padded(1500, pk="a")
    skipped = padded(100, pk="b")
    gone = padded(300, pk="c")
    params = {
        "RequestItems": {
            TABLE: [
                {"PutRequest": {"Item": written}},
                {"PutRequest": {"Item": skipped}},
                {"DeleteRequest": {"Key": key_of(gone)}},
            ]
        }
    }
    response = {"UnprocessedItems": {TABLE: [{"PutRequest": {"Item": skipped}}]}}
    before = {ident(written): None, ident(skipped): None, ident(gone): gone}
    after = {ident(written): written, ident(skipped): None, ident(gone): None}
    assert load(RecordedCall("BatchWriteItem", params, response, None, before, after)) == {
        (TABLE, None, "a"): (0.0, 2.0),
        (TABLE, None, "c"): (0.0, 1.0),
    }


def order_transaction(error_code: str | None = None) -> RecordedCall:
    """An order: three stock updates and two puts (the order and its idempotency record)."""
    products = [product(1, SHARD_3), product(2, SHARD_3), product(3, SHARD_7)]
    sold = [{**item, "stock": n("9")} for item in products]
    # (2 + 20) + (2 + 11) + (4 + 1400) = 1,439 bytes, two 1 KB blocks.
    order = {"PK": s("TENANT#acme#ORDER#01"), "SK": s("ORDER#ord_1"), "body": s("x" * 1400)}
    record = {"PK": s("TENANT#acme#IDEMPOTENCY#k"), "SK": s("IDEMPOTENCY"), "order_id": s("ord_1")}
    actions = [
        {"Update": {"TableName": TABLE, "Key": key_of(item), "UpdateExpression": "SET stock = stock - :q"}}
        for item in products
    ] + [{"Put": {"TableName": TABLE, "Item": order}}, {"Put": {"TableName": TABLE, "Item": record}}]
    before = {ident(item): item for item in products} | {ident(order): None, ident(record): None}
    if error_code:
        after = before
    else:
        after = {ident(item): item for item in sold} | {ident(order): order, ident(record): record}
    return RecordedCall("TransactWriteItems", {"TransactItems": actions}, {}, error_code, before, after)


def test_a_transaction_doubles_every_table_write_but_not_the_index_writes():
    assert item_size({"PK": s("TENANT#acme#ORDER#01"), "SK": s("ORDER#ord_1"), "body": s("x" * 1400)}) == 1439
    assert load(order_transaction()) == {
        (TABLE, None, "TENANT#acme#PRODUCT#prod-001"): (0.0, 2.0),
        (TABLE, None, "TENANT#acme#PRODUCT#prod-002"): (0.0, 2.0),
        (TABLE, None, "TENANT#acme#PRODUCT#prod-003"): (0.0, 2.0),
        (TABLE, None, "TENANT#acme#ORDER#01"): (0.0, 4.0),
        (TABLE, None, "TENANT#acme#IDEMPOTENCY#k"): (0.0, 2.0),
        (TABLE, "catalog", SHARD_3): (0.0, 2.0),
        (TABLE, "catalog", SHARD_7): (0.0, 1.0),
    }


def test_a_cancelled_transaction_is_charged_on_the_table_only_at_the_items_sizes_before():
    # The order did not exist, so its put is charged the minimum, not its 1,439 bytes.
    assert load(order_transaction("TransactionCanceledException")) == {
        (TABLE, None, "TENANT#acme#PRODUCT#prod-001"): (0.0, 2.0),
        (TABLE, None, "TENANT#acme#PRODUCT#prod-002"): (0.0, 2.0),
        (TABLE, None, "TENANT#acme#PRODUCT#prod-003"): (0.0, 2.0),
        (TABLE, None, "TENANT#acme#ORDER#01"): (0.0, 2.0),
        (TABLE, None, "TENANT#acme#IDEMPOTENCY#k"): (0.0, 2.0),
    }


def test_a_condition_check_is_charged_two_units_per_1_kb_of_the_item_checked():
    checked = padded(1100, pk="tenant")
    params = {"TransactItems": [{"ConditionCheck": {"TableName": TABLE, "Key": key_of(checked)}}]}
    call = RecordedCall("TransactWriteItems", params, {}, None, {ident(checked): checked}, {ident(checked): checked})
    assert consumption(call, SHAPES) == [Consumption(TABLE, None, "tenant", 0.0, 4.0)]


# --- calls the model does not price ---------------------------------------------------------


def test_operations_it_does_not_price_consume_nothing():
    assert consumption(RecordedCall("DescribeTable", {"TableName": TABLE}, {"Table": {}}), SHAPES) == []
    assert consumption(RecordedCall("CreateTable", DEFINITION, {}), SHAPES) == []


def test_a_call_on_a_table_without_a_shape_is_refused_rather_than_dropped():
    call = RecordedCall("GetItem", {"TableName": "other", "Key": {"PK": s("p"), "SK": s("s")}}, {})
    with pytest.raises(ValueError, match="other"):
        consumption(call, SHAPES)


def test_load_by_partition_sums_the_units_of_many_calls():
    read = RecordedCall("GetItem", {"TableName": TABLE, "Key": {"PK": s("p"), "SK": s("s")}}, {})
    write = RecordedCall("PutItem", {"TableName": TABLE, "Item": padded(10)}, {})
    assert load(read, read, write) == {(TABLE, None, "p"): (1.0, 1.0)}
