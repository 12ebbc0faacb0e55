"""`python -m scripts.tenants --stage local` against a running local stack: every command, checked through the API.

Each test onboards tenants of its own with the real command line, then calls the stack's token
endpoint and API with their credentials, as a tenant would.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator

import boto3
import pytest
import requests

from chalicelib.models import Product
from chalicelib.store.catalog import CatalogRepository
from chalicelib.store.dynamodb import dynamodb_client
from chalicelib.tiers import TIERS
from scripts.stage_config import read_stage_config
from scripts.tenants import data as tenant_data
from tests.support.project import PROJECT_DIR, keep_tenant_secrets
from tests.support.stack import HTTP_TIMEOUT_SECONDS, RunningStack, http_session, on_stack_aws

pytestmark = pytest.mark.e2e

CLI_TIMEOUT_SECONDS = 60
LOCAL = read_stage_config("local")
# How long the API may go on using a tenant's old registry record (the local stack caches no
# authorizer answer), with room for a request under way and a busy machine.
PROPAGATION_BOUND_SECONDS = float(LOCAL.environment["TENANT_CACHE_SECONDS"]) + 5
BURST_REQUESTS = 60
BURST_WORKERS = 12
REGION = "us-east-1"


def tenants_cli(state_dir: Path, *argv: str, project_dir: Path = PROJECT_DIR) -> subprocess.CompletedProcess:
    """`python -m scripts.tenants --stage local ...` in a subprocess, as a developer runs it beside `make run`."""
    options = ["--stage", "local", "--state-dir", str(state_dir), "--project-dir", str(project_dir)]
    return subprocess.run(
        [sys.executable, "-m", "scripts.tenants", *options, *argv],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
    )


def ok(stack: RunningStack, *argv: str, **options: Any) -> str:
    """Run a command on the stack that must succeed; its output."""
    result = tenants_cli(stack.state_dir, *argv, **options)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    return result.stdout


SHOW_LINE = re.compile(r"^(?P<name>[a-z ]+):\s+(?P<value>.*)$")


def fields(show_output: str) -> dict[str, str]:
    """`show`'s "name: value" lines as a dict."""
    matches = [SHOW_LINE.fullmatch(line) for line in show_output.splitlines()]
    assert all(matches), show_output
    return {match["name"]: match["value"] for match in matches if match}


@dataclass(frozen=True)
class Credentials:
    """A tenant's client id and secret as `show --reveal-secret` prints them."""

    tenant_id: str
    client_id: str
    client_secret: str


def credentials(stack: RunningStack, tenant_id: str, **options: Any) -> Credentials:
    """What an operator hands the tenant, read with `show --reveal-secret`."""
    shown = fields(ok(stack, "show", tenant_id, "--reveal-secret", **options))
    return Credentials(tenant_id, shown["client id"], shown["client secret"])


def onboard(stack: RunningStack, tier: str, **options: Any) -> Credentials:
    """A new tenant of tier, created with the command line; its credentials."""
    tenant_id = f"local-{tier}-{uuid.uuid4().hex[:8]}"
    out = ok(stack, "create", tenant_id, "--tier", tier, "--name", "Local Test", **options)
    assert f"[tenants] {tenant_id}: API key " in out and f" in usage plan {tier}\n" in out
    return credentials(stack, tenant_id, **options)


def request_token(stack: RunningStack, tenant: Credentials) -> requests.Response:
    """A client-credentials token request with the tenant's client id and secret."""
    return stack.http.post(
        stack.info["token_url"],
        data={"grant_type": "client_credentials"},
        auth=(tenant.client_id, tenant.client_secret),
        timeout=HTTP_TIMEOUT_SECONDS,
    )


