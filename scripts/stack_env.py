"""Print shell exports for a running local stack, for `eval "$(.venv/bin/python -m scripts.stack_env)"`."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
        print(f"echo 'no {path}: start the stack with make run first' >&2; false")
        return 1
    print("\n".join(exports(stack)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
