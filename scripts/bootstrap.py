"""Create what a stage needs before its first `chalice deploy`, and write the app's settings into its config.

The table (on-demand, encrypted, point-in-time recovery, TTL, the schema's indexes), the
Cognito user pool with the API's resource server, scopes and hosted domain (both protected
from deletion on prod), the pagination key in Secrets Manager, one usage plan per tier, the
tenant-access role (scripts.tenant_access_role), cost-allocation tags on all of them; then
TABLE_NAME, TOKEN_ISSUER, PAGINATION_SECRET_ARN and TENANT_ACCESS_ROLE_ARN in .chalice/config.json
and the stage's IAM policy files (its own and any function's own) narrowed to the region,
account, table and secret. A table made before an index joined the
schema gets the index. A rerun changes nothing that is already right, and says so.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.tiers import TIERS
from scripts import provision
from scripts.change_log import ChangeLog, WouldChange
from scripts.stage_config import PROJECT_DIR, PROTECTED_STAGES, StageConfigError, update_stage_environment
from scripts.stage_policy import update_policy_file
from scripts.stage_resources import AwsClients, StageResources, issuer_url, load_stage, token_url

T = TypeVar("T")


class BootstrapError(Exception):
    """Bootstrap cannot go on; the message says why and what to do."""


def progress(message: str) -> None:
    """Print one progress line at once."""
    print(f"[bootstrap] {message}", flush=True)


@dataclass
class Steps:
    """Runs bootstrap's steps one at a time, saying what each changed or, in a dry run, would change."""

    log: ChangeLog
    changed: list[str] = field(default_factory=list)

    def run(self, label: str, action: Callable[[], T]) -> T | None:
        """The action's result, or None when a dry run stopped it before its first change."""
        return self._attempt(label, action)[1]

    def completed(self, label: str, action: Callable[[], object]) -> bool:
        """Whether the action ran to its end (a dry run stops it before its first change)."""
        return self._attempt(label, action)[0]

    def _attempt(self, label: str, action: Callable[[], T]) -> tuple[bool, T | None]:
        mark = self.log.mark()
        try:
            result = action()
        except WouldChange as change:
            self.note(label, f"would change (starting with {change.operation})")
            return False, None
        operations = self.log.since(mark)
        if operations:
            self.note(label, f"changed ({', '.join(operations)})")
        else:
            progress(f"{label}: unchanged")
        return True, result

    def note(self, label: str, outcome: str) -> None:
        """Report a change made, or one a dry run would make."""
        self.changed.append(label)
        progress(f"{label}: {outcome}")

    def pending(self, label: str) -> None:
        """Report a step a dry run cannot check because what it needs does not exist yet."""
        self.note(label, "would be set up once what it belongs to exists")


@dataclass(frozen=True)
class Outcome:
    """What bootstrap found or made (None for what a dry run would still create)."""

    issuer: str | None
    pagination_secret_arn: str | None
    token_url: str | None
    changed: list[str]


def provision_table(steps: Steps, clients: AwsClients, resources: StageResources) -> None:
    """The table and its settings."""
    dynamodb, name, tags = clients.dynamodb, resources.table_name, resources.tags
    if not steps.completed(f"table {name}", lambda: provision.ensure_table(dynamodb, name, tags)):
        # CreateTable makes the indexes with the table, so only the settings after it are pending.
        for label in ("encryption", "point-in-time recovery", "TTL", "tags"):
            steps.pending(f"  {label}")
        return
    # The catalog list reads an index: a table made before it joined the schema gets it here.
    indexes = ", ".join(provision.index_names(name))
    steps.run(f"  indexes ({indexes})", lambda: provision.ensure_indexes(dynamodb, name))
    steps.run("  encryption", lambda: provision.ensure_table_encryption(dynamodb, name))
    steps.run("  point-in-time recovery", lambda: provision.ensure_point_in_time_recovery(dynamodb, name))
    steps.run("  TTL", lambda: provision.ensure_ttl(dynamodb, name))
    if resources.stage in PROTECTED_STAGES:
        steps.run("  deletion protection", lambda: provision.ensure_deletion_protection(dynamodb, name))
    steps.run("  tags", lambda: provision.ensure_table_tags(dynamodb, name, tags))


