"""The smoke test run as an operator runs it, against the local stack: it passes, and fails loudly when it should."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.project import PROJECT_DIR
from tests.support.stack import RunningStack, free_port

pytestmark = pytest.mark.e2e

STEPS = ("health", "token", "catalog", "order", "read back", "cross-tenant 404", "rate limit 429")
# IAM's policy simulator is asked only about a deployed stage (--stage): here that check is one SKIP line.
POLICY_SKIPPED = {"tenant policy": "SKIP"}
SMOKE_TIMEOUT_SECONDS = 120


def run_smoke(*argv: str) -> subprocess.CompletedProcess:
    """`python -m scripts.deploy.smoke ...` in a subprocess, with its output."""
    return subprocess.run(
        [sys.executable, "-m", "scripts.deploy.smoke", *argv],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT_SECONDS,
    )


def outcomes(output: str) -> dict[str, str]:
    """PASS, FAIL or SKIP by step name, from the smoke test's output."""
    found = {}
    for line in output.splitlines():
        parts = line.removeprefix("[smoke] ").split("  ", 1)
        if len(parts) == 2 and parts[0] in ("PASS", "FAIL", "SKIP"):
            found[parts[1].split(":", 1)[0]] = parts[0]
    return found


def explicit_arguments(stack: RunningStack, **changes: str) -> list[str]:
    """The command line naming URLs and credentials one by one (as for a deployed stage)."""
    standard, premium, basic = stack.tenant("standard"), stack.tenant("premium"), stack.tenant("basic")
    values = {
        "api-url": stack.api_url,
        "token-url": stack.info["token_url"],
        "client-id": standard["client_id"],
        "client-secret": standard["client_secret"],
        "other-client-id": premium["client_id"],
        "other-client-secret": premium["client_secret"],
        "basic-client-id": basic["client_id"],
        "basic-client-secret": basic["client_secret"],
        **changes,
    }
    return [argument for name, value in values.items() for argument in (f"--{name}", value)]


def test_the_smoke_test_passes_every_step_against_the_local_stack(stack: RunningStack) -> None:
    result = run_smoke("--stack-file", str(stack.state_dir / "stack.json"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert outcomes(result.stdout) == {**{step: "PASS" for step in STEPS}, **POLICY_SKIPPED}
    assert "[smoke] 7 passed, 0 failed, 1 skipped" in result.stdout
    assert "moto does not implement SimulatePrincipalPolicy" in result.stdout
    assert "tenant-premium gets 404 not_found" in result.stdout
    assert "tenant-basic got 429 after" in result.stdout
    for tenant in stack.info["tenants"]:
        assert tenant["client_secret"] not in result.stdout + result.stderr


def test_urls_and_credentials_given_one_by_one_work_the_same(stack: RunningStack) -> None:
    result = run_smoke(*explicit_arguments(stack))
    assert result.returncode == 0, result.stdout + result.stderr
    assert outcomes(result.stdout) == {**{step: "PASS" for step in STEPS}, **POLICY_SKIPPED}
    assert "[smoke] SKIP  tenant policy: needs --stage" in result.stdout


def test_without_other_tenants_those_steps_are_skipped_and_the_rest_passes(stack: RunningStack) -> None:
    tenant = stack.tenant("standard")
    result = run_smoke(
        "--api-url", stack.api_url, "--token-url", stack.info["token_url"],
        "--client-id", tenant["client_id"], "--client-secret", tenant["client_secret"],
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert outcomes(result.stdout)["cross-tenant 404"] == outcomes(result.stdout)["rate limit 429"] == "SKIP"


def test_a_wrong_api_url_fails(stack: RunningStack) -> None:
    result = run_smoke(*explicit_arguments(stack, **{"api-url": f"http://127.0.0.1:{free_port()}"}))
    assert result.returncode == 1
    steps = outcomes(result.stdout)
    assert steps["health"] == steps["catalog"] == "FAIL"
    assert "did not answer" in result.stdout
    assert "Traceback" not in result.stderr


def test_a_bad_client_secret_fails_at_the_token_and_skips_what_needs_it(stack: RunningStack) -> None:
    result = run_smoke(*explicit_arguments(stack, **{"client-secret": "not-the-secret"}))
    assert result.returncode == 1
    steps = outcomes(result.stdout)
    assert steps["health"] == "PASS"
    assert steps["token"] == "FAIL"
    assert steps["catalog"] == steps["order"] == steps["read back"] == "SKIP"
    assert "HTTP 400 (invalid_client)" in result.stdout
    assert "not-the-secret" not in result.stdout


def test_a_missing_stack_file_is_a_clear_error(tmp_path) -> None:
    result = run_smoke("--stack-file", str(tmp_path / "stack.json"))
    assert result.returncode == 1
    assert "start the local stack with `make run` first" in result.stderr
