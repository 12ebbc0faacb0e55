"""The local stack as end-to-end tests talk to it: its process, its stack.json, and plain HTTP on loopback."""

from __future__ import annotations

import contextlib
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from chalicelib.process_caches import reset_process_caches
from scripts.stage_config import read_stage_config

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


@contextlib.contextmanager
def on_stack_aws(stack: RunningStack) -> Iterator[None]:
    """This process's chalicelib on the stack's table and emulated AWS, with the settings its own API runs with."""
    server = stack.info["server"]
    with pytest.MonkeyPatch.context() as env:
        for name in (*server["unset"], "AWS_ENDPOINT_URL_DYNAMODB"):
            env.delenv(name, raising=False)
        for name, value in {**server["environment"], "TABLE_NAME": read_stage_config("local").table_name}.items():
            env.setenv(name, value)
        reset_process_caches()
        try:
            yield
        finally:
            # Later tests in this process must not reach the stack, which is gone by then.
            reset_process_caches()
