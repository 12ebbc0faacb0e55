"""Serve the API as `chalice local --no-autoreload` does, answering at the gateway as API Gateway would.

It runs the same thing through Chalice's own code, CLI path included: the stage's configuration
and environment variables, the route validation, the LocalDevServer with Chalice's LocalGateway
(the built-in authorizer, CORS, binary bodies), the root logger on stdout and
AWS_CHALICE_CLI_MODE. Three things differ, each where `chalice local` is unlike API Gateway:

- the listen backlog: chalice local's server keeps socketserver's 5, so when more clients
  connect at once than it has accepted the kernel drops the rest (measured: reads stalled for up
  to 28 s and a third to three quarters of 50 simultaneous POSTs were reset); here it is 128;
- the gateway's own answers (no such route or method, no Authorization header, a policy that
  does not allow the call, a malformed request): chalice local answers them with API Gateway's
  default bodies (one echoes the caller's Authorization header) or with http.server's HTML
  pages; here they are the project's gateway responses (chalicelib.web.gateway.gateway_responses(),
  the very definitions applied to the deployed API), rendered as API Gateway renders them;
- framing: chalice local processes a request whose body is shorter than its Content-Length;
  here such a request is refused, as are bodies over API Gateway's 10 MB payload limit and
  chunked bodies, and the connection is closed after the answer.

`chalice local` run by hand is untouched.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import socket
import sys
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Callable

from chalice import local
from chalice.app import Chalice
from chalice.cli import run_local_server
from chalice.cli.factory import CLIFactory
from chalice.config import Config

from chalicelib.web.gateway import gateway_responses, render
from scripts.command_output import CommandOutput

OUTPUT = CommandOutput("local-api")

PROJECT_DIR = Path(__file__).resolve().parents[2]
LISTEN_BACKLOG = 128
# API Gateway's payload limit for REST APIs (10 MB).
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
# How long a connection may leave the server waiting for the rest of a request (or the next
# one) before it is closed: a client that stops sending must not hold a thread forever.
CLIENT_TIMEOUT_SECONDS = 30
# After refusing a request whose body it did not read, the server reads (and drops) at most this
# many 64 KiB chunks, for at most this long each, before it closes the connection.
LINGER_SECONDS = 1.0
LINGER_READS = 32
NOSNIFF = {"X-Content-Type-Options": "nosniff"}

# The gateway response types this server produces: API Gateway's default status for each (used
# when the project's definition sets none), the x-amzn-ErrorType header and the message API
# Gateway sends ($context.error.messageString). DEFAULT_4XX and DEFAULT_5XX take the status given.
GATEWAY_ERRORS: dict[str, tuple[int, str, str]] = {
    "MISSING_AUTHENTICATION_TOKEN": (403, "MissingAuthenticationTokenException", "Missing Authentication Token"),
    "UNAUTHORIZED": (401, "UnauthorizedException", "Unauthorized"),
    "ACCESS_DENIED": (403, "AccessDeniedException", "User is not authorized to access this resource"),
    "AUTHORIZER_CONFIGURATION_ERROR": (500, "AuthorizerConfigurationException", "Internal server error"),
    "REQUEST_TOO_LARGE": (413, "RequestEntityTooLargeException", "Request Too Long"),
}
# What Chalice's local gateway raises by status, as the response type API Gateway would render.
CHALICE_REFUSALS = {401: "UNAUTHORIZED", 403: "ACCESS_DENIED"}


class GatewayRefusal(local.LocalGatewayException):
    """An answer the gateway gives without calling the function, with its status."""

    def __init__(self, status: int, headers: dict[str, Any], body: bytes, *, close: bool = False):
        super().__init__(headers, body)
        self.CODE = status
        # Set when the request's body was not read in full: the connection cannot carry another request.
        self.close = close


def gateway_refusal(response_type: str, *, status: int | None = None, close: bool = False) -> GatewayRefusal:
    """The project's gateway response of response_type (an API Gateway type), rendered as API Gateway does.

    A type the project does not define falls back to its DEFAULT_4XX or DEFAULT_5XX, as in API
    Gateway; the status is the definition's, else the fallback's, else API Gateway's default for
    the type, else status (which DEFAULT_4XX and DEFAULT_5XX need).
    """
    default_status, error_type, message = GATEWAY_ERRORS.get(
        response_type, (status or 500, "", HTTPStatus(status or 500).phrase)
    )
    request_id = str(uuid.uuid4())
    answer_status, headers, body = render(
        gateway_responses(), response_type, request_id, default_status=default_status, message=message
    )
    headers["x-amzn-RequestId"] = request_id
    if error_type:
        headers["x-amzn-ErrorType"] = error_type
    if close:
        headers["Connection"] = "close"
    return GatewayRefusal(answer_status, headers, body.encode(), close=close)


def _is_envelope(body: bytes | None) -> bool:
    try:
        document = json.loads(body or b"")
    except ValueError:
        return False
    return isinstance(document, dict) and isinstance(document.get("error"), dict) and "request_id" in document


class GatewayLikeLocalGateway(local.LocalGateway):
    """Chalice's LocalGateway, refusing what API Gateway refuses with the project's gateway responses."""

    def __init__(self, app_object: Chalice, config: Config) -> None:
        super().__init__(app_object, config)
        self._routes = app_object.routes
        self._route_matcher = local.RouteMatcher(list(app_object.routes))

    def _is_defined(self, method: str, path: str) -> bool:
        # API Gateway has a method only where a route declares it; Chalice adds OPTIONS (a CORS
        # preflight) only to paths with a CORS-enabled view, and nothing else.
        try:
            route = self._route_matcher.match_route(path).route
        except ValueError:
            return False
        views = self._routes[route]
        return method in views or (method == "OPTIONS" and any(view.cors for view in views.values()))

    def handle_request(self, method: str, path: str, headers: dict[str, Any], body: bytes | None) -> dict[str, Any]:
        """Answer as API Gateway would: its gateway responses, or the function's answer."""
        if not self._is_defined(method, path):
            # With or without an Authorization header (which API Gateway then reads as a malformed
            # signature): the same gateway response type, and the header never comes back.
            raise gateway_refusal("MISSING_AUTHENTICATION_TOKEN")
        try:
            return super().handle_request(method, path, headers, body)
        except local.LocalGatewayException as error:
            if _is_envelope(error.body):
                # The project's authorizer refused with its own envelope (chalicelib.web.gateway), nosniff included.
                raise GatewayRefusal(error.CODE, error.headers, error.body or b"") from None
            # Chalice's own refusals: no Authorization header (401), a policy that does not allow
            # the call (403), an authorizer that returned nothing (500).
            raise gateway_refusal(CHALICE_REFUSALS.get(error.CODE, "AUTHORIZER_CONFIGURATION_ERROR")) from None


