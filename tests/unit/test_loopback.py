"""The tools' openers: a proxy named in the environment is used for AWS and bypassed for the local stack."""

from __future__ import annotations

import http.server
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from scripts.loopback import is_loopback, opener_for


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8000/health", True),
        ("http://127.8.9.10/", True),
        ("http://localhost:8000", True),
        ("http://[::1]:8000/", True),
        ("https://abc123.execute-api.eu-west-1.amazonaws.com/api", False),
        ("http://10.0.0.1:8000/", False),
        ("not a url", False),
    ],
)
def test_loopback_is_this_machine_only(url: str, expected: bool) -> None:
    assert is_loopback(url) is expected


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/health"
    server.shutdown()
    server.server_close()


@pytest.fixture
def unreachable_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # Port 9 on loopback: nothing listens there, so a request sent through this proxy fails.
    for name in ("no_proxy", "NO_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    for name in ("http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")


@pytest.mark.usefixtures("unreachable_proxy")
def test_the_local_stack_is_reached_past_a_proxy_the_environment_names(server_url: str) -> None:
    with opener_for(server_url).open(server_url, timeout=5) as response:
        assert response.status == 200
    # The plain opener would go through the proxy, which is what opener_for avoids.
    with pytest.raises(urllib.error.URLError):
        urllib.request.build_opener().open(server_url, timeout=5)


@pytest.mark.usefixtures("unreachable_proxy")
def test_an_aws_address_keeps_the_environments_proxy() -> None:
    handlers = opener_for("https://abc123.execute-api.eu-west-1.amazonaws.com/api").handlers
    proxies = [handler.proxies for handler in handlers if isinstance(handler, urllib.request.ProxyHandler)]
    assert proxies == [{"http": "http://127.0.0.1:9"}]
