"""Plain `chalice local`, as a Chalice user starts it in the project, beside a running local stack.

Without the stack's settings it answers tenant requests 503 service_unavailable (never 401) and
logs one line naming what is missing and how to get it; with them it serves the stack's tenants.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest
import requests

from tests.support.project import PROJECT_DIR
from tests.support.stack import HTTP_TIMEOUT_SECONDS, STOP_TIMEOUT_SECONDS, RunningStack, free_port

pytestmark = pytest.mark.e2e

CHALICE = Path(sys.executable).parent / "chalice"
READY_TIMEOUT_SECONDS = 30
# Everything that would point the server at an account or settings other than the ones a test gives it.
SERVER_SETTINGS = ("TOKEN_ISSUER", "JWKS_URL", "PAGINATION_SECRET", "PAGINATION_SECRET_ARN", "TENANT_ACCESS_ROLE_ARN")


class ChaliceLocal:
    """A `chalice local` process on a free port, with its output captured to a file."""

    def __init__(self, environment: dict[str, str], log_path: Path):
        self.port = free_port()
        self.log_path = log_path
        self.url = f"http://127.0.0.1:{self.port}"
        # --no-autoreload: the reloader polls every file of the project, a cost this test does not need.
        command = [str(CHALICE), "local", "--stage", "local", "--port", str(self.port), "--no-autoreload"]
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=PROJECT_DIR,
                env={**environment, "PYTHONUNBUFFERED": "1"},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.http = requests.Session()
        self.http.trust_env = False

    def wait_until_serving(self) -> None:
        """Return once GET /health answers 200; fail if the server exits or takes too long."""
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"chalice local exited:\n{self.output()}"
            try:
                if self.http.get(f"{self.url}/health", timeout=HTTP_TIMEOUT_SECONDS).status_code == 200:
                    return
            except requests.ConnectionError:
                time.sleep(0.2)
        pytest.fail(f"chalice local did not serve within {READY_TIMEOUT_SECONDS} s:\n{self.output()}")

    def get(self, path: str, token: str) -> requests.Response:
        """GET path with a bearer token."""
        return self.http.get(f"{self.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30)

    def output(self) -> str:
        """Everything the server printed so far (its log lines included)."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """Stop the server and anything it started (its process group)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def shell_environment() -> dict[str, str]:
    """A developer's shell: none of the stack's settings, and no AWS account to fall back on."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in SERVER_SETTINGS and not name.startswith(("AWS_ENDPOINT_URL", "AWS_LAMBDA_"))
    }
    return {**environment, "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}


def stack_settings(stack: RunningStack) -> dict[str, str]:
    """The environment a shell has after `eval "$(python -m scripts.local.env --server)"`, as the log line advises."""
    command = f'eval "$({sys.executable} -m scripts.local.env --server --state-dir {stack.state_dir})" && env -0'
    shell = subprocess.run(
        ["bash", "-c", command], cwd=PROJECT_DIR, env=shell_environment(), capture_output=True, text=True, timeout=60
    )
    assert shell.returncode == 0, shell.stderr
    return dict(entry.split("=", 1) for entry in shell.stdout.split("\0") if entry)


@pytest.fixture
def chalice_local(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], ChaliceLocal]]:
    """Starts `chalice local` with the environment given, and stops every one started when the test ends."""
    started: list[ChaliceLocal] = []

    def start(environment: dict[str, str]) -> ChaliceLocal:
        server = ChaliceLocal(environment, tmp_path / f"chalice-local-{len(started)}.log")
        started.append(server)
        server.wait_until_serving()
        return server

    yield start
    for server in started:
        server.stop()


def test_without_the_stacks_settings_it_answers_503_and_says_what_it_needs(stack: RunningStack, chalice_local):
    server = chalice_local(shell_environment())
    reply = server.get("/catalog", stack.token("basic"))
    assert reply.status_code == 503, reply.text
    assert reply.json()["error"]["code"] == "service_unavailable"
    assert reply.headers["Retry-After"] == "1"
    output = server.output()
    assert "the API is not configured" in output
    assert "not set: TOKEN_ISSUER, PAGINATION_SECRET (or PAGINATION_SECRET_ARN), TENANT_ACCESS_ROLE_ARN" in output
    assert "`make run` in another terminal" in output


def test_with_the_stacks_settings_it_serves_the_stacks_tenants(stack: RunningStack, chalice_local):
    server = chalice_local(stack_settings(stack))
    token = stack.token("basic")
    reply = server.get("/catalog?limit=2", token)
    assert reply.status_code == 200, (reply.text, server.output())
    assert reply.json()["tenant_id"] == "tenant-basic"
    assert len(reply.json()["items"]) == 2
    header, payload, signature = token.split(".")
    refused = server.get("/catalog", ".".join([header, payload, signature[::-1]]))
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"
    assert "the API is not configured" not in server.output()
