"""Create what a stage needs before its first `chalice deploy`, and write the app's settings into its config.

The table (on-demand, encrypted, point-in-time recovery, TTL, the schema's indexes), the
Cognito user pool with the API's resource server, scopes and hosted domain (both protected
from deletion on prod), the pagination key in Secrets Manager, one usage plan per tier, the
tenant-access role (scripts.tenant_access_role), cost-allocation tags on all of them; then
TABLE_NAME, TOKEN_ISSUER, TOKEN_URL, PAGINATION_SECRET_ARN and TENANT_ACCESS_ROLE_ARN in .chalice/config.json
and the stage's IAM policy files (its own and any function's own) narrowed to the region,
account, table and secret. A table made before an index joined the
schema gets the index. A rerun changes nothing that is already right, and says so.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.tiers import TIERS
from scripts import provision
from scripts.aws_calls import paginate
from scripts.change_log import ChangeLog, WouldChange
from scripts.command_output import AWS_UNREACHABLE, CommandOutput
from scripts.deploy.stage_policy import update_policy_file
from scripts.resource_report import ResourceReport
from scripts.stage_config import PROJECT_DIR, PROTECTED_STAGES, StageConfigError, update_stage_environment
from scripts.stage_resources import AwsClients, StageResources, issuer_url, load_stage, token_url

OUTPUT = CommandOutput("bootstrap")

T = TypeVar("T")
# A resource's settings, each checked and corrected after the resource exists: (label, ensure it).
ResourceSettings = Sequence[tuple[str, Callable[[], object]]]

CREATED = "created"
UPDATED = "updated"
UNCHANGED = "unchanged"
STATUSES = (CREATED, UPDATED, UNCHANGED)
CHANGES = (CREATED, UPDATED)


class BootstrapError(Exception):
    """Bootstrap cannot go on; the message says why and what to do."""


class Report(ResourceReport):
    """Bootstrap's report: one line per resource, created / updated / unchanged (post-deploy's format)."""

    def __init__(self, dry_run: bool = False):
        super().__init__(STATUSES, CHANGES, dry_run=dry_run, prefix="[bootstrap] ")

    def summary(self, stage: str) -> str:
        """One line: the counts, and what to do next."""
        if self.changes == 0:
            return f"no changes: everything was already in place ({self.counts_line()})"
        if self.dry_run:
            return f"dry run: {self.counts_line()}; nothing was changed"
        return f"done: {self.counts_line()}; next: chalice deploy --stage {stage}"


@dataclass
class Steps:
    """Runs bootstrap's steps, printing one line per resource: what each step created or updated, or would."""

    log: ChangeLog
    report: Report

    def resource(
        self,
        what: str,
        ensure: Callable[[], T],
        settings: Callable[[T], ResourceSettings] = lambda _: [],
        detail: Callable[[T], str] = lambda _: "",
    ) -> T | None:
        """Ensure one resource, then each of its settings; None when a dry run stopped before its first change.

        The resource is created when its own step makes it (a Create call); it is updated when that
        step or any of its settings changes it, and the line names what changed.
        """
        mark = self.log.mark()
        try:
            result = ensure()
        except WouldChange as stopped:
            # A dry run stops at the first change; the settings of a resource it would create come with it.
            status = CREATED if stopped.change.creates else UPDATED
            self.report.record(status, what, "" if status == CREATED else f"starting with {stopped.operation}")
            return None
        changes = self.log.changes_since(mark)
        created = bool(changes) and changes[0].creates
        changed = [] if created else list(dict.fromkeys(change.operation for change in changes))
        for label, apply in settings(result):
            setting_mark = self.log.mark()
            try:
                apply()
            except WouldChange:
                changed.append(label)
                continue
            if self.log.changes_since(setting_mark) and not created:
                changed.append(label)
        shown = detail(result)
        if created:
            self.report.record(CREATED, what, shown)
        elif changed:
            self.report.record(UPDATED, what, ", ".join([*changed, *([shown] if shown else [])]))
        else:
            self.report.record(UNCHANGED, what, shown)
        return result

    def pending(self, what: str, parent: str) -> None:
        """Report a resource a dry run cannot look at because its parent would be created first."""
        self.report.record(CREATED, what, f"with the {parent}")


