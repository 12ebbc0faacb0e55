"""Idempotent provisioning and seed data against moto: table, user pool, usage plans, tenants and their catalogs."""

from __future__ import annotations

import base64
import functools
import http.client
import json
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Iterator

import boto3
import pytest

from chalicelib.store import schema
from chalicelib.store.catalog import CatalogRepository
from chalicelib.store.dynamodb import dynamodb_client
from chalicelib.store.registry import ACTIVE, SUSPENDED, TenantRegistry
from chalicelib.tenancy import SCOPES
from chalicelib.tiers import TIERS
from scripts import provision
from scripts.local.token_server import TokenServer
from scripts.tenants import seed
from tests.support.api import Api
from tests.support.settings import Environment
from tests.support.tenants import RESOURCE_SERVER, TABLE_NAME

PREFIX = "tenant-api-test"
POOL_NAME = f"{PREFIX}-pool"
FULL_SCOPES = [f"{RESOURCE_SERVER}/{scope}" for scope in SCOPES]
MUTATING = ("Create", "Update", "Delete", "Put", "TransactWrite", "BatchWrite")


@functools.lru_cache(maxsize=None)
def boto3_client(service: str) -> Any:
    """One client per service for the module (making one costs ~60 ms); moto's state is per test."""
    return boto3.client(service, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")


@dataclass
class Clients:
    """The boto3 clients provisioning takes, recording the operations they call."""

    dynamodb: Any
    cognito: Any
    apigateway: Any
    calls: list[str] = field(default_factory=list)

    def mutations(self) -> list[str]:
        """The operations called so far that create, change or delete something."""
        return [name for name in self.calls if name.startswith(MUTATING)]


@pytest.fixture
def clients(aws: None) -> Iterator[Clients]:
    recorded = Clients(boto3_client("dynamodb"), boto3_client("cognito-idp"), boto3_client("apigateway"))

    def record(model: Any, **_: Any) -> None:
        recorded.calls.append(model.name)

    for client in (recorded.dynamodb, recorded.cognito, recorded.apigateway):
        client.meta.events.register("before-call", record, unique_id="test-provision-recorder")
    yield recorded
    for client in (recorded.dynamodb, recorded.cognito, recorded.apigateway):
        client.meta.events.unregister("before-call", unique_id="test-provision-recorder")


@dataclass(frozen=True)
class Shared:
    """What the tenants are onboarded into."""

    pool_id: str
    scopes: list[str]
    plan_ids: dict[str, str]


def provision_shared(clients: Clients, api_stages: tuple[str, ...] = ()) -> Shared:
    provision.ensure_table(clients.dynamodb, TABLE_NAME)
    provision.ensure_ttl(clients.dynamodb, TABLE_NAME)
    pool_id = provision.ensure_user_pool(clients.cognito, POOL_NAME)
    scopes = provision.ensure_resource_server(clients.cognito, pool_id, RESOURCE_SERVER)
    plan_ids = provision.ensure_usage_plans(clients.apigateway, PREFIX, api_stages)
    return Shared(pool_id, scopes, plan_ids)


def onboard(clients: Clients, shared: Shared, tenant_id: str, tier: str, display_name: str = "") -> Any:
    return provision.onboard_tenant(
        clients.cognito,
        clients.apigateway,
        TenantRegistry(),
        pool_id=shared.pool_id,
        scopes=shared.scopes,
        plan_ids=shared.plan_ids,
        key_prefix=PREFIX,
        tenant_id=tenant_id,
        tier=tier,
        display_name=display_name,
    )


def provision_everything(clients: Clients) -> tuple[Shared, list[Any]]:
    """What the local stack provisions: shared resources, the seed tenants and their catalogs."""
    shared = provision_shared(clients)
    onboarded = []
    for tenant in seed.SEED_TENANTS:
        onboarded.append(onboard(clients, shared, tenant.tenant_id, tenant.tier, tenant.display_name))
        seed.write_catalog(tenant.tenant_id)
    return shared, onboarded


def keys_in_plan(clients: Clients, plan_id: str) -> set[str]:
    return {key["id"] for key in clients.apigateway.get_usage_plan_keys(usagePlanId=plan_id)["items"]}


def undated(document: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in document.items() if "Date" not in name and name != "ResponseMetadata"}


def snapshot(clients: Clients) -> dict[str, Any]:
    """Everything provisioning creates, read back through the APIs (dates left out)."""
    cognito, apigateway, dynamodb = clients.cognito, clients.apigateway, clients.dynamodb
    pools = cognito.list_user_pools(MaxResults=60)["UserPools"]
    app_clients, resource_servers = {}, {}
    for pool in pools:
        listed_servers = cognito.list_resource_servers(UserPoolId=pool["Id"], MaxResults=50)
        resource_servers[pool["Id"]] = listed_servers["ResourceServers"]
        for listed in cognito.list_user_pool_clients(UserPoolId=pool["Id"], MaxResults=60)["UserPoolClients"]:
            described = cognito.describe_user_pool_client(UserPoolId=pool["Id"], ClientId=listed["ClientId"])
            app_clients[listed["ClientId"]] = undated(described["UserPoolClient"])
    plans = sorted(apigateway.get_usage_plans()["items"], key=lambda plan: plan["name"])
    api_keys = apigateway.get_api_keys(includeValues=True)["items"]
    items = dynamodb.scan(TableName=TABLE_NAME, ConsistentRead=True)["Items"]
    return {
        "table": undated(dynamodb.describe_table(TableName=TABLE_NAME)["Table"]),
        "ttl": dynamodb.describe_time_to_live(TableName=TABLE_NAME)["TimeToLiveDescription"],
        "pools": sorted((pool["Name"], pool["Id"]) for pool in pools),
        "resource_servers": resource_servers,
        "app_clients": app_clients,
        "plans": plans,
        "plan_keys": {plan["name"]: sorted(keys_in_plan(clients, plan["id"])) for plan in plans},
        "api_keys": sorted(
            ({k: v for k, v in key.items() if k not in ("createdDate", "lastUpdatedDate")} for key in api_keys),
            key=lambda key: key["name"],
        ),
        "items": sorted(items, key=lambda item: (item["PK"]["S"], item["SK"]["S"])),
    }


# --- the table ---------------------------------------------------------------------------------


def test_ensure_table_creates_the_table_of_the_schema_with_ttl_on(clients: Clients):
    provision.ensure_table(clients.dynamodb, TABLE_NAME)
    provision.ensure_ttl(clients.dynamodb, TABLE_NAME)
    table = clients.dynamodb.describe_table(TableName=TABLE_NAME)["Table"]
    wanted = schema.table_definition(TABLE_NAME)
    assert table["TableStatus"] == "ACTIVE"
    assert table["KeySchema"] == wanted["KeySchema"]
    assert sorted(table["AttributeDefinitions"], key=str) == sorted(wanted["AttributeDefinitions"], key=str)
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSEDescription"]["Status"] == "ENABLED"
    ttl = clients.dynamodb.describe_time_to_live(TableName=TABLE_NAME)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": schema.TTL_ATTRIBUTE}
    assert clients.mutations() == ["CreateTable", "UpdateTimeToLive"]


def test_ensure_table_and_ttl_leave_an_existing_table_alone(clients: Clients):
    provision.ensure_table(clients.dynamodb, TABLE_NAME)
    provision.ensure_ttl(clients.dynamodb, TABLE_NAME)
    clients.calls.clear()
    provision.ensure_table(clients.dynamodb, TABLE_NAME)
    provision.ensure_ttl(clients.dynamodb, TABLE_NAME)
    assert clients.mutations() == []
    assert clients.dynamodb.list_tables()["TableNames"] == [TABLE_NAME]


def test_ttl_on_another_attribute_is_refused_with_what_to_do(clients: Clients):
    provision.ensure_table(clients.dynamodb, TABLE_NAME)
    clients.dynamodb.update_time_to_live(
        TableName=TABLE_NAME, TimeToLiveSpecification={"Enabled": True, "AttributeName": "purge_at"}
    )
    clients.calls.clear()
    with pytest.raises(provision.ProvisioningError, match="TTL on 'purge_at'.*Enabled=false,AttributeName=purge_at"):
        provision.ensure_ttl(clients.dynamodb, TABLE_NAME)
    assert clients.mutations() == []


LEGACY_KEY_SCHEMA = [{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}]


def create_legacy_table(dynamodb: Any, **extra: Any) -> None:
    """The table as it was before the catalog index joined the schema: its key only."""
    dynamodb.create_table(
        TableName=TABLE_NAME,
        KeySchema=LEGACY_KEY_SCHEMA,
        AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in ("PK", "SK")],
        SSESpecification={"Enabled": True},
        **({"BillingMode": "PAY_PER_REQUEST"} | extra),
    )


