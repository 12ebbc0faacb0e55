"""The local stack end to end: real processes, real HTTP, from token to order to shutdown.

The tests share one stack and run in file order; the last one stops it.
"""

from __future__ import annotations

import base64
import json
import math
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest

from tests.support.project import PROJECT_DIR
from tests.support.stack import HTTP_TIMEOUT_SECONDS, STOP_TIMEOUT_SECONDS, RunningStack

pytestmark = pytest.mark.e2e

ALL_SCOPES = {"tenant-api/catalog.read", "tenant-api/orders.read", "tenant-api/orders.write"}
MISSING_ORDER_ID = "ord_" + "0" * 26


def test_stack_file_is_private_and_names_the_seed_tenants(stack: RunningStack) -> None:
    mode = stat.S_IMODE((stack.state_dir / "stack.json").stat().st_mode)
    assert mode == 0o600
    assert stack.api_url == f"http://127.0.0.1:{stack.port}"
    assert stack.info["token_url"].startswith("http://127.0.0.1:") and stack.info["token_url"].endswith("/oauth2/token")
    tenants = {tenant["tenant_id"]: tenant for tenant in stack.info["tenants"]}
    assert {tid: t["tier"] for tid, t in tenants.items()} == {
        "tenant-basic": "basic",
        "tenant-standard": "standard",
        "tenant-premium": "premium",
    }
    assert all(t["client_id"] and t["client_secret"] for t in tenants.values())


def test_health_needs_no_token(stack: RunningStack) -> None:
    response = stack.http.get(f"{stack.api_url}/health", timeout=HTTP_TIMEOUT_SECONDS)
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"secret": "not-the-secret"}, "invalid_client"),
        ({"client_id": "unknownclient"}, "invalid_client"),
        ({"form": {"grant_type": "password"}}, "unsupported_grant_type"),
        ({"form": {"grant_type": "client_credentials", "scope": "tenant-api/admin"}}, "invalid_scope"),
        ({"form": {"scope": "tenant-api/catalog.read"}}, "invalid_request"),
    ],
    ids=["bad-secret", "unknown-client", "wrong-grant-type", "bad-scope", "no-grant-type"],
)
def test_token_endpoint_refuses_like_cognito(stack: RunningStack, change: dict, expected: str) -> None:
    tenant = stack.tenant("basic")
    auth = (change.get("client_id", tenant["client_id"]), change.get("secret", tenant["client_secret"]))
    form = change.get("form", {"grant_type": "client_credentials"})
    response = stack.http.post(stack.info["token_url"], data=form, auth=auth, timeout=HTTP_TIMEOUT_SECONDS)
    assert response.status_code == 400
    assert response.json() == {"error": expected}


def test_token_endpoint_wants_a_form_post(stack: RunningStack) -> None:
    tenant = stack.tenant("basic")
    auth = (tenant["client_id"], tenant["client_secret"])
    as_json = stack.http.post(
        stack.info["token_url"], json={"grant_type": "client_credentials"}, auth=auth, timeout=HTTP_TIMEOUT_SECONDS
    )
    assert (as_json.status_code, as_json.json()) == (400, {"error": "invalid_request"})
    as_get = stack.http.get(stack.info["token_url"], timeout=HTTP_TIMEOUT_SECONDS)
    assert as_get.status_code == 405


def test_token_endpoint_issues_cognito_shaped_tokens(stack: RunningStack) -> None:
    tenant = stack.tenant("standard")
    # Client authentication by form fields works as well as by HTTP Basic.
    response = stack.http.post(
        stack.info["token_url"],
        data={
            "grant_type": "client_credentials",
            "client_id": tenant["client_id"],
            "client_secret": tenant["client_secret"],
        },
        timeout=HTTP_TIMEOUT_SECONDS,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "expires_in", "token_type"}
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    jwks = stack.http.get(f"{stack.info['issuer']}/.well-known/jwks.json", timeout=HTTP_TIMEOUT_SECONDS).json()
    key = jwt.PyJWKSet.from_dict(jwks)[jwt.get_unverified_header(body["access_token"])["kid"]]
    claims = jwt.decode(body["access_token"], key.key, algorithms=["RS256"], issuer=stack.info["issuer"])
    assert claims["token_use"] == "access"
    assert claims["client_id"] == tenant["client_id"]
    assert set(claims["scope"].split()) == ALL_SCOPES
    assert "aud" not in claims


def test_same_product_id_differs_per_tenant(stack: RunningStack) -> None:
    products = {}
    for tier in ("basic", "standard", "premium"):
        response = stack.get("/catalog/prod-001", stack.token(tier))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["tenant_id"] == stack.tenant(tier)["tenant_id"]
        assert body["currency"] == "USD" and isinstance(body["price"], str)
        products[tier] = (body["name"], body["price"])
    assert len(set(products.values())) == 3


