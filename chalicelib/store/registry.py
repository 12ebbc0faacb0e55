"""The tenant registry: which OAuth client belongs to which tenant, its tier and status."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from chalicelib.store import keys
from chalicelib.store.dynamodb import dynamodb_client, dynamodb_errors, from_item, table_name, to_item

ACTIVE = "active"
SUSPENDED = "suspended"
STATUSES = (ACTIVE, SUSPENDED)


@dataclass(frozen=True)
class TenantRecord:
    """A tenant as the registry knows it."""

    tenant_id: str
    tier: str
    status: str
    client_id: str
    api_key_id: str = ""
    api_key_value: str = ""
    display_name: str = ""

    @property
    def active(self) -> bool:
        """Whether the tenant may call the API."""
        return self.status == ACTIVE

    def with_changes(self, **changes: Any) -> "TenantRecord":
        """A copy with some fields changed."""
        return replace(self, **changes)


def _record_from_item(item: dict[str, Any]) -> TenantRecord:
    values = from_item(item)
    return TenantRecord(
        tenant_id=values["tenant_id"],
        tier=values["tier"],
        status=values["status"],
        client_id=values["client_id"],
        api_key_id=values.get("api_key_id", ""),
        api_key_value=values.get("api_key_value", ""),
        display_name=values.get("display_name", ""),
    )


class TenantRegistry:
    """Reads and writes tenant records and client-id lookups in the single table."""

    def find_by_client_id(self, client_id: str) -> TenantRecord | None:
        """The tenant an OAuth client id belongs to, or None for an unknown client."""
        client = dynamodb_client()
        with dynamodb_errors():
            lookup = client.get_item(TableName=table_name(), Key=to_item(keys.client_lookup_key(client_id))).get("Item")
            if not lookup:
                return None
            tenant_id = from_item(lookup)["tenant_id"]
            item = client.get_item(TableName=table_name(), Key=to_item(keys.tenant_meta_key(tenant_id))).get("Item")
        if not item:
            return None
        record = _record_from_item(item)
        # A lookup left behind by a rotated or re-assigned client must not authorize anything.
        return record if record.client_id == client_id else None

    def get(self, tenant_id: str) -> TenantRecord | None:
        """A tenant's record by tenant id."""
        with dynamodb_errors():
            item = (
                dynamodb_client()
                .get_item(TableName=table_name(), Key=to_item(keys.tenant_meta_key(tenant_id)), ConsistentRead=True)
                .get("Item")
            )
        return _record_from_item(item) if item else None

    def put(self, record: TenantRecord) -> None:
        """Write a tenant's record and its client lookup together."""
        meta = {
            **keys.tenant_meta_key(record.tenant_id),
            "tenant_id": record.tenant_id,
            "tier": record.tier,
            "status": record.status,
            "client_id": record.client_id,
            "api_key_id": record.api_key_id,
            "api_key_value": record.api_key_value,
            "display_name": record.display_name,
        }
        lookup = {**keys.client_lookup_key(record.client_id), "tenant_id": record.tenant_id}
        with dynamodb_errors():
            dynamodb_client().transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": table_name(), "Item": to_item(meta)}},
                    {"Put": {"TableName": table_name(), "Item": to_item(lookup)}},
                ]
            )
