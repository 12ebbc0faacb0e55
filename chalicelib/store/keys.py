"""The only place DynamoDB key strings are built: every tenant key starts with TENANT#{id}#.

The layout spreads each tenant's writes so that no partition key is hot at the premium tier:
one partition per product (stock updates land on the product's own partition), orders spread
over ORDER_SHARDS partitions by a hash of the order id (so a read of one order is still one
GetItem), and one partition per Idempotency-Key. The catalog list is served by the `catalog`
index, spread over CATALOG_SHARDS partitions by a hash of the product id. README "Data model"
has the figures behind the shard counts.
"""

from __future__ import annotations

import functools
import hashlib
import re

# Ids are checked here as well as in validation: a key must never be built from an id that
# could contain the "#" separator and so reach into another key space. The shapes are named
# here too (explicit re-exports) for the code that reads them as keys.TENANT_ID and the like.
from chalicelib.ids import CLIENT_ID as CLIENT_ID
from chalicelib.ids import KEY_DIGEST as KEY_DIGEST
from chalicelib.ids import ORDER_ID as ORDER_ID
from chalicelib.ids import PRODUCT_ID as PRODUCT_ID
from chalicelib.ids import TENANT_ID as TENANT_ID

# Sort-key prefixes of the two lists; pagination tokens carry a sort key with one of them.
PRODUCT_PREFIX = "PRODUCT#"
ORDER_PREFIX = "ORDER#"
TENANT_META_SORT_KEY = "META"
PRODUCT_SORT_KEY = "PRODUCT"
IDEMPOTENCY_SORT_KEY = "IDEMPOTENCY"

# Changing a shard count moves items between partitions: it needs a migration like
# scripts.deploy.migrate_layout, not just a new constant.
CATALOG_SHARDS = 16
ORDER_SHARDS = 8

CATALOG_INDEX = "catalog"
CATALOG_INDEX_PK = "CatalogPK"
CATALOG_INDEX_SK = "CatalogSK"


