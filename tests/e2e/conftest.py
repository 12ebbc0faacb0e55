"""Starts the local stack once for the end-to-end tests, and makes sure it is gone afterwards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.support.project import PROJECT_DIR
from tests.support.stack import STOP_TIMEOUT_SECONDS, RunningStack, free_port, http_session

READY_TIMEOUT_SECONDS = 90


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
            [sys.executable, "-m", "scripts.local.stack", "--state-dir", str(state_dir)],
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
