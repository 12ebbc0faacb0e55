"""The running local stack as other commands reach it: the stack file it writes, its region and loopback host,
and the AWS environment that points a process at its embedded AWS.

The local stack (scripts.local.stack) writes the file; the commands that work against the stack
(scripts.local.env, scripts.tenants --stage local, scripts.docs.openapi_document) read it from here,
so that none of them imports another command.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from scripts.loopback import opener_for

REGION = "us-east-1"
# The stack listens on loopback only.
HOST = "127.0.0.1"
PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_STATE_DIR = PROJECT_DIR / ".local"
STACK_FILE = "stack.json"
# How long one health check waits for its answer.
PROBE_TIMEOUT_SECONDS = 2
START_HINT = "start it with `make run` (python -m scripts.local.stack) in another terminal"


class StackNotRunning(Exception):
    """No local stack answers from the state directory; the message says why and how to start one."""


def answering(api_url: str) -> bool:
    """Whether the stack's API answers GET /health with 200."""
    opener = opener_for(api_url)
    try:
        with opener.open(f"{api_url}/health", timeout=PROBE_TIMEOUT_SECONDS) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def running_stack(state_dir: Path = DEFAULT_STATE_DIR) -> dict[str, Any]:
    """The stack.json of the local stack running from state_dir, once its API has answered its health check."""
    path = state_dir / STACK_FILE
    try:
        stack = json.loads(path.read_text())
        api_url = stack["api_url"]
    except FileNotFoundError:
        raise StackNotRunning(f"the local stack is not running (no {path}); {START_HINT}") from None
    except (ValueError, KeyError, TypeError):
        raise StackNotRunning(f"{path} is not a local stack's file; restart the stack: {START_HINT}") from None
    if not answering(api_url):
        raise StackNotRunning(
            f"the local stack at {api_url} is not running ({path} is from an earlier run); {START_HINT}"
        )
    return stack


# Settings a developer's shell may carry that would point this stack at a real account or
# override what the stack sets up; the stack's processes never see them.
FOREIGN_AWS_SETTINGS = (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_LAMBDA_FUNCTION_NAME",
    "JWKS_URL",
)


def isolate_aws_environment(endpoint_url: str) -> None:
    """Point every AWS SDK call of this process and its children at the embedded AWS, never a real one."""
    for name in [*FOREIGN_AWS_SETTINGS, *(key for key in os.environ if key.startswith("AWS_ENDPOINT_URL_"))]:
        os.environ.pop(name, None)
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint_url,
            # moto accepts any credentials; these are not secrets.
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            # No shared config: a profile's endpoint or credentials must not leak in.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    # Loopback traffic (boto3 to moto, the authorizer to the JWKS) must not go through a proxy.
    for name in ("NO_PROXY", "no_proxy"):
        current = [entry for entry in os.environ.get(name, "").split(",") if entry]
        os.environ[name] = ",".join(dict.fromkeys([*current, HOST, "localhost"]))
