"""Unit tests of the use cases with in-memory repositories: pricing, retries, idempotency, lists and reads."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from chalicelib import deadline, services, tenant_repositories
from chalicelib.errors import (
    CatalogChanged,
    DeadlineExceeded,
    IdempotencyKeyReused,
    InsufficientStock,
    InvalidPaginationToken,
    OrderNotFound,
    OrderOutcomeUnknown,
    ProductNotFound,
    ServiceUnavailable,
    TenantAccessUnavailable,
    UnknownProduct,
    ValidationFailed,
)
from chalicelib.models import Order, OrderLine, OrderLineRequest, OrderRequest, Product
from chalicelib.store.orders import OrderConflict
from chalicelib.tenancy import TenantContext
from tests.fakes import FakeRepositories, fake_repositories

ACME = TenantContext("acme", "standard", frozenset())
GLOBEX = TenantContext("globex", "basic", frozenset())
WIDGET = Product("prod-001", "Widget", Decimal("20.00"), "USD", 10)
GADGET = Product("prod-002", "Gadget", Decimal("5.50"), "USD", 3)
EURO_ITEM = Product("prod-003", "Euro item", Decimal("7.00"), "EUR", 5)


def order(*lines: tuple[str, int]) -> OrderRequest:
    return OrderRequest(tuple(OrderLineRequest(product_id, quantity) for product_id, quantity in lines))


def digest(idempotency_key: str) -> str:
    return hashlib.sha256(idempotency_key.encode()).hexdigest()


def stock(repositories: FakeRepositories, product_id: str) -> int:
    return repositories.catalog.products[product_id].stock


def busy() -> None:
    """What OrderRepository.place raises when another transaction held a product (TransactionConflict)."""
    raise OrderConflict(stock_or_price=True, idempotency=False, contended=True)


@pytest.fixture
def acme() -> FakeRepositories:
    return fake_repositories("acme", [WIDGET, GADGET, EURO_ITEM])


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Decimal]]:
    """The (tier, total) of every order the services count as placed."""
    figures: list[tuple[str, Decimal]] = []
    monkeypatch.setattr(services, "order_placed", lambda tier, total: figures.append((tier, total)))
    return figures


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses the services take between attempts, recorded instead of slept."""
    taken: list[float] = []
    monkeypatch.setattr(services.time, "sleep", taken.append)
    return taken


# --- placing an order ---------------------------------------------------------------------------


def test_an_order_is_priced_from_the_catalog_takes_its_stock_and_is_stored(acme, counted):
    placed, replayed = services.place_order(ACME, acme, order(("prod-001", 2), ("prod-002", 1)))

    assert not replayed
    assert placed.lines == (
        OrderLine("prod-001", "Widget", 2, Decimal("20.00")),
        OrderLine("prod-002", "Gadget", 1, Decimal("5.50")),
    )
    assert (placed.currency, placed.total, placed.status) == ("USD", Decimal("45.50"), "placed")
    assert acme.orders.orders == {placed.order_id: placed}
    assert (stock(acme, "prod-001"), stock(acme, "prod-002")) == (8, 2)
    assert acme.orders.records == {}
    assert counted == [("standard", Decimal("45.50"))]


def test_an_order_with_a_key_binds_the_key_to_the_order_and_the_requests_fingerprint(acme):
    request = order(("prod-001", 1))
    placed, _ = services.place_order(ACME, acme, request, "key-1")
    record = acme.orders.records[digest("key-1")]
    assert (record.order, record.fingerprint) == (placed, request.fingerprint())


@pytest.mark.parametrize(
    ("request_", "error", "message"),
    [
        (order(("prod-001", 1), ("prod-404", 1), ("prod-405", 2)), UnknownProduct, "prod-404, prod-405"),
        (order(("prod-001", 1), ("prod-003", 1)), ValidationFailed, "one currency"),
        (order(("prod-001", 1), ("prod-002", 4)), InsufficientStock, "prod-002"),
    ],
)
def test_an_order_the_catalog_cannot_fill_is_refused_before_anything_is_written(
    acme, counted, request_, error, message
):
    with pytest.raises(error) as refused:
        services.place_order(ACME, acme, request_, "key-1")
    assert message in refused.value.message
    assert acme.orders.place_calls == 0
    assert (acme.orders.orders, acme.orders.records, counted) == ({}, {}, [])
    assert stock(acme, "prod-001") == 10


