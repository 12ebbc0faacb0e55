"""Write a stage's OpenAPI document to a file, for `make docs` and for client generators.

By default the document is fetched from the stage's own GET /openapi.json, so the file is exactly
what the API serves, with the stage's API and token endpoint in it: for the local stage from the
running local stack (.local/stack.json names it, and it must answer /health), for a deployed stage from the API that
`chalice deploy` recorded in .chalice/deployed/STAGE.json. Given both --api-url and --token-url,
the document for those addresses is written without calling any API.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from scripts.command_output import CommandOutput
from scripts.loopback import is_loopback, opener_for
from scripts.stack_file import DEFAULT_STATE_DIR, StackNotRunning, running_stack
from scripts.stage_config import PROJECT_DIR, StageConfigError
from scripts.stage_resources import LOCAL_STAGE

OUTPUT = CommandOutput("openapi")

FETCH_TIMEOUT_SECONDS = 10
START_HINT = "start it with `make run` in another terminal"


class DocumentError(Exception):
    """The document cannot be had; the message says why and what to do."""


def local_api_url(state_dir: Path = DEFAULT_STATE_DIR) -> str:
    """The API URL of the local stack that `make run` started, once its API answers."""
    try:
        return str(running_stack(state_dir)["api_url"])
    except StackNotRunning as error:
        raise DocumentError(str(error)) from None


def deployed_api_url(stage: str, project_dir: Path = PROJECT_DIR) -> str:
    """The URL of the REST API `chalice deploy` recorded for a deployed stage."""
    from scripts.stage_resources import load_stage

    try:
        return load_stage(stage, project_dir).deployed_api_url()
    except StageConfigError as error:
        raise DocumentError(str(error)) from None


def fetch_document(api_url: str) -> dict[str, Any]:
    """The document the API at api_url serves."""
    url = f"{api_url.rstrip('/')}/openapi.json"
    opener = opener_for(url)
    try:
        with opener.open(url, timeout=FETCH_TIMEOUT_SECONDS) as response:
            document = json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise DocumentError(f"{url} answered {error.code}: {error.read()[:300]!r}") from None
    except (urllib.error.URLError, OSError) as error:
        hint = f"; {START_HINT}" if is_loopback(url) else ""
        raise DocumentError(f"cannot reach {url} ({getattr(error, 'reason', error)}){hint}") from None
    except ValueError:
        raise DocumentError(f"{url} did not answer JSON") from None
    if not isinstance(document, dict) or "openapi" not in document:
        raise DocumentError(f"{url} did not answer an OpenAPI document")
    return document


def built_document(api_url: str, token_url: str) -> dict[str, Any]:
    """The document for a stage at these addresses, made in this process."""
    from chalicelib.web.openapi import StageAddresses, openapi_document

    try:
        return openapi_document(StageAddresses(api_url.rstrip("/"), token_url))
    except ValueError as error:
        raise DocumentError(str(error)) from None


def document_for(args: argparse.Namespace) -> dict[str, Any]:
    """The document the command line asks for."""
    if args.token_url and not args.api_url:
        raise DocumentError("--token-url goes with --api-url")
    if args.api_url and args.token_url:
        OUTPUT.progress(f"building the document for {args.api_url} (tokens from {args.token_url})")
        return built_document(args.api_url, args.token_url)
    if args.api_url:
        api_url = args.api_url
    elif args.stage == LOCAL_STAGE:
        api_url = local_api_url(args.state_dir)
    else:
        api_url = deployed_api_url(args.stage)
    OUTPUT.progress(f"fetching the document from {api_url}")
    return fetch_document(api_url)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.docs.openapi_document", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument(
        "--stage",
        default=LOCAL_STAGE,
        help="local (the running local stack, the default) or a deployed stage (dev, prod)",
    )
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="where `make run` wrote stack.json")
    parser.add_argument("--api-url", help="fetch from the API at this URL instead of the stage's")
    parser.add_argument("--token-url", help="with --api-url: write the document for these addresses, calling no API")
    parser.add_argument("--out", type=Path, required=True, help="the file to write (its folder is created)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Write the document; non-zero exit when it cannot be had."""
    args = parse_args(argv)
    try:
        document = document_for(args)
    except (DocumentError, StageConfigError) as error:
        OUTPUT.error(error)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    servers = ", ".join(server["url"] for server in document.get("servers", []))
    OUTPUT.progress(f"wrote {args.out} (API {servers or 'unnamed'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
