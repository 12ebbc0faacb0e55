"""After `chalice deploy` or `terraform apply`: what the deploy does not set on the stage, applied idempotently.

    python -m scripts.deploy.post_deploy --stage dev [--dry-run] [--alarm-email ADDR]

Finds the stage's REST API, sets its API key source to AUTHORIZER, puts the gateway responses
and redeploys the stage when that changed anything, turns on X-Ray tracing on the stage, binds
one usage plan per tier to the stage with every tenant's API key in its tier's plan, keeps the
functions' logs for 7 days, and puts the dashboard, the alarms (notifying an SNS topic), the
Contributor Insights rules (requests, errors and time per tenant), the saved Logs Insights
queries and an X-Ray sampling rule. Every resource is compared with what it should be before
anything is written, so a second run prints "unchanged" everywhere and writes nothing; --dry-run
only prints what would change.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.store import keys
from chalicelib.store.dynamodb import from_item
from chalicelib.tiers import TIERS, Tier
from chalicelib.web.gateway import gateway_responses
from scripts.aws_calls import endpoint_lacks, error_code, lack_detail, paginate, paginate_by_token
from scripts.monitoring import (
    Deployment,
    alarm_definitions,
    alarm_topic_name,
    dashboard_json,
    dashboard_name,
    insight_rules,
    sampling_rule,
    saved_queries,
)
from scripts.provision import attach_api_key, ensure_usage_plans, usage_plan_name
from scripts.resource_report import ResourceReport
from scripts.stage_config import PROJECT_DIR, StageConfig, StageConfigError, read_stage_config

API_KEY_SOURCE = "AUTHORIZER"
LOG_RETENTION_DAYS = 7
DEPLOYMENT_MARKER = "post-deploy"

CREATED = "created"
UPDATED = "updated"
UNCHANGED = "unchanged"
UNSUPPORTED = "not supported by this endpoint"
FAILED = "failed"
CHANGES = (CREATED, UPDATED)
STATUSES = (CREATED, UPDATED, UNCHANGED, UNSUPPORTED, FAILED)


class PostDeployError(Exception):
    """The deployed stage is not in a state post-deploy can work on."""


class Report(ResourceReport):
    """Post-deploy's report: created / updated / unchanged / unsupported / failed per resource."""

    def __init__(self, dry_run: bool = False, write: Callable[[str], None] = print):
        super().__init__(STATUSES, CHANGES, dry_run=dry_run, write=write)

    @property
    def failures(self) -> int:
        """How many resources could not be brought to what they should be."""
        return self.count(FAILED)

    def summary(self) -> str:
        """One line: the counts, and whether anything changed."""
        if self.changes == 0:
            outcome = "no changes"
        elif self.dry_run:
            outcome = f"{self.changes} would change; dry run, nothing was changed"
        else:
            outcome = f"{self.changes} changed"
        return f"{outcome} ({self.counts_line()})"


@dataclass(frozen=True)
class AwsClients:
    """The boto3 clients post-deploy works through."""

    apigateway: Any
    cloudwatch: Any
    dynamodb: Any
    logs: Any
    sns: Any
    xray: Any

    @classmethod
    def create(cls, region: str | None = None) -> AwsClients:
        """Clients for region (or the environment's region); they honour AWS_ENDPOINT_URL."""
        session = boto3.session.Session(region_name=region)
        if not session.region_name:
            raise PostDeployError("no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION) or pass --region")
        names = ("apigateway", "cloudwatch", "dynamodb", "logs", "sns", "xray")
        return cls(*(session.client(name) for name in names))

    @property
    def region(self) -> str:
        """The region the clients talk to."""
        return self.apigateway.meta.region_name


@dataclass(frozen=True)
class TenantKey:
    """What the registry says of a tenant's API key: whose it is and which tier's plan it belongs in."""

    tenant_id: str
    tier: str
    api_key_id: str


def _settle(
    report: Report, status: str, what: str, detail: str, write: Callable[..., Any], *args: Any, **kwargs: Any
) -> bool:
    """Call write(*args, **kwargs) if the resource differs and this is not a dry run, then print its status.

    Returns whether the resource differed. The line is printed after the write, so a write
    that fails is never reported as done.
    """
    if status in CHANGES and not report.dry_run:
        write(*args, **kwargs)
    report.record(status, what, detail)
    return status in CHANGES


