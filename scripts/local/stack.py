"""Run the whole stack on this machine in the foreground; Ctrl-C or SIGTERM stops all of it.

Starts an embedded AWS (moto: DynamoDB, Cognito, API Gateway, IAM and STS, one request at a time so that its
transactions are as atomic as DynamoDB's), provisions it through boto3 as a real account would be
(table, user pool, resource server, usage plans, three seed tenants with their catalogs), serves a
Cognito-compatible token endpoint, then serves the API as `chalice local` does (scripts.local.api:
Chalice's own local server, with a listen backlog that takes many clients at once) and writes the
addresses and credentials to {state-dir}/stack.json (mode 0600).
"""

from __future__ import annotations

import argparse
import errno
import importlib.util
import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Callable

from scripts.command_output import CommandOutput
from scripts.stack_file import FOREIGN_AWS_SETTINGS, HOST, REGION, STACK_FILE, answering, isolate_aws_environment
from scripts.stage_config import StageConfig, StageConfigError, read_stage_config

if TYPE_CHECKING:
    from scripts.stage_resources import AwsClients

OUTPUT = CommandOutput("local-stack")

PROJECT_DIR = Path(__file__).resolve().parents[2]
STAGE = "local"
DEFAULT_PORT = 8000
STARTUP_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 5.0


class StackError(Exception):
    """The stack cannot start or stopped by itself; the message says why."""


def ensure_port_free(port: int, host: str = HOST) -> None:
    """Refuse to start when another process listens on port, before anything is started."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Same option as chalice's server, so a port held only by old TIME_WAIT connections counts as free.
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind((host, port))
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise StackError(
                f"port {port} on {host} is already in use; stop what uses it or set PORT to a free port"
            ) from None
        raise StackError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    finally:
        probe.close()


def start_moto() -> tuple[Any, str]:
    """Start the emulated AWS (moto, serialized) on a free loopback port in this process; returns it and its URL."""
    import logging

    from scripts.local.aws import EmulatedAws

    # werkzeug logs every request moto serves; the API's own log is what the developer reads.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = EmulatedAws(host=HOST)
    server.start()
    return server, server.endpoint_url


def configure_application(stage: StageConfig, issuer: str, pagination_secret: str, tenant_access_role_arn: str) -> None:
    """Give chalicelib, in this process, the settings chalice local gives the application."""
    os.environ.update(stage.environment)
    os.environ.update(
        {
            "TOKEN_ISSUER": issuer,
            "PAGINATION_SECRET": pagination_secret,
            "TENANT_ACCESS_ROLE_ARN": tenant_access_role_arn,
        }
    )
    from chalicelib.process_caches import reset_process_caches

    # Settings and clients are cached on first use; start from this environment.
    reset_process_caches()


@dataclass(frozen=True)
class Provisioned:
    """The shared resources the tenants are onboarded into."""

    pool_id: str
    scopes: list[str]
    plan_ids: dict[str, str]
    tenant_access_role_arn: str


def stage_tags(stage: StageConfig) -> dict[str, str]:
    """The tags a deployed stage's resources carry (project, stage and its "tags" setting)."""
    from scripts.stage_resources import StageResources

    return StageResources(stage, PROJECT_DIR).tags


def provision_shared(clients: AwsClients, stage: StageConfig) -> Provisioned:
    """Create the table, user pool, resource server, usage plans and tenant-access role (idempotent)."""
    from scripts import provision

    provision.ensure_table(clients.dynamodb, stage.table_name)
    provision.ensure_ttl(clients.dynamodb, stage.table_name)
    OUTPUT.progress(f"table {stage.table_name} ready (TTL on)")
    pool_id = provision.ensure_user_pool(clients.cognito, stage.resource_prefix)
    scopes = provision.ensure_resource_server(clients.cognito, pool_id, stage.resource_server_id)
    OUTPUT.progress(f"user pool {pool_id} with resource server {stage.resource_server_id} ({', '.join(scopes)})")
    # Tagged when made, as bootstrap makes them: `tenants --stage local` ensures the plans with the
    # stage's tags, and moto cannot tag a usage plan afterwards (its TagResource answers 404).
    plan_ids = provision.ensure_usage_plans(clients.apigateway, stage.resource_prefix, tags=stage_tags(stage))
    OUTPUT.progress(f"usage plans: {', '.join(sorted(plan_ids))}")
    # The API serves each tenant with this role's credentials, assumed through moto's STS as in AWS.
    role_arn = provision.ensure_tenant_access_role(
        clients.iam,
        partition="aws",
        region=REGION,
        account=clients.sts.get_caller_identity()["Account"],
        resource_prefix=stage.resource_prefix,
        table_name=stage.table_name,
        tags={},
    )
    OUTPUT.progress(f"role {role_arn} (tenant-scoped credentials)")
    return Provisioned(pool_id, scopes, plan_ids, role_arn)


