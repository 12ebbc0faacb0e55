"""In-memory repositories of one tenant that keep the contracts of chalicelib.store's (catalog, orders), for unit tests.

They answer as the DynamoDB ones do, with the same types and errors: lists page by the same sort
keys (built by chalicelib.store.keys), place() checks the same conditions as the order transaction and
raises OrderConflict saying which failed, and writes all or nothing. What they leave out:
Idempotency-Key records never expire (a test does not last 24 hours), and DynamoDB's own faults
(throttling, a lost answer) happen only when a test makes them happen with FakeOrders.interfere.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Sequence, TypeVar

from chalicelib.models import Order, OrderLine, Product
from chalicelib.store import keys
from chalicelib.store.orders import IdempotencyRecord, OrderConflict, OrderInputs

T = TypeVar("T")


def _page(
    items: Iterable[T], sort_key: Callable[[T], str], limit: int, after: str | None, newest_first: bool
) -> tuple[list[T], str | None]:
    """One page in sort-key order after `after`, and the sort key to resume after when more follow."""
    ordered = sorted(items, key=sort_key, reverse=newest_first)
    if after is not None:
        ordered = [item for item in ordered if (sort_key(item) < after if newest_first else sort_key(item) > after)]
    page = ordered[:limit]
    return page, sort_key(page[-1]) if len(ordered) > limit else None


class FakeCatalog:
    """One tenant's products, in memory."""

    def __init__(self, tenant_id: str, products: Iterable[Product] = ()):
        self.tenant_id = tenant_id
        self.products = {product.product_id: product for product in products}

    def _sort_key(self, product: Product) -> str:
        return keys.catalog_index_key(self.tenant_id, product.product_id)[keys.CATALOG_INDEX_SK]

    def list(self, limit: int, after_sort_key: str | None = None) -> tuple[list[Product], str | None]:
        """A page of products in id order, and the sort key to resume after (None at the end)."""
        return _page(self.products.values(), self._sort_key, limit, after_sort_key, newest_first=False)

    def get(self, product_id: str) -> Product | None:
        """One product, or None if this tenant has no such product."""
        keys.product_key(self.tenant_id, product_id)  # refuses a malformed id, as the real one does
        return self.products.get(product_id)

    def put(self, product: Product) -> None:
        """Create or replace a product (what an operator or another request does meanwhile)."""
        self.products[product.product_id] = product


class FakeOrders:
    """One tenant's orders and Idempotency-Key records, in memory, taking stock from the tenant's FakeCatalog."""

    def __init__(self, catalog: FakeCatalog):
        self.tenant_id = catalog.tenant_id
        self.catalog = catalog
        self.orders: dict[str, Order] = {}
        self.records: dict[str, IdempotencyRecord] = {}
        # Every call of place(), including those that ended in an error.
        self.place_calls = 0
        self._interference: list[Callable[[], None]] = []

    def interfere(self, *events: Callable[[], None]) -> None:
        """Run each event at the start of one coming place() call, in order, before its conditions are checked.

        An event stands for what happens meanwhile: another request changes the catalog or uses the
        same key, or DynamoDB fails the call (the event raises what the real repository would).
        """
        self._interference.extend(events)

    def _sort_key(self, order: Order) -> str:
        return keys.order_key(self.tenant_id, order.order_id)["SK"]

    def list(self, limit: int, after_sort_key: str | None = None) -> tuple[list[Order], str | None]:
        """A page of orders, newest first, and the sort key to resume after (None at the end)."""
        return _page(self.orders.values(), self._sort_key, limit, after_sort_key, newest_first=True)

    def get(self, order_id: str) -> Order | None:
        """One order, or None if this tenant has no such order."""
        keys.order_key(self.tenant_id, order_id)  # refuses a malformed id, as the real one does
        return self.orders.get(order_id)

    def read_inputs(self, product_ids: Sequence[str], key_digest: str | None) -> OrderInputs:
        """The named products that exist and the key's record, as of now."""
        for product_id in product_ids:
            keys.product_key(self.tenant_id, product_id)
        products = {pid: self.catalog.products[pid] for pid in product_ids if pid in self.catalog.products}
        return OrderInputs(products=products, earlier=self.get_idempotency_record(key_digest) if key_digest else None)

    def get_idempotency_record(self, key_digest: str) -> IdempotencyRecord | None:
        """The record of an Idempotency-Key's first use, if any."""
        keys.idempotency_key(self.tenant_id, key_digest)  # refuses anything but a SHA-256 digest
        return self.records.get(key_digest)

    def place(self, order: Order, key_digest: str | None = None, fingerprint: str | None = None) -> None:
        """Write the order, take its stock and bind the key, or raise OrderConflict and change nothing."""
        self.place_calls += 1
        if self._interference:
            self._interference.pop(0)()
        if key_digest is not None:
            keys.idempotency_key(self.tenant_id, key_digest)
        # The transaction's conditions: each product still there, with the stock, price and currency
        # the order was priced with; and the key not bound yet.
        stale = [line for line in order.lines if not self._still_as_priced(line, order.currency)]
        bound = key_digest is not None and key_digest in self.records
        if stale or bound:
            raise OrderConflict(stock_or_price=bool(stale), idempotency=bound)
        for line in order.lines:
            product = self.catalog.products[line.product_id]
            self.catalog.products[line.product_id] = replace(product, stock=product.stock - line.quantity)
        self.orders[order.order_id] = order
        if key_digest is not None:
            self.records[key_digest] = IdempotencyRecord(fingerprint=fingerprint or "", order=order)

    def _still_as_priced(self, line: OrderLine, currency: str) -> bool:
        product = self.catalog.products.get(line.product_id)
        return (
            product is not None
            and product.stock >= line.quantity
            and product.price == line.unit_price
            and product.currency == currency
        )


@dataclass
class FakeRepositories:
    """One tenant's in-memory catalog and orders, as the routes would hand them to the services."""

    catalog: FakeCatalog
    orders: FakeOrders = field(init=False)

    def __post_init__(self) -> None:
        self.orders = FakeOrders(self.catalog)


def fake_repositories(tenant_id: str, products: Iterable[Product] = ()) -> FakeRepositories:
    """In-memory repositories of tenant_id whose catalog holds products."""
    return FakeRepositories(FakeCatalog(tenant_id, products))