def token(stack: RunningStack, tenant: Credentials) -> str:
    """An access token for the tenant."""
    response = request_token(stack, tenant)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def eventually(check: Callable[[], bool], within: float = PROPAGATION_BOUND_SECONDS) -> float:
    """Seconds until check() held; fails if it does not hold within the bound."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < within, f"not so after {within:.0f} s"
        time.sleep(0.25)
    return time.monotonic() - started


def status_of(stack: RunningStack, path: str, access_token: str) -> int:
    """The HTTP status of GET path with the token."""
    return stack.get(path, access_token).status_code


@pytest.fixture(scope="module")
def aws(stack: RunningStack) -> dict[str, Any]:
    """boto3 clients for the stack's emulated AWS, named explicitly (the test's own environment is left alone)."""
    options = {
        "endpoint_url": stack.info["aws_endpoint_url"],
        "region_name": REGION,
        "aws_access_key_id": "local",
        "aws_secret_access_key": "local",
    }
    return {name: boto3.client(name, **options) for name in ("apigateway", "secretsmanager")}


def usage_plan_of(aws: dict[str, Any], api_key_id: str) -> list[str]:
    """The names of the usage plans the API key is in."""
    apigateway = aws["apigateway"]
    return [
        plan["name"]
        for plan in apigateway.get_usage_plans()["items"]
        if any(key["id"] == api_key_id for key in apigateway.get_usage_plan_keys(usagePlanId=plan["id"])["items"])
    ]


@pytest.fixture
def stack_table(stack: RunningStack) -> Iterator[None]:
    """This process's chalicelib (repositories, tenant_data) on the stack's table, through the stack's moto."""
    with on_stack_aws(stack):
        yield


# --- no stack -----------------------------------------------------------------------------------


@pytest.fixture
def stopped_stack_dir(tmp_path: Path) -> Path:
    """A state dir whose stack.json names an API that no longer listens, as one left by a stopped stack."""
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as closed:
        port = closed.server_address[1]
    state_dir = tmp_path / "stopped"
    state_dir.mkdir()
    url = f"http://127.0.0.1:{port}"
    document = {"api_url": url, "token_url": f"{url}/oauth2/token", "aws_endpoint_url": url, "tenants": []}
    (state_dir / "stack.json").write_text(json.dumps(document))
    return state_dir


@pytest.mark.parametrize("case", ["no stack.json", "stopped stack"])
def test_without_a_running_stack_every_command_says_so_and_how_to_start_it(
    case: str, tmp_path: Path, stopped_stack_dir: Path
) -> None:
    state_dir = tmp_path if case == "no stack.json" else stopped_stack_dir
    for argv in (["list"], ["create", "acme", "--tier", "basic"]):
        result = tenants_cli(state_dir, *argv)
        assert result.returncode == 1
        assert result.stdout == ""
        assert result.stderr.startswith("[tenants] error: the local stack ")
        assert "is not running" in result.stderr
        assert "start it with `make run` (python -m scripts.local.stack)" in result.stderr


# --- the commands against the running stack -----------------------------------------------------


def test_a_created_tenant_gets_a_token_and_its_catalog_at_once(stack: RunningStack, aws: dict[str, Any]) -> None:
    tenant = onboard(stack, "standard")
    # No wait: the new credentials work the moment create returns.
    response = stack.get("/catalog", token(stack, tenant))
    assert response.status_code == 200, response.text
    assert response.json()["tenant_id"] == tenant.tenant_id
    assert response.json()["items"] == []

    shown = fields(ok(stack, "show", tenant.tenant_id))
    assert shown["tier"] == "standard" and shown["status"] == "active" and shown["name"] == "Local Test"
    assert shown["client secret"] == "(hidden; --reveal-secret shows it)"
    # The local stage keeps no copy of the secret (store_tenant_secrets is off), as the stage says.
    assert shown["secret"] == "(none stored)"
    assert shown["token url"] == stack.info["token_url"]
    assert usage_plan_of(aws, shown["api key id"]) == ["tenant-api-local-standard"]

    rows = [line.split() for line in ok(stack, "list").splitlines()]
    assert [tenant.tenant_id, "standard", "active", tenant.client_id, "Local", "Test"] in rows
    assert {"tenant-basic", "tenant-standard", "tenant-premium"} <= {row[0] for row in rows}
    assert tenant.client_secret not in ok(stack, "list")

    again = ok(stack, "create", tenant.tenant_id, "--tier", "standard")
    assert again.endswith("[tenants] nothing changed\n")