def onboard_seed_tenants(clients: AwsClients, stage: StageConfig, shared: Provisioned, token_url: str) -> list[Any]:
    """Onboard the seed tenants through the control plane's one door, as `tenants create` does; their credentials.

    scripts.tenants.lifecycle.seed_demo creates each tenant (registry items, app client, API key in its
    tier's plan, tags; the leftover-data check and the stage's secret setting included) and writes
    its catalog; the client secrets for stack.json are read back from Cognito, which holds them.
    """
    from scripts import provision
    from scripts.stage_resources import StageResources
    from scripts.tenants import lifecycle

    # Read-only: the plans are the ones provisioned for the stack just before.
    tenancy = lifecycle.open_tenancy(
        StageResources(stage, PROJECT_DIR), clients, shared.pool_id, token_url, read_only=True
    )
    onboarded = []
    for record in lifecycle.seed_demo(tenancy):
        client = provision.app_client(clients.cognito, shared.pool_id, record.client_id)
        if client is None:
            raise StackError(f"the app client of seed tenant {record.tenant_id} is gone")
        onboarded.append(
            provision.TenantCredentials(
                record.tenant_id, record.tier, record.client_id, client.client_secret, record.api_key_id
            )
        )
    return onboarded


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec function making the child get SIGTERM if this process dies (Linux), else None."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    # Resolved here, in the parent, so the child only makes one system call between fork and exec.
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig = 1

    def set_parent_death_signal() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)

    return set_parent_death_signal


