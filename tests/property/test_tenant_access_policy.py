"""Every key a tenant's repository can produce fits that tenant's tenant-access policy, and no other tenant's.

IAM fills ${aws:PrincipalTag/TenantID} in from the session tag; here the policy is filled in the
same way (scripts.deploy.iam_permissions.with_principal_tags) and judged by the project's evaluator,
for keys Hypothesis chooses, including tenant ids that are prefixes of one another.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from chalicelib.models import Order, OrderLine, Product
from chalicelib.store import keys
from chalicelib.store.catalog import CatalogRepository
from chalicelib.store.orders import OrderRepository
from scripts import tenant_access_role
from scripts.deploy.iam_permissions import Permission, allows, required_permissions, with_principal_tags
from scripts.deploy.operation_recorder import Operation
from tests.support.tenants import TABLE_NAME

ACCOUNT = "123456789012"
TABLE = TABLE_NAME  # the repositories name the table the settings give them
POLICY = tenant_access_role.access_policy(f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{TABLE}")

TENANT_IDS = st.from_regex(keys.TENANT_ID, fullmatch=True)
PRODUCT_IDS = st.from_regex(keys.PRODUCT_ID, fullmatch=True)
ORDER_IDS = st.from_regex(keys.ORDER_ID, fullmatch=True)
DIGESTS = st.from_regex(keys.KEY_DIGEST, fullmatch=True)
AFTER_KEYS = st.none() | st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789#_-", max_size=40)


class RecordingDynamoDB:
    """Stands in for DynamoDB at the repository's edge: records each request and answers as an empty table does."""

    def __init__(self) -> None:
        self.operations: list[Operation] = []

    def _record(self, name: str, params: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
        self.operations.append(Operation("dynamodb", name, params, "us-east-1"))
        return answer

    def query(self, **params: Any) -> dict[str, Any]:
        return self._record("Query", params, {"Items": []})

    def get_item(self, **params: Any) -> dict[str, Any]:
        return self._record("GetItem", params, {})

    def batch_get_item(self, **params: Any) -> dict[str, Any]:
        return self._record("BatchGetItem", params, {"Responses": {}, "UnprocessedKeys": {}})

    def transact_write_items(self, **params: Any) -> dict[str, Any]:
        return self._record("TransactWriteItems", params, {})

    def put_item(self, **params: Any) -> dict[str, Any]:
        return self._record("PutItem", params, {})


def every_api_call(
    tenant_id: str, product_ids: list[str], order_id: str, digest: str, after: str | None
) -> list[Permission]:
    """What IAM checks for each call the API's repository methods make for tenant_id."""
    dynamodb = RecordingDynamoDB()
    catalog, orders = CatalogRepository(tenant_id, dynamodb), OrderRepository(tenant_id, dynamodb)
    catalog.list(10, after)
    catalog.get(product_ids[0])
    orders.list(10, after)
    orders.get(order_id)
    orders.read_inputs(product_ids, digest)
    orders.read_inputs(product_ids, None)
    orders.get_idempotency_record(digest)
    lines = tuple(OrderLine(product_id, "name", 1, Decimal("1.00")) for product_id in product_ids)
    order = Order(order_id, lines, "USD", "2026-12-03T00:00:00.000Z")
    orders.place(order, digest, "fingerprint")
    orders.place(order)
    return [permission for operation in dynamodb.operations for permission in required_permissions(operation, ACCOUNT)]


def allowed_for(tenant_id: str, permission: Permission) -> bool:
    return allows(with_principal_tags(POLICY, {"TenantID": tenant_id}), permission)


@settings(max_examples=150, deadline=None)
@given(
    tenant=TENANT_IDS,
    other=TENANT_IDS,
    product_ids=st.lists(PRODUCT_IDS, min_size=1, max_size=5, unique=True),
    order_id=ORDER_IDS,
    digest=DIGESTS,
    after=AFTER_KEYS,
)
@example(tenant="ab", other="ab-c", product_ids=["p"], order_id="ord_" + "0" * 26, digest="0" * 64, after=None)
@example(tenant="ab-c", other="ab", product_ids=["p"], order_id="ord_" + "0" * 26, digest="0" * 64, after=None)
def test_every_call_of_a_tenants_repositories_is_allowed_for_it_and_denied_for_any_other(
    tenant: str, other: str, product_ids: list[str], order_id: str, digest: str, after: str | None
):
    assume(tenant != other)
    needed = every_api_call(tenant, product_ids, order_id, digest, after)
    assert {p.action for p in needed} == {
        "dynamodb:Query",
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:UpdateItem",
        "dynamodb:PutItem",
    }
    for permission in needed:
        assert permission.leading_keys, permission
        assert all(key.startswith(keys.tenant_prefix(tenant)) for key in permission.leading_keys)
        assert allowed_for(tenant, permission), permission
        assert not allowed_for(other, permission), (other, permission)


@settings(max_examples=100, deadline=None)
@given(tenant=TENANT_IDS, other=TENANT_IDS, product_id=PRODUCT_IDS)
def test_product_writes_are_the_operators_alone_even_under_the_tenants_own_prefix(
    tenant: str, other: str, product_id: str
):
    assume(tenant != other)
    dynamodb = RecordingDynamoDB()
    CatalogRepository(tenant, dynamodb).put(Product(product_id, "name", Decimal("1.00"), "USD", 1))
    [put] = [p for operation in dynamodb.operations for p in required_permissions(operation, ACCOUNT)]
    assert all(key.startswith(keys.tenant_prefix(tenant)) for key in put.leading_keys or ())
    assert not allowed_for(tenant, put) and not allowed_for(other, put)


@settings(max_examples=100, deadline=None)
@given(tenant=TENANT_IDS, other=TENANT_IDS, shard=st.integers(0, keys.CATALOG_SHARDS - 1))
def test_catalog_index_partitions_fit_only_their_tenant_and_only_on_the_index(tenant: str, other: str, shard: int):
    assume(tenant != other)
    table = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{TABLE}"
    partition = (keys.catalog_partition(tenant, shard),)
    on_index = Permission("dynamodb:Query", f"{table}/index/{keys.CATALOG_INDEX}", partition)
    assert allowed_for(tenant, on_index) and not allowed_for(other, on_index)
    # The index's key space is not one the table's items may be read under.
    assert not allowed_for(tenant, Permission("dynamodb:Query", table, partition))
    assert not allowed_for(tenant, Permission("dynamodb:GetItem", table, partition))


def test_a_call_naming_two_tenants_keys_is_denied_for_both():
    table = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{TABLE}"
    mixed = (keys.product_key("acme", "prod-001")["PK"], keys.product_key("globex", "prod-001")["PK"])
    batch = Permission("dynamodb:BatchGetItem", table, mixed)
    assert not allowed_for("acme", batch) and not allowed_for("globex", batch)


def test_registry_records_and_scans_are_out_of_reach_of_every_tenant_session():
    table = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{TABLE}"
    for key in (keys.tenant_meta_key("acme")["PK"], keys.client_lookup_key("acmeclient0001")["PK"]):
        for action in ("GetItem", "Query", "PutItem", "UpdateItem", "BatchGetItem"):
            assert not allowed_for("acme", Permission(f"dynamodb:{action}", table, (key,)))
    for action in ("Scan", "DeleteItem", "BatchWriteItem", "DescribeTable"):
        assert not allowed_for("acme", Permission(f"dynamodb:{action}", table, (keys.product_key("acme", "p")["PK"],)))


@settings(max_examples=100, deadline=None)
@given(tenant=TENANT_IDS, other=TENANT_IDS, product_id=PRODUCT_IDS, shard=st.integers(0, keys.CATALOG_SHARDS - 1))
def test_no_session_may_write_catalog_index_keys_onto_its_own_items(
    tenant: str, other: str, product_id: str, shard: int
):
    """LeadingKeys pins the item written; without the Deny, a session could list its item in another's catalog."""
    assume(tenant != other)
    own_product = (keys.product_key(tenant, product_id)["PK"],)
    injected = {keys.CATALOG_INDEX_PK: {"S": keys.catalog_partition(other, shard)}, keys.CATALOG_INDEX_SK: {"S": "x"}}
    dynamodb = RecordingDynamoDB()
    dynamodb.transact_write_items(
        TransactItems=[
            {
                "Update": {
                    "TableName": TABLE,
                    "Key": {"PK": {"S": own_product[0]}, "SK": {"S": keys.PRODUCT_SORT_KEY}},
                    "UpdateExpression": "SET #pk = :pk, stock = stock - :one",
                    "ExpressionAttributeNames": {"#pk": keys.CATALOG_INDEX_PK},
                    "ExpressionAttributeValues": {":pk": injected[keys.CATALOG_INDEX_PK], ":one": {"N": "1"}},
                }
            },
            {
                "Put": {
                    "TableName": TABLE,
                    "Item": {"PK": {"S": keys.order_partition(tenant, 0)}, "SK": {"S": "ORDER#x"}, **injected},
                }
            },
        ]
    )
    for permission in required_permissions(dynamodb.operations[0], ACCOUNT):
        assert permission.leading_keys and permission.leading_keys[0].startswith(keys.tenant_prefix(tenant))
        assert not allowed_for(tenant, permission), permission
