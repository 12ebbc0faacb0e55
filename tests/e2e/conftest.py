"""Starts the local stack once for the end-to-end tests, and makes sure it is gone afterwards."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

PROJECT_DIR = Path(__file__).resolve().parents[2]
READY_TIMEOUT_SECONDS = 90
STOP_TIMEOUT_SECONDS = 15
HTTP_TIMEOUT_SECONDS = 10


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http_session() -> requests.Session:
    """A session that talks to loopback directly, whatever proxy the environment names."""
    session = requests.Session()
    session.trust_env = False
    return session


@dataclass
class RunningStack:
    """The stack under test: its process, its stack.json and its output so far."""

    process: subprocess.Popen
    state_dir: Path
    log_path: Path
    port: int
    info: dict[str, Any]
    http: requests.Session

    @property
    def api_url(self) -> str:
        """Base URL of the API."""
        return self.info["api_url"]

    def output(self) -> str:
        """Everything the stack printed so far."""
        return self.log_path.read_text(errors="replace")

    def tenant(self, tier: str) -> dict[str, str]:
        """The stack.json entry of the seed tenant of tier."""
        return next(tenant for tenant in self.info["tenants"] if tenant["tier"] == tier)

    def request_token(self, tier: str, **form: str) -> requests.Response:
        """POST to the token endpoint with the tier's tenant's credentials by HTTP Basic."""
        tenant = self.tenant(tier)
        return self.http.post(
            self.info["token_url"],
            data={"grant_type": "client_credentials", **form},
            auth=(tenant["client_id"], tenant["client_secret"]),
            timeout=HTTP_TIMEOUT_SECONDS,
        )

    def token(self, tier: str, **form: str) -> str:
        """An access token for the tier's tenant."""
        response = self.request_token(tier, **form)
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def get(self, path: str, token: str, **kwargs: Any) -> requests.Response:
        """GET an API path with a bearer token."""
        return self.http.get(
            f"{self.api_url}{path}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=HTTP_TIMEOUT_SECONDS,
            **kwargs,
        )


def _wait_for_stack_file(process: subprocess.Popen, stack_file: Path, log_path: Path) -> dict[str, Any]:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if stack_file.exists():
            return json.loads(stack_file.read_text())
        if process.poll() is not None:
            pytest.fail(f"the stack exited with code {process.returncode} before it was ready:\n{log_path.read_text()}")
        time.sleep(0.2)
    pytest.fail(f"no stack.json after {READY_TIMEOUT_SECONDS} s; the stack printed:\n{log_path.read_text()}")


def _kill_leftovers(process: subprocess.Popen, info: dict[str, Any]) -> None:
    # Only reached when a test failed to stop the stack: leave nothing running on the machine.
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    for pgid in (process.pid, info.get("api_pid")):
        if pgid:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """The local stack, started as `make run` starts it but on a free port and a temporary state dir."""
    state_dir = tmp_path_factory.mktemp("state")
    log_path = state_dir.parent / "stack.log"
    port = free_port()
    env = {**os.environ, "PORT": str(port), "PYTHONUNBUFFERED": "1"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "scripts.local_stack", "--state-dir", str(state_dir)],
            cwd=PROJECT_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    info: dict[str, Any] = {}
    try:
        info = _wait_for_stack_file(process, state_dir / "stack.json", log_path)
        yield RunningStack(process, state_dir, log_path, port, info, http_session())
    finally:
        _kill_leftovers(process, info)
