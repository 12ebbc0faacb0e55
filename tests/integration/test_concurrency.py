"""Concurrent orders from many threads never oversell, and concurrent retries with one key make one order."""

from __future__ import annotations

import random
import threading
from collections import Counter
from typing import Any, Callable

import pytest
from botocore.client import BaseClient

from chalicelib import services
from chalicelib.errors import ApiError
from chalicelib.models import OrderLineRequest, OrderRequest
from chalicelib.store.catalog import CatalogRepository
from chalicelib.store.dynamodb import dynamodb_client
from chalicelib.store.orders import OrderRepository
from chalicelib.tenancy import TenantContext
from chalicelib.tenant_repositories import repositories_for
from tests.support.tenants import ACME, GLOBEX

# moto's in-process DynamoDB is not thread-safe: its TransactWriteItems checks and writes without a
# lock and rolls back by restoring a copy of the whole table, so concurrent calls can oversell or lose
# writes that real DynamoDB would keep apart. Here each DynamoDB call is therefore made atomic (one
# at a time, as DynamoDB serializes conflicting requests), while the application's own steps (read the
# catalog, price the order, write the transaction, retry) interleave freely between threads. A barrier
# makes every thread read the catalog before any of them writes, so the conditions in the transaction,
# not luck, are what prevents overselling. These run at the service layer: chalice.test.Client is not
# safe across threads (it swaps os.environ per request and the app keeps one current_request).

THREADS = 12


class AtomicDynamoDB:
    """Makes each DynamoDB call atomic, and holds every thread after its first catalog read."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, threads: int):
        self._lock = threading.Lock()
        self._barrier = threading.Barrier(threads, timeout=20)
        self._local = threading.local()
        original = BaseClient._make_api_call

        # Every DynamoDB client: each tenant's requests go through a client of its own (chalicelib.store.tenant_access).
        def call(client: BaseClient, operation_name: str, params: dict[str, Any]) -> Any:
            if client.meta.service_model.service_name != "dynamodb":
                return original(client, operation_name, params)
            with self._lock:
                result = original(client, operation_name, params)
            if operation_name == "BatchGetItem" and not getattr(self._local, "has_read", False):
                self._local.has_read = True
                self._barrier.wait()
            return result

        monkeypatch.setattr(BaseClient, "_make_api_call", call)


def run_threads(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run work(index) in count threads; each result is the return value or the ApiError raised."""
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        try:
            results[index] = work(index)
        except ApiError as error:
            results[index] = error

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    return results


def context(tenant) -> TenantContext:
    return TenantContext(tenant.tenant_id, tenant.tier, frozenset())


def order(*lines: tuple[str, int]) -> OrderRequest:
    return OrderRequest(tuple(OrderLineRequest(product_id, quantity) for product_id, quantity in lines))


def test_many_threads_ordering_one_product_never_oversell(table, monkeypatch):
    CatalogRepository("acme", dynamodb_client()).put(ACME.product(1, stock=20))
    AtomicDynamoDB(monkeypatch, THREADS)
    results = run_threads(
        THREADS, lambda _: services.place_order(context(ACME), repositories_for(context(ACME)), order(("prod-001", 3)))
    )
    placed = [result[0] for result in results if isinstance(result, tuple)]
    refused = Counter(result.code for result in results if isinstance(result, ApiError))
    stock = CatalogRepository("acme", dynamodb_client()).get("prod-001").stock
    assert stock >= 0
    assert 20 - stock == 3 * len(placed)
    assert set(refused) <= {"insufficient_stock", "catalog_changed"}, refused
    assert len(placed) + sum(refused.values()) == THREADS
    assert sorted(o.order_id for o in OrderRepository("acme", dynamodb_client()).list(100)[0]) == sorted(
        o.order_id for o in placed
    )
    if "catalog_changed" not in refused:
        assert (len(placed), stock) == (6, 2)


def test_random_concurrent_orders_over_several_products_and_tenants_match_the_stock_taken(table, monkeypatch):
    generator = random.Random(20240101)
    tenants = [ACME, GLOBEX]
    for tenant in tenants:
        for number in (1, 2, 3):
            CatalogRepository(tenant.tenant_id, dynamodb_client()).put(tenant.product(number, stock=15))
    requests = []
    for _ in range(THREADS):
        numbers = generator.sample([1, 2, 3], generator.randint(1, 3))
        requests.append(
            (generator.choice(tenants), order(*((f"prod-{n:03d}", generator.randint(1, 6)) for n in numbers)))
        )
    AtomicDynamoDB(monkeypatch, THREADS)
    results = run_threads(
        THREADS,
        lambda index: services.place_order(
            context(requests[index][0]), repositories_for(context(requests[index][0])), requests[index][1]
        ),
    )
    for tenant in tenants:
        taken: Counter[str] = Counter()
        for (who, request), result in zip(requests, results):
            if who is tenant and isinstance(result, tuple):
                for line in request.lines:
                    taken[line.product_id] += line.quantity
        stored_orders = OrderRepository(tenant.tenant_id, dynamodb_client()).list(100)[0]
        assert sum(len(o.lines) for o in stored_orders) == sum(
            len(request.lines)
            for (who, request), result in zip(requests, results)
            if who is tenant and isinstance(result, tuple)
        )
        for number in (1, 2, 3):
            product_id = f"prod-{number:03d}"
            stock = CatalogRepository(tenant.tenant_id, dynamodb_client()).get(product_id).stock
            assert stock >= 0
            assert 15 - stock == taken[product_id], (tenant.tenant_id, product_id)
    assert all(
        isinstance(result, tuple) or result.code in ("insufficient_stock", "catalog_changed") for result in results
    )


def test_concurrent_retries_with_one_idempotency_key_make_one_order(table, monkeypatch):
    AtomicDynamoDB(monkeypatch, THREADS)
    request = order(("prod-002", 2))
    results = run_threads(
        THREADS, lambda _: services.place_order(context(ACME), repositories_for(context(ACME)), request, "same-key")
    )
    assert all(isinstance(result, tuple) for result in results), results
    order_ids = {result[0].order_id for result in results}
    assert len(order_ids) == 1
    assert sorted(replayed for _, replayed in results) == [False] + [True] * (THREADS - 1)
    assert [o.order_id for o in OrderRepository("acme", dynamodb_client()).list(100)[0]] == list(order_ids)
    assert CatalogRepository("acme", dynamodb_client()).get("prod-002").stock == 8
