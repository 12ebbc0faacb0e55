"""Remove what bootstrap, post-deploy and the tenants command made for a stage; run it after `chalice delete`.

    python -m scripts.deploy.teardown --stage dev [--dry-run] [--force] [--yes-delete-prod]

In this order: the tenants' API keys, the tier usage plans (unbound from their API stages
first, since API Gateway refuses to delete a bound plan; a binding to a stage that `chalice
delete` already removed is passed over if it cannot be removed), the alarms, dashboard,
Contributor Insights rules, alarm topic, X-Ray sampling rule and saved Logs Insights queries,
the functions' log groups (after the rules that read them), the tenants' stored secrets and
the pagination key (recoverable for 7 days unless --force), the user pool's hosted domain and
the pool with every app client, the table with every tenant's data, and the tenant-access
role. Deletion protection is never lifted here: a protected table or pool is kept and the
command to unprotect it is printed, and prod's pool and table are kept without
--yes-delete-prod. Prints one line per resource; a rerun finds everything absent.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.tiers import TIERS
from scripts import provision
from scripts.aws_calls import endpoint_lacks, error_code, lack_detail, paginate, paginate_by_token
from scripts.command_output import AWS_UNREACHABLE, CommandOutput
from scripts.monitoring import (
    Deployment,
    alarm_definitions,
    alarm_topic_name,
    dashboard_name,
    insight_rules,
    sampling_rule,
)
from scripts.monitoring import saved_queries as saved_query_definitions
from scripts.resource_report import ResourceReport
from scripts.stage_config import PROJECT_DIR, PROTECTED_STAGES, StageConfigError
from scripts.stage_resources import StageResources, load_stage
from scripts.tenants.lifecycle import MIN_RECOVERY_DAYS

OUTPUT = CommandOutput("teardown")

DELETED = "deleted"
SCHEDULED = "scheduled for deletion"
ABSENT = "absent"
KEPT = "kept"
UNSUPPORTED = "not supported by this endpoint"
FAILED = "failed"
STATUSES = (DELETED, SCHEDULED, ABSENT, KEPT, UNSUPPORTED, FAILED)
CHANGES = (DELETED, SCHEDULED)


class TeardownError(Exception):
    """Teardown cannot start; the message says why."""


class Report(ResourceReport):
    """Teardown's report: deleted / scheduled / absent / kept / unsupported / failed per resource."""

    def __init__(self, dry_run: bool = False, write: Callable[[str], None] | None = None):
        super().__init__(STATUSES, CHANGES, dry_run=dry_run, write=write, prefix="[teardown] ")

    @property
    def incomplete(self) -> int:
        """How many resources are still there: kept on purpose or failed to delete."""
        return self.count(KEPT, FAILED)

    def summary(self) -> str:
        """One line of counts."""
        suffix = " (dry run, nothing was changed)" if self.dry_run else ""
        return f"[teardown] {self.counts_line() or 'nothing to do'}{suffix}"


@dataclass(frozen=True)
class Clients:
    """The boto3 clients teardown works through, all in one region."""

    apigateway: Any
    cloudwatch: Any
    cognito: Any
    dynamodb: Any
    iam: Any
    logs: Any
    secretsmanager: Any
    sns: Any
    xray: Any

    @classmethod
    def create(cls, region: str) -> Clients:
        """Clients for region, with the credentials boto3 finds; they honour AWS_ENDPOINT_URL."""
        session = boto3.session.Session(region_name=region)
        names = ("apigateway", "cloudwatch", "cognito-idp", "dynamodb", "iam", "logs", "secretsmanager", "sns", "xray")
        return cls(*(session.client(name) for name in names))


