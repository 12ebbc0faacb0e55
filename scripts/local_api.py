"""Serve the API as `chalice local --no-autoreload` does, with a listen backlog that takes a crowd.

chalice local's server (chalice.local.ThreadedHTTPServer) keeps socketserver's listen backlog of
5: when more clients connect at once than it has accepted, the kernel drops the rest (measured:
reads stalled for up to 28 s on SYN and data retransmissions, and a third to three quarters of
the simultaneous POSTs were reset). This runs the same thing through Chalice's own code, CLI path
included: the stage's configuration and environment variables, the route validation, the
LocalDevServer with its LocalGateway (the built-in authorizer, CORS, binary bodies), the root
logger on stdout and AWS_CHALICE_CLI_MODE; only the server class differs, by its backlog.
`chalice local` run by hand is untouched.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from chalice import local
from chalice.app import Chalice
from chalice.cli import run_local_server
from chalice.cli.factory import CLIFactory
from chalice.config import Config

PROJECT_DIR = Path(__file__).resolve().parent.parent
LISTEN_BACKLOG = 128


class BackloggedHTTPServer(local.ThreadedHTTPServer):
    """chalice local's threaded server, listening with a backlog of LISTEN_BACKLOG connections."""

    request_queue_size = LISTEN_BACKLOG


class LocalApiFactory(CLIFactory):
    """Chalice's CLI factory, making its local server with BackloggedHTTPServer."""

    def create_local_server(self, app_obj: Chalice, config: Config, host: str, port: int) -> local.LocalDevServer:
        # As chalice.local.create_local_server, which takes no server class: current_request
        # becomes thread-local, since the server runs each request on a thread of its own.
        local.CustomLocalChalice.__bases__ = (local.LocalChalice, app_obj.__class__)
        app_obj.__class__ = local.CustomLocalChalice
        return local.LocalDevServer(app_obj, config, host, port, server_cls=BackloggedHTTPServer)


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
        prog="python -m scripts.local_api",
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
        print(f"[local-api] error: {error}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
