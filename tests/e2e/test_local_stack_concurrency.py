"""The local stack under concurrent clients, over real HTTP: as safe as DynamoDB, and no dropped connection.

moto's threaded server lets concurrent transactions undo each other, and chalice local's server
listens with a backlog of 5; the stack serializes the emulated AWS (scripts.local.aws) and serves
the API with a backlog of 128 (scripts.local.api). These tests hold it to both. The products they
order are their own, written to the stack's table through its AWS endpoint.
"""

from __future__ import annotations

import http.client
import json
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Callable, Iterator, TypeVar
from urllib.parse import urlsplit

import pytest
import requests

from chalicelib.models import Product
from chalicelib.store.catalog import CatalogRepository
from chalicelib.store.dynamodb import dynamodb_client
from tests.support.stack import HTTP_TIMEOUT_SECONDS, RunningStack, http_session, on_stack_aws

pytestmark = pytest.mark.e2e

T = TypeVar("T")
TIER = "premium"  # burst 2,000: the rate limiter stays out of these tests
ROUNDS = 4
BUYERS = 50
STOCK = 10
SAME_KEY_POSTS = 20
SIMULTANEOUS_CLIENTS = 96
# A crowd's requests queue for the emulated AWS one after another; a dropped connection stalls for
# seconds (SYN and data retransmissions) before it is answered or reset.
CROWD_TIMEOUT_SECONDS = 30

PutProduct = Callable[[str, int], str]


@pytest.fixture(scope="module")
def put_product(stack: RunningStack) -> Iterator[PutProduct]:
    """put_product(prefix, stock): a new product of the premium tenant on the stack; returns its id."""
    with on_stack_aws(stack):
        catalog = CatalogRepository(stack.tenant(TIER)["tenant_id"], dynamodb_client())

        def put(prefix: str, stock: int) -> str:
            product_id = f"{prefix}-{uuid.uuid4().hex[:12]}"
            catalog.put(
                Product(
                    product_id=product_id,
                    name=f"Race {product_id}",
                    price=Decimal("1.00"),
                    currency="USD",
                    stock=stock,
                    description="Ordered by many clients at once.",
                )
            )
            return product_id

        yield put


def _all_at_once(calls: list[Callable[[], T]]) -> list[T]:
    """Run each call on a thread of its own, all released together; return their results in order."""
    start = threading.Barrier(len(calls))

    def released(call: Callable[[], T]) -> T:
        start.wait(timeout=HTTP_TIMEOUT_SECONDS)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(released, calls))