def start_api(port: int, log_file: Path) -> subprocess.Popen:
    """Serve the API for the stage as `chalice local` does, in its own process group; its output is relayed.

    scripts.local.api runs Chalice's own local server and gateway, with a listen backlog of 128
    instead of 5 so that a crowd of clients is not reset. Its stdout (the application's JSON log
    lines and metrics documents) goes to this terminal and to log_file, so the records CloudWatch
    would hold can be read locally too.
    """
    if importlib.util.find_spec("chalice") is None:
        raise StackError(f"chalice is not installed for {sys.executable}; run `make run` to set up .venv")
    # No reloader (as `chalice local --no-autoreload`): its stat watcher polls the whole project
    # (.venv included) and restarts on any new file, stack.json among them, and each restart would
    # also empty the rate limiter.
    command = [sys.executable, "-m", "scripts.local.api", "--stage", STAGE, "--host", HOST, "--port", str(port)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # Its own process group: a terminal's Ctrl-C reaches this process only, which then stops
    # the API in order; the parent-death signal covers this process being killed outright.
    process = subprocess.Popen(
        command,
        cwd=PROJECT_DIR,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=_die_with_parent(),
    )
    threading.Thread(target=relay_output, args=(process.stdout, log_file), name="api-log-relay", daemon=True).start()
    return process


def relay_output(stream: IO[bytes], log_file: Path) -> None:
    """Copy the API's output to the terminal, and its JSON records to log_file as JSON lines."""
    log_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with stream, log_file.open("ab") as records:
        for raw in iter(stream.readline, b""):
            sys.stdout.buffer.write(raw)
            sys.stdout.flush()
            if raw.lstrip().startswith(b"{"):
                records.write(raw)
                records.flush()


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def stop_api(process: subprocess.Popen) -> None:
    """Stop the API and everything in its process group: SIGTERM, then SIGKILL after a grace period."""
    _signal_group(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        pass
    # Kills the leader if it ignored SIGTERM, and anything it started that outlived it.
    _signal_group(process.pid, signal.SIGKILL)
    process.wait()


def wait_for_health(api_url: str, process: subprocess.Popen, timeout: float = STARTUP_TIMEOUT_SECONDS) -> None:
    """Return once GET /health answers 200; fail if the API exits or the timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StackError(f"the API exited with code {process.returncode} before it was ready")
        if answering(api_url):
            return
        time.sleep(0.2)
    raise StackError(f"{api_url}/health did not answer within {timeout:.0f} s")


def write_stack_file(state_dir: Path, document: dict[str, Any]) -> Path:
    """Write stack.json readable by its owner only, atomically so a reader never sees half of it."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = state_dir / STACK_FILE
    temporary = state_dir / f".{STACK_FILE}.{os.getpid()}.tmp"
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(document, handle, indent=2)
        handle.write("\n")
    os.replace(temporary, target)
    return target


def server_settings(issuer: str, pagination_secret: str, tenant_access_role_arn: str) -> dict[str, Any]:
    """What plain `chalice local` needs to serve the stack's tenants: the API's own settings, and what to unset."""
    aws = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_REGION")
    isolation = ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_EC2_METADATA_DISABLED", "NO_PROXY", "no_proxy")
    return {
        "environment": {
            **{name: os.environ[name] for name in (*aws, *isolation) if name in os.environ},
            "TOKEN_ISSUER": issuer,
            "PAGINATION_SECRET": pagination_secret,
            "TENANT_ACCESS_ROLE_ARN": tenant_access_role_arn,
        },
        # A secret's ARN would win over PAGINATION_SECRET; the others would point boto3 elsewhere.
        "unset": [*FOREIGN_AWS_SETTINGS, "PAGINATION_SECRET_ARN"],
    }


def stack_document(api_url: str, token_url: str, issuer: str, tenants: list[Any], api_pid: int) -> dict[str, Any]:
    """The content of stack.json: the contract keys first, then details for tools and tests."""
    return {
        "api_url": api_url,
        "token_url": token_url,
        "tenants": [
            {"tenant_id": t.tenant_id, "tier": t.tier, "client_id": t.client_id, "client_secret": t.client_secret}
            for t in tenants
        ],
        "issuer": issuer,
        "jwks_url": f"{issuer}/.well-known/jwks.json",
        "aws_endpoint_url": os.environ["AWS_ENDPOINT_URL"],
        "pid": os.getpid(),
        "api_pid": api_pid,
    }


def banner(api_url: str, token_url: str, stack_file: Path, tenants: list[Any]) -> str:
    """Copy-paste commands to try the stack (with the first tenants' local, throwaway credentials)."""
    first, second = tenants[0], tenants[1]
    default_dir = stack_file.parent == (PROJECT_DIR / ".local").resolve()
    state_dir_option = "" if default_dir else f" --state-dir {shlex.quote(str(stack_file.parent))}"
    extract = "python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])'"
    order_body = '{"items": [{"product_id": "prod-001", "quantity": 1}]}'
    lines = [
        "",
        "Local stack is ready. Ctrl-C stops it.",
        f"  API:         {api_url}",
        f"  Tokens:      {token_url}",
        f"  Credentials: {stack_file}",
        f'  Shell vars:  eval "$(.venv/bin/python -m scripts.local.env{state_dir_option})"',
        "",
        f"Try it ({first.tenant_id} places an order, {second.tenant_id} cannot see it):",
        f"  TOKEN=$(curl -s -u {first.client_id}:{first.client_secret} -d grant_type=client_credentials {token_url} | {extract} access_token)",
        f'  curl -s -H "Authorization: Bearer $TOKEN" "{api_url}/catalog?limit=3"',
        f"  ORDER=$(curl -s -X POST -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' "
        f"-d '{order_body}' {api_url}/orders | {extract} order_id)",
        f'  curl -s -H "Authorization: Bearer $TOKEN" {api_url}/orders/$ORDER',
        f"  OTHER=$(curl -s -u {second.client_id}:{second.client_secret} -d grant_type=client_credentials {token_url} | {extract} access_token)",
        f'  curl -s -i -H "Authorization: Bearer $OTHER" {api_url}/orders/$ORDER    # 404',
        "",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.local.stack",
        description=__doc__.splitlines()[0] if __doc__ else None,
        epilog="The API listens on 127.0.0.1:$PORT (default 8000); the other ports are chosen free.",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=PROJECT_DIR / ".local",
        help="where stack.json is written (default: .local in the project)",
    )
    args = parser.parse_args(argv)
    args.state_dir = args.state_dir.resolve()
    raw_port = os.environ.get("PORT", str(DEFAULT_PORT))
    if not raw_port.isdigit() or not 1 <= int(raw_port) <= 65535:
        parser.error(f"PORT must be a port number, not {raw_port!r}")
    args.port = int(raw_port)
    return args


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _run(args: argparse.Namespace, resources: ExitStack) -> None:
    stage = read_stage_config(STAGE)
    # A stack.json left by an earlier run names credentials that no longer exist.
    (args.state_dir / STACK_FILE).unlink(missing_ok=True)

    OUTPUT.progress("starting the embedded AWS (moto: DynamoDB, Cognito, API Gateway, IAM, STS; one request at a time)")
    moto, endpoint_url = start_moto()
    resources.callback(moto.stop)
    isolate_aws_environment(endpoint_url)
    OUTPUT.progress(f"moto listens on {endpoint_url}")

    from scripts.stage_resources import AwsClients

    clients = AwsClients.for_region(REGION)
    shared = provision_shared(clients, stage)

    from scripts.local.token_server import TokenServer

    token_server = TokenServer(clients.cognito, shared.pool_id, host=HOST)
    token_server.start()
    resources.callback(token_server.stop)
    OUTPUT.progress(f"token endpoint on {token_server.token_url}")

    pagination_secret = secrets.token_urlsafe(48)
    configure_application(stage, token_server.issuer.issuer, pagination_secret, shared.tenant_access_role_arn)
    tenants = onboard_seed_tenants(clients, stage, shared, token_server.token_url)

    api_url = f"http://{HOST}:{args.port}"
    OUTPUT.progress(f"starting the API (chalice local's server, stage {STAGE}) on {api_url}")
    api = start_api(args.port, args.state_dir / "logs" / "api.jsonl")
    resources.callback(stop_api, api)
    wait_for_health(api_url, api)

    document = stack_document(api_url, token_server.token_url, token_server.issuer.issuer, tenants, api.pid)
    document["server"] = server_settings(token_server.issuer.issuer, pagination_secret, shared.tenant_access_role_arn)
    stack_file = write_stack_file(args.state_dir, document)
    print(banner(api_url, token_server.token_url, stack_file, tenants), flush=True)

    while api.poll() is None:
        time.sleep(0.5)
    raise StackError(f"the API exited with code {api.returncode}")


def main(argv: list[str] | None = None) -> int:
    """Start the stack, serve until Ctrl-C or SIGTERM, stop everything; 0 on a requested stop."""
    args = parse_args(argv)
    try:
        ensure_port_free(args.port)
    except StackError as error:
        OUTPUT.error(error)
        return 1
    # SIGTERM and a closed terminal stop the stack the same way as Ctrl-C. SIGINT is set too,
    # because a shell starts background jobs with it ignored and `kill -INT` must still work.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    status = 0
    with ExitStack() as resources:
        try:
            _run(args, resources)
        except KeyboardInterrupt:
            pass
        except (StackError, StageConfigError) as error:
            OUTPUT.error(error)
            status = 1
        finally:
            # A second Ctrl-C must not cut the shutdown short and leave processes behind.
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, signal.SIG_IGN)
            OUTPUT.progress("stopping")
    OUTPUT.progress("stopped")
    return status


if __name__ == "__main__":
    sys.exit(main())