def test_a_table_made_before_the_catalog_index_gets_it_filled_with_the_products_it_holds(clients: Clients):
    create_legacy_table(clients.dynamodb)
    product = seed.seed_products("tenant-basic")[0]
    CatalogRepository("tenant-basic", dynamodb_client()).put(product)
    clients.calls.clear()

    assert provision.ensure_indexes(clients.dynamodb, TABLE_NAME) == [schema.catalog_index_definition()["IndexName"]]

    assert clients.mutations() == ["UpdateTable"]
    table = clients.dynamodb.describe_table(TableName=TABLE_NAME)["Table"]
    (index,) = table["GlobalSecondaryIndexes"]
    wanted = schema.catalog_index_definition()
    assert (index["IndexName"], index["IndexStatus"]) == (wanted["IndexName"], "ACTIVE")
    assert (index["KeySchema"], index["Projection"]) == (wanted["KeySchema"], wanted["Projection"])
    assert table["KeySchema"] == LEGACY_KEY_SCHEMA
    expected = schema.table_definition(TABLE_NAME)["AttributeDefinitions"]
    assert sorted(table["AttributeDefinitions"], key=str) == sorted(expected, key=str)
    assert CatalogRepository("tenant-basic", dynamodb_client()).list(10)[0] == [product]

    clients.calls.clear()
    assert provision.ensure_indexes(clients.dynamodb, TABLE_NAME) == []
    assert clients.mutations() == []


