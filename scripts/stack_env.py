"""Print shell exports for a running local stack, for `eval "$(.venv/bin/python -m scripts.stack_env)"`.

A stack that has stopped leaves its stack.json behind; its credentials are gone with it, so the
exports are printed only when the API answers its health check.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEALTH_TIMEOUT_SECONDS = 2


def answering(api_url: str) -> bool:
    """Whether the stack's API answers GET /health with 200."""
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=HEALTH_TIMEOUT_SECONDS) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def refusal(message: str) -> str:
    """A shell line that prints message to stderr and fails, so that `eval` of it fails too."""
    return f"echo {shlex.quote(message)} >&2; false"


def exports(stack: dict) -> list[str]:
    """Shell export lines: API, TOKEN_URL and each tier's client id and secret."""
    lines = [f"export API={shlex.quote(stack['api_url'])}", f"export TOKEN_URL={shlex.quote(stack['token_url'])}"]
    for tenant in stack["tenants"]:
        prefix = tenant["tier"].upper()
        lines.append(f"export {prefix}_CLIENT_ID={shlex.quote(tenant['client_id'])}")
        lines.append(f"export {prefix}_CLIENT_SECRET={shlex.quote(tenant['client_secret'])}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Read the stack file and print the exports."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state-dir", type=Path, default=ROOT / ".local", help="where `make run` wrote stack.json")
    args = parser.parse_args(argv)
    path = args.state_dir / "stack.json"
    try:
        stack = json.loads(path.read_text())
    except FileNotFoundError:
        print(refusal(f"no {path}: start the stack with make run first"))
        return 1
    if not answering(stack["api_url"]):
        print(
            refusal(f"the local stack at {stack['api_url']} is not running ({path} is from an earlier run): make run")
        )
        return 1
    print("\n".join(exports(stack)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
