"""The DynamoDB client every repository uses: bounded timeouts and retries, item conversion, errors as 503s, sharded lists."""

from __future__ import annotations

import contextlib
import functools
import heapq
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, Callable, Iterator, Sequence

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import deadline
from chalicelib.config import get_settings
from chalicelib.errors import DeadlineExceeded, ServiceUnavailable
from chalicelib.store import keys
from chalicelib.telemetry.tracing import carry_trace

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
# A sharded list queries every shard at once: one connection and one worker per shard.
PARALLEL_QUERIES = max(keys.CATALOG_SHARDS, keys.ORDER_SHARDS)
# The longest wait for one answer; within a request the deadline shortens it (chalicelib.deadline).
READ_TIMEOUT_SECONDS = 5.0
# Attempts per call, the first included (botocore's "max_attempts" would count retries only: one more).
MAX_ATTEMPTS = 3
# boto3's default session is not safe to use from several threads at once, and chalice local
# serves each request on its own thread: clients are created one at a time.
CLIENT_CREATION_LOCK = threading.Lock()


def bounded_config(**config: Any) -> Config:
    """Client settings whose calls, within a request, end by the request's deadline.

    Three attempts of up to 1 s to connect and 5 s to read (and back-off pauses), or botocore's
    default 60 s read timeout, would otherwise outlast the function's timeout.
    """
    return Config(
        connect_timeout=deadline.CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
        **config,
    )


# A sharded list runs one Query per shard at once, each on its own connection.
DYNAMODB_CONFIG = {"max_pool_connections": PARALLEL_QUERIES}


def bounded_client(service_name: str, **config: Any) -> Any:
    """A new boto3 client of service_name, with the process's own credentials, bounded by the request's deadline."""
    with CLIENT_CREATION_LOCK:
        client = boto3.client(service_name, region_name=get_settings().region, config=bounded_config(**config))
    return deadline.bounded_by_deadline(client)


@functools.lru_cache(maxsize=1)
def dynamodb_client() -> Any:
    """The process's own DynamoDB client, for the registry and the operator's scripts; never tenant data in the API.

    It honours AWS_ENDPOINT_URL. The API reads and writes a tenant's items with that tenant's
    credentials only (chalicelib.store.tenant_access).
    """
    return bounded_client("dynamodb", **DYNAMODB_CONFIG)


@functools.lru_cache(maxsize=1)
def _query_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=PARALLEL_QUERIES, thread_name_prefix="dynamodb-query")


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
    """Turn DynamoDB throttling, outages and a spent time budget into ServiceUnavailable; let other faults surface."""
    try:
        yield
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in RETRYABLE_CODES:
            raise ServiceUnavailable() from error
        raise
    except BotoCoreError as error:
        if deadline.spent():
            raise DeadlineExceeded() from error
        raise ServiceUnavailable() from error


def _read_partition(dynamodb: Any, request: dict[str, Any], wanted: int) -> list[dict[str, Any]]:
    # DynamoDB ends a response at 1 MB even short of Limit: read on, or the list would end early.
    items: list[dict[str, Any]] = []
    with dynamodb_errors():
        while True:
            response = dynamodb.query(**request)
            items.extend(response["Items"])
            if len(items) >= wanted or "LastEvaluatedKey" not in response:
                return items
            request = {**request, "ExclusiveStartKey": response["LastEvaluatedKey"], "Limit": wanted - len(items)}


def _run_in_parallel(calls: list[Callable[[], list[dict[str, Any]]]]) -> list[list[dict[str, Any]]]:
    if len(calls) == 1:
        return [calls[0]()]
    futures = [_query_pool().submit(deadline.in_current_context(carry_trace(call))) for call in calls]
    # Every Query ends before the request does, even when one fails: none may outlive its span.
    wait(futures)
    return [future.result() for future in futures]


def query_sharded_list(
    dynamodb: Any,
    partitions: Sequence[str],
    *,
    limit: int,
    after_sort_key: str | None,
    newest_first: bool,
    index: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of a list spread over several partitions: one round of parallel Queries, merged.

    Every partition sorts by the same sort key, so one sort key is enough to resume all of them.
    Each is asked for one item more than the page, which tells whether another page exists.
    """
    pk, sk = (keys.CATALOG_INDEX_PK, keys.CATALOG_INDEX_SK) if index else ("PK", "SK")
    condition = "#pk = :pk"
    names = {"#pk": pk}
    if after_sort_key is not None:
        condition += " AND #sk < :after" if newest_first else " AND #sk > :after"
        names["#sk"] = sk

    def query(partition: str) -> Callable[[], list[dict[str, Any]]]:
        values = {":pk": {"S": partition}}
        if after_sort_key is not None:
            values[":after"] = {"S": after_sort_key}
        request: dict[str, Any] = {
            "TableName": table_name(),
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "Limit": limit + 1,
            "ScanIndexForward": not newest_first,
        }
        if index:
            request["IndexName"] = index
        return lambda: _read_partition(dynamodb, request, limit + 1)

    pages = _run_in_parallel([query(partition) for partition in partitions])
    merged = list(heapq.merge(*pages, key=lambda item: item[sk]["S"], reverse=newest_first))
    if len(merged) > limit:
        page = merged[:limit]
        return page, page[-1][sk]["S"]
    return merged, None