@dataclass
class Teardown:
    """Removes one stage's resources, reporting each."""

    clients: Clients
    report: Report
    resources: StageResources
    deployment: Deployment
    force: bool = False
    delete_prod: bool = False

    @property
    def prefix(self) -> str:
        return self.resources.prefix

    @contextlib.contextmanager
    def step(self, what: str) -> Iterator[None]:
        """Report a failure of the block as this resource's outcome and go on with the next one."""
        try:
            yield
        except (ClientError, NotImplementedError) as error:
            if endpoint_lacks(error):
                self.report.record(UNSUPPORTED, what, lack_detail(error))
            else:
                self.report.record(FAILED, what, str(error))

    def remove(self, what: str, found: bool, delete: Callable[[], Any], detail: str = "") -> None:
        """Call delete unless the resource is absent or this is a dry run, then report it."""
        if not found:
            self.report.record(ABSENT, what)
            return
        if not self.report.dry_run:
            delete()
        self.report.record(DELETED, what, detail)

    def run(self) -> None:
        """Every step, in an order in which nothing still needs what was removed before it."""
        self.api_keys()
        self.usage_plans()
        self.monitoring()
        self.log_groups()
        self.secrets()
        self.user_pool()
        self.table()
        self.tenant_access_role()

    # API Gateway

    def api_keys(self) -> None:
        """The tenants' API keys: named {prefix}-{tenant}, tagged with this stage when tagged at all."""
        apigateway = self.clients.apigateway
        with self.step(f"API keys {self.prefix}-*"):
            keys = [
                key
                for key in paginate(apigateway, "get_api_keys", "items", nameQuery=f"{self.prefix}-")
                if key["name"].startswith(f"{self.prefix}-")
                and (key.get("tags") or {}).get("stage", self.resources.stage) == self.resources.stage
            ]
            if not keys:
                self.report.record(ABSENT, f"API keys {self.prefix}-*")
            for key in keys:
                what = f"API key {key['name']}"
                with self.step(what):
                    self.remove(what, True, partial(apigateway.delete_api_key, apiKey=key["id"]))

    def usage_plans(self) -> None:
        """The tier plans, each unbound from its API stages and then deleted."""
        apigateway = self.clients.apigateway
        names = {provision.usage_plan_name(self.prefix, tier) for tier in TIERS.values()}
        with self.step(f"usage plans {self.prefix}-*"):
            plans = {plan["name"]: plan for plan in paginate(apigateway, "get_usage_plans", "items")}
            for name in sorted(names):
                what = f"usage plan {name}"
                with self.step(what):
                    plan = plans.get(name)
                    if plan is None:
                        self.report.record(ABSENT, what)
                        continue
                    bound = [(stage["apiId"], stage["stage"]) for stage in plan.get("apiStages", [])]
                    gone = [api_stage for api_stage in bound if not self._stage_exists(*api_stage)]
                    self.remove(
                        what,
                        True,
                        partial(self._delete_usage_plan, plan["id"], bound, gone),
                        _binding_detail(bound, gone),
                    )

    def _stage_exists(self, api_id: str, stage: str) -> bool:
        try:
            self.clients.apigateway.get_stage(restApiId=api_id, stageName=stage)
        except ClientError as error:
            if error_code(error) != "NotFoundException":
                raise
            return False
        return True

    def _delete_usage_plan(self, plan_id: str, bound: list[tuple[str, str]], gone: list[tuple[str, str]]) -> None:
        # One stage at a time: a binding to a stage deleted since (`chalice delete` removes the API)
        # may be refused with NotFoundException, and must not keep the live bindings in place.
        for api_id, stage in bound:
            patch = [{"op": "remove", "path": "/apiStages", "value": f"{api_id}:{stage}"}]
            try:
                self.clients.apigateway.update_usage_plan(usagePlanId=plan_id, patchOperations=patch)
            except ClientError as error:
                if error_code(error) != "NotFoundException" or (api_id, stage) not in gone:
                    raise
        self.clients.apigateway.delete_usage_plan(usagePlanId=plan_id)

    # Monitoring

    def monitoring(self) -> None:
        """Alarms, dashboard, Contributor Insights rules, alarm topic (with its subscriptions), sampling rule, queries."""
        cloudwatch, deployment = self.clients.cloudwatch, self.deployment
        names = [alarm["AlarmName"] for alarm in alarm_definitions(deployment, "")]
        with self.step(f"alarms {deployment.prefix}-*"):
            alarms = paginate(cloudwatch, "describe_alarms", "MetricAlarms", AlarmNames=names)
            existing = {alarm["AlarmName"] for alarm in alarms}
            for name in names:
                with self.step(f"alarm {name}"):
                    delete = partial(cloudwatch.delete_alarms, AlarmNames=[name])
                    self.remove(f"alarm {name}", name in existing, delete)
        name = dashboard_name(deployment)
        with self.step(f"dashboard {name}"):
            delete = partial(cloudwatch.delete_dashboards, DashboardNames=[name])
            self.remove(f"dashboard {name}", self._dashboard_exists(name), delete)
        self.insight_rules()
        name = alarm_topic_name(deployment)
        with self.step(f"SNS topic {name}"):
            arns = (topic["TopicArn"] for topic in paginate(self.clients.sns, "list_topics", "Topics"))
            arn = next((arn for arn in arns if arn.rsplit(":", 1)[-1] == name), None)
            # Deleting a topic deletes its subscriptions.
            self.remove(f"SNS topic {name}", arn is not None, partial(self.clients.sns.delete_topic, TopicArn=arn))
        self.sampling_rule()
        self.saved_queries()

    def _dashboard_exists(self, name: str) -> bool:
        try:
            self.clients.cloudwatch.get_dashboard(DashboardName=name)
        except ClientError as error:
            if error_code(error) not in ("ResourceNotFound", "ResourceNotFoundException"):
                raise
            return False
        return True

    def insight_rules(self) -> None:
        """The stage's Contributor Insights rules."""
        cloudwatch, deployment = self.clients.cloudwatch, self.deployment
        names = [rule["RuleName"] for rule in insight_rules(deployment)]
        with self.step(f"Contributor Insights rules {deployment.prefix}-*"):
            # boto3 has no paginator for DescribeInsightRules.
            existing = {rule["Name"] for rule in paginate_by_token(cloudwatch.describe_insight_rules, "InsightRules")}
            for name in names:
                what = f"Contributor Insights rule {name}"
                with self.step(what):
                    self.remove(what, name in existing, partial(self._delete_insight_rule, name))

    def _delete_insight_rule(self, name: str) -> None:
        # DeleteInsightRules answers a rule it could not delete in Failures, not with an error.
        failures = self.clients.cloudwatch.delete_insight_rules(RuleNames=[name]).get("Failures")
        if failures:
            code = failures[0].get("ExceptionType") or "DeleteInsightRulesFailure"
            message = failures[0].get("FailureDescription") or f"rule {name} was not deleted"
            raise ClientError({"Error": {"Code": code, "Message": message}}, "DeleteInsightRules")

    def sampling_rule(self) -> None:
        """The stage's X-Ray sampling rule."""
        name = sampling_rule(self.deployment, "")["RuleName"]
        what = f"X-Ray sampling rule {name}"
        with self.step(what):
            records = paginate(self.clients.xray, "get_sampling_rules", "SamplingRuleRecords")
            found = any(record["SamplingRule"]["RuleName"] == name for record in records)
            self.remove(what, found, partial(self.clients.xray.delete_sampling_rule, RuleName=name))

    def saved_queries(self) -> None:
        """The saved Logs Insights queries."""
        logs = self.clients.logs
        wanted = [query["name"] for query in saved_query_definitions(self.deployment)]
        with self.step(f"saved queries {self.deployment.prefix}/*"):
            queries = paginate_by_token(
                logs.describe_query_definitions,
                "queryDefinitions",
                token="nextToken",
                queryDefinitionNamePrefix=self.deployment.prefix,
            )
            existing = {query["name"]: query["queryDefinitionId"] for query in queries}
            for name in wanted:
                what = f"saved query {name}"
                with self.step(what):
                    delete = partial(logs.delete_query_definition, queryDefinitionId=existing.get(name))
                    self.remove(what, name in existing, delete)

    def log_groups(self) -> None:
        """The functions' log groups (Lambda does not delete them with the functions)."""
        logs = self.clients.logs
        for function_name in self.deployment.function_names:
            name = self.deployment.log_group(function_name)
            what = f"log group {name}"
            with self.step(what):
                groups = paginate(logs, "describe_log_groups", "logGroups", logGroupNamePrefix=name)
                found = any(group["logGroupName"] == name for group in groups)
                self.remove(what, found, partial(logs.delete_log_group, logGroupName=name))

    # Secrets

    def secrets(self) -> None:
        """The tenants' stored client secrets and the pagination key."""
        secretsmanager = self.clients.secretsmanager
        tenants = f"{self.prefix}/tenants/"
        with self.step(f"secrets {tenants}*"):
            filters = [{"Key": "name", "Values": [tenants]}]
            listed = paginate(
                secretsmanager, "list_secrets", "SecretList", Filters=filters, IncludePlannedDeletion=True
            )
            names = sorted(secret["Name"] for secret in listed if secret["Name"].startswith(tenants))
            for name in [*names, self.resources.pagination_secret_name]:
                with self.step(f"secret {name}"):
                    self.secret(name)

    def secret(self, name: str) -> None:
        """Schedule the secret's deletion, or delete it at once with --force."""
        secretsmanager, what = self.clients.secretsmanager, f"secret {name}"
        try:
            described = secretsmanager.describe_secret(SecretId=name)
        except ClientError as error:
            if error_code(error) != "ResourceNotFoundException":
                raise
            self.report.record(ABSENT, what)
            return
        if described.get("DeletedDate") and not self.force:
            self.report.record(ABSENT, what, f"scheduled for deletion on {described['DeletedDate']:%Y-%m-%d}")
            return
        if self.force:
            if not self.report.dry_run:
                secretsmanager.delete_secret(SecretId=described["ARN"], ForceDeleteWithoutRecovery=True)
            self.report.record(DELETED, what, "without recovery")
            return
        if not self.report.dry_run:
            secretsmanager.delete_secret(SecretId=described["ARN"], RecoveryWindowInDays=MIN_RECOVERY_DAYS)
        self.report.record(SCHEDULED, what, f"recoverable for {MIN_RECOVERY_DAYS} days; bootstrap restores it")

    # Identity and data

    def _prod_refused(self, what: str) -> bool:
        if self.resources.stage in PROTECTED_STAGES and not self.delete_prod:
            self.report.record(KEPT, what, f"stage {self.resources.stage} is protected; pass --yes-delete-prod")
            return True
        return False

    def user_pool(self) -> None:
        """The pool's hosted domain, then the pool with its resource server and every app client."""
        cognito, name = self.clients.cognito, self.resources.pool_name
        what = f"user pool {name}"
        with self.step(what):
            pool_id = provision.find_user_pool(cognito, name)
            if pool_id is None:
                self.report.record(ABSENT, what)
                return
            if self._prod_refused(f"{what} and its domain"):
                return
            pool = cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]
            if pool.get("DeletionProtection") == "ACTIVE":
                unprotect = f"aws cognito-idp update-user-pool --user-pool-id {pool_id} --deletion-protection INACTIVE"
                self.report.record(KEPT, f"{what} and its domain", f"deletion protection is on; `{unprotect}` first")
                return
            domain = pool.get("Domain")
            if domain:
                # A pool with a domain cannot be deleted.
                delete_domain = partial(cognito.delete_user_pool_domain, UserPoolId=pool_id, Domain=domain)
                self.remove(f"user pool domain {domain}", True, delete_domain)
            self.remove(what, True, partial(cognito.delete_user_pool, UserPoolId=pool_id), pool_id)

    def table(self) -> None:
        """The single table, with every tenant's products and orders."""
        dynamodb, name = self.clients.dynamodb, self.resources.table_name
        what = f"table {name}"
        with self.step(what):
            try:
                table = dynamodb.describe_table(TableName=name)["Table"]
            except ClientError as error:
                if error_code(error) != "ResourceNotFoundException":
                    raise
                self.report.record(ABSENT, what)
                return
            if self._prod_refused(what):
                return
            if table.get("DeletionProtectionEnabled"):
                unprotect = f"aws dynamodb update-table --table-name {name} --no-deletion-protection-enabled"
                self.report.record(KEPT, what, f"deletion protection is on; `{unprotect}` first")
                return
            self.remove(what, True, partial(dynamodb.delete_table, TableName=name))

    def tenant_access_role(self) -> None:
        """The role the API function assumed for each tenant; without the function it serves nothing."""
        iam, name = self.clients.iam, self.resources.tenant_access_role_name
        what = f"role {name}"
        with self.step(what):
            try:
                iam.get_role(RoleName=name)
            except ClientError as error:
                if error_code(error) != "NoSuchEntity":
                    raise
                self.report.record(ABSENT, what)
                return
            self.remove(what, True, partial(provision.delete_role, iam, name))