@dataclass(frozen=True)
class Outcome:
    """What bootstrap found or made (None for what a dry run would still create)."""

    issuer: str | None
    pagination_secret_arn: str | None
    token_url: str | None
    report: Report


def provision_table(steps: Steps, clients: AwsClients, resources: StageResources) -> None:
    """The table, with its indexes, encryption, point-in-time recovery, TTL, deletion protection and tags."""
    dynamodb, name, tags = clients.dynamodb, resources.table_name, resources.tags
    # The catalog list reads an index: a table made before it joined the schema gets it here.
    indexes = provision.index_names(name)
    settings: list[tuple[str, Callable[[], object]]] = [
        (
            f"{', '.join(indexes)} index{'es' if len(indexes) > 1 else ''}",
            lambda: provision.ensure_indexes(dynamodb, name),
        ),
        ("encryption", lambda: provision.ensure_table_encryption(dynamodb, name)),
        ("point-in-time recovery", lambda: provision.ensure_point_in_time_recovery(dynamodb, name)),
        ("TTL", lambda: provision.ensure_ttl(dynamodb, name)),
    ]
    if resources.stage in PROTECTED_STAGES:
        settings.append(("deletion protection", lambda: provision.ensure_deletion_protection(dynamodb, name)))
    settings.append(("tags", lambda: provision.ensure_table_tags(dynamodb, name, tags)))
    steps.resource(f"table {name}", lambda: provision.ensure_table(dynamodb, name, tags), lambda _: settings)


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
    """The user pool with its tags, then its resource server and hosted domain; returns (pool id, domain prefix)."""
    cognito = clients.cognito
    protected = resources.stage in PROTECTED_STAGES

    def pool_settings(pool_id: str) -> ResourceSettings:
        settings: list[tuple[str, Callable[[], object]]] = []
        if protected:
            # The pool holds every tenant's app client: losing it means onboarding every tenant again.
            settings.append(
                ("deletion protection", lambda: provision.ensure_user_pool_deletion_protection(cognito, pool_id))
            )
        settings.append(("tags", lambda: provision.ensure_user_pool_tags(cognito, pool_id, resources.tags)))
        return settings

    pool_id = steps.resource(
        f"user pool {resources.pool_name}",
        lambda: provision.ensure_user_pool(cognito, resources.pool_name, resources.tags, deletion_protection=protected),
        pool_settings,
        detail=lambda created_id: f"id {created_id}",
    )
    server = resources.config.resource_server_id
    if pool_id is None:
        steps.pending(f"resource server {server}", "user pool")
        steps.pending(f"hosted domain {domain_prefix or resources.default_domain_prefix(account)}", "user pool")
        return None, None
    steps.resource(
        f"resource server {server}",
        lambda: provision.ensure_resource_server(cognito, pool_id, server),
        detail=lambda scopes: f"scopes {', '.join(scopes)}",
    )
    prefix = _domain_prefix(clients, pool_id, domain_prefix, resources.default_domain_prefix(account))
    domain = steps.resource(
        f"hosted domain {prefix}", lambda: provision.ensure_user_pool_domain(cognito, pool_id, prefix)
    )
    return pool_id, domain


def provision_usage_plans(steps: Steps, clients: AwsClients, resources: StageResources) -> None:
    """One usage plan per tier, each a resource of its own line."""
    apigateway = clients.apigateway
    existing = {plan["name"]: plan for plan in paginate(apigateway, "get_usage_plans", "items")}
    for tier in TIERS.values():
        name = provision.usage_plan_name(resources.prefix, tier)
        limits = f"{tier.rate_per_second:g} req/s, burst {tier.burst}, {tier.monthly_quota:,} a month"
        steps.resource(
            f"usage plan {name}",
            functools.partial(
                provision.ensure_usage_plan, apigateway, name, tier, existing.get(name), tags=resources.tags
            ),
            detail=lambda _, limits=limits: limits,
        )