def test_ensure_indexes_leaves_a_table_of_the_schema_alone(clients: Clients):
    provision.ensure_table(clients.dynamodb, TABLE_NAME)
    clients.calls.clear()
    assert provision.missing_indexes(clients.dynamodb, TABLE_NAME) == []
    assert provision.ensure_indexes(clients.dynamodb, TABLE_NAME) == []
    assert clients.mutations() == []


def test_an_index_of_the_same_name_but_another_shape_is_refused_with_what_to_do(clients: Clients):
    definition = schema.table_definition(TABLE_NAME)
    keys_only = {**schema.catalog_index_definition(), "Projection": {"ProjectionType": "KEYS_ONLY"}}
    clients.dynamodb.create_table(**{**definition, "GlobalSecondaryIndexes": [keys_only]})
    clients.calls.clear()
    with pytest.raises(provision.ProvisioningError, match="index 'catalog' that differs from chalicelib.store.schema"):
        provision.ensure_indexes(clients.dynamodb, TABLE_NAME)
    assert clients.mutations() == []


def test_a_provisioned_table_gives_the_new_index_its_own_capacity(clients: Clients, monkeypatch):
    capacity = {"ReadCapacityUnits": 7, "WriteCapacityUnits": 3}
    create_legacy_table(clients.dynamodb, BillingMode="PROVISIONED", ProvisionedThroughput=capacity)
    sent: list[dict[str, Any]] = []
    update_table = clients.dynamodb.update_table
    monkeypatch.setattr(
        clients.dynamodb, "update_table", lambda **kwargs: sent.append(kwargs) or update_table(**kwargs)
    )
    provision.ensure_indexes(clients.dynamodb, TABLE_NAME)
    (created,) = [update["Create"] for update in sent[0]["GlobalSecondaryIndexUpdates"]]
    assert created["ProvisionedThroughput"] == capacity