def _status(current: Any, same: bool) -> str:
    if current is None:
        return CREATED
    return UNCHANGED if same else UPDATED


def matches(current: Any, wanted: Any) -> bool:
    """Whether current holds every value of wanted: numbers by value, settings only current has are ignored."""
    if isinstance(wanted, dict):
        return isinstance(current, dict) and all(matches(current.get(name), value) for name, value in wanted.items())
    if isinstance(wanted, list):
        return isinstance(current, list) and len(current) == len(wanted) and all(map(matches, current, wanted))
    if isinstance(wanted, (int, float)) and not isinstance(wanted, bool):
        # The APIs return numbers as numbers or, after a patch, as strings.
        try:
            return float(current) == float(wanted)
        except (TypeError, ValueError):
            return False
    return current == wanted


# The REST API and its stage


def deployed_rest_api_id(project_dir: Path, stage: str) -> str | None:
    """The REST API id `chalice deploy` recorded in .chalice/deployed/<stage>.json, if it recorded one."""
    record = project_dir / ".chalice" / "deployed" / f"{stage}.json"
    if not record.exists():
        return None
    try:
        resources = json.loads(record.read_text()).get("resources", [])
    except (ValueError, AttributeError):
        raise PostDeployError(f"{record} is not a deployment record of chalice deploy; pass --rest-api-id") from None
    return next((item.get("rest_api_id") for item in resources if item.get("resource_type") == "rest_api"), None)


def find_rest_api(apigateway: Any, name: str, known_id: str | None = None) -> str:
    """The id of the stage's REST API: known_id if it exists, else the only API called name."""
    if known_id:
        try:
            apigateway.get_rest_api(restApiId=known_id)
        except ClientError as error:
            if error_code(error) != "NotFoundException":
                raise
            raise PostDeployError(f"REST API {known_id} does not exist in this account and region") from None
        return known_id
    ids = [api["id"] for api in paginate(apigateway, "get_rest_apis", "items") if api["name"] == name]
    if not ids:
        raise PostDeployError(f"no REST API named {name!r}: deploy the stage first (chalice deploy or terraform apply)")
    if len(ids) > 1:
        # Chalice names the API after the app, so two stages in one account share the name.
        listed = ", ".join(sorted(ids))
        raise PostDeployError(f"{len(ids)} REST APIs are named {name!r} ({listed}): pick one with --rest-api-id")
    return ids[0]


def get_stage(apigateway: Any, api_id: str, stage: str) -> dict[str, Any]:
    """The API's stage; PostDeployError if it has none of that name."""
    try:
        return apigateway.get_stage(restApiId=api_id, stageName=stage)
    except ClientError as error:
        if error_code(error) != "NotFoundException":
            raise
        raise PostDeployError(f"REST API {api_id} has no stage {stage!r}: deploy the stage first") from None


def ensure_api_key_source(apigateway: Any, report: Report, api_id: str) -> bool:
    """API keys come from the authorizer's usageIdentifierKey; True if that had to change."""
    current = apigateway.get_rest_api(restApiId=api_id).get("apiKeySource", "HEADER")
    patch = [{"op": "replace", "path": "/apiKeySource", "value": API_KEY_SOURCE}]
    return _settle(
        report,
        UNCHANGED if current == API_KEY_SOURCE else UPDATED,
        f"API key source of REST API {api_id}",
        API_KEY_SOURCE if current == API_KEY_SOURCE else f"{current} -> {API_KEY_SOURCE}",
        apigateway.update_rest_api,
        restApiId=api_id,
        patchOperations=patch,
    )


def _gateway_response(apigateway: Any, api_id: str, response_type: str) -> dict[str, Any] | None:
    try:
        return apigateway.get_gateway_response(restApiId=api_id, responseType=response_type)
    except ClientError as error:
        if error_code(error) != "NotFoundException":
            raise
        return None


