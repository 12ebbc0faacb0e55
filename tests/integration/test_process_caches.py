"""The one reset of the process's caches: it knows every functools cache in chalicelib and empties the right ones."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any

import chalicelib
from chalicelib import config, pagination
from chalicelib.process_caches import CODE_CACHES, ENVIRONMENT_CACHES, reset_process_caches
from chalicelib.store import dynamodb, tenant_access
from chalicelib.telemetry import tracing
from chalicelib.web import auth


def qualified_name(cache: Any) -> str:
    return f"{cache.__module__}.{cache.__qualname__}"


def chalicelib_caches() -> dict[str, Any]:
    """Every functools cache defined at the top level of a chalicelib module, subpackages included, by qualified name."""
    found = {}
    for module_info in pkgutil.walk_packages(chalicelib.__path__, "chalicelib."):
        module = importlib.import_module(module_info.name)
        for value in vars(module).values():
            is_cache = callable(getattr(value, "cache_clear", None)) and not isinstance(value, type)
            if is_cache and getattr(value, "__module__", None) == module.__name__:
                found[qualified_name(value)] = value
    return found


def warm_every_cache() -> None:
    config.get_settings()
    pagination.pagination_secret()
    auth.get_authorizer()
    tenant_access._sts_client()
    tracing.recorder()
    dynamodb.dynamodb_client()
    tenant_access.tenant_dynamodb("acme")


def test_every_cache_in_chalicelib_is_either_reset_or_declared_to_depend_on_the_code_alone():
    found = chalicelib_caches()
    reset = {qualified_name(cache) for cache in ENVIRONMENT_CACHES}
    assert reset.isdisjoint(CODE_CACHES)
    assert sorted(found) == sorted(reset | set(CODE_CACHES))
    # The discovery does see the caches it is meant to find.
    assert found["chalicelib.config.get_settings"] is config.get_settings


def test_a_reset_empties_the_settings_clients_authorizer_and_tenant_credentials(aws: None):
    warm_every_cache()
    assert all(cache.cache_info().currsize == 1 for cache in ENVIRONMENT_CACHES)
    assert tenant_access.tenant_clients.cached() == ["acme"]

    reset_process_caches()

    assert {qualified_name(cache): cache.cache_info().currsize for cache in ENVIRONMENT_CACHES} == {
        qualified_name(cache): 0 for cache in ENVIRONMENT_CACHES
    }
    assert tenant_access.tenant_clients.cached() == []


def test_a_reset_can_keep_the_processs_own_dynamodb_client_and_only_that(aws: None):
    warm_every_cache()
    client = dynamodb.dynamodb_client()

    reset_process_caches(keep_dynamodb_client=True)

    assert dynamodb.dynamodb_client() is client
    others = [cache for cache in ENVIRONMENT_CACHES if cache is not dynamodb.dynamodb_client]
    assert [cache.cache_info().currsize for cache in others] == [0] * len(others)
    assert tenant_access.tenant_clients.cached() == []


def test_the_reset_lives_below_every_module_it_resets():
    # Nothing in chalicelib imports the reset, so it can import the modules that own caches.
    for module_info in pkgutil.walk_packages(chalicelib.__path__, "chalicelib."):
        if module_info.name != "chalicelib.process_caches":
            source = inspect.getsource(importlib.import_module(module_info.name))
            assert "process_caches" not in source, module_info.name