def _binding_detail(bound: list[tuple[str, str]], gone: list[tuple[str, str]]) -> str:
    """What deleting a usage plan does to its bindings, for the report line."""
    live = [f"{api_id}:{stage}" for api_id, stage in bound if (api_id, stage) not in gone]
    parts = [f"unbound from {', '.join(live)} first"] if live else []
    if gone:
        parts.append(f"was bound to {', '.join(f'{api_id}:{stage}' for api_id, stage in gone)}, deleted before")
    return "; ".join(parts)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.deploy.teardown",
        description=__doc__.splitlines()[0] if __doc__ else None,
        epilog="Order: scripts.tenants delete (optional), chalice delete --stage STAGE, then this.",
    )
    parser.add_argument("--stage", required=True, help="the Chalice stage (dev, prod)")
    parser.add_argument("--region", help="AWS region (default: the one in the stage's TOKEN_ISSUER, else AWS_REGION)")
    parser.add_argument("--dry-run", action="store_true", help="say what would be removed, remove nothing")
    parser.add_argument(
        "--force", action="store_true", help="delete secrets at once instead of after a 7-day recovery window"
    )
    parser.add_argument(
        "--yes-delete-prod", action="store_true", help="also delete a protected stage's user pool and table"
    )
    parser.add_argument(
        "--project-dir", type=Path, default=PROJECT_DIR, help="the project whose .chalice/config.json is read"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Tear the stage down; 0 when nothing of it is left (or, in a dry run, would be)."""
    args = parse_args(argv)
    try:
        resources = load_stage(args.stage, args.project_dir)
        region = resources.region(args.region)
        report = Report(dry_run=args.dry_run)
        OUTPUT.progress(f"stage {args.stage} in {region}{' (dry run)' if args.dry_run else ''}")
        Teardown(
            Clients.create(region),
            report,
            resources,
            resources.config.deployment(region),
            force=args.force,
            delete_prod=args.yes_delete_prod,
        ).run()
    except (TeardownError, StageConfigError) as error:
        OUTPUT.error(error)
        return 1
    except (ClientError, BotoCoreError) as error:
        OUTPUT.error(f"{AWS_UNREACHABLE}: {error}")
        return 1
    print(report.summary(), flush=True)
    if report.incomplete:
        print(
            f"[teardown] error: {report.incomplete} resource(s) remain; see the lines marked kept or failed",
            file=sys.stderr,
            flush=True,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