def _same_gateway_response(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return (
        current.get("statusCode") == wanted.get("statusCode")
        and (current.get("responseTemplates") or {}) == wanted.get("responseTemplates", {})
        and (current.get("responseParameters") or {}) == wanted.get("responseParameters", {})
    )


def ensure_gateway_responses(apigateway: Any, report: Report, api_id: str) -> bool:
    """The gateway's own errors in the API's JSON envelope; True if any response had to change."""
    changed = False
    for response_type, wanted in gateway_responses().items():
        current = _gateway_response(apigateway, api_id, response_type)
        status = _status(current, current is not None and _same_gateway_response(current, wanted))
        changed |= _settle(
            report,
            status,
            f"gateway response {response_type}",
            wanted.get("statusCode", ""),
            apigateway.put_gateway_response,
            restApiId=api_id,
            responseType=response_type,
            **wanted,
        )
    return changed


def deployment_description() -> str:
    """The description of the deployments post-deploy makes, naming the API settings they carry."""
    settings = {"apiKeySource": API_KEY_SOURCE, "gatewayResponses": gateway_responses()}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    return f"{DEPLOYMENT_MARKER} {digest}"


def ensure_stage_deployment(apigateway: Any, report: Report, api_id: str, stage: str, api_changed: bool) -> None:
    """Redeploy the stage unless it already serves post-deploy's deployment of these settings.

    API settings reach callers only through a deployment. `chalice deploy` re-imports the API
    and deploys it without them, so a stage whose deployment post-deploy did not make is
    redeployed even when the settings already read right; one whose deployment carries this
    configuration's description, on an API nothing was changed on in this run, is left alone.
    """
    description = deployment_description()
    deployment_id = get_stage(apigateway, api_id, stage).get("deploymentId")
    current = apigateway.get_deployment(restApiId=api_id, deploymentId=deployment_id) if deployment_id else {}
    if api_changed:
        status, reason = CREATED, "the API settings changed"
    elif current.get("description") != description:
        status, reason = CREATED, "the stage serves a deployment made without these settings"
    else:
        status, reason = UNCHANGED, f"deployment {deployment_id}"
    _settle(
        report,
        status,
        f"deployment of stage {stage}",
        reason,
        apigateway.create_deployment,
        restApiId=api_id,
        stageName=stage,
        description=description,
    )


def ensure_stage_tracing(apigateway: Any, report: Report, api_id: str, stage: str) -> None:
    """X-Ray active tracing on the stage (chalice package enables it on the functions only)."""
    enabled = get_stage(apigateway, api_id, stage).get("tracingEnabled", False)
    patch = [{"op": "replace", "path": "/tracingEnabled", "value": "true"}]
    _settle(
        report,
        UNCHANGED if enabled else UPDATED,
        f"X-Ray tracing of stage {stage}",
        "enabled",
        apigateway.update_stage,
        restApiId=api_id,
        stageName=stage,
        patchOperations=patch,
    )


def configure_api(apigateway: Any, report: Report, api_id: str, stage: str) -> None:
    """API key source, gateway responses, a deployment carrying them, and tracing on the stage."""
    changed = ensure_api_key_source(apigateway, report, api_id)
    changed = ensure_gateway_responses(apigateway, report, api_id) or changed
    ensure_stage_deployment(apigateway, report, api_id, stage, changed)
    # After the deployment: moto (unlike API Gateway) resets the stage's settings on a redeploy.
    ensure_stage_tracing(apigateway, report, api_id, stage)


# Usage plans and the tenants' API keys


def _plan_matches(plan: dict[str, Any], tier: Tier, api_stage: str) -> bool:
    wanted = {
        "throttle": {"rateLimit": tier.rate_per_second, "burstLimit": tier.burst},
        "quota": {"limit": tier.monthly_quota, "period": "MONTH"},
    }
    bound = {f"{stage['apiId']}:{stage['stage']}" for stage in plan.get("apiStages", [])}
    return matches(plan, wanted) and api_stage in bound


def ensure_tier_plans(apigateway: Any, report: Report, prefix: str, api_stage: str) -> dict[str, str]:
    """One usage plan per tier, bound to api_stage ("apiId:stage"); returns the plan ids by tier.

    In a dry run nothing is created, so only the plans that already exist have an id.
    """
    before = {plan["name"]: plan for plan in paginate(apigateway, "get_usage_plans", "items")}
    statuses = {}
    for tier in TIERS.values():
        plan = before.get(usage_plan_name(prefix, tier))
        statuses[tier.name] = _status(plan, plan is not None and _plan_matches(plan, tier, api_stage))
    plan_ids = {
        name: before[usage_plan_name(prefix, tier)]["id"] for name, tier in TIERS.items() if statuses[name] != CREATED
    }
    if not report.dry_run and any(status in CHANGES for status in statuses.values()):
        plan_ids = ensure_usage_plans(apigateway, prefix, [api_stage])
    for tier in TIERS.values():
        report.record(
            statuses[tier.name],
            f"usage plan {usage_plan_name(prefix, tier)}",
            f"{tier.rate_per_second:g} req/s, burst {tier.burst}, {tier.monthly_quota:,} a month, on {api_stage}",
        )
    return plan_ids


def read_tenant_keys(dynamodb: Any, table_name: str) -> list[TenantKey]:
    """Every tenant's tier and API key id, from the registry records in the table.

    A scan, which the request path never does: this operator script runs once per deploy, and
    the registry is the only place that says which tier each tenant's key belongs to.
    """
    pages = dynamodb.get_paginator("scan").paginate(
        TableName=table_name,
        FilterExpression="#sk = :meta",
        ProjectionExpression="#tenant, #tier, #key",
        ExpressionAttributeNames={"#sk": "SK", "#tenant": "tenant_id", "#tier": "tier", "#key": "api_key_id"},
        ExpressionAttributeValues={":meta": {"S": keys.TENANT_META_SORT_KEY}},
        ConsistentRead=True,
    )
    records = [from_item(item) for page in pages for item in page.get("Items", [])]
    tenants = [TenantKey(item["tenant_id"], item.get("tier", ""), item.get("api_key_id", "")) for item in records]
    return sorted(tenants, key=lambda tenant: tenant.tenant_id)


def _key_problem(tenant: TenantKey, existing_keys: set[str]) -> str:
    if tenant.tier not in TIERS:
        return f"unknown tier {tenant.tier!r}"
    if not tenant.api_key_id:
        return "the registry names no API key; onboard the tenant again"
    if tenant.api_key_id not in existing_keys:
        return f"API key {tenant.api_key_id} does not exist; onboard the tenant again"
    return ""


def ensure_tenant_keys(
    apigateway: Any, report: Report, tenants: Iterable[TenantKey], plan_ids: dict[str, str], prefix: str
) -> None:
    """Every tenant's API key in its tier's usage plan and in no other tier's."""
    existing_keys = {key["id"] for key in paginate(apigateway, "get_api_keys", "items")}
    members = {
        plan_id: {key["id"] for key in paginate(apigateway, "get_usage_plan_keys", "items", usagePlanId=plan_id)}
        for plan_id in plan_ids.values()
    }
    for tenant in tenants:
        what = f"API key of tenant {tenant.tenant_id}"
        problem = _key_problem(tenant, existing_keys)
        if problem:
            report.record(FAILED, what, problem)
            continue
        plan_id = plan_ids.get(tenant.tier)
        in_plans = {other for other, key_ids in members.items() if tenant.api_key_id in key_ids}
        status = UNCHANGED if plan_id is not None and in_plans == {plan_id} else UPDATED if in_plans else CREATED
        _settle(
            report,
            status,
            what,
            f"{tenant.api_key_id} in usage plan {usage_plan_name(prefix, TIERS[tenant.tier])}",
            attach_api_key,
            apigateway,
            tenant.api_key_id,
            plan_ids.get(tenant.tier, ""),
            list(plan_ids.values()),
        )


def configure_usage_plans(clients: AwsClients, report: Report, deployment: Deployment, api_id: str) -> None:
    """The tiers' usage plans on the stage, and each tenant's key in its tier's plan."""
    api_stage = f"{api_id}:{deployment.api_stage}"
    plan_ids = ensure_tier_plans(clients.apigateway, report, deployment.prefix, api_stage)
    try:
        tenants = read_tenant_keys(clients.dynamodb, deployment.table_name)
    except ClientError as error:
        if error_code(error) != "ResourceNotFoundException":
            raise
        what = f"tenants' API keys (table {deployment.table_name})"
        report.record(FAILED, what, "the table does not exist; bootstrap the stage")
        return
    ensure_tenant_keys(clients.apigateway, report, tenants, plan_ids, deployment.prefix)


# Logs, dashboard, alarms, Contributor Insights rules, saved queries, sampling


def _log_group(logs: Any, name: str) -> dict[str, Any] | None:
    groups = paginate(logs, "describe_log_groups", "logGroups", logGroupNamePrefix=name)
    return next((group for group in groups if group["logGroupName"] == name), None)


def _create_log_group(logs: Any, name: str) -> None:
    try:
        logs.create_log_group(logGroupName=name)
    except ClientError as error:
        # Lambda creates the group on the function's first invocation; that may have just happened.
        if error_code(error) != "ResourceAlreadyExistsException":
            raise


def _put_log_group(logs: Any, name: str, exists: bool) -> None:
    if not exists:
        _create_log_group(logs, name)
    logs.put_retention_policy(logGroupName=name, retentionInDays=LOG_RETENTION_DAYS)


def ensure_log_retention(logs: Any, report: Report, deployment: Deployment) -> None:
    """Each function's log group exists and keeps LOG_RETENTION_DAYS of logs."""
    for function_name in deployment.function_names:
        name = deployment.log_group(function_name)
        current = _log_group(logs, name)
        status = _status(current, current is not None and current.get("retentionInDays") == LOG_RETENTION_DAYS)
        detail = f"retention {LOG_RETENTION_DAYS} days"
        _settle(report, status, f"log group {name}", detail, _put_log_group, logs, name, current is not None)


def ensure_alarm_topic(sns: Any, report: Report, deployment: Deployment) -> str | None:
    """The alarm topic's ARN, created if missing; None in a dry run when it does not exist yet."""
    name = alarm_topic_name(deployment)
    arns = (topic["TopicArn"] for topic in paginate(sns, "list_topics", "Topics"))
    arn = next((arn for arn in arns if arn.rsplit(":", 1)[-1] == name), None)
    if arn is None and not report.dry_run:
        arn = sns.create_topic(Name=name)["TopicArn"]
        report.record(CREATED, f"SNS topic {name}", arn)
    else:
        report.record(UNCHANGED if arn else CREATED, f"SNS topic {name}", arn or "")
    return arn


def ensure_email_subscription(sns: Any, report: Report, topic_arn: str | None, address: str) -> None:
    """address subscribed to the alarm topic by e-mail (AWS mails a link it must confirm)."""
    subscribed = topic_arn is not None and any(
        subscription["Protocol"] == "email" and subscription["Endpoint"].lower() == address.lower()
        for subscription in paginate(sns, "list_subscriptions_by_topic", "Subscriptions", TopicArn=topic_arn)
    )
    _settle(
        report,
        UNCHANGED if subscribed else CREATED,
        f"e-mail subscription {address}",
        "" if subscribed else "alarms reach it once the link AWS mails is confirmed",
        sns.subscribe,
        TopicArn=topic_arn,
        Protocol="email",
        Endpoint=address,
    )


def ensure_dashboard(cloudwatch: Any, report: Report, deployment: Deployment) -> None:
    """The stage's CloudWatch dashboard, as monitoring.dashboard_json builds it."""
    name, body = dashboard_name(deployment), dashboard_json(deployment)
    try:
        current = cloudwatch.get_dashboard(DashboardName=name)["DashboardBody"]
    except ClientError as error:
        if error_code(error) not in ("ResourceNotFound", "ResourceNotFoundException"):
            raise
        current = None
    status = _status(current, current is not None and json.loads(current) == json.loads(body))
    _settle(report, status, f"dashboard {name}", "", cloudwatch.put_dashboard, DashboardName=name, DashboardBody=body)


def ensure_alarms(cloudwatch: Any, report: Report, deployment: Deployment, topic_arn: str) -> None:
    """The alarms of monitoring.alarm_definitions, notifying topic_arn."""
    definitions = alarm_definitions(deployment, topic_arn)
    names = [definition["AlarmName"] for definition in definitions]
    alarms = paginate(cloudwatch, "describe_alarms", "MetricAlarms", AlarmNames=names)
    current = {alarm["AlarmName"]: alarm for alarm in alarms}
    for definition in definitions:
        alarm = current.get(definition["AlarmName"])
        _settle(
            report,
            _status(alarm, matches(alarm, definition)),
            f"alarm {definition['AlarmName']}",
            f"threshold {definition['Threshold']:g}",
            cloudwatch.put_metric_alarm,
            **definition,
        )


def _same_insight_rule(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    # Compared as data: CloudWatch need not return the definition with the spacing and key order it was sent.
    try:
        definition = json.loads(current.get("Definition") or "null")
    except ValueError:
        return False
    return current.get("State") == wanted["RuleState"] and definition == json.loads(wanted["RuleDefinition"])


def ensure_insight_rules(cloudwatch: Any, report: Report, deployment: Deployment) -> None:
    """The Contributor Insights rules of monitoring.insight_rules, enabled and with their definitions."""
    # boto3 has no paginator for DescribeInsightRules.
    rules = paginate_by_token(cloudwatch.describe_insight_rules, "InsightRules")
    current = {rule["Name"]: rule for rule in rules}
    for rule in insight_rules(deployment):
        existing = current.get(rule["RuleName"])
        log_groups = ", ".join(json.loads(rule["RuleDefinition"])["LogGroupNames"])
        _settle(
            report,
            _status(existing, existing is not None and _same_insight_rule(existing, rule)),
            f"Contributor Insights rule {rule['RuleName']}",
            f"{rule['RuleState'].lower()}, on {log_groups}",
            cloudwatch.put_insight_rule,
            **rule,
        )


def _query_definitions(logs: Any, prefix: str) -> dict[str, dict[str, Any]]:
    queries = paginate_by_token(
        logs.describe_query_definitions, "queryDefinitions", token="nextToken", queryDefinitionNamePrefix=prefix
    )
    return {query["name"]: query for query in queries}


def _same_query(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    same_groups = sorted(current.get("logGroupNames", [])) == sorted(wanted["logGroupNames"])
    return same_groups and current.get("queryString") == wanted["queryString"]


def ensure_saved_queries(logs: Any, report: Report, deployment: Deployment) -> None:
    """The saved Logs Insights queries of monitoring.saved_queries."""
    wanted = saved_queries(deployment)
    try:
        existing = _query_definitions(logs, deployment.prefix)
    except (ClientError, NotImplementedError) as error:
        if not endpoint_lacks(error):
            raise
        for query in wanted:
            report.record(UNSUPPORTED, f"saved query {query['name']}", lack_detail(error))
        return
    for query in wanted:
        what = f"saved query {query['name']}"
        current = existing.get(query["name"])
        same = current is not None and _same_query(current, query)
        update = {"queryDefinitionId": current["queryDefinitionId"]} if current else {}
        try:
            _settle(report, _status(current, same), what, "", logs.put_query_definition, **query, **update)
        except (ClientError, NotImplementedError) as error:
            if not endpoint_lacks(error):
                raise
            report.record(UNSUPPORTED, what, lack_detail(error))


def ensure_sampling_rule(xray: Any, report: Report, rule: dict[str, Any]) -> None:
    """The stage's X-Ray sampling rule, created or brought up to date."""
    what = f"X-Ray sampling rule {rule['RuleName']}"
    try:
        records = paginate(xray, "get_sampling_rules", "SamplingRuleRecords")
        current = next((r["SamplingRule"] for r in records if r["SamplingRule"]["RuleName"] == rule["RuleName"]), None)
        detail = f"{rule['FixedRate']:.0%} after {rule['ReservoirSize']} a second"
        if current is None:
            _settle(report, CREATED, what, detail, xray.create_sampling_rule, SamplingRule=rule)
        else:
            # A rule's version cannot change, so an update leaves it out.
            update = {name: value for name, value in rule.items() if name != "Version"}
            status = UNCHANGED if matches(current, rule) else UPDATED
            _settle(report, status, what, detail, xray.update_sampling_rule, SamplingRuleUpdate=update)
    except (ClientError, NotImplementedError) as error:
        if not endpoint_lacks(error):
            raise
        report.record(UNSUPPORTED, what, lack_detail(error))


def configure_monitoring(
    clients: AwsClients, report: Report, deployment: Deployment, api_id: str, alarm_email: str | None
) -> None:
    """Log retention, alarm topic, dashboard, alarms, Contributor Insights rules, saved queries, sampling rule."""
    ensure_log_retention(clients.logs, report, deployment)
    topic_arn = ensure_alarm_topic(clients.sns, report, deployment)
    if alarm_email:
        ensure_email_subscription(clients.sns, report, topic_arn, alarm_email)
    ensure_dashboard(clients.cloudwatch, report, deployment)
    # In a dry run the topic may not exist yet: compare against its name, which differs from any real ARN.
    ensure_alarms(clients.cloudwatch, report, deployment, topic_arn or f"(new topic {alarm_topic_name(deployment)})")
    ensure_insight_rules(clients.cloudwatch, report, deployment)
    ensure_saved_queries(clients.logs, report, deployment)
    ensure_sampling_rule(clients.xray, report, sampling_rule(deployment, api_id, clients.apigateway.meta.partition))


def post_deploy(
    clients: AwsClients, report: Report, deployment: Deployment, api_id: str, alarm_email: str | None = None
) -> None:
    """Bring the deployed stage's API, usage plans and monitoring to what they should be."""
    get_stage(clients.apigateway, api_id, deployment.api_stage)
    configure_api(clients.apigateway, report, api_id, deployment.api_stage)
    configure_usage_plans(clients, report, deployment, api_id)
    configure_monitoring(clients, report, deployment, api_id, alarm_email)


# The command line


def deployment_of(config: StageConfig, region: str) -> Deployment:
    """What the dashboard and alarms describe: the stage as configured, in region."""
    return config.deployment(region)


def _email(value: str) -> str:
    if "@" not in value.strip("@") or any(character.isspace() for character in value):
        raise argparse.ArgumentTypeError(f"not an e-mail address: {value!r}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line's options (argv defaults to sys.argv)."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.deploy.post_deploy",
        description="After chalice deploy or terraform apply: API key source, gateway responses, usage plans and "
        "tenants' keys, stage tracing, log retention, dashboard, alarms, Contributor Insights rules, saved queries "
        "and sampling rule. Idempotent: prints created / updated / unchanged for every resource.",
    )
    parser.add_argument("--stage", required=True, help="the Chalice stage in .chalice/config.json (dev, prod)")
    parser.add_argument("--dry-run", action="store_true", help="print what would change and change nothing")
    parser.add_argument("--alarm-email", type=_email, metavar="ADDR", help="subscribe this address to the alarm topic")
    parser.add_argument(
        "--rest-api-id", help="the REST API to work on (default: the one chalice deploy recorded, else the one by name)"
    )
    parser.add_argument("--region", help="AWS region (default: the environment's)")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR, help="the Chalice project (default: this one)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run post-deploy for a stage; 0 when every resource is as it should be (or would be, in a dry run)."""
    args = parse_args(argv)
    try:
        config = read_stage_config(args.stage, args.project_dir / ".chalice" / "config.json")
        clients = AwsClients.create(args.region)
        deployment = deployment_of(config, clients.region)
        known_id = args.rest_api_id or deployed_rest_api_id(args.project_dir, args.stage)
        api_id = find_rest_api(clients.apigateway, deployment.api_name, known_id)
        report = Report(dry_run=args.dry_run)
        mode = "dry run, nothing will be changed" if args.dry_run else "applying"
        where = f"REST API {api_id}, stage {deployment.api_stage}, {clients.region}"
        print(f"post-deploy of stage {args.stage}: {where} ({mode})")
        post_deploy(clients, report, deployment, api_id, args.alarm_email)
    except (PostDeployError, StageConfigError, ClientError, BotoCoreError) as error:
        print(f"post-deploy failed: {error}", file=sys.stderr)
        return 1
    print(report.summary())
    if report.failures:
        failed = f"{report.failures} resource(s) could not be set up; see the lines marked failed"
        print(f"post-deploy failed: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