# --- Idempotency-Key ----------------------------------------------------------------------------


def test_a_replay_answers_with_the_first_order_and_places_nothing(acme, counted):
    first, _ = services.place_order(ACME, acme, order(("prod-001", 2), ("prod-002", 1)), "key-1")
    # The same lines in another order mean the same request.
    again, replayed = services.place_order(ACME, acme, order(("prod-002", 1), ("prod-001", 2)), "key-1")

    assert (again, replayed) == (first, True)
    assert acme.orders.place_calls == 1
    assert list(acme.orders.orders) == [first.order_id]
    assert (stock(acme, "prod-001"), stock(acme, "prod-002")) == (8, 2)
    assert len(counted) == 1, "a replay is not another order"


def test_a_replay_answers_as_first_time_even_once_the_catalog_has_changed(acme):
    first, _ = services.place_order(ACME, acme, order(("prod-001", 10)), "key-1")
    acme.catalog.put(replace(WIDGET, price=Decimal("99.00"), stock=0))
    assert services.place_order(ACME, acme, order(("prod-001", 10)), "key-1") == (first, True)


def test_the_same_key_with_another_body_is_refused_and_places_nothing(acme):
    services.place_order(ACME, acme, order(("prod-001", 1)), "key-1")
    with pytest.raises(IdempotencyKeyReused):
        services.place_order(ACME, acme, order(("prod-001", 2)), "key-1")
    assert acme.orders.place_calls == 1
    assert stock(acme, "prod-001") == 9


def test_without_a_key_the_same_body_places_a_new_order_each_time(acme):
    first, _ = services.place_order(ACME, acme, order(("prod-001", 1)))
    second, replayed = services.place_order(ACME, acme, order(("prod-001", 1)))
    assert not replayed and second.order_id != first.order_id
    assert stock(acme, "prod-001") == 8


def test_a_concurrent_request_with_the_same_key_wins_and_ours_answers_as_it_did(acme, counted, pauses):
    request = order(("prod-001", 2))
    # Between our read and our write, another request with the same key and body places its order.
    acme.orders.interfere(lambda: services.place_order(ACME, acme, request, "key-1"))

    answer, replayed = services.place_order(ACME, acme, request, "key-1")

    winner = acme.orders.records[digest("key-1")].order
    assert (answer, replayed) == (winner, True)
    assert list(acme.orders.orders) == [winner.order_id]
    assert stock(acme, "prod-001") == 8
    assert len(counted) == 1
    assert pauses == [], "the winner's answer is ours at once"


def test_a_concurrent_request_with_the_same_key_and_another_body_makes_ours_refused(acme):
    acme.orders.interfere(lambda: services.place_order(ACME, acme, order(("prod-002", 1)), "key-1"))
    with pytest.raises(IdempotencyKeyReused):
        services.place_order(ACME, acme, order(("prod-001", 2)), "key-1")
    assert stock(acme, "prod-001") == 10
    assert stock(acme, "prod-002") == 2


# --- a catalog that changes under the order -------------------------------------------------------


def test_a_price_changed_before_the_write_reprices_the_order_at_the_new_price(acme, pauses):
    acme.orders.interfere(lambda: acme.catalog.put(replace(WIDGET, price=Decimal("25.00"))))

    placed, replayed = services.place_order(ACME, acme, order(("prod-001", 2)), "key-1")

    assert not replayed
    assert placed.lines[0].unit_price == Decimal("25.00") and placed.total == Decimal("50.00")
    assert acme.orders.place_calls == 2
    assert list(acme.orders.orders) == [placed.order_id]
    assert acme.orders.records[digest("key-1")].order == placed
    assert stock(acme, "prod-001") == 8
    assert len(pauses) == 1


def test_stock_taken_before_the_write_ends_in_insufficient_stock_once_read_again(acme):
    acme.orders.interfere(lambda: acme.catalog.put(replace(WIDGET, stock=1)))
    with pytest.raises(InsufficientStock):
        services.place_order(ACME, acme, order(("prod-001", 2)))
    assert acme.orders.place_calls == 1
    assert (acme.orders.orders, stock(acme, "prod-001")) == ({}, 1)


