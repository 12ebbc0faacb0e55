"""Unit tests of chalicelib.keys: every tenant key starts with TENANT#{id}# and bad ids never become keys."""

from __future__ import annotations

import hashlib

import pytest

from chalicelib import keys

ORDER_ID = "ord_01HZY3M9K8V6T5R4Q3P2N1M0AB"
DIGEST = hashlib.sha256(b"key").hexdigest()


def tenant_scoped_keys(tenant_id: str) -> list[dict[str, str]]:
    return [
        keys.product_key(tenant_id, "prod-001"),
        keys.order_key(tenant_id, ORDER_ID),
        keys.idempotency_key(tenant_id, DIGEST),
    ]


@pytest.mark.parametrize("tenant_id", ["acme", "globex", "a", "t-1", "0" * 48])
def test_every_tenant_data_key_starts_with_the_tenant_prefix(tenant_id):
    for key in tenant_scoped_keys(tenant_id):
        assert key["PK"].startswith(f"TENANT#{tenant_id}#"), key
    assert keys.product_partition(tenant_id) == f"TENANT#{tenant_id}#PRODUCT"
    assert keys.order_partition(tenant_id) == f"TENANT#{tenant_id}#ORDER"


def test_the_key_shapes_match_the_data_model():
    assert keys.product_key("acme", "prod-001") == {"PK": "TENANT#acme#PRODUCT", "SK": "PRODUCT#prod-001"}
    assert keys.order_key("acme", ORDER_ID) == {"PK": "TENANT#acme#ORDER", "SK": f"ORDER#{ORDER_ID}"}
    assert keys.tenant_meta_key("acme") == {"PK": "TENANT#acme", "SK": "META"}
    assert keys.client_lookup_key("abc_DEF-123") == {"PK": "CLIENT#abc_DEF-123", "SK": "TENANT"}
    assert keys.idempotency_key("acme", DIGEST) == {"PK": "TENANT#acme#IDEMPOTENCY", "SK": f"KEY#{DIGEST}"}


def test_two_tenants_never_share_a_partition():
    first, second = tenant_scoped_keys("acme"), tenant_scoped_keys("acme-2")
    assert not {key["PK"] for key in first} & {key["PK"] for key in second}


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
        keys.product_partition,
        keys.order_partition,
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
