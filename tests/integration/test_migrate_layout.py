"""The layout migration against moto: a stage filled as the legacy code filled it, moved, interrupted, and run again."""

from __future__ import annotations

import hashlib
import shutil
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from chalicelib import services
from chalicelib.models import Order, OrderLine, OrderLineRequest, OrderRequest, Product
from chalicelib.store import keys
from chalicelib.store.catalog import CatalogRepository
from chalicelib.store.dynamodb import dynamodb_client, to_item
from chalicelib.store.orders import OrderRepository, order_values
from chalicelib.store.registry import TenantRegistry
from chalicelib.tenancy import SCOPES, TenantContext
from chalicelib.tenant_repositories import repositories_for
from scripts import provision
from scripts.change_log import is_mutating
from scripts.deploy import bootstrap, migrate_layout
from tests.support.project import PROJECT_DIR
from tests.support.settings import Environment

REGION = "us-east-1"
TABLE = "tenant-api-dev"
PREFIX = "tenant-api-dev"
# Fixed once, so that every test (and every fill within one) writes the very same items.
NOW = int(time.time())
DAY = 24 * 3600
Capture = pytest.CaptureFixture[str]


@dataclass(frozen=True)
class LegacyTenant:
    """How much a tenant had in the legacy layout."""

    tenant_id: str
    products: int
    orders: int
    live_records: int
    expired_records: int
    orphaned_records: int

    def product(self, number: int) -> Product:
        return Product(
            product_id=f"prod-{number:03d}",
            name=f"{self.tenant_id} widget {number}",
            description=f"Sold by {self.tenant_id}.",
            price=Decimal(f"{number}.99"),
            currency="USD",
            stock=(number * 7) % 40,
        )

    def order(self, number: int) -> Order:
        product = self.product(1 + number % self.products)
        created = datetime.fromtimestamp(NOW - (self.orders - number) * 60, timezone.utc)
        return Order(
            # Ids of the legacy shape (time-sortable), fixed so that two fills are identical.
            order_id=f"ord_01HZ{number:022d}",
            lines=(OrderLine(product.product_id, product.name, 1 + number % 3, product.price),),
            currency="USD",
            created_at=created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        )

    def request(self, number: int) -> OrderRequest:
        """The POST /orders body that placed order number."""
        line = self.order(number).lines[0]
        return OrderRequest((OrderLineRequest(line.product_id, line.quantity),))

    def idempotency_key(self, number: int) -> str:
        return f"{self.tenant_id}-retry-{number}"

    @property
    def live(self) -> range:
        """The orders placed with a key whose record is still live."""
        return range(self.live_records)

    def items(self) -> list[dict[str, Any]]:
        """Every item, exactly as the legacy code wrote it."""
        t = self.tenant_id
        items = []
        for number in range(1, self.products + 1):
            product = self.product(number)
            items.append({**keys.legacy_product_key(t, product.product_id), **vars(product)})
        for number in range(self.orders):
            order = self.order(number)
            items.append({**keys.legacy_order_key(t, order.order_id), **order_values(order)})
        expired = range(self.live_records, self.live_records + self.expired_records)
        for number in [*self.live, *expired]:
            digest = hashlib.sha256(self.idempotency_key(number).encode()).hexdigest()
            record = {
                **keys.legacy_idempotency_key(t, digest),
                "fingerprint": self.request(number).fingerprint(),
                "order_id": self.order(number).order_id,
                "expires_at": NOW + DAY if number in self.live else NOW - 60,
            }
            items.append(record)
        for number in range(self.orphaned_records):
            # The legacy code deleted an order's record with the order; one left behind names nothing.
            digest = hashlib.sha256(f"{t}-orphan-{number}".encode()).hexdigest()
            gone = f"ord_01HZ{9_000_000 + number:022d}"
            record = {"fingerprint": "f" * 64, "order_id": gone, "expires_at": NOW + DAY}
            items.append({**keys.legacy_idempotency_key(t, digest), **record})
        return items


