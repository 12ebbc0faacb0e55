"""A Hypothesis state machine: tenants stock, browse and order in random interleavings, never seeing others' data."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from chalicelib.models import Product
from chalicelib.store import schema
from chalicelib.store.catalog import CatalogRepository
from chalicelib.store.dynamodb import dynamodb_client
from chalicelib.store.registry import TenantRegistry
from tests.support.api import Api
from tests.support.tenants import TABLE_NAME, TENANTS, SeedTenant

PRODUCT_NUMBERS = st.integers(min_value=1, max_value=5)
TENANT_CHOICES = st.sampled_from(TENANTS)


@dataclass
class ModelProduct:
    name: str
    price: Decimal
    stock: int


@dataclass
class TenantModel:
    """What one tenant should see: its products, and its orders oldest first."""

    products: dict[str, ModelProduct] = field(default_factory=dict)
    orders: list[dict[str, Any]] = field(default_factory=list)


def product_id(number: int) -> str:
    return f"prod-{number:03d}"


def reset_table() -> None:
    """An empty table holding only the tenants' registry records."""
    client = dynamodb_client()
    if TABLE_NAME in client.list_tables()["TableNames"]:
        client.delete_table(TableName=TABLE_NAME)
    client.create_table(**schema.table_definition(TABLE_NAME))
    registry = TenantRegistry()
    for tenant in TENANTS:
        registry.put(tenant.record())