def test_a_suspended_tenant_is_refused_within_the_registry_cache_and_served_again_on_resume(
    stack: RunningStack,
) -> None:
    tenant = onboard(stack, "basic")
    access_token = token(stack, tenant)
    assert status_of(stack, "/catalog", access_token) == 200

    out = ok(stack, "suspend", tenant.tenant_id)
    assert (
        f"{tenant.tenant_id}: suspended; the API applies it within {LOCAL.environment['TENANT_CACHE_SECONDS']} s" in out
    )
    eventually(lambda: status_of(stack, "/catalog", access_token) == 403)
    refused = stack.get("/catalog", access_token)
    assert refused.json()["error"]["code"] == "forbidden"
    # As with Cognito, a suspended tenant still gets tokens; the API is what refuses it.
    assert status_of(stack, "/catalog", token(stack, tenant)) == 403
    assert ok(stack, "suspend", tenant.tenant_id).endswith("already suspended\n[tenants] nothing changed\n")

    ok(stack, "resume", tenant.tenant_id)
    eventually(lambda: status_of(stack, "/catalog", access_token) == 200)


def _burst(stack: RunningStack, access_token: str) -> tuple[list[int], float]:
    """BURST_REQUESTS requests at once from BURST_WORKERS clients: their statuses and how long they took."""

    def one(_: int) -> int:
        with http_session() as session:
            return session.get(
                f"{stack.api_url}/catalog/prod-001",
                headers={"Authorization": f"Bearer {access_token}"},
                timeout=HTTP_TIMEOUT_SECONDS,
            ).status_code

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=BURST_WORKERS) as pool:
        statuses = list(pool.map(one, range(BURST_REQUESTS)))
    return statuses, time.monotonic() - started


def test_change_tier_moves_the_key_and_the_tenant_gets_the_new_tiers_limits(
    stack: RunningStack, aws: dict[str, Any]
) -> None:
    tenant = onboard(stack, "basic")
    access_token = token(stack, tenant)
    basic = TIERS["basic"]
    # The tenant has no products: every request the limiter lets through is a 404.
    eventually(lambda: set(_burst(stack, access_token)[0]) == {404, 429})

    out = ok(stack, "change-tier", tenant.tenant_id, "--tier", "premium")
    assert "moved to usage plan premium; tier recorded" in out
    assert "the new limits apply within" in out
    shown = fields(ok(stack, "show", tenant.tenant_id))
    assert shown["tier"] == "premium"
    assert usage_plan_of(aws, shown["api key id"]) == ["tenant-api-local-premium"]

    def premium_limits() -> bool:
        statuses, seconds = _burst(stack, access_token)
        # Only a burst the basic tier could not have served shows the premium tier.
        return 429 not in statuses and BURST_REQUESTS > basic.burst + basic.rate_per_second * seconds

    eventually(premium_limits)


def test_rotate_secret_refuses_the_old_secret_at_once_and_the_new_one_works_at_once(stack: RunningStack) -> None:
    old = onboard(stack, "premium")
    old_token = token(stack, old)
    assert status_of(stack, "/catalog", old_token) == 200

    out = ok(stack, "rotate-secret", old.tenant_id)
    assert f"old app client {old.client_id} deleted" in out
    new = credentials(stack, old.tenant_id)
    assert new.client_id != old.client_id and new.client_secret != old.client_secret

    refused = request_token(stack, old)
    assert refused.status_code == 400 and refused.json() == {"error": "invalid_client"}
    assert status_of(stack, "/catalog", token(stack, new)) == 200
    eventually(lambda: status_of(stack, "/catalog", old_token) == 401)