ACME = LegacyTenant("acme", products=30, orders=60, live_records=5, expired_records=2, orphaned_records=2)
GLOBEX = LegacyTenant("globex", products=12, orders=25, live_records=3, expired_records=1, orphaned_records=0)
# Offboarded without --purge-data: in no registry, so only --tenant reaches it.
HOOLI = LegacyTenant("hooli", products=3, orders=2, live_records=1, expired_records=0, orphaned_records=0)
REGISTERED = (ACME, GLOBEX)
ALL = (ACME, GLOBEX, HOOLI)


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


def legacy_table() -> None:
    """The table as the legacy code's schema made it: the key and no index."""
    dynamodb = client("dynamodb")
    dynamodb.delete_table(TableName=TABLE)
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in ("PK", "SK")],
        BillingMode="PAY_PER_REQUEST",
        SSESpecification={"Enabled": True},
    )


def fill(tenants: tuple[LegacyTenant, ...] = ALL) -> None:
    """Write the tenants' legacy items."""
    items = [to_item(item) for tenant in tenants for item in tenant.items()]
    for start in range(0, len(items), 25):
        requests = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        assert not client("dynamodb").batch_write_item(RequestItems={TABLE: requests}).get("UnprocessedItems")


def all_items() -> list[dict[str, Any]]:
    """Every item of the table (a test may scan; the migration never does), in key order."""
    items, request = [], {"TableName": TABLE, "ConsistentRead": True}
    while True:
        page = client("dynamodb").scan(**request)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return sorted(items, key=lambda item: (item["PK"]["S"], item["SK"]["S"]))
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def data_of(tenant: LegacyTenant) -> list[dict[str, Any]]:
    """The tenant's own data items, in either layout (its registry record is not among them)."""
    return [item for item in all_items() if item["PK"]["S"].startswith(keys.tenant_prefix(tenant.tenant_id))]


def legacy_left(tenant: LegacyTenant) -> list[dict[str, Any]]:
    partitions = (keys.legacy_product_partition, keys.legacy_order_partition, keys.legacy_idempotency_partition)
    wanted = {partition(tenant.tenant_id) for partition in partitions}
    return [item for item in data_of(tenant) if item["PK"]["S"] in wanted]


def registry_items() -> list[dict[str, Any]]:
    return [item for item in all_items() if item["SK"]["S"] in ("META", "TENANT")]


def reset_data() -> None:
    """Delete every tenant's data, keeping the registry, and fill the legacy items again."""
    registry = registry_items()
    for item in all_items():
        if item not in registry:
            client("dynamodb").delete_item(TableName=TABLE, Key={"PK": item["PK"], "SK": item["SK"]})
    fill()


def catalog_index() -> dict[str, Any] | None:
    indexes = client("dynamodb").describe_table(TableName=TABLE)["Table"].get("GlobalSecondaryIndexes", [])
    return next((index for index in indexes if index["IndexName"] == keys.CATALOG_INDEX), None)


