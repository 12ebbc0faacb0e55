"""scripts.local.env: exports for a running local stack, and a failing line for a stopped or absent one."""

from __future__ import annotations

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

from scripts.local import env as stack_env

TENANT = {"tenant_id": "tenant-basic", "tier": "basic", "client_id": "c1", "client_secret": "s'1"}


@pytest.fixture
def api() -> Iterator[str]:
    """An API on loopback whose /health answers 200."""

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def stack_file(directory: Path, api_url: str) -> Path:
    (directory / "stack.json").write_text(
        json.dumps({"api_url": api_url, "token_url": f"{api_url}/oauth2/token", "tenants": [TENANT]})
    )
    return directory


def test_a_running_stack_gets_its_exports(tmp_path, api, capsys):
    assert stack_env.main(["--state-dir", str(stack_file(tmp_path, api))]) == 0
    printed = capsys.readouterr().out
    assert f"export API={api}\n" in printed
    # Quoted for the shell: eval gives back the secret as written.
    shell = subprocess.run(["sh", "-c", f'{printed}\nprintf %s "$BASIC_CLIENT_SECRET"'], capture_output=True, text=True)
    assert shell.stdout == TENANT["client_secret"]


def test_a_stopped_stack_is_refused_and_eval_fails(tmp_path, capsys):
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as closed:
        port = closed.server_address[1]
    assert stack_env.main(["--state-dir", str(stack_file(tmp_path, f"http://127.0.0.1:{port}"))]) == 1
    printed = capsys.readouterr().out
    assert "export" not in printed
    shell = subprocess.run(["sh", "-c", printed], capture_output=True, text=True)
    assert shell.returncode != 0 and "is not running" in shell.stderr


def test_no_stack_file_is_refused(tmp_path, capsys):
    assert stack_env.main(["--state-dir", str(tmp_path)]) == 1
    shell = subprocess.run(["sh", "-c", capsys.readouterr().out], capture_output=True, text=True)
    assert shell.returncode != 0 and "make run" in shell.stderr


def test_a_file_that_is_not_a_stacks_is_refused_with_how_to_start_one(tmp_path, capsys):
    (tmp_path / "stack.json").write_text("{not json")
    with pytest.raises(stack_env.StackNotRunning, match="is not a local stack's file.*`make run`"):
        stack_env.running_stack(tmp_path)


def test_the_health_check_goes_to_loopback_directly_whatever_proxy_the_environment_names(tmp_path, api, monkeypatch):
    # A proxy that refuses every connection: reaching the API through it would fail the check.
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as closed:
        dead_proxy = f"http://127.0.0.1:{closed.server_address[1]}"
    for name in ("http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(name, dead_proxy)
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert stack_env.running_stack(stack_file(tmp_path, api))["api_url"] == api


def test_server_exports_give_a_shell_the_apis_own_settings(tmp_path, api, capsys):
    directory = stack_file(tmp_path, api)
    stack = json.loads((directory / "stack.json").read_text())
    stack["server"] = {
        "environment": {"TOKEN_ISSUER": f"{api}/issuer", "PAGINATION_SECRET": "p'q r"},
        "unset": ["AWS_PROFILE", "PAGINATION_SECRET_ARN"],
    }
    (directory / "stack.json").write_text(json.dumps(stack))
    assert stack_env.main(["--state-dir", str(directory), "--server"]) == 0
    printed = capsys.readouterr().out
    assert "CLIENT_SECRET" not in printed
    shell = subprocess.run(
        ["sh", "-c", f'{printed}\nprintf "%s|%s|%s" "$PAGINATION_SECRET" "${{AWS_PROFILE-unset}}" "$TOKEN_ISSUER"'],
        capture_output=True,
        text=True,
        env={"AWS_PROFILE": "work", "PATH": "/usr/bin:/bin"},
    )
    assert shell.stdout == f"p'q r|unset|{api}/issuer"


def test_server_exports_of_a_stack_file_without_them_say_to_restart(tmp_path, api, capsys):
    assert stack_env.main(["--state-dir", str(stack_file(tmp_path, api)), "--server"]) == 1
    printed = capsys.readouterr().out
    assert "export" not in printed
    assert "restart `make run`" in printed
