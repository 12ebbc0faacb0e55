"""The only place DynamoDB key strings are built: every tenant key starts with TENANT#{id}#."""

from __future__ import annotations

import re

# Ids are checked here as well as in validation: a key must never be built from an id that
# could contain the "#" separator and so reach into another key space.
TENANT_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?$")
CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
PRODUCT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
ORDER_ID = re.compile(r"^ord_[0-9A-HJKMNP-TV-Z]{26}$")

PRODUCT_PREFIX = "PRODUCT#"
ORDER_PREFIX = "ORDER#"
TENANT_META_SORT_KEY = "META"


def _checked(pattern: re.Pattern[str], value: str, what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ValueError(f"not a valid {what}: {value!r}")
    return value


def tenant_partition(tenant_id: str) -> str:
    """Partition key of a tenant's own record."""
    return f"TENANT#{_checked(TENANT_ID, tenant_id, 'tenant id')}"


def tenant_meta_key(tenant_id: str) -> dict[str, str]:
    """Key of the tenant's registry record (tier, status, client id, API key)."""
    return {"PK": tenant_partition(tenant_id), "SK": TENANT_META_SORT_KEY}


def client_lookup_key(client_id: str) -> dict[str, str]:
    """Key of the item that maps an OAuth client id to its tenant."""
    return {"PK": f"CLIENT#{_checked(CLIENT_ID, client_id, 'client id')}", "SK": "TENANT"}


def product_partition(tenant_id: str) -> str:
    """Partition holding all of one tenant's products."""
    return f"{tenant_partition(tenant_id)}#PRODUCT"


def product_key(tenant_id: str, product_id: str) -> dict[str, str]:
    """Key of one product of one tenant."""
    sort = PRODUCT_PREFIX + _checked(PRODUCT_ID, product_id, "product id")
    return {"PK": product_partition(tenant_id), "SK": sort}


def order_partition(tenant_id: str) -> str:
    """Partition holding all of one tenant's orders, newest last by sort key."""
    return f"{tenant_partition(tenant_id)}#ORDER"


def order_key(tenant_id: str, order_id: str) -> dict[str, str]:
    """Key of one order of one tenant."""
    return {"PK": order_partition(tenant_id), "SK": ORDER_PREFIX + _checked(ORDER_ID, order_id, "order id")}


def idempotency_partition(tenant_id: str) -> str:
    """Partition holding one tenant's Idempotency-Key records."""
    return f"{tenant_partition(tenant_id)}#IDEMPOTENCY"


def idempotency_key(tenant_id: str, key_digest: str) -> dict[str, str]:
    """Key of the record that remembers which order an Idempotency-Key created."""
    if not re.fullmatch(r"[0-9a-f]{64}", key_digest):
        raise ValueError("idempotency digest must be a SHA-256 hex digest")
    return {"PK": idempotency_partition(tenant_id), "SK": f"KEY#{key_digest}"}
