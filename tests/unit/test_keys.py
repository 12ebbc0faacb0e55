"""Unit tests of chalicelib.store.keys: every tenant key starts with TENANT#{id}# and bad ids never become keys."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.store import keys

ORDER_ID = "ord_01HZY3M9K8V6T5R4Q3P2N1M0AB"
DIGEST = hashlib.sha256(b"key").hexdigest()


def tenant_scoped_keys(tenant_id: str) -> list[dict[str, str]]:
    return [
        keys.product_key(tenant_id, "prod-001"),
        keys.order_key(tenant_id, ORDER_ID),
        keys.idempotency_key(tenant_id, DIGEST),
        {"PK": keys.catalog_index_key(tenant_id, "prod-001")[keys.CATALOG_INDEX_PK]},
    ]


@pytest.mark.parametrize("tenant_id", ["acme", "globex", "a", "t-1", "0" * 48])
def test_every_tenant_data_key_starts_with_the_tenant_prefix(tenant_id):
    for key in tenant_scoped_keys(tenant_id):
        assert key["PK"].startswith(f"TENANT#{tenant_id}#"), key
    assert keys.tenant_prefix(tenant_id) == f"TENANT#{tenant_id}#"
    for partition in keys.catalog_partitions(tenant_id) + keys.order_partitions(tenant_id):
        assert partition.startswith(f"TENANT#{tenant_id}#"), partition


def test_the_key_shapes_match_the_data_model():
    shard = keys.order_shard(ORDER_ID)
    assert keys.product_key("acme", "prod-001") == {"PK": "TENANT#acme#PRODUCT#prod-001", "SK": "PRODUCT"}
    assert keys.order_key("acme", ORDER_ID) == {"PK": f"TENANT#acme#ORDER#{shard:02d}", "SK": f"ORDER#{ORDER_ID}"}
    assert keys.tenant_meta_key("acme") == {"PK": "TENANT#acme", "SK": "META"}
    assert keys.client_lookup_key("abc_DEF-123") == {"PK": "CLIENT#abc_DEF-123", "SK": "TENANT"}
    assert keys.idempotency_key("acme", DIGEST) == {"PK": f"TENANT#acme#IDEMPOTENCY#{DIGEST}", "SK": "IDEMPOTENCY"}
    assert keys.catalog_index_key("acme", "prod-001") == {
        "CatalogPK": f"TENANT#acme#CATALOG#{keys.catalog_shard('prod-001'):02d}",
        "CatalogSK": "PRODUCT#prod-001",
    }


def test_the_legacy_key_shapes_are_the_ones_the_migration_moves_from():
    assert keys.legacy_product_key("acme", "prod-001") == {"PK": "TENANT#acme#PRODUCT", "SK": "PRODUCT#prod-001"}
    assert keys.legacy_order_key("acme", ORDER_ID) == {"PK": "TENANT#acme#ORDER", "SK": f"ORDER#{ORDER_ID}"}
    assert keys.legacy_idempotency_key("acme", DIGEST) == {"PK": "TENANT#acme#IDEMPOTENCY", "SK": f"KEY#{DIGEST}"}


def test_shards_are_stable_and_within_range():
    # The shard is part of the key: it must not change between processes or releases.
    assert keys.catalog_shard("prod-001") == keys.catalog_shard("prod-001")
    assert {keys.catalog_shard(f"prod-{n:03d}") for n in range(1, 200)} == set(range(keys.CATALOG_SHARDS))
    ids = [f"ord_01HZY3M9K8V6T5R4Q3P2N1M0{a}{b}" for a in "0123456789ABCDEF" for b in "0123456789ABCDEF"]
    assert {keys.order_shard(order_id) for order_id in ids} == set(range(keys.ORDER_SHARDS))
    assert keys.order_key("acme", ORDER_ID)["PK"] in keys.order_partitions("acme")
    with pytest.raises(ValueError):
        keys.catalog_partition("acme", keys.CATALOG_SHARDS)
    with pytest.raises(ValueError):
        keys.order_partition("acme", -1)


def test_two_tenants_never_share_a_partition():
    first, second = tenant_scoped_keys("acme"), tenant_scoped_keys("acme-2")
    assert not {key["PK"] for key in first} & {key["PK"] for key in second}
    assert not set(keys.catalog_partitions("acme")) & set(keys.catalog_partitions("acme-2"))
    assert not set(keys.order_partitions("acme")) & set(keys.order_partitions("acme-2"))


@pytest.mark.parametrize(
    "tenant_id",
    [
        "",
        "acme#PRODUCT",
        "globex#",
        "#",
        "Acme",
        "acme ",
        "-acme",
        "acme-",
        "a" * 49,
        "acme/1",
        "acme\n",
        "ac_me",
        None,
        1,
    ],
)
def test_malformed_tenant_ids_never_become_keys(tenant_id):
    for build in (
        keys.tenant_partition,
        keys.tenant_meta_key,
        keys.tenant_prefix,
        keys.catalog_partitions,
        keys.order_partitions,
        lambda tenant: keys.product_partition(tenant, "prod-001"),
        lambda tenant: keys.catalog_index_key(tenant, "prod-001"),
        keys.legacy_product_partition,
        keys.legacy_order_partition,
        keys.legacy_idempotency_partition,
        lambda tenant: keys.product_key(tenant, "prod-001"),
        lambda tenant: keys.order_key(tenant, ORDER_ID),
        lambda tenant: keys.idempotency_key(tenant, DIGEST),
    ):
        with pytest.raises(ValueError):
            build(tenant_id)


@pytest.mark.parametrize("product_id", ["", "prod#001", "PRODUCT#prod-001", "Prod", "-prod", "a" * 64, "prod 1", None])
def test_malformed_product_ids_never_become_keys(product_id):
    with pytest.raises(ValueError):
        keys.product_key("acme", product_id)


@pytest.mark.parametrize(
    "order_id", ["", "ord_", "ORDER#" + ORDER_ID, ORDER_ID.lower(), ORDER_ID + "#", ORDER_ID[:-1], None]
)
def test_malformed_order_ids_never_become_keys(order_id):
    with pytest.raises(ValueError):
        keys.order_key("acme", order_id)


@pytest.mark.parametrize("client_id", ["", "client#1", "client id", "c" * 129, "client/1", None])
def test_malformed_client_ids_never_become_keys(client_id):
    with pytest.raises(ValueError):
        keys.client_lookup_key(client_id)


@pytest.mark.parametrize("digest", ["", "key", DIGEST.upper(), DIGEST[:-1], DIGEST + "0", DIGEST[:-1] + "#"])
def test_idempotency_keys_need_a_sha256_hex_digest(digest):
    with pytest.raises(ValueError):
        keys.idempotency_key("acme", digest)


@pytest.mark.parametrize("product_id", ["", "prod#001", "Prod", None])
def test_malformed_product_ids_never_become_index_keys(product_id):
    with pytest.raises(ValueError):
        keys.catalog_index_key("acme", product_id)


tenant_ids = st.from_regex(keys.TENANT_ID, fullmatch=True)
product_ids = st.from_regex(keys.PRODUCT_ID, fullmatch=True)
order_ids = st.from_regex(keys.ORDER_ID, fullmatch=True)
digests = st.from_regex(keys.KEY_DIGEST, fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(tenant=tenant_ids, other=tenant_ids, product_id=product_ids, order_id=order_ids, digest=digests)
def test_every_partition_a_tenant_can_reach_is_under_its_prefix_and_no_other_tenants(
    tenant, other, product_id, order_id, digest
):
    partitions = [
        keys.product_key(tenant, product_id)["PK"],
        keys.catalog_index_key(tenant, product_id)[keys.CATALOG_INDEX_PK],
        keys.order_key(tenant, order_id)["PK"],
        keys.idempotency_key(tenant, digest)["PK"],
        *keys.catalog_partitions(tenant),
        *keys.order_partitions(tenant),
    ]
    for partition in partitions:
        assert partition.startswith(keys.tenant_prefix(tenant))
        if other != tenant:
            assert not partition.startswith(keys.tenant_prefix(other))
