"""scripts.measure.call_recorder over moto: every call of a boto3 client recorded, with item images, and priced."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from chalicelib.store import schema
from scripts.measure.call_recorder import CallRecorder
from scripts.measure.dynamodb_units import Consumption, TableShape, consumption, item_id, load_by_partition

TABLE = "units-test"
PRODUCT_PK = "TENANT#acme#PRODUCT#prod-001"
SHARD = "TENANT#acme#CATALOG#03"
PRODUCT_KEY = {"PK": {"S": PRODUCT_PK}, "SK": {"S": "PRODUCT"}}
PRODUCT = {
    **PRODUCT_KEY,
    "CatalogPK": {"S": SHARD},
    "CatalogSK": {"S": "PRODUCT#prod-001"},
    "product_id": {"S": "prod-001"},
    "name": {"S": "widget"},
    "price": {"N": "19.99"},
    "currency": {"S": "USD"},
    "stock": {"N": "10"},
}
ORDER = {"PK": {"S": "TENANT#acme#ORDER#01"}, "SK": {"S": "ORDER#ord_1"}, "total": {"N": "19.99"}}
PRODUCT_ID = item_id(TABLE, PRODUCT_KEY)
ORDER_ID = item_id(TABLE, {"PK": ORDER["PK"], "SK": ORDER["SK"]})


@pytest.fixture
def clients(aws: None) -> tuple[Any, Any]:
    """The client to record and the client that reads item images, over a fresh table in moto."""
    client = boto3.client("dynamodb", region_name="us-east-1")
    image_client = boto3.client("dynamodb", region_name="us-east-1")
    client.create_table(**schema.table_definition(TABLE))
    return client, image_client


@pytest.fixture
def shapes() -> dict[str, TableShape]:
    return {TABLE: TableShape.from_definition(schema.table_definition(TABLE))}


def decrement_stock(quantity: int) -> dict[str, Any]:
    return {
        "TableName": TABLE,
        "Key": PRODUCT_KEY,
        "UpdateExpression": "SET stock = stock - :q",
        "ConditionExpression": "stock >= :q",
        "ExpressionAttributeValues": {":q": {"N": str(quantity)}},
    }


def test_writes_reads_and_a_worker_thread_call_are_recorded_with_their_images_and_priced(clients, shapes):
    client, image_client = clients
    with CallRecorder(client, image_client, shapes) as recorder:
        client.put_item(TableName=TABLE, Item=PRODUCT)
        client.update_item(**decrement_stock(1))
        client.transact_write_items(
            TransactItems=[{"Update": decrement_stock(2)}, {"Put": {"TableName": TABLE, "Item": ORDER}}]
        )
        client.query(
            TableName=TABLE,
            IndexName="catalog",
            KeyConditionExpression="#pk = :pk",
            ExpressionAttributeNames={"#pk": "CatalogPK"},
            ExpressionAttributeValues={":pk": {"S": SHARD}},
        )
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(client.get_item, TableName=TABLE, Key=PRODUCT_KEY, ConsistentRead=True).result()

    put, update, transaction, query, get = recorder.calls
    assert [call.operation for call in recorder.calls] == [
        "PutItem",
        "UpdateItem",
        "TransactWriteItems",
        "Query",
        "GetItem",
    ]
    assert all(call.error_code is None for call in recorder.calls)
    # Images: read around each write, whole items, none for reads.
    assert put.before == {PRODUCT_ID: None} and put.after == {PRODUCT_ID: PRODUCT}
    assert update.before[PRODUCT_ID]["stock"] == {"N": "10"} and update.after[PRODUCT_ID]["stock"] == {"N": "9"}
    assert transaction.before == {PRODUCT_ID: update.after[PRODUCT_ID], ORDER_ID: None}
    assert transaction.after[PRODUCT_ID]["stock"] == {"N": "7"} and transaction.after[ORDER_ID] == ORDER
    assert query.before == {} and query.after == {}
    assert [item["product_id"] for item in query.response["Items"]] == [{"S": "prod-001"}]
    assert get.params == {"TableName": TABLE, "Key": PRODUCT_KEY, "ConsistentRead": True}
    assert get.response["Item"]["stock"] == {"N": "7"}

    assert consumption(put, shapes) == [
        Consumption(TABLE, None, PRODUCT_PK, 0.0, 1.0),
        Consumption(TABLE, "catalog", SHARD, 0.0, 1.0),
    ]
    # Stock is projected into the catalog index, so each stock change writes the index once.
    assert consumption(update, shapes) == consumption(put, shapes)
    assert load_by_partition(consumption(transaction, shapes)) == {
        (TABLE, None, PRODUCT_PK): (0.0, 2.0),
        (TABLE, None, "TENANT#acme#ORDER#01"): (0.0, 2.0),
        (TABLE, "catalog", SHARD): (0.0, 1.0),
    }
    assert consumption(query, shapes) == [Consumption(TABLE, "catalog", SHARD, 0.5, 0.0)]
    assert consumption(get, shapes) == [Consumption(TABLE, None, PRODUCT_PK, 1.0, 0.0)]


def test_a_refused_conditional_write_is_recorded_with_its_error_code(clients, shapes):
    client, image_client = clients
    client.put_item(TableName=TABLE, Item=PRODUCT)
    with CallRecorder(client, image_client, shapes) as recorder:
        with pytest.raises(ClientError):
            client.update_item(**decrement_stock(11))
    (call,) = recorder.calls
    assert call.error_code == "ConditionalCheckFailedException"
    assert call.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert call.before == call.after == {PRODUCT_ID: PRODUCT}
    assert consumption(call, shapes) == [Consumption(TABLE, None, PRODUCT_PK, 0.0, 1.0)]


def test_parallel_calls_from_worker_threads_are_each_recorded_once(clients, shapes):
    client, image_client = clients
    client.put_item(TableName=TABLE, Item=PRODUCT)
    with CallRecorder(client, image_client, shapes) as recorder:
        with ThreadPoolExecutor(max_workers=8) as pool:
            futures = [
                pool.submit(client.get_item, TableName=TABLE, Key={**PRODUCT_KEY, "PK": {"S": f"{PRODUCT_PK}{i}"}})
                for i in range(16)
            ]
            for future in futures:
                future.result()
    calls = recorder.calls
    assert len(calls) == 16
    partitions = sorted(part.partition for call in calls for part in consumption(call, shapes))
    assert partitions == sorted(f"{PRODUCT_PK}{i}" for i in range(16))


def test_only_calls_between_start_and_stop_are_recorded_and_the_image_reads_never(clients, shapes):
    client, image_client = clients
    recorder = CallRecorder(client, image_client, shapes)
    client.describe_table(TableName=TABLE)
    recorder.start()
    client.describe_table(TableName=TABLE)
    client.put_item(TableName=TABLE, Item=PRODUCT)
    recorder.stop()
    client.delete_item(TableName=TABLE, Key=PRODUCT_KEY)
    assert [call.operation for call in recorder.calls] == ["DescribeTable", "PutItem"]
    assert consumption(recorder.calls[0], shapes) == []
    recorder.clear()
    assert recorder.calls == []


def test_the_image_client_must_be_another_client(clients, shapes):
    client, _ = clients
    with pytest.raises(ValueError):
        CallRecorder(client, client, shapes)
