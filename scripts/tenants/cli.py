"""Onboard and manage a stage's tenants: create, list, show, suspend, resume, change tier, rotate, delete.

Run scripts.deploy.bootstrap for a deployed stage first. `--stage local` works on the running local stack
(`make run`), reaching its emulated AWS through boto3 as a deployed stage's AWS is reached, only at
another endpoint. Every command is safe to rerun.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import Callable, Iterator

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import ServiceUnavailable
from chalicelib.tiers import TIERS
from scripts import provision, stack_file
from scripts.change_log import ChangeLog
from scripts.command_output import AWS_UNREACHABLE
from scripts.stage_config import PROJECT_DIR, StageConfigError, read_stage_config
from scripts.stage_resources import (
    LOCAL_STAGE,
    AwsClients,
    StageResources,
    application_settings,
    load_stage,
)
from scripts.tenants import lifecycle

# Commands that only read; the others end by saying whether they changed anything.
READ_ONLY = ("list", "show")


def print_table(rows: list[lifecycle.TenantRow]) -> None:
    """The tenant list as aligned columns; never a secret."""
    header = ("TENANT", "TIER", "STATUS", "CLIENT ID", "NAME")
    lines = [header, *((r.tenant_id, r.tier, r.status, r.client_id, r.display_name) for r in rows)]
    # Every column but the last (free text) is padded to its widest value.
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        padded = [value.ljust(width) for value, width in zip(line[:-1], widths[:-1], strict=True)]
        print("  ".join([*padded, line[-1]]), flush=True)
    if not rows:
        print("(no tenants)", flush=True)


def print_details(details: lifecycle.TenantDetails) -> None:
    """show's output: one field a line; the client secret only when it was asked for."""
    record = details.record
    fields = [
        ("tenant", record.tenant_id),
        ("name", record.display_name),
        ("tier", record.tier),
        ("status", record.status),
        ("client id", record.client_id),
        ("api key id", record.api_key_id),
        ("secret", details.secret_arn or "(none stored)"),
        ("token url", details.token_url or "(the user pool has no domain)"),
        (
            "client secret",
            details.client_secret if details.client_secret is not None else "(hidden; --reveal-secret shows it)",
        ),
    ]
    for name, value in fields:
        print(f"{name + ':':15}{value}", flush=True)


def warn_of_missing_plans(tenancy: lifecycle.Tenancy) -> None:
    """Say which tiers' usage plans the stage lacks; list and show only read, so they leave making them to others."""
    missing = lifecycle.missing_plans(tenancy)
    if missing:
        print(
            f"[tenants] warning: stage {tenancy.resources.stage} has no usage plan {', '.join(missing)}; "
            "scripts.deploy.bootstrap makes them (so does any command that changes tenants)",
            file=sys.stderr,
            flush=True,
        )


def _run_command(args: argparse.Namespace, tenancy: lifecycle.Tenancy) -> None:
    commands: dict[str, Callable[[], object]] = {
        "create": lambda: lifecycle.create_tenant(tenancy, args.tenant_id, args.tier, args.name, args.adopt_data),
        "list": lambda: print_table(lifecycle.list_tenants(tenancy)),
        "show": lambda: print_details(lifecycle.show_tenant(tenancy, args.tenant_id, args.reveal_secret)),
        "suspend": lambda: lifecycle.suspend_tenant(tenancy, args.tenant_id),
        "resume": lambda: lifecycle.resume_tenant(tenancy, args.tenant_id),
        "change-tier": lambda: lifecycle.change_tier(tenancy, args.tenant_id, args.tier),
        "rotate-secret": lambda: lifecycle.rotate_secret(tenancy, args.tenant_id),
        "delete": lambda: lifecycle.delete_tenant(tenancy, args.tenant_id, args.purge_data, args.recovery_days),
        "seed-demo": lambda: lifecycle.seed_demo(tenancy),
    }
    commands[args.command]()


@contextlib.contextmanager
def local_aws(endpoint_url: str) -> Iterator[None]:
    """boto3 in this process pointed at the local stack's emulated AWS, with the settings the stack's own processes use.

    The environment is put back afterwards, and the process's caches are emptied on both sides,
    so nothing made for one AWS is used against the other.
    """
    from chalicelib.process_caches import reset_process_caches

    saved = dict(os.environ)
    stack_file.isolate_aws_environment(endpoint_url)
    reset_process_caches()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        reset_process_caches()


def local_stage(project_dir: Path) -> StageResources:
    """The local stage's settings; load_stage refuses it because scripts.local.stack, not bootstrap, provisions it."""
    project_dir = project_dir.resolve()
    return StageResources(read_stage_config(LOCAL_STAGE, project_dir / ".chalice" / "config.json"), project_dir)


