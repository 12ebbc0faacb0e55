"""Print shell exports for a running local stack, for `eval "$(.venv/bin/python -m scripts.local.env)"`.

With --server, the exports are the settings the stack's own API runs with instead, so that plain
`chalice local` started from that shell serves the same tenants.

A stack that has stopped leaves its stack.json behind; its credentials are gone with it, so the
exports are printed only when the API answers its health check.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from scripts.stack_file import DEFAULT_STATE_DIR, StackNotRunning, running_stack


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


def server_exports(stack: dict) -> list[str]:
    """Shell lines giving a shell the settings of the stack's API (emulated AWS, issuer, role, secret)."""
    server = stack.get("server")
    if not server:
        raise StackNotRunning("the running stack's stack.json has no server settings; restart `make run`")
    lines = [f"unset {' '.join(server['unset'])}"]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in server["environment"].items()]
    return lines


def main(argv: list[str] | None = None) -> int:
    """Read the stack file and print the exports."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="where `make run` wrote stack.json")
    parser.add_argument(
        "--server", action="store_true", help="export the API's own settings, for plain `chalice local` in this shell"
    )
    args = parser.parse_args(argv)
    try:
        stack = running_stack(args.state_dir)
        lines = server_exports(stack) if args.server else exports(stack)
    except StackNotRunning as error:
        print(refusal(str(error)))
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
