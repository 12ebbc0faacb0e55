"""The local stack's emulated AWS: moto's server application, handling one request at a time.

moto's backends are not safe under concurrent requests: moto 5.2.5's TransactWriteItems
deep-copies the tables it touches, applies its writes without a lock and restores the copy when
the transaction is cancelled, so two transactions served at once on moto's threaded server undo
each other (orders placed beyond the stock, acknowledged orders lost, a decrement undone).
DynamoDB applies each transaction atomically; serializing the requests is how the emulation
gets the same guarantee. Every service behind it (DynamoDB, Cognito, API Gateway) goes through
the same lock, which costs nothing that matters at a laptop's request rates.
"""

from __future__ import annotations

import io
import threading
from typing import Any, Callable, Iterable

from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wsgi import get_input_stream

WsgiApplication = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class OneRequestAtATime:
    """WSGI middleware: the wrapped application serves one request at a time, its response body included."""

    def __init__(self, application: WsgiApplication):
        self._application = application
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        # The body is read before the lock is taken, and the answer sent after it is released,
        # so a slow or stalled client holds up nobody else.
        body = get_input_stream(environ).read()
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        with self._lock:
            result = self._application(environ, start_response)
            try:
                # A WSGI body may be computed as it is iterated: all of it is produced under the lock.
                return [b"".join(result)]
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()


def moto_application() -> WsgiApplication:
    """moto's server application (every service, dispatched by request), serialized."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    return OneRequestAtATime(DomainDispatcherApplication(create_backend_app))


class EmulatedAws:
    """moto's server on a loopback port, in a thread of this process, serving one request at a time.

    The same server as moto's ThreadedMotoServer (werkzeug, a thread per connection, moto's
    request handler), with the application wrapped so that requests cannot interleave.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        from moto.moto_server.werkzeug_app import MotoRequestHandler

        # Binds now, so the port is known (and taken) before anything is told about it.
        self._server: BaseWSGIServer = make_server(
            host, port, moto_application(), threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="emulated-aws", daemon=True)

    @property
    def endpoint_url(self) -> str:
        """The URL boto3 reaches it at (AWS_ENDPOINT_URL)."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        """Serve requests on a thread of its own."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the port; connections still open are dropped with the process."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()