def test_catalog_pages_through_every_product_once(stack: RunningStack) -> None:
    token = stack.token("premium")
    seen: list[str] = []
    page_tokens: list[str] = []
    params = {"limit": "5"}
    while True:
        response = stack.get("/catalog", token, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        seen.extend(item["product_id"] for item in body["items"])
        if body["next_token"] is None:
            break
        page_tokens.append(body["next_token"])
        params = {"limit": "5", "next_token": body["next_token"]}
    assert seen == [f"prod-{n:03d}" for n in range(1, 13)]
    assert len(page_tokens) == 2
    # A page token is bound to its tenant: another tenant cannot resume this list with it.
    foreign = stack.get("/catalog", stack.token("standard"), params={"next_token": page_tokens[0]})
    assert foreign.status_code == 400
    assert foreign.json()["error"]["code"] == "invalid_pagination_token"


def test_an_order_is_visible_to_its_tenant_only(stack: RunningStack) -> None:
    owner, other = stack.token("standard"), stack.token("premium")
    placed = stack.http.post(
        f"{stack.api_url}/orders",
        json={"items": [{"product_id": "prod-002", "quantity": 2}]},
        headers={"Authorization": f"Bearer {owner}", "Idempotency-Key": "e2e-order-1"},
        timeout=HTTP_TIMEOUT_SECONDS,
    )
    assert placed.status_code == 201, placed.text
    order = placed.json()
    assert placed.headers["Location"] == f"/orders/{order['order_id']}"
    unit_price = stack.get("/catalog/prod-002", owner).json()["price"]
    assert order["items"][0]["unit_price"] == unit_price

    mine = stack.get(f"/orders/{order['order_id']}", owner)
    assert mine.status_code == 200 and mine.json()["order_id"] == order["order_id"]

    theirs = stack.get(f"/orders/{order['order_id']}", other)
    missing = stack.get(f"/orders/{MISSING_ORDER_ID}", other)
    assert theirs.status_code == missing.status_code == 404
    # Indistinguishable from an order that does not exist, apart from the request id.
    assert theirs.json()["error"] == missing.json()["error"]
    assert set(theirs.json()) == set(missing.json())


def test_a_token_without_the_write_scope_cannot_order(stack: RunningStack) -> None:
    token = stack.token("premium", scope="tenant-api/catalog.read")
    assert stack.get("/catalog", token).status_code == 200
    response = stack.http.post(
        f"{stack.api_url}/orders",
        json={"items": [{"product_id": "prod-001", "quantity": 1}]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=HTTP_TIMEOUT_SECONDS,
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"


def _reclaimed_by(token: str, client_id: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["client_id"] = client_id
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def test_a_tampered_token_is_refused(stack: RunningStack) -> None:
    token = stack.token("basic")
    forged = _reclaimed_by(token, stack.tenant("premium")["client_id"])
    response = stack.get("/catalog", forged)
    assert response.status_code == 401
    assert stack.get("/catalog", "not-a-jwt").status_code == 401


def _burst(stack: RunningStack, token: str, count: int) -> tuple[list, float]:
    """count concurrent product reads: one GetItem each, so they arrive faster than a basic bucket refills.

    A catalog page is 16 Queries that moto serves one at a time; on a slow machine a burst of pages
    arrives slower than 10 a second and is never throttled, which says nothing about the limiter.
    """
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda _: stack.get("/catalog/prod-001", token), range(count)))
    return responses, time.monotonic() - started


def test_basic_tenant_is_throttled_after_its_burst_and_premium_is_not(stack: RunningStack) -> None:
    basic, premium = stack.token("basic"), stack.token("premium")
    # Let the basic bucket refill from the earlier tests (burst 20 at 10 requests per second).
    time.sleep(2.2)
    responses, elapsed = _burst(stack, basic, 60)
    statuses = [response.status_code for response in responses]
    assert set(statuses) <= {200, 429}
    allowed = statuses.count(200)
    assert 20 <= allowed <= 20 + math.ceil(elapsed * 10) + 1, (allowed, elapsed)
    throttled = next(response for response in responses if response.status_code == 429)
    assert int(throttled.headers["Retry-After"]) >= 1
    assert throttled.json()["error"]["code"] == "too_many_requests"

    premium_responses, _ = _burst(stack, premium, 60)
    assert [r.status_code for r in premium_responses] == [200] * 60


def test_a_second_stack_on_the_same_port_fails_fast(stack: RunningStack, tmp_path) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "scripts.local.stack", "--state-dir", str(tmp_path)],
        cwd=PROJECT_DIR,
        env={**os.environ, "PORT": str(stack.port)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "already in use" in result.stderr
    assert time.monotonic() - started < 10
    assert not (tmp_path / "stack.json").exists()


def test_sigterm_stops_every_process_and_closes_the_port(stack: RunningStack) -> None:
    stack.process.send_signal(signal.SIGTERM)
    try:
        returncode = stack.process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the stack did not stop within {STOP_TIMEOUT_SECONDS} s:\n{stack.output()}")
    assert returncode == 0, stack.output()
    with pytest.raises(ProcessLookupError):
        os.killpg(stack.process.pid, 0)
    with pytest.raises(ProcessLookupError):
        os.kill(stack.info["api_pid"], 0)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", stack.port), timeout=2).close()