def test_a_product_removed_before_the_write_is_an_unknown_product_once_read_again(acme):
    acme.orders.interfere(lambda: acme.catalog.products.pop("prod-001"))
    with pytest.raises(UnknownProduct):
        services.place_order(ACME, acme, order(("prod-001", 2)))
    assert acme.orders.orders == {}


def test_a_catalog_that_keeps_changing_ends_in_catalog_changed_with_nothing_written(acme, counted, pauses):
    prices = iter(["30.00", "31.00", "32.00"])
    acme.orders.interfere(
        *[lambda: acme.catalog.put(replace(WIDGET, price=Decimal(next(prices))))] * services.MAX_PLACE_ATTEMPTS
    )
    with pytest.raises(CatalogChanged):
        services.place_order(ACME, acme, order(("prod-001", 1)), "key-1")
    assert acme.orders.place_calls == services.MAX_PLACE_ATTEMPTS
    assert (acme.orders.orders, acme.orders.records, counted) == ({}, {}, [])
    assert stock(acme, "prod-001") == 10
    # A pause between attempts, each drawn from a window that doubles; none after the last.
    assert len(pauses) == services.MAX_PLACE_ATTEMPTS - 1
    for attempt, pause in enumerate(pauses):
        assert 0 <= pause <= services.RETRY_PAUSE_SECONDS * 2**attempt


# --- busy products, DynamoDB faults and the deadline ------------------------------------------------


def test_a_product_busy_once_is_placed_on_the_next_attempt(acme, pauses):
    acme.orders.interfere(busy)
    placed, replayed = services.place_order(ACME, acme, order(("prod-001", 1)))
    assert not replayed and acme.orders.orders == {placed.order_id: placed}
    assert acme.orders.place_calls == 2 and len(pauses) == 1


def test_a_product_busy_on_every_attempt_is_a_retryable_503_with_nothing_written(acme, counted):
    acme.orders.interfere(*[busy] * services.MAX_PLACE_ATTEMPTS)
    with pytest.raises(ServiceUnavailable) as refused:
        services.place_order(ACME, acme, order(("prod-001", 1)))
    assert type(refused.value) is ServiceUnavailable
    assert refused.value.headers["Retry-After"] == "1"
    assert "busy" in refused.value.message
    assert acme.orders.place_calls == services.MAX_PLACE_ATTEMPTS
    assert (acme.orders.orders, counted, stock(acme, "prod-001")) == ({}, [], 10)


def test_the_last_attempts_conflict_says_whether_the_product_was_busy_or_changed(acme):
    def change_price() -> None:
        acme.catalog.put(replace(WIDGET, price=Decimal("21.00")))

    acme.orders.interfere(change_price, busy, busy)
    with pytest.raises(ServiceUnavailable):
        services.place_order(ACME, acme, order(("prod-001", 1)))

    busy_then_changed = fake_repositories("acme", [WIDGET])
    busy_then_changed.orders.interfere(
        busy, busy, lambda: busy_then_changed.catalog.put(replace(WIDGET, price=Decimal("22.00")))
    )
    with pytest.raises(CatalogChanged):
        services.place_order(ACME, busy_then_changed, order(("prod-001", 1)))


@pytest.mark.parametrize("fault", [OrderOutcomeUnknown, ServiceUnavailable])
def test_a_write_whose_outcome_is_unknown_or_that_dynamodb_refused_is_not_retried_here(acme, counted, fault):
    # The SDK has retried already; the client's retry with its Idempotency-Key settles the outcome.
    def fail() -> None:
        raise fault()

    acme.orders.interfere(fail)
    with pytest.raises(fault):
        services.place_order(ACME, acme, order(("prod-001", 1)), "key-1")
    assert acme.orders.place_calls == 1
    assert counted == []


def test_no_retry_pause_is_taken_that_would_outlast_the_request(acme):
    acme.orders.interfere(busy)
    nearly_spent = SimpleNamespace(get_remaining_time_in_millis=lambda: 600.0)
    with deadline.answering_within(nearly_spent), pytest.raises(DeadlineExceeded):
        services.place_order(ACME, acme, order(("prod-001", 1)))
    assert acme.orders.place_calls == 1


# --- lists and reads ---------------------------------------------------------------------------