def _post_order(stack: RunningStack, token: str, product_id: str, idempotency_key: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"}
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    # A session per request: each buyer is a client of its own, on a connection of its own.
    with http_session() as session:
        return session.post(
            f"{stack.api_url}/orders",
            json={"items": [{"product_id": product_id, "quantity": 1}]},
            headers=headers,
            timeout=CROWD_TIMEOUT_SECONDS,
        )


def _order_ids(stack: RunningStack, token: str) -> list[str]:
    """Every order id of the tenant, page by page (at most 100 pages)."""
    ids: list[str] = []
    params = {"limit": "100"}
    for _ in range(100):
        response = stack.get("/orders", token, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        ids.extend(order["order_id"] for order in body["items"])
        if body["next_token"] is None:
            return ids
        params = {"limit": "100", "next_token": body["next_token"]}
    pytest.fail("more than 100 pages of orders")


def _stock(stack: RunningStack, token: str, product_id: str) -> int:
    response = stack.get(f"/catalog/{product_id}", token)
    assert response.status_code == 200, response.text
    return response.json()["stock"]


def _outcome(response: requests.Response) -> tuple[int, str | None]:
    """The status, and the error code of an error answer."""
    return response.status_code, None if response.status_code < 400 else response.json()["error"]["code"]


@pytest.mark.parametrize("round_number", range(1, ROUNDS + 1))
def test_a_crowd_buys_exactly_the_stock_and_every_acknowledged_order_is_kept(
    stack: RunningStack, put_product: PutProduct, round_number: int
) -> None:
    token = stack.token(TIER)
    product_id = put_product(f"race-{round_number}", STOCK)
    before = set(_order_ids(stack, token))

    responses = _all_at_once([lambda: _post_order(stack, token, product_id, None)] * BUYERS)

    outcomes = Counter(_outcome(response) for response in responses)
    assert outcomes[(201, None)] == STOCK, outcomes
    # Every other buyer is refused as DynamoDB would refuse it: out of stock, or busy and retryable.
    assert set(outcomes) <= {(201, None), (409, "insufficient_stock"), (503, "service_unavailable")}, outcomes
    assert _stock(stack, token, product_id) == 0
    acknowledged = [response.json()["order_id"] for response in responses if response.status_code == 201]
    placed = [order_id for order_id in _order_ids(stack, token) if order_id not in before]
    assert sorted(placed) == sorted(acknowledged)


def test_one_idempotency_key_posted_by_many_at_once_places_one_order(
    stack: RunningStack, put_product: PutProduct
) -> None:
    token = stack.token(TIER)
    product_id = put_product("same-key", 100)
    before = set(_order_ids(stack, token))
    key = f"e2e-crowd-{uuid.uuid4()}"

    responses = _all_at_once([lambda: _post_order(stack, token, product_id, key)] * SAME_KEY_POSTS)

    assert [response.status_code for response in responses] == [201] * SAME_KEY_POSTS, [r.text for r in responses]
    order_ids = {response.json()["order_id"] for response in responses}
    assert len(order_ids) == 1
    replayed = Counter(response.headers["Idempotent-Replayed"] for response in responses)
    assert replayed == {"false": 1, "true": SAME_KEY_POSTS - 1}
    assert _stock(stack, token, product_id) == 99
    assert [order_id for order_id in _order_ids(stack, token) if order_id not in before] == list(order_ids)


def _one_client(
    address: tuple[str, int], method: str, path: str, token: str | None, body: bytes | None
) -> tuple[str, int | str]:
    """One request on a new connection: the method and the status, or the name of the error that ended it."""
    connection = http.client.HTTPConnection(*address, timeout=CROWD_TIMEOUT_SECONDS)
    headers = {"Connection": "close"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        headers["Content-Type"] = "application/json"
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return method, response.status
    except OSError as error:  # ConnectionResetError, BrokenPipeError, RemoteDisconnected, TimeoutError
        return method, type(error).__name__
    finally:
        connection.close()


def test_a_crowd_of_simultaneous_clients_is_served_without_a_reset(
    stack: RunningStack, put_product: PutProduct
) -> None:
    url = urlsplit(stack.api_url)
    address = (url.hostname or "127.0.0.1", url.port or 80)
    token = stack.token(TIER)
    product_id = put_product("crowd", SIMULTANEOUS_CLIENTS)
    order = json.dumps({"items": [{"product_id": product_id, "quantity": 1}]})
    # The health check, a read and an order, each on a connection of its own. With a listen backlog
    # of 5, reads stalled for seconds and orders (a request with a body) were reset.
    kinds = [
        ("GET", "/health", None, None),
        ("GET", "/catalog/prod-001", token, None),
        ("POST", "/orders", token, order.encode()),
    ]
    calls = [kinds[number % len(kinds)] for number in range(SIMULTANEOUS_CLIENTS)]

    outcomes = Counter(_all_at_once([lambda call=call: _one_client(address, *call) for call in calls]))

    # 429 would be a rate-limited tenant, a correct answer; premium's burst leaves none here.
    assert set(outcomes) <= {("GET", 200), ("POST", 201), ("GET", 429), ("POST", 429)}, outcomes
    assert _stock(stack, token, product_id) == SIMULTANEOUS_CLIENTS - outcomes[("POST", 201)]