class GatewayRequestHandler(local.ChaliceRequestHandler):
    """chalice local's request handler, framing requests and answering errors as API Gateway does."""

    timeout = CLIENT_TIMEOUT_SECONDS

    def __init__(self, request: Any, client_address: Any, server: Any, app_object: Chalice, config: Config) -> None:
        # As ChaliceRequestHandler.__init__, with the gateway above (the base class handles the
        # request inside __init__, so the gateway must be set first).
        self.local_gateway = GatewayLikeLocalGateway(app_object, config)
        BaseHTTPRequestHandler.__init__(self, request, client_address, server)

    def __getattr__(self, name: str) -> Callable[[], None]:
        # http.server answers a method without a do_<METHOD> with a 501 HTML page; API Gateway
        # answers any method it has no definition for with a gateway response.
        if name.startswith("do_"):
            return self._generic_handle
        raise AttributeError(name)

    def _parse_payload(self) -> tuple[dict[str, Any], bytes | None]:
        if self.headers.get_all("transfer-encoding"):
            # Not decoded here (API Gateway's documentation does not say it accepts chunked request
            # bodies): refused and the connection closed, where http.server would read the chunks
            # as the next request.
            raise gateway_refusal("DEFAULT_4XX", status=HTTPStatus.LENGTH_REQUIRED, close=True)
        lengths = set(self.headers.get_all("content-length") or ["0"])
        raw_length = lengths.pop()
        if lengths or not raw_length.isascii() or not raw_length.isdigit():
            # Two different lengths, or one that is not a number: the body's end is unknowable.
            raise gateway_refusal("DEFAULT_4XX", status=HTTPStatus.BAD_REQUEST, close=True)
        if len(raw_length) > len(str(MAX_PAYLOAD_BYTES)) or int(raw_length) > MAX_PAYLOAD_BYTES:
            raise gateway_refusal("REQUEST_TOO_LARGE", close=True)
        length = int(raw_length)
        body = None
        if length:
            try:
                body = self.rfile.read(length)
            except OSError:
                body = b""
            if len(body) < length:
                # The client stopped (or closed its side) before sending what it announced.
                raise gateway_refusal("DEFAULT_4XX", status=HTTPStatus.BAD_REQUEST, close=True)
        return dict(self.headers), body

    def _generic_handle(self) -> None:
        try:
            headers, body = self._parse_payload()
            response = self.local_gateway.handle_request(
                method=self.command, path=self.path, headers=headers, body=body
            )
        except local.LocalGatewayException as error:
            self._send_error_response(error)
            return
        except Exception:  # noqa: BLE001 - the client gets an envelope, never a dropped connection
            logging.getLogger(__name__).exception("local gateway error")
            self._send_error_response(
                gateway_refusal("DEFAULT_5XX", status=HTTPStatus.INTERNAL_SERVER_ERROR, close=True)
            )
            return
        response_headers = {**response["headers"], **response["multiValueHeaders"]}
        body = response["body"]
        if response.get("isBase64Encoded"):
            body = base64.b64decode(body)
        self._send_http_response(response["statusCode"], response_headers, body)

    # ChaliceRequestHandler binds these names to its own _generic_handle; they must name this one.
    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle

    def _send_error_response(self, error: local.LocalGatewayException) -> None:
        super()._send_error_response(error)
        if getattr(error, "close", False):
            self.close_connection = True
            self._discard_unread_input()

    def _discard_unread_input(self) -> None:
        # Closing a socket with unread input makes the kernel send a reset, which can destroy the
        # answer before the client reads it; so end our side first and read what is still coming
        # (briefly, and a bounded amount) before the server closes the connection.
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(LINGER_SECONDS)
            for _ in range(LINGER_READS):
                if not self.connection.recv(65536):
                    break
        except OSError:
            pass

    def _send_http_response_with_body(self, code: int, headers: dict[str, Any], body: str | bytes) -> None:
        # As Chalice's, except that a HEAD answer carries no body (Chalice writes it, which
        # corrupts the next response on a kept-alive connection).
        self.send_response(code)
        payload = body if isinstance(body, bytes) else body.encode("utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Content-Type", headers.pop("Content-Type", "application/json"))
        self._send_headers(headers)
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _send_headers(self, headers: dict[str, Any]) -> None:
        # The one place every answer (the function's and the gateway's) gets nosniff.
        if not any(name.lower() == "x-content-type-options" for name in headers):
            headers = {**headers, **NOSNIFF}
        super()._send_headers(headers)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answer a request http.server cannot parse (request line, headers) with the gateway's envelope."""
        self.log_error("code %d, message %s", code, message)
        if self.request_version == "HTTP/0.9":
            # Set for a request line http.server could not read: answer with a status line and headers.
            self.request_version = self.protocol_version
        self._send_error_response(
            gateway_refusal("DEFAULT_5XX" if code >= 500 else "DEFAULT_4XX", status=code, close=True)
        )