def provision_tenant_access_role(
    steps: Steps, clients: AwsClients, resources: StageResources, account: str
) -> str | None:
    """The role the API function assumes for one tenant at a time; returns its ARN."""
    return steps.resource(
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
    what = f"{resources.config_file.name} stage {resources.stage}"
    current = resources.config.environment
    differing = [name for name, value in values.items() if value is None or current.get(name) != value]
    if not differing:
        steps.report.record(UNCHANGED, what)
        return
    if not dry_run:
        update_stage_environment(
            resources.stage, {k: v for k, v in values.items() if v is not None}, resources.config_file
        )
    steps.report.record(UPDATED, what, ", ".join(differing))


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
            steps.report.record(UPDATED, path.name, "once the pagination secret exists")
            continue
        narrowed = update_policy_file(
            path, region=region, account=account, pagination_secret_arn=secret_arn, write=not dry_run
        )
        if narrowed:
            steps.report.record(UPDATED, path.name, f"resources narrowed to {region}, account {account}")
        else:
            steps.report.record(UNCHANGED, path.name)


def bootstrap(resources: StageResources, clients: AwsClients, *, domain_prefix: str | None, dry_run: bool) -> Outcome:
    """Provision the stage and write its settings; every resource gets one line: created, updated or unchanged."""
    # Checked first, so that a misnamed file stops the run before it has made anything.
    policy_files = existing_policy_files(resources)
    account = clients.sts.get_caller_identity()["Account"]
    OUTPUT.progress(f"stage {resources.stage} in {clients.region}, account {account}{' (dry run)' if dry_run else ''}")
    log = ChangeLog(dry_run=dry_run)
    steps = Steps(log, Report(dry_run=dry_run))
    with log.watching(clients.all()):
        provision_table(steps, clients, resources)
        pool_id, domain = provision_user_pool(steps, clients, resources, account, domain_prefix)
        secret_arn = steps.resource(
            f"secret {resources.pagination_secret_name}",
            lambda: provision.ensure_generated_secret(
                clients.secretsmanager, resources.pagination_secret_name, resources.tags
            ),
        )
        provision_usage_plans(steps, clients, resources)
        role_arn = provision_tenant_access_role(steps, clients, resources, account)
    issuer = issuer_url(clients.region, pool_id) if pool_id else None
    # The OpenAPI document's tokenUrl: a Cognito issuer's host is not the pool's domain, so the API cannot derive it.
    token_endpoint = token_url(domain, clients.region) if domain else None
    values = {
        "TABLE_NAME": resources.table_name,
        "TOKEN_ISSUER": issuer,
        "TOKEN_URL": token_endpoint,
        "PAGINATION_SECRET_ARN": secret_arn,
        "TENANT_ACCESS_ROLE_ARN": role_arn,
    }
    write_stage_settings(steps, resources, values, dry_run)
    narrow_stage_policy(steps, policy_files, clients.region, account, secret_arn, dry_run)
    return Outcome(issuer, secret_arn, token_endpoint, steps.report)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.deploy.bootstrap",
        description=__doc__.splitlines()[0] if __doc__ else None,
        epilog="Run it before the first `chalice deploy --stage STAGE`; run scripts.deploy.post_deploy after each deploy.",
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
        OUTPUT.error(error)
        return 1
    except (ClientError, BotoCoreError) as error:
        OUTPUT.error(f"{AWS_UNREACHABLE}: {error}")
        return 1
    if outcome.token_url:
        OUTPUT.progress(f"token URL: {outcome.token_url}")
    OUTPUT.progress(outcome.report.summary(args.stage))
    return 0


if __name__ == "__main__":
    sys.exit(main())