def test_the_catalog_is_listed_in_product_id_order_page_by_page():
    products = [replace(WIDGET, product_id=f"prod-{number:03d}") for number in (5, 1, 4, 2, 3)]
    repositories = fake_repositories("acme", products)
    seen: list[str] = []
    page = services.list_products(ACME, repositories, 2, None)
    pages = 1
    while page.next_token is not None:
        seen.extend(item["product_id"] for item in page.items)
        page = services.list_products(ACME, repositories, 2, page.next_token)
        pages += 1
    seen.extend(item["product_id"] for item in page.items)
    assert seen == ["prod-001", "prod-002", "prod-003", "prod-004", "prod-005"]
    assert pages == 3
    assert page.items[-1] == replace(WIDGET, product_id="prod-005").to_json()


def test_orders_are_listed_newest_first_page_by_page(acme):
    placed = [services.place_order(ACME, acme, order(("prod-001", 1)))[0] for _ in range(3)]
    first = services.list_orders(ACME, acme, 2, None)
    assert first.items == [placed[2].to_json(), placed[1].to_json()]
    rest = services.list_orders(ACME, acme, 2, first.next_token)
    assert (rest.items, rest.next_token) == ([placed[0].to_json()], None)


def test_a_page_token_resumes_only_the_list_and_tenant_it_was_issued_for(acme):
    for _ in range(2):
        services.place_order(ACME, acme, order(("prod-001", 1)))
    orders_token = services.list_orders(ACME, acme, 1, None).next_token
    catalog_token = services.list_products(ACME, acme, 1, None).next_token
    assert orders_token is not None and catalog_token is not None
    with pytest.raises(InvalidPaginationToken):
        services.list_orders(GLOBEX, fake_repositories("globex"), 1, orders_token)
    with pytest.raises(InvalidPaginationToken):
        services.list_products(ACME, acme, 1, orders_token)
    with pytest.raises(InvalidPaginationToken):
        services.list_orders(ACME, acme, 1, catalog_token)


def test_a_product_and_an_order_are_read_by_id_or_not_found(acme):
    placed, _ = services.place_order(ACME, acme, order(("prod-002", 1)))
    assert services.get_product(acme, "prod-002") == replace(GADGET, stock=2)
    assert services.get_order(acme, placed.order_id) == placed
    with pytest.raises(ProductNotFound):
        services.get_product(acme, "prod-404")
    with pytest.raises(OrderNotFound):
        services.get_order(fake_repositories("globex", [GADGET]), placed.order_id)


# --- the repositories the routes hand the services ----------------------------------------------------


def test_the_routes_repositories_take_the_tenants_client_only_once_a_use_case_reaches_for_it(monkeypatch):
    handed_out: list[str] = []

    def tenant_dynamodb(tenant_id: str) -> Any:
        handed_out.append(tenant_id)
        raise TenantAccessUnavailable()

    monkeypatch.setattr(tenant_repositories, "tenant_dynamodb", tenant_dynamodb)
    repositories = tenant_repositories.repositories_for(ACME)
    assert handed_out == []
    # A token the use case refuses on its own costs no credentials, as before the repositories were handed in.
    with pytest.raises(InvalidPaginationToken):
        services.list_orders(ACME, repositories, 10, "not-a-token")
    assert handed_out == []
    with pytest.raises(TenantAccessUnavailable):
        services.list_orders(ACME, repositories, 10, None)
    assert handed_out == ["acme"]


def test_the_fake_orders_keep_the_order_transactions_conditions(acme):
    """The fakes are only worth the tests above if they refuse what the real transaction refuses."""
    priced = Order("ord_01ARZ3NDEKTSV4RRFFQ69G5FAV", (OrderLine("prod-001", "Widget", 2, Decimal("19.00")),), "USD", "")
    with pytest.raises(OrderConflict) as stale:
        acme.orders.place(priced, digest("k"), "f")
    assert (stale.value.stock_or_price, stale.value.idempotency, stale.value.contended) == (True, False, False)
    fresh = replace(priced, lines=(replace(priced.lines[0], unit_price=Decimal("20.00")),))
    acme.orders.place(fresh, digest("k"), "f")
    again = replace(fresh, order_id="ord_01ARZ3NDEKTSV4RRFFQ69G5FAW")
    with pytest.raises(OrderConflict) as bound:
        acme.orders.place(again, digest("k"), "f")
    assert (bound.value.stock_or_price, bound.value.idempotency) == (False, True)
    assert list(acme.orders.orders) == [fresh.order_id] and stock(acme, "prod-001") == 8