class BackloggedHTTPServer(local.ThreadedHTTPServer):
    """chalice local's threaded server, listening with a backlog of LISTEN_BACKLOG connections."""

    request_queue_size = LISTEN_BACKLOG


class LocalApiFactory(CLIFactory):
    """Chalice's CLI factory, making its local server with BackloggedHTTPServer and GatewayRequestHandler."""

    def create_local_server(self, app_obj: Chalice, config: Config, host: str, port: int) -> local.LocalDevServer:
        # As chalice.local.create_local_server, which takes no server or handler class:
        # current_request becomes thread-local, since the server runs each request on a thread of its own.
        local.CustomLocalChalice.__bases__ = (local.LocalChalice, app_obj.__class__)
        app_obj.__class__ = local.CustomLocalChalice
        return local.LocalDevServer(
            app_obj, config, host, port, handler_cls=GatewayRequestHandler, server_cls=BackloggedHTTPServer
        )


def serve(stage: str, host: str, port: int, project_dir: Path = PROJECT_DIR) -> None:
    """Serve the project's API for stage on host:port until the process is stopped."""
    # What `chalice --project-dir DIR local --no-autoreload` does before it serves, in its order.
    os.environ["AWS_CHALICE_CLI_MODE"] = "true"
    os.chdir(project_dir)
    factory = LocalApiFactory(str(project_dir), debug=False, environ=os.environ)
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
    run_local_server(factory, host, port, stage)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line (the options of `chalice local` that the local stack uses)."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.local.api",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("--stage", default="local", help="the Chalice stage to serve (default: local)")
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="the port to listen on (default: 8000)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Serve until stopped; 1 on an operating-system error such as a taken port (others show their traceback)."""
    args = parse_args(argv)
    try:
        serve(args.stage, args.host, args.port)
    except KeyboardInterrupt:
        return 0
    except OSError as error:
        OUTPUT.error(error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
