"""Round trips to DynamoDB per route, recorded on the wire: the call counts the capacity goals rest on."""

from __future__ import annotations

from typing import Iterator

import boto3
import pytest

from chalicelib.store import keys, schema
from chalicelib.store.tenant_access import tenant_dynamodb
from scripts.measure.call_recorder import CallRecorder
from scripts.measure.dynamodb_units import RecordedCall, TableShape, consumption
from tests.support.api import Api, Reply
from tests.support.tenants import ACME, TABLE_NAME

LINES = [{"product_id": "prod-001", "quantity": 1}, {"product_id": "prod-002", "quantity": 2}]


@pytest.fixture
def recorder(api: Api) -> Iterator[CallRecorder]:
    # In AWS the authorizer is a function of its own, and API Gateway caches its answer: its
    # registry reads are warmed up here so that only the route's own calls are counted.
    assert api.get("/catalog/prod-001", ACME).status == 200
    shapes = {TABLE_NAME: TableShape.from_definition(schema.table_definition(TABLE_NAME))}
    recording = CallRecorder(tenant_dynamodb("acme"), boto3.client("dynamodb", region_name="us-east-1"), shapes)
    with recording:
        yield recording


def calls_of(recorder: CallRecorder, make_request) -> list[RecordedCall]:
    return answer_and_calls(recorder, make_request)[1]


def answer_and_calls(recorder: CallRecorder, make_request) -> tuple[Reply, list[RecordedCall]]:
    """The reply to one request and the DynamoDB calls it made."""
    recorder.clear()
    reply = make_request()
    assert reply.status in (200, 201), reply.body
    return reply, recorder.calls


def operations(calls: list[RecordedCall]) -> list[str]:
    return [call.operation for call in calls]


def partitions(calls: list[RecordedCall]) -> set[tuple[str | None, str]]:
    shapes = {TABLE_NAME: TableShape.from_definition(schema.table_definition(TABLE_NAME))}
    return {(used.index, used.partition) for call in calls for used in consumption(call, shapes)}


def test_reading_one_product_or_one_order_is_one_get_item(api: Api, recorder: CallRecorder):
    assert operations(calls_of(recorder, lambda: api.get("/catalog/prod-003", ACME))) == ["GetItem"]
    order_id = api.post_order(LINES, ACME).json["order_id"]
    calls = calls_of(recorder, lambda: api.get(f"/orders/{order_id}", ACME))
    assert operations(calls) == ["GetItem"]
    assert partitions(calls) == {(None, keys.order_key("acme", order_id)["PK"])}


def test_a_catalog_page_is_one_round_of_queries_over_the_index_shards(api: Api, recorder: CallRecorder):
    calls = calls_of(recorder, lambda: api.get("/catalog?limit=3", ACME))
    assert operations(calls) == ["Query"] * keys.CATALOG_SHARDS
    assert partitions(calls) == {(keys.CATALOG_INDEX, partition) for partition in keys.catalog_partitions("acme")}


def test_an_orders_page_is_one_round_of_queries_over_the_order_shards(api: Api, recorder: CallRecorder):
    api.post_order(LINES, ACME)
    calls = calls_of(recorder, lambda: api.get("/orders", ACME))
    assert operations(calls) == ["Query"] * keys.ORDER_SHARDS
    assert partitions(calls) == {(None, partition) for partition in keys.order_partitions("acme")}


@pytest.mark.parametrize("idempotency_key", [None, "checkout-1"])
def test_placing_an_order_is_one_batch_read_and_one_transaction(api: Api, recorder: CallRecorder, idempotency_key):
    calls = calls_of(recorder, lambda: api.post_order(LINES, ACME, idempotency_key=idempotency_key))
    assert operations(calls) == ["BatchGetItem", "TransactWriteItems"]


def test_an_idempotent_replay_is_one_read(api: Api, recorder: CallRecorder):
    first = api.post_order(LINES, ACME, idempotency_key="replay-me")
    replay, calls = answer_and_calls(recorder, lambda: api.post_order(LINES, ACME, idempotency_key="replay-me"))
    assert operations(calls) == ["BatchGetItem"]
    assert replay.header("Idempotent-Replayed") == "true"
    assert replay.json["order_id"] == first.json["order_id"]


def test_every_partition_a_request_touches_is_the_tenants_own(api: Api, recorder: CallRecorder):
    recorder.clear()
    order_id = api.post_order(LINES, ACME, idempotency_key="k").json["order_id"]
    api.post_order(LINES, ACME, idempotency_key="k")
    for path in ("/catalog", "/catalog/prod-001", "/orders", f"/orders/{order_id}"):
        assert api.get(path, ACME).status == 200
    touched = partitions(recorder.calls)
    assert touched
    for _, partition in touched:
        assert partition.startswith(keys.tenant_prefix("acme")), partition


def test_stock_updates_write_the_catalog_index_once_and_no_other_partition_of_it(api: Api, recorder: CallRecorder):
    calls = calls_of(recorder, lambda: api.post_order(LINES, ACME))
    shapes = {TABLE_NAME: TableShape.from_definition(schema.table_definition(TABLE_NAME))}
    index_writes = {
        used.partition: used.write_units
        for call in calls
        for used in consumption(call, shapes)
        if used.index == keys.CATALOG_INDEX
    }
    expected = {keys.catalog_index_key("acme", line["product_id"])[keys.CATALOG_INDEX_PK] for line in LINES}
    assert set(index_writes) == expected
    assert sum(index_writes.values()) == len(LINES)