class FillingIndex:
    """A DynamoDB client whose table has the catalog index, still being filled for a number of looks."""

    def __init__(self, looks: int):
        self.looks = looks

    def describe_table(self, **_: Any) -> dict[str, Any]:
        self.looks -= 1
        status = "CREATING" if self.looks >= 0 else "ACTIVE"
        index = {**schema.catalog_index_definition(), "IndexStatus": status}
        return {"Table": {"TableStatus": "ACTIVE", "GlobalSecondaryIndexes": [index]}}


def test_ensure_indexes_waits_while_dynamodb_fills_an_index():
    sleeps: list[float] = []
    provision.ensure_indexes(FillingIndex(looks=3), TABLE_NAME, poll_seconds=5, sleep=sleeps.append)
    # The look that finds the index and the next two see it filling; the fourth sees it ACTIVE.
    assert sleeps == [5, 5]


def test_an_index_still_filling_after_the_wait_is_reported_as_run_again_later():
    sleeps: list[float] = []
    with pytest.raises(provision.ProvisioningError, match="catalog CREATING.*run this again later"):
        provision.ensure_indexes(
            FillingIndex(looks=100), TABLE_NAME, poll_seconds=5, max_wait_seconds=20, sleep=sleeps.append
        )
    assert sleeps == [5, 5, 5, 5]


# --- user pool and resource server ------------------------------------------------------------


def test_the_user_pool_and_resource_server_carry_the_apps_scopes(clients: Clients):
    pool_id = provision.ensure_user_pool(clients.cognito, POOL_NAME)
    scopes = provision.ensure_resource_server(clients.cognito, pool_id, RESOURCE_SERVER)
    assert scopes == FULL_SCOPES
    pool = clients.cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    assert pool["Name"] == POOL_NAME
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    server = clients.cognito.describe_resource_server(UserPoolId=pool_id, Identifier=RESOURCE_SERVER)["ResourceServer"]
    assert [scope["ScopeName"] for scope in server["Scopes"]] == list(SCOPES)

    clients.calls.clear()
    assert provision.ensure_user_pool(clients.cognito, POOL_NAME) == pool_id
    assert provision.ensure_resource_server(clients.cognito, pool_id, RESOURCE_SERVER) == FULL_SCOPES
    assert clients.mutations() == []
    assert [pool["Id"] for pool in clients.cognito.list_user_pools(MaxResults=60)["UserPools"]] == [pool_id]


def test_a_protected_pool_is_created_protected(clients: Clients):
    pool_id = provision.ensure_user_pool(clients.cognito, POOL_NAME, deletion_protection=True)
    assert clients.cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]["DeletionProtection"] == "ACTIVE"
    clients.calls.clear()
    provision.ensure_user_pool_deletion_protection(clients.cognito, pool_id)
    assert clients.mutations() == []


