"""The API's use cases: list and read the catalog, place, list and read orders, for one tenant.

Each use case is handed the tenant's repositories (the routes build them with
chalicelib.tenant_repositories) and asks of them only what the protocols below name, so that
unit tests can hand it in-memory ones.
"""

from __future__ import annotations

import hashlib
import random
import time
from datetime import datetime, timezone
from typing import Protocol, Sequence

from chalicelib import deadline, pagination
from chalicelib.errors import (
    CatalogChanged,
    IdempotencyKeyReused,
    InsufficientStock,
    OrderNotFound,
    ProductNotFound,
    ServiceUnavailable,
    UnknownProduct,
    ValidationFailed,
)
from chalicelib.ids import new_order_id
from chalicelib.models import Order, OrderLine, OrderRequest, Page, Product
from chalicelib.store import keys
from chalicelib.store.orders import IdempotencyRecord, OrderConflict, OrderInputs
from chalicelib.telemetry.emf import order_placed
from chalicelib.tenancy import TenantContext

CATALOG_LIST = "catalog"
ORDERS_LIST = "orders"
MAX_PLACE_ATTEMPTS = 3
RETRY_PAUSE_SECONDS = 0.02


class Catalog(Protocol):
    """One tenant's products, as the catalog use cases read them (chalicelib.store.catalog.CatalogRepository)."""

    def list(self, limit: int, after_sort_key: str | None = None) -> tuple[list[Product], str | None]:
        """A page of products in id order, and the sort key to resume after (None at the end)."""

    def get(self, product_id: str) -> Product | None:
        """One product, or None if this tenant has no such product."""


class Orders(Protocol):
    """One tenant's orders and Idempotency-Key records, as the order use cases use them.

    chalicelib.store.orders.OrderRepository is the real one; its docstrings hold the full contract.
    """

    def list(self, limit: int, after_sort_key: str | None = None) -> tuple[list[Order], str | None]:
        """A page of orders, newest first, and the sort key to resume after (None at the end)."""

    def get(self, order_id: str) -> Order | None:
        """One order, or None if this tenant has no such order."""

    def read_inputs(self, product_ids: Sequence[str], key_digest: str | None) -> OrderInputs:
        """The named products that exist and the key's unexpired record, read together and consistently."""

    def get_idempotency_record(self, key_digest: str) -> IdempotencyRecord | None:
        """The unexpired record of an Idempotency-Key's first use, if any."""

    def place(self, order: Order, key_digest: str | None = None, fingerprint: str | None = None) -> None:
        """Write the order, take its stock and bind the key at once, or OrderConflict and nothing written.

        ServiceUnavailable when DynamoDB is busy, OrderOutcomeUnknown when the answer was lost.
        """


class Repositories(Protocol):
    """One tenant's repositories, as the routes hand them to a use case."""

    @property
    def catalog(self) -> Catalog:
        """The tenant's products."""

    @property
    def orders(self) -> Orders:
        """The tenant's orders and Idempotency-Key records."""


def _resume_after(tenant: TenantContext, list_name: str, next_token: str | None, prefix: str) -> str | None:
    if next_token is None:
        return None
    return pagination.decode_token(
        pagination.pagination_secret(), tenant.tenant_id, list_name, next_token, expected_prefix=prefix
    )


def _next_token(tenant: TenantContext, list_name: str, last_sort_key: str | None) -> str | None:
    if last_sort_key is None:
        return None
    return pagination.encode_token(pagination.pagination_secret(), tenant.tenant_id, list_name, last_sort_key)


def list_products(tenant: TenantContext, repositories: Repositories, limit: int, next_token: str | None) -> Page:
    """A page of the tenant's catalog in product id order."""
    after = _resume_after(tenant, CATALOG_LIST, next_token, keys.PRODUCT_PREFIX)
    products, last = repositories.catalog.list(limit, after)
    return Page([product.to_json() for product in products], _next_token(tenant, CATALOG_LIST, last))