class TenantsMachine(RuleBasedStateMachine):
    """Drives the API as three tenants and checks each sees exactly its own model, nothing more."""

    def __init__(self, api: Api):
        super().__init__()
        self.api = api
        reset_table()
        self.model = {tenant.tenant_id: TenantModel() for tenant in TENANTS}

    # --- helpers --------------------------------------------------------------------------

    def list_all(self, tenant: SeedTenant, path: str, limit: int) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token = None
        for _ in range(100):
            reply = self.api.get(f"{path}?limit={limit}" + (f"&next_token={token}" if token else ""), tenant)
            assert reply.status == 200, reply.body
            body = reply.json
            assert body["tenant_id"] == tenant.tenant_id
            assert len(body["items"]) <= limit
            items.extend(body["items"])
            token = body["next_token"]
            if token is None:
                return items
        raise AssertionError("pagination did not end")

    def assert_own_product(self, tenant: SeedTenant, item: dict[str, Any]) -> None:
        expected = self.model[tenant.tenant_id].products.get(item["product_id"])
        assert expected is not None, (tenant.tenant_id, item)
        assert item["name"] == expected.name and item["name"].startswith(f"{tenant.tenant_id}:")
        assert Decimal(item["price"]) == expected.price
        assert item["stock"] == expected.stock

    def assert_own_order(self, tenant: SeedTenant, item: dict[str, Any]) -> None:
        expected = next(
            (order for order in self.model[tenant.tenant_id].orders if order["order_id"] == item["order_id"]), None
        )
        assert expected is not None, (tenant.tenant_id, item)
        assert [line["product_id"] for line in item["items"]] == [line["product_id"] for line in expected["items"]]
        assert [line["quantity"] for line in item["items"]] == [line["quantity"] for line in expected["items"]]
        assert all(line["name"].startswith(f"{tenant.tenant_id}:") for line in item["items"])
        assert Decimal(item["total"]) == Decimal(expected["total"])

    # --- rules ----------------------------------------------------------------------------

    @initialize(
        tenant_stock=st.lists(st.integers(min_value=0, max_value=12), min_size=len(TENANTS), max_size=len(TENANTS))
    )
    def stock_every_tenant(self, tenant_stock: list[int]) -> None:
        """Every tenant starts with products 1 and 2 (same ids, different names and prices)."""
        for index, (tenant, stock) in enumerate(zip(TENANTS, tenant_stock)):
            for number in (1, 2):
                self.stock_a_product(tenant, number, cents=100 * (index + 1) + number, stock=stock + number)

    @rule(
        tenant=TENANT_CHOICES,
        number=PRODUCT_NUMBERS,
        cents=st.integers(min_value=1, max_value=100_000),
        stock=st.integers(min_value=0, max_value=12),
    )
    def stock_a_product(self, tenant: SeedTenant, number: int, cents: int, stock: int) -> None:
        """An operator creates or replaces a product (there is no API route for it)."""
        price = Decimal(cents).scaleb(-2)
        name = f"{tenant.tenant_id}: item {number} at {price}"
        CatalogRepository(tenant.tenant_id, dynamodb_client()).put(
            Product(product_id(number), name, price, "USD", stock)
        )
        self.model[tenant.tenant_id].products[product_id(number)] = ModelProduct(name, price, stock)

    @rule(tenant=TENANT_CHOICES, limit=st.integers(min_value=1, max_value=4))
    def list_catalog(self, tenant: SeedTenant, limit: int) -> None:
        items = self.list_all(tenant, "/catalog", limit)
        assert [item["product_id"] for item in items] == sorted(self.model[tenant.tenant_id].products)
        for item in items:
            self.assert_own_product(tenant, item)

    @rule(tenant=TENANT_CHOICES, number=PRODUCT_NUMBERS)
    def read_product(self, tenant: SeedTenant, number: int) -> None:
        reply = self.api.get(f"/catalog/{product_id(number)}", tenant)
        if product_id(number) in self.model[tenant.tenant_id].products:
            assert reply.status == 200, reply.body
            self.assert_own_product(tenant, reply.json)
        else:
            assert reply.status == 404, reply.body

    @rule(tenant=TENANT_CHOICES, data=st.data())
    def place_order(self, tenant: SeedTenant, data: st.DataObject) -> None:
        stocked = sorted(self.model[tenant.tenant_id].products)
        # Mostly products the tenant has, so that orders go through; sometimes any product number.
        if stocked and data.draw(st.integers(min_value=0, max_value=4), label="roll") > 0:
            numbers = st.sampled_from([int(pid[-3:]) for pid in stocked])
        else:
            numbers = PRODUCT_NUMBERS
        lines = data.draw(
            st.dictionaries(numbers, st.integers(min_value=1, max_value=6), min_size=1, max_size=3), label="lines"
        )
        model = self.model[tenant.tenant_id]
        items = [{"product_id": product_id(number), "quantity": quantity} for number, quantity in lines.items()]
        reply = self.api.post_order(items, tenant)
        wanted = {product_id(number): quantity for number, quantity in lines.items()}
        if any(pid not in model.products for pid in wanted):
            assert reply.status == 422 and reply.json["error"]["code"] == "unknown_product", reply.body
        elif any(model.products[pid].stock < quantity for pid, quantity in wanted.items()):
            assert reply.status == 409 and reply.json["error"]["code"] == "insufficient_stock", reply.body
        else:
            assert reply.status == 201, reply.body
            order = reply.json
            assert order["tenant_id"] == tenant.tenant_id
            for line in order["items"]:
                product = model.products[line["product_id"]]
                assert line["name"] == product.name
                assert Decimal(line["unit_price"]) == product.price
            assert Decimal(order["total"]) == sum(
                model.products[pid].price * quantity for pid, quantity in wanted.items()
            )
            for pid, quantity in wanted.items():
                model.products[pid].stock -= quantity
            model.orders.append(order)

    @rule(tenant=TENANT_CHOICES, limit=st.integers(min_value=1, max_value=4))
    def list_orders(self, tenant: SeedTenant, limit: int) -> None:
        items = self.list_all(tenant, "/orders", limit)
        expected = [order["order_id"] for order in reversed(self.model[tenant.tenant_id].orders)]
        assert [item["order_id"] for item in items] == expected
        for item in items:
            self.assert_own_order(tenant, item)

    @precondition(lambda self: any(model.orders for model in self.model.values()))
    @rule(reader=TENANT_CHOICES, data=st.data())
    def read_an_order(self, reader: SeedTenant, data: st.DataObject) -> None:
        """Read any tenant's order as reader: its own is returned, another's is not found."""
        owner = data.draw(st.sampled_from([tenant for tenant in TENANTS if self.model[tenant.tenant_id].orders]))
        order = data.draw(st.sampled_from(self.model[owner.tenant_id].orders))
        reply = self.api.get(f"/orders/{order['order_id']}", reader)
        if reader is owner:
            assert reply.status == 200, reply.body
            self.assert_own_order(reader, reply.json)
        else:
            assert reply.status == 404 and reply.json["error"]["code"] == "not_found", reply.body

    @rule(owner=TENANT_CHOICES, reader=TENANT_CHOICES, path=st.sampled_from(["/catalog", "/orders"]))
    def use_a_next_token(self, owner: SeedTenant, reader: SeedTenant, path: str) -> None:
        token = self.api.get(f"{path}?limit=1", owner).json["next_token"]
        if token is None:
            return
        reply = self.api.get(f"{path}?limit=1&next_token={token}", reader)
        if reader is owner:
            assert reply.status == 200, reply.body
        else:
            assert reply.status == 400 and reply.json["error"]["code"] == "invalid_pagination_token", reply.body

    # --- invariants -------------------------------------------------------------------------

    @invariant()
    def each_tenant_sees_exactly_its_own_catalog_and_stock(self) -> None:
        for tenant in TENANTS:
            body = self.api.get("/catalog?limit=100", tenant).json
            assert body["tenant_id"] == tenant.tenant_id
            assert all(item["name"].startswith(f"{tenant.tenant_id}:") for item in body["items"]), json.dumps(body)
            model = self.model[tenant.tenant_id].products
            assert {item["product_id"]: item["stock"] for item in body["items"]} == {
                pid: p.stock for pid, p in model.items()
            }
            assert all(item["stock"] >= 0 for item in body["items"])


def test_tenants_never_see_each_others_data_and_stock_never_goes_negative(aws, jwks, token_issuer):
    api = Api(token_issuer)
    run_state_machine_as_test(
        lambda: TenantsMachine(api),
        settings=settings(
            max_examples=25,
            stateful_step_count=20,
            deadline=None,
            derandomize=True,
            # Each step is a few API calls, so shrinking a failure would take minutes; the failing
            # run's steps are printed as they are instead.
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