def test_protecting_an_existing_pool_keeps_its_other_settings(clients: Clients):
    pool_id = provision.ensure_user_pool(clients.cognito, POOL_NAME, tags={"stage": "prod"})
    before = clients.cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    assert before.get("DeletionProtection", "INACTIVE") == "INACTIVE"

    provision.ensure_user_pool_deletion_protection(clients.cognito, pool_id)

    after = clients.cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    assert after["DeletionProtection"] == "ACTIVE"
    # UpdateUserPool resets what it is not given: the pool's own settings went back with the change.
    assert after["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert after["UserPoolTags"] == {"stage": "prod"}
    assert after["Policies"] == before["Policies"]


def test_a_resource_server_missing_a_scope_is_updated_with_all_of_them(clients: Clients, monkeypatch):
    pool_id = provision.ensure_user_pool(clients.cognito, POOL_NAME)
    provision.ensure_resource_server(clients.cognito, pool_id, RESOURCE_SERVER, scopes=SCOPES[:1])
    # moto has no UpdateResourceServer: record what would be sent.
    updates: list[dict[str, Any]] = []
    monkeypatch.setattr(clients.cognito, "update_resource_server", lambda **kwargs: updates.append(kwargs))
    assert provision.ensure_resource_server(clients.cognito, pool_id, RESOURCE_SERVER) == FULL_SCOPES
    assert len(updates) == 1
    assert (updates[0]["UserPoolId"], updates[0]["Identifier"]) == (pool_id, RESOURCE_SERVER)
    assert [scope["ScopeName"] for scope in updates[0]["Scopes"]] == list(SCOPES)


# --- usage plans ------------------------------------------------------------------------------


def test_one_usage_plan_per_tier_with_its_rate_burst_and_monthly_quota(clients: Clients):
    plan_ids = provision.ensure_usage_plans(clients.apigateway, PREFIX)
    assert set(plan_ids) == set(TIERS)
    plans = {plan["id"]: plan for plan in clients.apigateway.get_usage_plans()["items"]}
    assert set(plans) == set(plan_ids.values())
    for tier in TIERS.values():
        plan = plans[plan_ids[tier.name]]
        assert plan["name"] == f"{PREFIX}-{tier.name}"
        assert float(plan["throttle"]["rateLimit"]) == tier.rate_per_second
        assert int(plan["throttle"]["burstLimit"]) == tier.burst
        assert int(plan["quota"]["limit"]) == tier.monthly_quota
        assert plan["quota"]["period"] == "MONTH"


def test_usage_plans_are_made_once_and_repaired_when_they_drift(clients: Clients):
    plan_ids = provision.ensure_usage_plans(clients.apigateway, PREFIX)
    clients.calls.clear()
    assert provision.ensure_usage_plans(clients.apigateway, PREFIX) == plan_ids
    assert clients.mutations() == []

    clients.apigateway.update_usage_plan(
        usagePlanId=plan_ids["standard"],
        patchOperations=[
            {"op": "replace", "path": "/throttle/rateLimit", "value": "5"},
            {"op": "replace", "path": "/quota/limit", "value": "7"},
        ],
    )
    clients.calls.clear()
    assert provision.ensure_usage_plans(clients.apigateway, PREFIX) == plan_ids
    assert clients.mutations() == ["UpdateUsagePlan"]
    plan = clients.apigateway.get_usage_plan(usagePlanId=plan_ids["standard"])
    assert float(plan["throttle"]["rateLimit"]) == TIERS["standard"].rate_per_second
    assert int(plan["quota"]["limit"]) == TIERS["standard"].monthly_quota


def test_usage_plans_are_bound_to_a_deployed_stage_once(clients: Clients):
    provision.ensure_usage_plans(clients.apigateway, PREFIX)
    stage = "a1b2c3d4e5:api"
    plan_ids = provision.ensure_usage_plans(clients.apigateway, PREFIX, [stage])
    provision.ensure_usage_plans(clients.apigateway, PREFIX, [stage])
    for plan_id in plan_ids.values():
        plan = clients.apigateway.get_usage_plan(usagePlanId=plan_id)
        assert plan["apiStages"] == [{"apiId": "a1b2c3d4e5", "stage": "api"}]


# --- tenants ----------------------------------------------------------------------------------


def test_onboarding_gives_a_client_credentials_app_client_an_api_key_in_its_plan_and_a_record(clients: Clients):
    shared = provision_shared(clients)
    credentials = onboard(clients, shared, "tenant-basic", "basic", "Corner Hardware")

    app_client = clients.cognito.describe_user_pool_client(UserPoolId=shared.pool_id, ClientId=credentials.client_id)[
        "UserPoolClient"
    ]
    assert app_client["ClientName"] == "tenant-basic"
    assert app_client["AllowedOAuthFlows"] == ["client_credentials"]
    assert app_client["AllowedOAuthFlowsUserPoolClient"] is True
    assert app_client["AllowedOAuthScopes"] == FULL_SCOPES
    assert app_client["ClientSecret"] == credentials.client_secret and credentials.client_secret

    key = clients.apigateway.get_api_key(apiKey=credentials.api_key_id, includeValue=True)
    assert key["name"] == f"{PREFIX}-tenant-basic"
    assert key["enabled"] is True
    assert {tier: keys_in_plan(clients, plan_id) for tier, plan_id in shared.plan_ids.items()} == {
        "basic": {credentials.api_key_id},
        "standard": set(),
        "premium": set(),
    }

    record = TenantRegistry().find_by_client_id(credentials.client_id)
    assert record is not None
    assert (record.tenant_id, record.tier, record.status) == ("tenant-basic", "basic", ACTIVE)
    assert record.client_id == credentials.client_id
    assert record.api_key_id == credentials.api_key_id
    assert record.api_key_value == key["value"]
    assert record.display_name == "Corner Hardware"


def test_each_tenant_has_its_own_client_and_key(clients: Clients):
    _, onboarded = provision_everything(clients)
    assert len({c.client_id for c in onboarded}) == len({c.api_key_id for c in onboarded}) == len(seed.SEED_TENANTS)
    registry = TenantRegistry()
    for tenant, credentials in zip(seed.SEED_TENANTS, onboarded):
        record = registry.find_by_client_id(credentials.client_id)
        assert (record.tenant_id, record.tier) == (tenant.tenant_id, tenant.tier)


def test_running_everything_twice_changes_nothing(clients: Clients):
    shared, onboarded = provision_everything(clients)
    before = snapshot(clients)
    clients.calls.clear()

    shared_again, onboarded_again = provision_everything(clients)

    assert shared_again == shared
    assert onboarded_again == onboarded
    # Only the app clients are rewritten (with the same settings); nothing is created or deleted.
    assert sorted(set(clients.mutations())) == ["UpdateUserPoolClient"]
    after = snapshot(clients)
    assert after == before
    assert len(after["app_clients"]) == len(after["api_keys"]) == len(seed.SEED_TENANTS)
    assert len(after["plans"]) == len(TIERS)
    assert len(after["items"]) == len(seed.SEED_TENANTS) * (2 + len(seed.CATALOGS["tenant-basic"]))


def test_a_tier_change_moves_the_same_key_to_the_new_plan(clients: Clients):
    shared = provision_shared(clients)
    first = onboard(clients, shared, "tenant-mover", "basic")
    moved = onboard(clients, shared, "tenant-mover", "premium")
    assert (moved.client_id, moved.client_secret, moved.api_key_id) == (
        first.client_id,
        first.client_secret,
        first.api_key_id,
    )
    assert keys_in_plan(clients, shared.plan_ids["basic"]) == set()
    assert keys_in_plan(clients, shared.plan_ids["standard"]) == set()
    assert keys_in_plan(clients, shared.plan_ids["premium"]) == {first.api_key_id}
    assert TenantRegistry().find_by_client_id(first.client_id).tier == "premium"


def test_attach_api_key_puts_the_key_in_its_plan_even_when_the_others_do_not_name_it(clients: Clients):
    plan_ids = provision.ensure_usage_plans(clients.apigateway, PREFIX)
    key = provision.ensure_api_key(clients.apigateway, f"{PREFIX}-loose")
    provision.attach_api_key(clients.apigateway, key.key_id, plan_ids["basic"], plan_ids.values())
    provision.attach_api_key(clients.apigateway, key.key_id, plan_ids["premium"], (plan_ids["basic"],))
    assert keys_in_plan(clients, plan_ids["premium"]) == {key.key_id}
    assert keys_in_plan(clients, plan_ids["basic"]) == set()
    assert provision.ensure_api_key(clients.apigateway, f"{PREFIX}-loose") == key


def test_onboarding_again_keeps_a_suspension_and_the_display_name(clients: Clients):
    shared = provision_shared(clients)
    credentials = onboard(clients, shared, "tenant-held", "standard", "Held Ltd")
    registry = TenantRegistry()
    registry.put(registry.get("tenant-held").with_changes(status=SUSPENDED))
    onboard(clients, shared, "tenant-held", "standard")
    record = registry.find_by_client_id(credentials.client_id)
    assert (record.status, record.display_name) == (SUSPENDED, "Held Ltd")


def test_an_unknown_tier_is_refused_before_anything_is_made(clients: Clients):
    shared = provision_shared(clients)
    clients.calls.clear()
    with pytest.raises(ValueError, match="unknown tier 'gold'"):
        onboard(clients, shared, "tenant-gold", "gold")
    assert clients.calls == []
    assert TenantRegistry().get("tenant-gold") is None


# --- seed catalogs ----------------------------------------------------------------------------


def test_seed_products_land_per_tenant_with_their_own_names_and_prices(clients: Clients):
    provision.ensure_table(clients.dynamodb, TABLE_NAME)
    for tenant in seed.SEED_TENANTS:
        assert seed.write_catalog(tenant.tenant_id) == 12

    catalogs = {
        tenant.tenant_id: CatalogRepository(tenant.tenant_id, dynamodb_client()).list(100)[0]
        for tenant in seed.SEED_TENANTS
    }
    for tenant_id, products in catalogs.items():
        assert [p.product_id for p in products] == [f"prod-{n:03d}" for n in range(1, 13)]
        for product in products:
            name, price = seed.CATALOGS[tenant_id][product.product_id]
            assert (product.name, product.price, product.currency, product.stock) == (name, Decimal(price), "USD", 100)
    firsts = [catalogs[tenant.tenant_id][0] for tenant in seed.SEED_TENANTS]
    assert len({p.name for p in firsts}) == len({p.price for p in firsts}) == len(seed.SEED_TENANTS)
    assert catalogs["tenant-basic"][0].price == Decimal("12.99")
    assert catalogs["tenant-premium"][0].name == "Trail Running Shoes"


def test_writing_a_seed_catalog_again_resets_it_without_duplicates(clients: Clients):
    provision.ensure_table(clients.dynamodb, TABLE_NAME)
    seed.write_catalog("tenant-standard")
    repository = CatalogRepository("tenant-standard", dynamodb_client())
    repository.put(replace(seed.seed_products("tenant-standard")[0], stock=3, price=Decimal("1.00")))
    assert seed.write_catalog("tenant-standard") == 12
    products, _ = repository.list(100)
    assert len(products) == 12
    assert (products[0].stock, products[0].price) == (100, Decimal("9.50"))
    assert CatalogRepository("tenant-basic", dynamodb_client()).list(100)[0] == []


# --- the pieces together ----------------------------------------------------------------------


def test_an_onboarded_tenant_calls_the_api_with_a_token_from_the_token_endpoint(clients: Clients, env: Environment):
    shared, onboarded = provision_everything(clients)
    premium = onboarded[2]
    server = TokenServer(clients.cognito, shared.pool_id)
    server.start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        authorization = base64.b64encode(f"{premium.client_id}:{premium.client_secret}".encode()).decode()
        connection.request(
            "POST",
            "/oauth2/token",
            b"grant_type=client_credentials",
            {"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Basic {authorization}"},
        )
        response = connection.getresponse()
        assert response.status == 200
        grant = json.loads(response.read())
        assert grant["expires_in"] == provision.ACCESS_TOKEN_MINUTES * 60
        token = grant["access_token"]
        connection.close()

        env.set(TOKEN_ISSUER=server.issuer.issuer)
        api = Api(server.issuer)
        reply = api.get("/catalog/prod-001", None, token=token)
        assert reply.status == 200, reply.body
        assert reply.json["tenant_id"] == "tenant-premium"
        assert (reply.json["name"], reply.json["price"]) == ("Trail Running Shoes", "139.00")
    finally:
        server.stop()
