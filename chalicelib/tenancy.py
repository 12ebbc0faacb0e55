"""The tenant a request acts for, taken only from the authorizer's verified context."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.config import get_settings
from chalicelib.errors import InsufficientScope, Unauthenticated
from chalicelib.store import keys
from chalicelib.tiers import TIERS

CATALOG_READ = "catalog.read"
ORDERS_READ = "orders.read"
ORDERS_WRITE = "orders.write"
SCOPES = (CATALOG_READ, ORDERS_READ, ORDERS_WRITE)


@dataclass(frozen=True)
class TenantContext:
    """Who is calling: the tenant, its tier and the scopes its token grants."""

    tenant_id: str
    tier: str
    scopes: frozenset[str]

    def require(self, scope: str) -> "TenantContext":
        """This context, if its token grants scope (a name from SCOPES); else InsufficientScope."""
        if f"{get_settings().resource_server}/{scope}" not in self.scopes:
            raise InsufficientScope()
        return self


def authorizer_context(tenant_id: str, tier: str, scopes: str) -> dict[str, str]:
    """What the authorizer hands API Gateway to pass on to the routes (strings only)."""
    return {"tenant_id": tenant_id, "tier": tier, "scopes": scopes}


def tenant_from_request(request: Any, scope: str) -> TenantContext:
    """The caller's tenant from the authorizer context, checked for the scope the route needs.

    Headers, path, query and body are never consulted: only the authorizer saw a verified token.
    """
    context = (getattr(request, "context", None) or {}).get("authorizer") or {}
    tenant_id, tier = context.get("tenant_id"), context.get("tier")
    if not isinstance(tenant_id, str) or not keys.TENANT_ID.fullmatch(tenant_id) or tier not in TIERS:
        # Only reachable if a route is wired without the authorizer: fail closed.
        raise Unauthenticated()
    scopes = frozenset(str(context.get("scopes", "")).split())
    return TenantContext(tenant_id=tenant_id, tier=tier, scopes=scopes).require(scope)