@pytest.fixture
def put_product(stack_table: None) -> Callable[[str], str]:
    """put_product(tenant_id): a product of the tenant written to the stack's table; returns its id."""

    def put(tenant_id: str) -> str:
        product = Product(
            product_id="prod-001", name="Kept Widget", price=Decimal("2.50"), currency="USD", stock=5, description=""
        )
        CatalogRepository(tenant_id, dynamodb_client()).put(product)
        return product.product_id

    return put


def test_delete_removes_the_tenants_access_at_once_and_with_purge_data_its_data(
    stack: RunningStack, aws: dict[str, Any], put_product: Callable[[str], str]
) -> None:
    tenant = onboard(stack, "standard")
    key_id = fields(ok(stack, "show", tenant.tenant_id))["api key id"]
    product_id = put_product(tenant.tenant_id)
    access_token = token(stack, tenant)
    placed = stack.http.post(
        f"{stack.api_url}/orders",
        json={"items": [{"product_id": product_id, "quantity": 1}]},
        headers={"Authorization": f"Bearer {access_token}", "Idempotency-Key": "before-delete"},
        timeout=HTTP_TIMEOUT_SECONDS,
    )
    assert placed.status_code == 201, placed.text

    out = ok(stack, "delete", tenant.tenant_id)
    assert f"{tenant.tenant_id}: kept its data (1 products, 1 orders, 1 idempotency records)" in out
    assert request_token(stack, tenant).json() == {"error": "invalid_client"}
    eventually(lambda: status_of(stack, "/catalog", access_token) == 401)
    gone = tenants_cli(stack.state_dir, "show", tenant.tenant_id)
    assert gone.returncode == 1 and f"stage local has no tenant '{tenant.tenant_id}'" in gone.stderr
    assert tenant.tenant_id not in ok(stack, "list")
    assert key_id not in {key["id"] for key in aws["apigateway"].get_api_keys(limit=500)["items"]}
    refused = tenants_cli(stack.state_dir, "create", tenant.tenant_id, "--tier", "standard")
    assert refused.returncode == 1 and "still holds data of an earlier tenant" in refused.stderr

    out = ok(stack, "delete", tenant.tenant_id, "--purge-data")
    assert f"{tenant.tenant_id}: deleted 1 products, 1 orders, 1 idempotency records" in out
    assert not tenant_data.has_data(tenant.tenant_id)
    # The id is free again, and whoever gets it starts with nothing.
    ok(stack, "create", tenant.tenant_id, "--tier", "basic")
    successor = credentials(stack, tenant.tenant_id)
    assert stack.get("/catalog", token(stack, successor)).json()["items"] == []
    ok(stack, "delete", tenant.tenant_id, "--purge-data")


def test_a_local_stage_that_keeps_secrets_stores_the_new_tenants_secret(
    stack: RunningStack, aws: dict[str, Any], tmp_path: Path
) -> None:
    (tmp_path / ".chalice").mkdir()
    shutil.copy(PROJECT_DIR / ".chalice" / "config.json", tmp_path / ".chalice" / "config.json")
    keep_tenant_secrets(tmp_path, "local")
    tenant = onboard(stack, "basic", project_dir=tmp_path)
    secret_name = f"tenant-api-local/tenants/{tenant.tenant_id}"
    stored = aws["secretsmanager"].get_secret_value(SecretId=secret_name)
    assert fields(ok(stack, "show", tenant.tenant_id, project_dir=tmp_path))["secret"] == stored["ARN"]
    assert json.loads(stored["SecretString"]) == {
        "tenant_id": tenant.tenant_id,
        "client_id": tenant.client_id,
        "client_secret": tenant.client_secret,
    }
    assert status_of(stack, "/catalog", token(stack, tenant)) == 200

    out = ok(stack, "delete", tenant.tenant_id, project_dir=tmp_path)
    assert f"secret {secret_name} deleted (recoverable for 7 days)" in out