def locate_stage(args: argparse.Namespace, scope: contextlib.ExitStack) -> tuple[StageResources, str, str | None]:
    """The stage's resources, its region and, for the local stack, its token URL.

    For --stage local, boto3 is pointed at the running stack's emulated AWS until scope closes.
    """
    if args.stage != LOCAL_STAGE:
        resources = load_stage(args.stage, args.project_dir)
        region, _ = resources.bootstrapped_pool()
        if args.region and args.region != region:
            raise lifecycle.TenantError(f"stage {resources.stage} lives in {region} (TOKEN_ISSUER), not {args.region}")
        return resources, region, None
    stack = stack_file.running_stack(args.state_dir)
    if args.region and args.region != stack_file.REGION:
        raise lifecycle.TenantError(f"the local stack runs in {stack_file.REGION}, not {args.region}")
    scope.enter_context(local_aws(stack["aws_endpoint_url"]))
    return local_stage(args.project_dir), stack_file.REGION, stack["token_url"]


def user_pool(resources: StageResources, clients: AwsClients) -> str:
    """The stage's user pool: the one TOKEN_ISSUER names, or the one the local stack made under the stage's name."""
    if resources.stage != LOCAL_STAGE:
        return resources.bootstrapped_pool()[1]
    pool_id = provision.find_user_pool(clients.cognito, resources.pool_name)
    if pool_id is None:
        raise lifecycle.TenantError(f"the local stack has no user pool {resources.pool_name!r}; restart it (make run)")
    return pool_id


def run(args: argparse.Namespace) -> None:
    """Open the stage's tenancy and run the command, reporting whether it changed anything."""
    if args.command == "seed-demo" and args.stage == "prod":
        raise lifecycle.TenantError("the demo tenants are for trying a stage out, not for prod")
    with contextlib.ExitStack() as scope:
        resources, region, token_url = locate_stage(args, scope)
        clients = AwsClients.for_region(region)
        with application_settings(resources, region):
            from chalicelib.store.dynamodb import dynamodb_client

            log = ChangeLog()
            with log.watching([*clients.all(), dynamodb_client()]):
                tenancy = lifecycle.open_tenancy(
                    resources, clients, user_pool(resources, clients), token_url, read_only=args.command in READ_ONLY
                )
                _run_command(args, tenancy)
    if args.command in READ_ONLY:
        warn_of_missing_plans(tenancy)
    elif not log.operations:
        lifecycle.OUTPUT.progress("nothing changed")


def _add_tenant_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("tenant_id", metavar="TENANT_ID", help="lowercase letters, digits and hyphens")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.tenants", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument(
        "--stage", required=True, help="the Chalice stage (dev, prod; local: the running local stack, `make run`)"
    )
    parser.add_argument("--region", help="AWS region (default: the one in the stage's TOKEN_ISSUER)")
    parser.add_argument(
        "--project-dir", type=Path, default=PROJECT_DIR, help="the project whose .chalice/config.json is read"
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=stack_file.DEFAULT_STATE_DIR,
        help="with --stage local: where the local stack wrote stack.json (default: .local in the project)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    create = commands.add_parser(
        "create",
        help="onboard a tenant (app client, API key, registry record; a stored secret if the stage keeps them)",
    )
    _add_tenant_id(create)
    create.add_argument("--tier", required=True, choices=list(TIERS))
    create.add_argument("--name", default="", help="display name")
    create.add_argument(
        "--adopt-data", action="store_true", help="let the tenant have data an earlier tenant of that id left"
    )

    commands.add_parser("list", help="every tenant: tier, status, client id (never secrets)")

    show = commands.add_parser("show", help="one tenant's record and where its credentials are")
    _add_tenant_id(show)
    show.add_argument("--reveal-secret", action="store_true", help="also print the client secret")

    for name, text in (("suspend", "refuse the tenant's calls (403)"), ("resume", "let a suspended tenant call again")):
        _add_tenant_id(commands.add_parser(name, help=text))

    change = commands.add_parser("change-tier", help="move the tenant's API key to another tier's usage plan")
    _add_tenant_id(change)
    change.add_argument("--tier", required=True, choices=list(TIERS))

    _add_tenant_id(commands.add_parser("rotate-secret", help="replace the tenant's app client and secret"))

    delete = commands.add_parser("delete", help="offboard a tenant; its products and orders stay unless --purge-data")
    _add_tenant_id(delete)
    delete.add_argument(
        "--purge-data", action="store_true", help="also delete the tenant's products, orders and idempotency records"
    )
    delete.add_argument(
        "--recovery-days",
        type=int,
        default=lifecycle.MIN_RECOVERY_DAYS,
        help=f"days the stored secret stays recoverable ({lifecycle.MIN_RECOVERY_DAYS} to "
        f"{lifecycle.MAX_RECOVERY_DAYS}, default %(default)s)",
    )

    commands.add_parser("seed-demo", help="the local stack's three demo tenants with their catalogs (not for prod)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run one tenant command; 0 on success, 1 with a message on failure."""
    args = parse_args(argv)
    try:
        run(args)
    except (lifecycle.TenantError, StageConfigError, stack_file.StackNotRunning) as error:
        lifecycle.OUTPUT.error(error)
        return 1
    except (ClientError, BotoCoreError) as error:
        lifecycle.OUTPUT.error(f"{AWS_UNREACHABLE}: {error}")
        return 1
    except ServiceUnavailable:
        # The registry's calls report DynamoDB throttling or outages this way.
        print(
            "[tenants] error: DynamoDB is throttling or unreachable; run the command again", file=sys.stderr, flush=True
        )
        return 1
    return 0