def _domain_prefix(clients: AwsClients, pool_id: str, requested: str | None, default: str) -> str:
    current = provision.user_pool_domain(clients.cognito, pool_id)
    if current and requested and current != requested:
        # A pool has one domain; replacing it would break every client that knows the token URL.
        raise BootstrapError(
            f"the user pool already has the domain {current!r}; leave out --domain-prefix or pass that one"
        )
    return current or requested or default


def provision_user_pool(
    steps: Steps, clients: AwsClients, resources: StageResources, account: str, domain_prefix: str | None
) -> tuple[str | None, str | None]:
    """The user pool, its tags, resource server and hosted domain; returns (pool id, domain prefix)."""
    cognito = clients.cognito
    protected = resources.stage in PROTECTED_STAGES
    pool_id = steps.run(
        f"user pool {resources.pool_name}",
        lambda: provision.ensure_user_pool(cognito, resources.pool_name, resources.tags, deletion_protection=protected),
    )
    if pool_id is None:
        for label in ("tags", "resource server", "hosted domain"):
            steps.pending(f"  {label}")
        return None, None
    progress(f"  id {pool_id}")
    if protected:
        # The pool holds every tenant's app client: losing it means onboarding every tenant again.
        steps.run("  deletion protection", lambda: provision.ensure_user_pool_deletion_protection(cognito, pool_id))
    steps.run("  tags", lambda: provision.ensure_user_pool_tags(cognito, pool_id, resources.tags))
    server = resources.config.resource_server_id
    scopes = steps.run(
        f"  resource server {server}", lambda: provision.ensure_resource_server(cognito, pool_id, server)
    )
    if scopes:
        progress(f"  scopes {', '.join(scopes)}")
    prefix = _domain_prefix(clients, pool_id, domain_prefix, resources.default_domain_prefix(account))
    domain = steps.run(f"  hosted domain {prefix}", lambda: provision.ensure_user_pool_domain(cognito, pool_id, prefix))
    return pool_id, domain


def provision_tenant_access_role(
    steps: Steps, clients: AwsClients, resources: StageResources, account: str
) -> str | None:
    """The role the API function assumes for one tenant at a time; returns its ARN."""
    return steps.run(
        f"role {resources.tenant_access_role_name}",
        lambda: provision.ensure_tenant_access_role(
            clients.iam,
            partition=clients.sts.meta.partition,
            region=clients.region,
            account=account,
            resource_prefix=resources.prefix,
            table_name=resources.table_name,
            tags=resources.tags,
        ),
    )


def write_stage_settings(steps: Steps, resources: StageResources, values: dict[str, str | None], dry_run: bool) -> None:
    """Write the settings the app reads into the stage's section of config.json."""
    label = f"{resources.config_file.name} stage {resources.stage}"
    current = resources.config.environment
    differing = [name for name, value in values.items() if value is None or current.get(name) != value]
    if not differing:
        progress(f"{label}: unchanged")
    elif dry_run:
        steps.note(label, f"would write {', '.join(differing)}")
    else:
        update_stage_environment(
            resources.stage, {k: v for k, v in values.items() if v is not None}, resources.config_file
        )
        steps.note(label, f"wrote {', '.join(differing)}")


def stage_policy_files(resources: StageResources) -> list[Path]:
    """Every IAM policy file the stage deploys with: the stage's own, then each function's own.

    Chalice looks a function's `iam_policy_file` up in the stage's `lambda_functions` entry for
    it, then in the top-level one, before falling back to the stage's file.
    """
    config = json.loads(resources.config_file.read_text())
    top_level = config.get("lambda_functions") or {}
    in_stage = (config.get("stages", {}).get(resources.stage) or {}).get("lambda_functions") or {}
    paths = [resources.policy_file] if resources.policy_file else []
    for function in dict.fromkeys([*in_stage, *top_level]):
        own = (in_stage.get(function) or {}).get("iam_policy_file")
        name = own or (top_level.get(function) or {}).get("iam_policy_file")
        if name:
            paths.append(resources.config_file.parent / name)
    return list(dict.fromkeys(paths))


def existing_policy_files(resources: StageResources) -> list[Path]:
    """The stage's policy files; BootstrapError naming the first one config.json names that does not exist."""
    paths = stage_policy_files(resources)
    for path in paths:
        if not path.exists():
            raise BootstrapError(f"{path} is named in {resources.config_file} but does not exist")
    return paths


