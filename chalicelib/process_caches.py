"""The process's caches of its settings, AWS clients and credentials, and the one reset that empties them.

Here rather than in chalicelib.config because the caches live in modules that import config;
nothing in chalicelib imports this module, so it can import them all without a cycle.
"""

from __future__ import annotations

from typing import Any, Protocol

from chalicelib import config, pagination
from chalicelib.store import dynamodb, tenant_access
from chalicelib.telemetry import tracing
from chalicelib.web import auth


class FunctionCache(Protocol):
    """A functools cache: what the reset needs of one."""

    def cache_clear(self) -> None: ...

    def cache_info(self) -> Any: ...


# What the process read from its environment or from AWS, or built from that: stale once either
# changes. The authorizer holds the JWKS and the registry's tenant records it has looked up.
ENVIRONMENT_CACHES: tuple[FunctionCache, ...] = (
    config.get_settings,
    pagination.pagination_secret,
    auth.get_authorizer,
    tenant_access._sts_client,
    tracing.recorder,
    dynamodb.dynamodb_client,
)

# Caches that depend on the code alone, never on the environment or AWS: a reset keeps them.
CODE_CACHES: dict[str, str] = {
    "chalicelib.store.keys.catalog_partitions": "key strings of a tenant id",
    "chalicelib.store.keys.order_partitions": "key strings of a tenant id",
    "chalicelib.web.openapi.error_codes": "read from the error classes",
    "chalicelib.web.openapi.openapi_document": "built from the routes for the addresses it is given",
    "chalicelib.telemetry.emf._metrics_template": "the EMF document's shape per tier",
    "chalicelib.store.tenant_access._service_models": "botocore's service models, read from its package",
    "chalicelib.store.dynamodb._query_pool": "the threads that run a list's parallel Queries",
}


def reset_process_caches(*, keep_dynamodb_client: bool = False) -> None:
    """Forget what the process cached from its environment and AWS, so the next use reads them afresh.

    Settings, the pagination secret, the authorizer's JWKS and tenant records, every tenant's
    credentials, the STS client and the X-Ray recorder always go. keep_dynamodb_client keeps the
    process's own DynamoDB client, for callers whose region and endpoint have not changed: it holds
    no data, and making one costs about 0.1 s.
    """
    for cache in ENVIRONMENT_CACHES:
        if not (keep_dynamodb_client and cache is dynamodb.dynamodb_client):
            cache.cache_clear()
    tenant_access.tenant_clients.forget()
