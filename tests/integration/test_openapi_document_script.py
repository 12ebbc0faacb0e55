"""scripts.docs.openapi_document: the stage's document as its API serves it, or as made for given addresses."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from chalicelib.web.openapi import StageAddresses, openapi_document
from scripts.docs import openapi_document as script

PROJECT_DIR = Path(__file__).resolve().parents[2]
TOKEN_URL = "http://127.0.0.1:41234/oauth2/token"


class DocumentServer:
    """An HTTP server on 127.0.0.1 answering GET /openapi.json with a status and body the test sets."""

    def __init__(self) -> None:
        self.status = 200
        self.body = b"{}"
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # the name http.server dispatches GET to
                # /health as the local stack answers it: the script asks whether the stack runs.
                routes = {"/openapi.json": (api.status, api.body), "/health": (200, b'{"status": "ok"}')}
                status, body = routes.get(self.path, (404, b"{}"))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)


@pytest.fixture
def document_server() -> Iterator[DocumentServer]:
    api = DocumentServer()
    api.thread.start()
    yield api
    api.server.shutdown()
    api.server.server_close()


def test_given_both_addresses_it_writes_their_document_without_calling_an_api(tmp_path: Path):
    out = tmp_path / "docs" / "openapi.json"
    assert script.main(["--api-url", "https://api.example.org/v1/", "--token-url", TOKEN_URL, "--out", str(out)]) == 0
    expected = openapi_document(StageAddresses("https://api.example.org/v1", TOKEN_URL))
    assert json.loads(out.read_text()) == json.loads(json.dumps(expected))


def test_the_local_stage_is_fetched_from_the_running_stack(tmp_path: Path, document_server: DocumentServer):
    served = openapi_document(StageAddresses(document_server.url, TOKEN_URL))
    document_server.body = json.dumps(served).encode()
    stack_file = tmp_path / "stack.json"
    stack_file.write_text(json.dumps({"api_url": document_server.url, "token_url": TOKEN_URL, "tenants": []}))
    out = tmp_path / "openapi.json"
    assert script.main(["--state-dir", str(tmp_path), "--out", str(out)]) == 0
    assert json.loads(out.read_text()) == json.loads(json.dumps(served))


def test_an_api_that_does_not_serve_its_document_is_refused(tmp_path: Path, document_server: DocumentServer, capsys):
    out = tmp_path / "openapi.json"
    document_server.status, document_server.body = 503, b'{"error": {"code": "service_unavailable"}}'
    assert script.main(["--api-url", document_server.url, "--out", str(out)]) == 1
    assert "answered 503" in capsys.readouterr().err
    document_server.status, document_server.body = 200, b'{"not": "a document"}'
    assert script.main(["--api-url", document_server.url, "--out", str(out)]) == 1
    assert "did not answer an OpenAPI document" in capsys.readouterr().err
    assert not out.exists()


def test_without_a_running_local_stack_it_says_how_to_start_one(tmp_path: Path, capsys):
    out = tmp_path / "openapi.json"
    assert script.main(["--state-dir", str(tmp_path), "--out", str(out)]) == 1
    assert "make run" in capsys.readouterr().err
    assert script.main(["--token-url", TOKEN_URL, "--out", str(out)]) == 1
    assert "--token-url goes with --api-url" in capsys.readouterr().err


def test_a_deployed_stage_is_fetched_from_the_api_chalice_deploy_recorded(tmp_path: Path):
    (tmp_path / ".chalice").mkdir()
    shutil.copy(PROJECT_DIR / ".chalice" / "config.json", tmp_path / ".chalice" / "config.json")
    with pytest.raises(script.DocumentError, match="deploy the stage first"):
        script.deployed_api_url("dev", tmp_path)
    deployed = tmp_path / ".chalice" / "deployed" / "dev.json"
    deployed.parent.mkdir()
    url = "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/api/"
    deployed.write_text(json.dumps({"resources": [{"resource_type": "rest_api", "rest_api_url": url}]}))
    assert script.deployed_api_url("dev", tmp_path) == url