def get_product(repositories: Repositories, product_id: str) -> Product:
    """One product of the tenant's catalog; another tenant's product is simply not found."""
    product = repositories.catalog.get(product_id)
    if product is None:
        raise ProductNotFound()
    return product


def list_orders(tenant: TenantContext, repositories: Repositories, limit: int, next_token: str | None) -> Page:
    """A page of the tenant's orders, newest first."""
    after = _resume_after(tenant, ORDERS_LIST, next_token, keys.ORDER_PREFIX)
    orders, last = repositories.orders.list(limit, after)
    return Page([order.to_json() for order in orders], _next_token(tenant, ORDERS_LIST, last))


def get_order(repositories: Repositories, order_id: str) -> Order:
    """One of the tenant's orders; another tenant's order is simply not found."""
    order = repositories.orders.get(order_id)
    if order is None:
        raise OrderNotFound()
    return order


def _price_order(request: OrderRequest, products: dict[str, Product]) -> Order:
    """The order priced from the tenant's catalog as it stands, or the reason it cannot be placed."""
    wanted = [line.product_id for line in request.lines]
    unknown = [pid for pid in wanted if pid not in products]
    if unknown:
        raise UnknownProduct(f"Unknown product: {', '.join(unknown)}.")
    currencies = {products[pid].currency for pid in wanted}
    if len(currencies) > 1:
        raise ValidationFailed("All products of an order must share one currency.")
    short = [line.product_id for line in request.lines if products[line.product_id].stock < line.quantity]
    if short:
        raise InsufficientStock(f"Not enough stock for: {', '.join(short)}.")
    lines = tuple(
        OrderLine(line.product_id, products[line.product_id].name, line.quantity, products[line.product_id].price)
        for line in request.lines
    )
    created_at = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return Order(order_id=new_order_id(), lines=lines, currency=currencies.pop(), created_at=created_at)


def _replay(record: IdempotencyRecord, fingerprint: str) -> Order:
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    return record.order


def place_order(
    tenant: TenantContext, repositories: Repositories, request: OrderRequest, idempotency_key: str | None = None
) -> tuple[Order, bool]:
    """Place an order priced from the catalog, taking stock atomically.

    Returns the order and whether it is the replay of an earlier request with the same
    Idempotency-Key (in which case nothing new was written). One batch read fetches the
    products and the key's record together; one transaction writes the order, takes the
    stock and binds the key, so a replay costs one read and a new order two calls.
    """
    orders = repositories.orders
    fingerprint = request.fingerprint()
    # The key is hashed so that any client-chosen string becomes a fixed-shape key.
    key_digest = hashlib.sha256(idempotency_key.encode()).hexdigest() if idempotency_key else None
    wanted = [line.product_id for line in request.lines]
    contended = False
    for attempt in range(MAX_PLACE_ATTEMPTS):
        inputs = orders.read_inputs(wanted, key_digest)
        if inputs.earlier is not None:
            return _replay(inputs.earlier, fingerprint), True
        order = _price_order(request, inputs.products)
        try:
            orders.place(order, key_digest, fingerprint)
        except OrderConflict as conflict:
            if conflict.idempotency and key_digest is not None:
                # A concurrent request with the same key won the race: answer as it did.
                earlier = orders.get_idempotency_record(key_digest)
                if earlier is not None:
                    return _replay(earlier, fingerprint), True
            # Otherwise stock or a price moved, or another order held the product: re-read and
            # price again (_price_order raises InsufficientStock once stock is really short),
            # after a short random pause so that colliding requests do not collide again.
            contended = conflict.contended
            if attempt < MAX_PLACE_ATTEMPTS - 1:
                time.sleep(deadline.check_pause(random.uniform(0, RETRY_PAUSE_SECONDS * 2**attempt)))
            continue
        order_placed(tenant.tier, order.total)
        return order, False
    if contended:
        # The products are busier than one item can take (a best seller): nothing changed,
        # so the same request may well succeed a moment later.
        raise ServiceUnavailable("The products of this order are busy; retry shortly.")
    raise CatalogChanged()