def _checked(pattern: re.Pattern[str], value: str, what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ValueError(f"not a valid {what}: {value!r}")
    return value


def _shard(value: str, shards: int) -> int:
    # A stable hash (not Python's salted hash()): every process must agree on an item's shard.
    return int.from_bytes(hashlib.sha256(value.encode()).digest()[:4], "big") % shards


def tenant_partition(tenant_id: str) -> str:
    """Partition key of a tenant's own record."""
    return f"TENANT#{_checked(TENANT_ID, tenant_id, 'tenant id')}"


def tenant_prefix(tenant_id: str) -> str:
    """The prefix that starts every partition key of the tenant's data, in the table and its index."""
    return f"{tenant_partition(tenant_id)}#"


def tenant_meta_key(tenant_id: str) -> dict[str, str]:
    """Key of the tenant's registry record (tier, status, client id, API key)."""
    return {"PK": tenant_partition(tenant_id), "SK": TENANT_META_SORT_KEY}


def client_lookup_key(client_id: str) -> dict[str, str]:
    """Key of the item that maps an OAuth client id to its tenant."""
    return {"PK": f"CLIENT#{_checked(CLIENT_ID, client_id, 'client id')}", "SK": "TENANT"}


# --- products ------------------------------------------------------------------------------


def product_partition(tenant_id: str, product_id: str) -> str:
    """Partition holding one product of one tenant, its stock included."""
    return f"{tenant_prefix(tenant_id)}PRODUCT#{_checked(PRODUCT_ID, product_id, 'product id')}"


def product_key(tenant_id: str, product_id: str) -> dict[str, str]:
    """Key of one product of one tenant."""
    return {"PK": product_partition(tenant_id, product_id), "SK": PRODUCT_SORT_KEY}


def catalog_shard(product_id: str) -> int:
    """Which catalog index partition lists the product."""
    return _shard(_checked(PRODUCT_ID, product_id, "product id"), CATALOG_SHARDS)


def catalog_partition(tenant_id: str, shard: int) -> str:
    """One of the tenant's catalog index partitions."""
    if not 0 <= shard < CATALOG_SHARDS:
        raise ValueError(f"not a catalog shard: {shard!r}")
    return f"{tenant_prefix(tenant_id)}CATALOG#{shard:02d}"


# Kept per tenant, since every request builds its repositories with them (a container serves few tenants).
@functools.lru_cache(maxsize=1024)
def catalog_partitions(tenant_id: str) -> tuple[str, ...]:
    """Every catalog index partition of the tenant: a catalog list queries them all."""
    return tuple(catalog_partition(tenant_id, shard) for shard in range(CATALOG_SHARDS))


def catalog_index_key(tenant_id: str, product_id: str) -> dict[str, str]:
    """The product's key attributes in the catalog index (sorted by product id within a partition)."""
    return {
        CATALOG_INDEX_PK: catalog_partition(tenant_id, catalog_shard(product_id)),
        CATALOG_INDEX_SK: PRODUCT_PREFIX + product_id,
    }


# --- orders --------------------------------------------------------------------------------


def order_shard(order_id: str) -> int:
    """Which of the tenant's order partitions holds the order."""
    return _shard(_checked(ORDER_ID, order_id, "order id"), ORDER_SHARDS)


def order_partition(tenant_id: str, shard: int) -> str:
    """One of the tenant's order partitions, each newest last by sort key."""
    if not 0 <= shard < ORDER_SHARDS:
        raise ValueError(f"not an order shard: {shard!r}")
    return f"{tenant_prefix(tenant_id)}ORDER#{shard:02d}"


@functools.lru_cache(maxsize=1024)
def order_partitions(tenant_id: str) -> tuple[str, ...]:
    """Every order partition of the tenant: an order list queries them all."""
    return tuple(order_partition(tenant_id, shard) for shard in range(ORDER_SHARDS))


def order_key(tenant_id: str, order_id: str) -> dict[str, str]:
    """Key of one order of one tenant."""
    return {"PK": order_partition(tenant_id, order_shard(order_id)), "SK": ORDER_PREFIX + order_id}


# --- idempotency records -------------------------------------------------------------------


def idempotency_key(tenant_id: str, key_digest: str) -> dict[str, str]:
    """Key of the record that remembers what an Idempotency-Key's first use answered."""
    if not isinstance(key_digest, str) or not KEY_DIGEST.fullmatch(key_digest):
        raise ValueError("idempotency digest must be a SHA-256 hex digest")
    return {"PK": f"{tenant_prefix(tenant_id)}IDEMPOTENCY#{key_digest}", "SK": IDEMPOTENCY_SORT_KEY}


# --- the layout before this one, read only by scripts.deploy.migrate_layout ----------------------


def legacy_product_partition(tenant_id: str) -> str:
    """The one partition that held all of a tenant's products (sort key PRODUCT#{id})."""
    return f"{tenant_prefix(tenant_id)}PRODUCT"


def legacy_order_partition(tenant_id: str) -> str:
    """The one partition that held all of a tenant's orders (sort key ORDER#{id})."""
    return f"{tenant_prefix(tenant_id)}ORDER"


def legacy_idempotency_partition(tenant_id: str) -> str:
    """The one partition that held all of a tenant's Idempotency-Key records (sort key KEY#{digest})."""
    return f"{tenant_prefix(tenant_id)}IDEMPOTENCY"


def legacy_product_key(tenant_id: str, product_id: str) -> dict[str, str]:
    """Where the legacy layout kept one product."""
    return {
        "PK": legacy_product_partition(tenant_id),
        "SK": PRODUCT_PREFIX + _checked(PRODUCT_ID, product_id, "product id"),
    }


def legacy_order_key(tenant_id: str, order_id: str) -> dict[str, str]:
    """Where the legacy layout kept one order."""
    return {"PK": legacy_order_partition(tenant_id), "SK": ORDER_PREFIX + _checked(ORDER_ID, order_id, "order id")}


def legacy_idempotency_key(tenant_id: str, key_digest: str) -> dict[str, str]:
    """Where the legacy layout kept one Idempotency-Key record."""
    if not isinstance(key_digest, str) or not KEY_DIGEST.fullmatch(key_digest):
        raise ValueError("idempotency digest must be a SHA-256 hex digest")
    return {"PK": legacy_idempotency_partition(tenant_id), "SK": f"KEY#{key_digest}"}