def narrow_stage_policy(
    steps: Steps,
    policy_files: list[Path],
    region: str,
    account: str,
    secret_arn: str | None,
    dry_run: bool,
) -> None:
    """Narrow the stage's policy files to the region, account and pagination secret."""
    for path in policy_files:
        if secret_arn is None:
            steps.pending(f"{path.name}")
            continue
        narrowed = update_policy_file(
            path, region=region, account=account, pagination_secret_arn=secret_arn, write=not dry_run
        )
        if narrowed:
            outcome = f"{'would narrow' if dry_run else 'narrowed'} resources to {region}, account {account}"
            steps.note(path.name, outcome)
        else:
            progress(f"{path.name}: unchanged")


def bootstrap(resources: StageResources, clients: AwsClients, *, domain_prefix: str | None, dry_run: bool) -> Outcome:
    """Provision the stage and write its settings; every step reports what it changed."""
    # Checked first, so that a misnamed file stops the run before it has made anything.
    policy_files = existing_policy_files(resources)
    account = clients.sts.get_caller_identity()["Account"]
    progress(f"stage {resources.stage} in {clients.region}, account {account}{' (dry run)' if dry_run else ''}")
    log = ChangeLog(dry_run=dry_run)
    steps = Steps(log)
    with log.watching(clients.all()):
        provision_table(steps, clients, resources)
        pool_id, domain = provision_user_pool(steps, clients, resources, account, domain_prefix)
        secret_arn = steps.run(
            f"secret {resources.pagination_secret_name}",
            lambda: provision.ensure_generated_secret(
                clients.secretsmanager, resources.pagination_secret_name, resources.tags
            ),
        )
        steps.run(
            f"usage plans ({', '.join(TIERS)})",
            lambda: provision.ensure_usage_plans(clients.apigateway, resources.prefix, tags=resources.tags),
        )
        role_arn = provision_tenant_access_role(steps, clients, resources, account)
    issuer = issuer_url(clients.region, pool_id) if pool_id else None
    values = {
        "TABLE_NAME": resources.table_name,
        "TOKEN_ISSUER": issuer,
        "PAGINATION_SECRET_ARN": secret_arn,
        "TENANT_ACCESS_ROLE_ARN": role_arn,
    }
    write_stage_settings(steps, resources, values, dry_run)
    narrow_stage_policy(steps, policy_files, clients.region, account, secret_arn, dry_run)
    return Outcome(issuer, secret_arn, token_url(domain, clients.region) if domain else None, steps.changed)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bootstrap",
        description=__doc__.splitlines()[0] if __doc__ else None,
        epilog="Run it before the first `chalice deploy --stage STAGE`; run scripts.post_deploy after each deploy.",
    )
    parser.add_argument("--stage", required=True, help="the Chalice stage (dev, prod)")
    parser.add_argument("--region", help="AWS region (default: AWS_REGION or the profile's)")
    parser.add_argument("--domain-prefix", help="Cognito hosted-domain prefix (default: {app}-{stage}-{account id})")
    parser.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
    parser.add_argument(
        "--project-dir",
        type=Path,
        default=PROJECT_DIR,
        help="the project whose .chalice/ is read and written (default: this one)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Bootstrap the stage; 0 on success, 1 with a message on failure."""
    args = parse_args(argv)
    try:
        resources = load_stage(args.stage, args.project_dir)
        region = resources.region(args.region)
        outcome = bootstrap(
            resources, AwsClients.for_region(region), domain_prefix=args.domain_prefix, dry_run=args.dry_run
        )
    except (BootstrapError, StageConfigError, provision.ProvisioningError) as error:
        print(f"[bootstrap] error: {error}", file=sys.stderr, flush=True)
        return 1
    except (ClientError, BotoCoreError) as error:
        print(f"[bootstrap] error: AWS refused or could not be reached: {error}", file=sys.stderr, flush=True)
        return 1
    if outcome.token_url:
        progress(f"token URL: {outcome.token_url}")
    if args.dry_run:
        progress(f"dry run: {len(outcome.changed)} step(s) would change; nothing was changed")
    elif outcome.changed:
        progress(f"done: {len(outcome.changed)} step(s) changed; next: chalice deploy --stage {args.stage}")
    else:
        progress("no changes: everything was already in place")
    return 0


if __name__ == "__main__":
    sys.exit(main())