@pytest.fixture
def calls(operator_calls: list[str], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every AWS operation the scripts' clients and the application's client complete; no sleeping between retries."""
    monkeypatch.setattr(migrate_layout, "BACKOFF_SECONDS", 0)
    return operator_calls


@pytest.fixture
def project(tmp_path: Path, calls: list[str], env: Environment, capsys: Capture) -> Path:
    """A bootstrapped dev stage whose table is the legacy one, with acme and globex onboarded and all filled."""
    chalice_dir = tmp_path / ".chalice"
    chalice_dir.mkdir()
    for source in (PROJECT_DIR / ".chalice").glob("*.json"):
        shutil.copy(source, chalice_dir / source.name)
    assert bootstrap.main(["--stage", "dev", "--region", REGION, "--project-dir", str(tmp_path)]) == 0
    env.set(TABLE_NAME=TABLE)
    legacy_table()
    cognito, apigateway = client("cognito-idp"), client("apigateway")
    pool_id = cognito.list_user_pools(MaxResults=60)["UserPools"][0]["Id"]
    plan_ids = provision.ensure_usage_plans(apigateway, PREFIX)
    for tenant, tier in zip(REGISTERED, ("basic", "standard")):
        provision.onboard_tenant(
            cognito,
            apigateway,
            TenantRegistry(),
            pool_id=pool_id,
            scopes=[f"tenant-api/{scope}" for scope in SCOPES],
            plan_ids=plan_ids,
            key_prefix=PREFIX,
            tenant_id=tenant.tenant_id,
            tier=tier,
        )
    fill()
    capsys.readouterr()
    calls.clear()
    return tmp_path


class Migrate:
    """Runs `python -m scripts.deploy.migrate_layout --stage dev ...` in this process and keeps what it printed."""

    def __init__(self, project: Path, capsys: Capture):
        self.project = project
        self.capsys = capsys
        self.out = self.err = ""

    def __call__(self, *argv: str) -> int:
        code = migrate_layout.main(["--stage", "dev", "--project-dir", str(self.project), *argv])
        self.out, self.err = self.capsys.readouterr()
        return code

    def ok(self, *argv: str) -> str:
        code = self(*argv)
        assert code == 0, self.out + self.err
        return self.out


@pytest.fixture
def migrate(project: Path, capsys: Capture) -> Migrate:
    return Migrate(project, capsys)


def intercept(monkeypatch: pytest.MonkeyPatch, handler: Callable[..., Any]) -> None:
    """Route every call of the application's DynamoDB client through handler(operation, params, original)."""
    dynamodb = dynamodb_client()
    original = dynamodb._make_api_call
    monkeypatch.setattr(dynamodb, "_make_api_call", lambda name, params: handler(name, params, original))


def short_pages(name: str, params: dict[str, Any], original: Callable[..., Any]) -> Any:
    """Answer every Query a few items at a time, as DynamoDB does when a page reaches 1 MB."""
    if name == "Query":
        params = {**params, "Limit": min(params.get("Limit", 7), 7)}
    return original(name, params)


def every_page(list_page: Callable[[int, str | None], tuple[list[Any], str | None]]) -> list[Any]:
    seen, after = [], None
    while True:
        page, after = list_page(7, after)
        seen.extend(page)
        if after is None:
            return seen


def assert_migrated(tenant: LegacyTenant) -> None:
    """What the application reads through the new layout is everything the tenant had, and no legacy item is left."""
    catalog = CatalogRepository(tenant.tenant_id, dynamodb_client())
    products = every_page(catalog.list)
    assert products == [tenant.product(number) for number in range(1, tenant.products + 1)]

    orders = every_page(OrderRepository(tenant.tenant_id, dynamodb_client()).list)
    assert orders == [tenant.order(number) for number in reversed(range(tenant.orders))]

    context = TenantContext(tenant.tenant_id, "basic", frozenset())
    for number in tenant.live:
        replayed, replay = services.place_order(
            context, repositories_for(context), tenant.request(number), tenant.idempotency_key(number)
        )
        assert (replayed, replay) == (tenant.order(number), True)
    assert every_page(catalog.list) == products, "a replay takes no stock"

    assert legacy_left(tenant) == []
    data = data_of(tenant)
    records = [item for item in data if "#IDEMPOTENCY#" in item["PK"]["S"]]
    # Nothing lost, nothing doubled: one new item per legacy product and order, one record per live key.
    assert len(data) == tenant.products + tenant.orders + tenant.live_records
    assert len(records) == tenant.live_records
    marked = {item["order_id"]["S"] for item in data if "idempotency_key_digest" in item}
    assert marked == {tenant.order(number).order_id for number in tenant.live}


# --- a whole run ----------------------------------------------------------------------------


def test_after_the_migration_the_application_sees_everything_and_no_legacy_item_is_left(
    migrate: Migrate, monkeypatch: pytest.MonkeyPatch, calls: list[str]
):
    assert catalog_index() is None
    registry = registry_items()
    hooli = data_of(HOOLI)
    intercept(monkeypatch, short_pages)

    out = migrate.ok()

    assert calls.count("Query") > (ACME.orders + GLOBEX.orders) / 7, "the legacy partitions were read in pages"
    assert "Scan" not in calls
    assert catalog_index()["IndexStatus"] == "ACTIVE"
    for tenant in REGISTERED:
        assert_migrated(tenant)
    assert data_of(HOOLI) == hooli, "a tenant the registry does not name is left alone"
    assert registry_items() == registry
    assert "[migrate] table tenant-api-dev: creating the indexes catalog" in out
    assert "[migrate] tenants: acme, globex" in out
    assert "[migrate] acme products: 30 moved, 0 kept newer" in out
    assert "[migrate] acme orders: 60 moved, 0 kept newer" in out
    assert "[migrate] acme idempotency records: 5 moved, 0 kept newer, 2 dropped expired, 2 dropped orphaned" in out
    assert "[migrate] globex idempotency records: 3 moved, 0 kept newer, 1 dropped expired, 0 dropped orphaned" in out
    assert out.splitlines()[-1] == ("[migrate] done: 2 tenant(s); 135 moved, 3 dropped expired, 2 dropped orphaned")


def test_tenant_reaches_a_tenant_the_registry_no_longer_names_and_leaves_the_others_alone(migrate: Migrate):
    migrate.ok()
    others = [data_of(tenant) for tenant in REGISTERED]

    out = migrate.ok("--tenant", "hooli")

    assert_migrated(HOOLI)
    assert [data_of(tenant) for tenant in REGISTERED] == others
    assert "[migrate] tenants: acme, globex, hooli" in out
    assert "[migrate] hooli products: 3 moved, 0 kept newer" in out
    assert "[migrate] acme products: 0 moved, 0 kept newer" in out


def test_a_malformed_tenant_id_is_refused_before_anything_is_read(migrate: Migrate, calls: list[str]):
    assert migrate("--tenant", "Not#Valid") == 1
    assert "not a valid tenant id: 'Not#Valid'" in migrate.err
    assert calls == []
    assert catalog_index() is None


# --- dry run --------------------------------------------------------------------------------


def test_a_dry_run_writes_nothing_and_counts_what_the_real_run_then_does(migrate: Migrate, calls: list[str]):
    before = all_items()

    out = migrate.ok("--dry-run")

    assert all_items() == before
    assert catalog_index() is None
    assert [name for name in calls if is_mutating(name)] == []
    assert "[migrate] table tenant-api-dev: would create the indexes catalog" in out
    expected = [
        "acme products: {}30 moved, 0 kept newer",
        "acme orders: {}60 moved, 0 kept newer",
        "acme idempotency records: {}5 moved, 0 kept newer, 2 dropped expired, 2 dropped orphaned",
        "globex products: {}12 moved, 0 kept newer",
        "globex orders: {}25 moved, 0 kept newer",
        "globex idempotency records: {}3 moved, 0 kept newer, 1 dropped expired, 0 dropped orphaned",
    ]
    for line in expected:
        assert f"[migrate] {line.format('would be ')}" in out
    assert out.splitlines()[-1] == (
        "[migrate] dry run: 2 tenant(s); would be 135 moved, 3 dropped expired, 2 dropped orphaned; nothing was changed"
    )

    real = migrate.ok()
    for line in expected:
        assert f"[migrate] {line.format('')}" in real


# --- interruption and reruns ----------------------------------------------------------------


def assert_each_item_in_exactly_one_layout(tenant: LegacyTenant) -> None:
    """Mid-migration, every product and order is in the legacy layout or the new one, never both, never neither."""
    present = {(item["PK"]["S"], item["SK"]["S"]) for item in data_of(tenant)}

    def where(legacy: dict[str, str], new: dict[str, str]) -> int:
        return ((legacy["PK"], legacy["SK"]) in present) + ((new["PK"], new["SK"]) in present)

    t = tenant.tenant_id
    for number in range(1, tenant.products + 1):
        product_id = tenant.product(number).product_id
        assert where(keys.legacy_product_key(t, product_id), keys.product_key(t, product_id)) == 1, product_id
    for number in range(tenant.orders):
        order_id = tenant.order(number).order_id
        assert where(keys.legacy_order_key(t, order_id), keys.order_key(t, order_id)) == 1, order_id
    for number in tenant.live:
        digest = hashlib.sha256(tenant.idempotency_key(number).encode()).hexdigest()
        assert where(keys.legacy_idempotency_key(t, digest), keys.idempotency_key(t, digest)) == 1, number


# A run sends 9 transactions: acme's products 2, orders 3, records 1, then globex's 1 each. The
# cut falls before the first, amid acme's orders, between its orders and records, and at the last.
@pytest.mark.parametrize(
    ("transactions", "stopped"),
    [
        (0, "acme products: 0 moved, 0 kept newer"),
        (3, "acme orders: 25 moved, 0 kept newer"),
        (5, "acme idempotency records: 0 moved, 0 kept newer, 0 dropped expired, 0 dropped orphaned"),
        (8, "globex idempotency records: 0 moved, 0 kept newer, 0 dropped expired, 0 dropped orphaned"),
    ],
)
def test_an_interrupted_run_is_finished_by_a_rerun_exactly_as_an_uninterrupted_run_ends(
    migrate: Migrate, monkeypatch: pytest.MonkeyPatch, calls: list[str], transactions: int, stopped: str
):
    migrate.ok()
    uninterrupted = [data_of(tenant) for tenant in ALL]
    reset_data()
    sent = {"count": 0, "failing": True}

    def cut_off(name: str, params: dict[str, Any], original: Callable[..., Any]) -> Any:
        if name == "TransactWriteItems" and sent["failing"]:
            if sent["count"] == transactions:
                raise EndpointConnectionError(endpoint_url=f"https://dynamodb.{REGION}.amazonaws.com")
            sent["count"] += 1
        return original(name, params)

    intercept(monkeypatch, cut_off)

    assert migrate() == 1
    assert migrate.err.count("\n") == 1
    assert "[migrate] error: AWS refused or could not be reached" in migrate.err
    assert "run the command again to finish" in migrate.err
    assert f"[migrate] {stopped} before it stopped" in migrate.out
    for tenant in REGISTERED:
        assert_each_item_in_exactly_one_layout(tenant)

    sent["failing"] = False
    migrate.ok()
    assert [data_of(tenant) for tenant in ALL] == uninterrupted
    for tenant in REGISTERED:
        assert_migrated(tenant)

    calls.clear()
    out = migrate.ok()
    assert "TransactWriteItems" not in calls
    assert out.splitlines()[-1] == "[migrate] nothing to move: no legacy items left for 2 tenant(s)"
    assert "[migrate] acme idempotency records: 0 moved, 0 kept newer, 0 dropped expired, 0 dropped orphaned" in out


def test_throttling_that_outlasts_the_retries_exits_non_zero_with_one_line(
    migrate: Migrate, monkeypatch: pytest.MonkeyPatch
):
    def throttled(name: str, params: dict[str, Any], original: Callable[..., Any]) -> Any:
        if name == "TransactWriteItems":
            error = {"Error": {"Code": "ThrottlingException", "Message": "Rate of requests exceeds the allowed"}}
            raise ClientError(error, name)
        return original(name, params)

    intercept(monkeypatch, throttled)
    assert migrate() == 1
    assert migrate.err.count("\n") == 1
    assert "ThrottlingException" in migrate.err and "run the command again" in migrate.err
    assert len(legacy_left(ACME)) == len(ACME.items())


def test_a_cancelled_move_that_stays_busy_is_retried_then_reported(migrate: Migrate, monkeypatch: pytest.MonkeyPatch):
    def conflicted(name: str, params: dict[str, Any], original: Callable[..., Any]) -> Any:
        if name == "TransactWriteItems":
            reasons = [{"Code": "TransactionConflict"} for _ in params["TransactItems"]]
            error = {
                "Error": {"Code": "TransactionCanceledException", "Message": "busy"},
                "CancellationReasons": reasons,
            }
            raise ClientError(error, name)
        return original(name, params)

    intercept(monkeypatch, conflicted)
    assert migrate() == 1
    assert "[migrate] error: DynamoDB kept cancelling moves as busy or throttled; run the command again" in migrate.err


def test_a_batch_refused_for_one_item_is_moved_one_by_one_and_the_item_at_fault_is_named(
    migrate: Migrate, monkeypatch: pytest.MonkeyPatch
):
    oversized = {"S": "prod-007"}

    def refuse_one(name: str, params: dict[str, Any], original: Callable[..., Any]) -> Any:
        puts = [action["Put"]["Item"] for action in params.get("TransactItems", []) if "Put" in action]
        if name == "TransactWriteItems" and any(item.get("product_id") == oversized for item in puts):
            error = {"Error": {"Code": "ValidationException", "Message": "Item size has exceeded the maximum"}}
            raise ClientError(error, name)
        return original(name, params)

    intercept(monkeypatch, refuse_one)
    assert migrate() == 1
    assert migrate.err == (
        "[migrate] error: DynamoDB refused the move of product prod-007: Item size has exceeded the maximum\n"
    )
    assert "[migrate] acme products: 6 moved, 0 kept newer before it stopped" in migrate.out
    left = [item["SK"]["S"] for item in legacy_left(ACME) if item["PK"]["S"] == keys.legacy_product_partition("acme")]
    assert left == [f"PRODUCT#prod-{number:03d}" for number in range(7, ACME.products + 1)]

    oversized = {"S": "none"}  # the operator trimmed the item: now the rerun finishes
    migrate.ok()
    assert_migrated(ACME)


def test_a_missing_table_is_reported_with_what_to_do(migrate: Migrate):
    client("dynamodb").delete_table(TableName=TABLE)
    assert migrate() == 1
    assert migrate.err == (
        "[migrate] error: the table tenant-api-dev does not exist in us-east-1; "
        "run `python -m scripts.deploy.bootstrap --stage dev` first\n"
    )


# --- items the new code wrote first ---------------------------------------------------------


def test_a_product_already_in_the_new_layout_is_kept_and_its_legacy_copy_removed(migrate: Migrate):
    provision.ensure_indexes(client("dynamodb"), TABLE)
    newer = Product("prod-003", "acme widget 3, renamed", Decimal("4.50"), "USD", stock=99)
    CatalogRepository("acme", dynamodb_client()).put(newer)

    out = migrate.ok()

    assert "[migrate] acme products: 29 moved, 1 kept newer" in out
    assert "[migrate] table tenant-api-dev: indexes (catalog) present" in out
    assert CatalogRepository("acme", dynamodb_client()).get("prod-003") == newer
    products = every_page(CatalogRepository("acme", dynamodb_client()).list)
    assert products == [newer if p.product_id == "prod-003" else p for p in (ACME.product(n) for n in range(1, 31))]
    assert legacy_left(ACME) == []
    # The rest of its transaction was cancelled with it, and moved one by one.
    assert len([item for item in data_of(ACME) if item["SK"]["S"] == keys.PRODUCT_SORT_KEY]) == ACME.products


def test_an_order_placed_by_the_new_code_before_the_migration_is_listed_with_the_migrated_ones(migrate: Migrate):
    provision.ensure_indexes(client("dynamodb"), TABLE)
    context = TenantContext("globex", "standard", frozenset())
    CatalogRepository("globex", dynamodb_client()).put(GLOBEX.product(1))
    placed, _ = services.place_order(
        context, repositories_for(context), OrderRequest((OrderLineRequest("prod-001", 1),)), "after-the-deploy"
    )

    migrate.ok()

    orders = every_page(OrderRepository("globex", dynamodb_client()).list)
    assert orders[0] == placed
    assert orders[1:] == [GLOBEX.order(number) for number in reversed(range(GLOBEX.orders))]
    replayed, replay = services.place_order(
        context, repositories_for(context), OrderRequest((OrderLineRequest("prod-001", 1),)), "after-the-deploy"
    )
    assert (replayed, replay) == (placed, True)


# --- legacy items the legacy code changes while they move -----------------------------------


def change_legacy_item(key: dict[str, str], **values: Any) -> None:
    """What a Lambda of the legacy code, still running right after the deploy, writes to a legacy item."""
    names = sorted(values)
    client("dynamodb").update_item(
        TableName=TABLE,
        Key=to_item(key),
        UpdateExpression="SET " + ", ".join(f"#{name} = :{name}" for name in names),
        ExpressionAttributeNames={f"#{name}": name for name in names},
        ExpressionAttributeValues=to_item({f":{name}": values[name] for name in names}),
    )


def deletes_of(params: dict[str, Any]) -> list[dict[str, Any]]:
    return [action["Delete"]["Key"] for action in params.get("TransactItems", []) if "Delete" in action]


def test_a_sale_by_the_legacy_code_between_the_read_and_the_move_moves_with_the_product(
    migrate: Migrate, monkeypatch: pytest.MonkeyPatch
):
    product = ACME.product(3)
    legacy_key = keys.legacy_product_key("acme", product.product_id)
    sold = []

    def sell_before_the_first_move(name: str, params: dict[str, Any], original: Callable[..., Any]) -> Any:
        if name == "TransactWriteItems" and not sold:
            # The page was read with the old stock; the sale lands just before the transaction.
            change_legacy_item(legacy_key, stock=product.stock - 2)
            sold.append(product.product_id)
        return original(name, params)

    intercept(monkeypatch, sell_before_the_first_move)
    out = migrate.ok()

    assert sold == [product.product_id]
    assert CatalogRepository("acme", dynamodb_client()).get(product.product_id) == replace(
        product, stock=product.stock - 2
    )
    assert "[migrate] acme products: 30 moved, 0 kept newer" in out
    assert "already gone" not in out
    assert legacy_left(ACME) == []
    products = every_page(CatalogRepository("acme", dynamodb_client()).list)
    assert len(products) == ACME.products
    assert [p for p in products if p.product_id != product.product_id] == [
        ACME.product(number) for number in range(1, ACME.products + 1) if number != 3
    ]


def test_an_item_that_keeps_changing_is_tried_a_bounded_number_of_times_and_left_for_a_rerun(
    migrate: Migrate, monkeypatch: pytest.MonkeyPatch
):
    product = ACME.product(3)
    legacy_key = to_item(keys.legacy_product_key("acme", product.product_id))
    stock = [product.stock]

    def sell_before_every_move(name: str, params: dict[str, Any], original: Callable[..., Any]) -> Any:
        if name == "TransactWriteItems" and legacy_key in deletes_of(params) and stock[0] > 0:
            stock[0] -= 1
            change_legacy_item(keys.legacy_product_key("acme", product.product_id), stock=stock[0])
        return original(name, params)

    intercept(monkeypatch, sell_before_every_move)
    assert migrate() == 1
    assert migrate.err == (
        "[migrate] error: product prod-003 kept changing while it was moved; run the command again\n"
    )
    assert CatalogRepository("acme", dynamodb_client()).get(product.product_id) is None, "nothing stale was written"
    assert "[migrate] acme products: 2 moved, 0 kept newer before it stopped" in migrate.out
    left = [item["SK"]["S"] for item in legacy_left(ACME) if item["PK"]["S"] == keys.legacy_product_partition("acme")]
    assert left == [f"PRODUCT#prod-{number:03d}" for number in range(3, ACME.products + 1)]
    # Its batch, then the move alone, then one move after each fresh read.
    assert product.stock - stock[0] == 2 + migrate_layout.MAX_ATTEMPTS

    latest, stock[0] = stock[0], 0  # the legacy Lambdas are gone: the rerun moves the latest stock
    migrate.ok()
    assert CatalogRepository("acme", dynamodb_client()).get(product.product_id) == replace(product, stock=latest)
    assert legacy_left(ACME) == []


def test_a_record_the_legacy_code_rebinds_to_another_order_during_the_move_moves_with_its_new_order(
    migrate: Migrate, monkeypatch: pytest.MonkeyPatch
):
    # The key's record expired, and the legacy code bound the key to a new order, between the read and the move.
    digest = hashlib.sha256(ACME.idempotency_key(0).encode()).hexdigest()
    legacy_key = keys.legacy_idempotency_key("acme", digest)
    rebound = ACME.order(40)
    done = []

    def rebind_before_the_move(name: str, params: dict[str, Any], original: Callable[..., Any]) -> Any:
        if name == "TransactWriteItems" and to_item(legacy_key) in deletes_of(params) and not done:
            change_legacy_item(
                legacy_key,
                order_id=rebound.order_id,
                fingerprint=ACME.request(40).fingerprint(),
                expires_at=NOW + 2 * DAY,
            )
            done.append(digest)
        return original(name, params)

    intercept(monkeypatch, rebind_before_the_move)
    out = migrate.ok()

    assert done == [digest]
    assert "[migrate] acme idempotency records: 5 moved, 0 kept newer, 2 dropped expired, 2 dropped orphaned" in out
    context = TenantContext("acme", "basic", frozenset())
    replayed = services.place_order(context, repositories_for(context), ACME.request(40), ACME.idempotency_key(0))
    assert replayed == (rebound, True)
    marked = {item["order_id"]["S"] for item in data_of(ACME) if "idempotency_key_digest" in item}
    assert marked == {rebound.order_id, *(ACME.order(number).order_id for number in ACME.live if number != 0)}
    assert legacy_left(ACME) == []
