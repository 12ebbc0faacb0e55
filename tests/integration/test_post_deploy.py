"""Post-deploy against moto: what `chalice deploy` leaves, set up once, then left alone by every rerun."""

from __future__ import annotations

import functools
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest
from botocore.exceptions import ClientError

from chalicelib.store.registry import ACTIVE, TenantRecord, TenantRegistry
from chalicelib.store.schema import table_definition
from chalicelib.tiers import TIERS
from chalicelib.web.gateway import gateway_responses
from scripts import aws_calls
from scripts.deploy import post_deploy
from scripts.deploy.post_deploy import UNSUPPORTED, AwsClients, Report
from scripts.monitoring import alarm_definitions, contributor_rules, dashboard_json, dashboard_name, insight_rules
from scripts.provision import usage_plan_name
from scripts.stage_config import CONFIG_FILE, read_stage_config
from tests.support.settings import Environment

REGION = "us-east-1"
STAGE = "dev"
DEPLOYMENT = post_deploy.deployment_of(read_stage_config(STAGE), REGION)
PREFIX = DEPLOYMENT.prefix
ALARM_EMAIL = "oncall@example.com"
TENANT_TIERS = {"acme": "basic", "globex": "standard", "initech": "premium", "umbrella": "basic"}
MUTATING = ("Create", "Update", "Delete", "Put", "Subscribe", "TransactWrite")
Capture = pytest.CaptureFixture[str]


@functools.lru_cache(maxsize=None)
def aws_clients() -> AwsClients:
    """One set of clients for the module (making them costs ~0.3 s); moto's state is per test."""
    return AwsClients.create(REGION)


@dataclass
class Stage:
    """A stage as `chalice deploy` leaves it, with the tenants the registry knows."""

    clients: AwsClients
    api_id: str
    key_ids: dict[str, str]
    calls: list[str] = field(default_factory=list)

    def run(self, dry_run: bool = False, alarm_email: str | None = ALARM_EMAIL) -> tuple[Report, list[str]]:
        """Run post-deploy once; the report and the lines it printed."""
        lines: list[str] = []
        report = Report(dry_run=dry_run, write=lines.append)
        self.calls.clear()
        post_deploy.post_deploy(self.clients, report, DEPLOYMENT, self.api_id, alarm_email)
        return report, lines

    def mutations(self) -> list[str]:
        """The operations of the last run that create, change or delete something."""
        return [name for name in self.calls if name.startswith(MUTATING)]

    @property
    def apigateway(self) -> Any:
        return self.clients.apigateway

    def plans(self) -> dict[str, dict[str, Any]]:
        """The usage plans by name."""
        return {plan["name"]: plan for plan in self.apigateway.get_usage_plans()["items"]}

    def plans_holding(self, key_id: str) -> list[str]:
        """The names of the usage plans an API key is in."""
        return [
            name
            for name, plan in self.plans().items()
            if key_id in {key["id"] for key in self.apigateway.get_usage_plan_keys(usagePlanId=plan["id"])["items"]}
        ]

    def stage(self) -> dict[str, Any]:
        return self.apigateway.get_stage(restApiId=self.api_id, stageName=DEPLOYMENT.api_stage)

    def topic_arn(self) -> str:
        topics = self.clients.sns.list_topics()["Topics"]
        return next(topic["TopicArn"] for topic in topics if topic["TopicArn"].endswith(f":{PREFIX}-alarms"))

    def snapshot(self) -> dict[str, Any]:
        """Everything post-deploy writes, with the timestamps that change on every write."""
        apigateway, clients = self.apigateway, self.clients
        plans = self.plans()
        return {
            "api": _without_metadata(apigateway.get_rest_api(restApiId=self.api_id)),
            "stage": _without_metadata(self.stage()),
            "deployments": sorted(d["id"] for d in apigateway.get_deployments(restApiId=self.api_id)["items"]),
            "gateway_responses": apigateway.get_gateway_responses(restApiId=self.api_id)["items"],
            "plans": plans,
            "plan_keys": {
                name: apigateway.get_usage_plan_keys(usagePlanId=plan["id"])["items"] for name, plan in plans.items()
            },
            "log_groups": clients.logs.describe_log_groups()["logGroups"],
            "topics": clients.sns.list_topics()["Topics"],
            "subscriptions": clients.sns.list_subscriptions()["Subscriptions"],
            "dashboards": clients.cloudwatch.list_dashboards()["DashboardEntries"],
            "alarms": clients.cloudwatch.describe_alarms()["MetricAlarms"],
            "insight_rules": clients.cloudwatch.describe_insight_rules()["InsightRules"],
        }

    def insight_rules(self) -> dict[str, dict[str, Any]]:
        """The Contributor Insights rules by name."""
        return {rule["Name"]: rule for rule in self.clients.cloudwatch.describe_insight_rules()["InsightRules"]}


def _without_metadata(response: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in response.items() if name != "ResponseMetadata"}


def _create_chalice_like_api(apigateway: Any) -> str:
    """A REST API named after the app with one route and a stage "api", as chalice deploy leaves it."""
    api_id = apigateway.create_rest_api(name=DEPLOYMENT.api_name, endpointConfiguration={"types": ["EDGE"]})["id"]
    root = apigateway.get_resources(restApiId=api_id)["items"][0]["id"]
    health = apigateway.create_resource(restApiId=api_id, parentId=root, pathPart="health")["id"]
    apigateway.put_method(restApiId=api_id, resourceId=health, httpMethod="GET", authorizationType="NONE")
    apigateway.put_integration(restApiId=api_id, resourceId=health, httpMethod="GET", type="MOCK")
    apigateway.create_deployment(restApiId=api_id, stageName=DEPLOYMENT.api_stage)
    return api_id


def _onboard(apigateway: Any, registry: TenantRegistry, tenant_id: str, tier: str) -> str:
    """A tenant's API key and registry record, as the tenants script leaves them; returns the key id."""
    key = apigateway.create_api_key(name=f"{PREFIX}-{tenant_id}", enabled=True)
    registry.put(
        TenantRecord(
            tenant_id=tenant_id,
            tier=tier,
            status=ACTIVE,
            client_id=f"{tenant_id}client",
            api_key_id=key["id"],
            api_key_value=key["value"],
        )
    )
    return key["id"]


@pytest.fixture
def deployed(aws: None, env: Environment) -> Iterator[Stage]:
    """The dev stage after chalice deploy: API, stage, the API function's log group, table and tenants."""
    env.set(TABLE_NAME=DEPLOYMENT.table_name)
    clients = aws_clients()
    stage = Stage(clients, "", {})

    def record(model: Any, **_: Any) -> None:
        stage.calls.append(model.name)

    for client in vars(clients).values():
        client.meta.events.register("before-call", record, unique_id="test-post-deploy-recorder")
    try:
        stage.api_id = _create_chalice_like_api(clients.apigateway)
        # Lambda made the API function's group on its first call, with no retention; the authorizer's is missing.
        clients.logs.create_log_group(logGroupName=DEPLOYMENT.log_group(DEPLOYMENT.api_function))
        clients.dynamodb.create_table(**table_definition(DEPLOYMENT.table_name))
        registry = TenantRegistry()
        stage.key_ids = {
            tenant: _onboard(clients.apigateway, registry, tenant, tier) for tenant, tier in TENANT_TIERS.items()
        }
        yield stage
    finally:
        for client in vars(clients).values():
            client.meta.events.unregister("before-call", unique_id="test-post-deploy-recorder")


def _statuses(lines: list[str]) -> dict[str, str]:
    """The status of each resource line, by what it names (the line without status and detail)."""
    result = {}
    for line in lines:
        status, _, rest = line.partition(": ")
        result[rest.split(" (")[0]] = status
    return result


def test_first_run_sets_api_key_source_gateway_responses_and_redeploys(deployed: Stage) -> None:
    deployments_before = len(deployed.apigateway.get_deployments(restApiId=deployed.api_id)["items"])
    report, lines = deployed.run()

    assert report.failures == 0, lines
    assert deployed.apigateway.get_rest_api(restApiId=deployed.api_id)["apiKeySource"] == "AUTHORIZER"
    for response_type, wanted in gateway_responses().items():
        current = deployed.apigateway.get_gateway_response(restApiId=deployed.api_id, responseType=response_type)
        assert current.get("statusCode") == wanted.get("statusCode"), response_type
        assert current["responseTemplates"] == wanted["responseTemplates"], response_type
        assert current["responseParameters"] == wanted["responseParameters"], response_type
    stage = deployed.stage()
    assert stage["tracingEnabled"] is True
    assert len(deployed.apigateway.get_deployments(restApiId=deployed.api_id)["items"]) == deployments_before + 1
    deployment = deployed.apigateway.get_deployment(restApiId=deployed.api_id, deploymentId=stage["deploymentId"])
    assert deployment["description"] == post_deploy.deployment_description()
    assert _statuses(lines)["API key source of REST API " + deployed.api_id] == "updated"
    assert _statuses(lines)["deployment of stage api"] == "created"


def test_first_run_binds_a_plan_per_tier_and_puts_each_tenants_key_in_its_tiers_plan(deployed: Stage) -> None:
    deployed.run()

    plans = deployed.plans()
    for tier in TIERS.values():
        plan = plans[usage_plan_name(PREFIX, tier)]
        assert float(plan["throttle"]["rateLimit"]) == tier.rate_per_second
        assert int(plan["throttle"]["burstLimit"]) == tier.burst
        assert int(plan["quota"]["limit"]) == tier.monthly_quota and plan["quota"]["period"] == "MONTH"
        assert {"apiId": deployed.api_id, "stage": "api"} in [
            {"apiId": s["apiId"], "stage": s["stage"]} for s in plan["apiStages"]
        ]
    assert len(plans) == len(TIERS)
    for tenant, tier in TENANT_TIERS.items():
        assert deployed.plans_holding(deployed.key_ids[tenant]) == [usage_plan_name(PREFIX, TIERS[tier])], tenant


def test_first_run_sets_up_logs_dashboard_alarms_and_topic(deployed: Stage) -> None:
    report, lines = deployed.run()

    groups = {group["logGroupName"]: group for group in deployed.clients.logs.describe_log_groups()["logGroups"]}
    for function_name in DEPLOYMENT.function_names:
        assert groups[DEPLOYMENT.log_group(function_name)]["retentionInDays"] == 7
    statuses = _statuses(lines)
    assert statuses[f"log group {DEPLOYMENT.log_group(DEPLOYMENT.api_function)}"] == "updated"
    assert statuses[f"log group {DEPLOYMENT.log_group(DEPLOYMENT.function_names[1])}"] == "created"

    topic_arn = deployed.topic_arn()
    subscriptions = deployed.clients.sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [("email", ALARM_EMAIL)]

    body = deployed.clients.cloudwatch.get_dashboard(DashboardName=dashboard_name(DEPLOYMENT))["DashboardBody"]
    assert body == dashboard_json(DEPLOYMENT)

    definitions = {d["AlarmName"]: d for d in alarm_definitions(DEPLOYMENT, topic_arn)}
    alarms = {a["AlarmName"]: a for a in deployed.clients.cloudwatch.describe_alarms()["MetricAlarms"]}
    assert set(alarms) == set(definitions)
    for name, definition in definitions.items():
        assert alarms[name]["Threshold"] == definition["Threshold"], name
        assert alarms[name]["ComparisonOperator"] == definition["ComparisonOperator"], name
        assert alarms[name]["AlarmActions"] == [topic_arn] and alarms[name]["OKActions"] == [topic_arn], name
        assert post_deploy.matches(alarms[name], definition), name
    assert report.failures == 0


def test_first_run_puts_the_contributor_insights_rules_enabled_over_the_api_functions_log_group(
    deployed: Stage,
) -> None:
    report, lines = deployed.run()

    rules = deployed.insight_rules()
    wanted = contributor_rules(DEPLOYMENT)
    assert (
        sorted(rules)
        == sorted(wanted)
        == sorted(f"{PREFIX}-{name}-by-tenant" for name in ("requests", "errors", "time"))
    )
    for name, definition in wanted.items():
        assert rules[name]["State"] == "ENABLED", name
        assert json.loads(rules[name]["Definition"]) == definition, name
        assert definition["LogGroupNames"] == [DEPLOYMENT.log_group(DEPLOYMENT.api_function)]
        assert _statuses(lines)[f"Contributor Insights rule {name}"] == "created"
    # What was sent is monitoring.insight_rules' compact string, as the Terraform package renders it.
    assert {rule["RuleName"]: rule["RuleDefinition"] for rule in insight_rules(DEPLOYMENT)} == {
        name: rule["Definition"] for name, rule in rules.items()
    }
    assert report.failures == 0


def test_a_hand_edited_or_disabled_rule_is_put_back_and_the_others_left_alone(deployed: Stage) -> None:
    deployed.run()
    requests, errors, time = (f"{PREFIX}-{name}-by-tenant" for name in ("requests", "errors", "time"))
    cloudwatch = deployed.clients.cloudwatch
    edited = contributor_rules(DEPLOYMENT)[errors]
    edited["Contribution"]["Filters"][-1]["GreaterThan"] = 499
    cloudwatch.put_insight_rule(RuleName=errors, RuleState="ENABLED", RuleDefinition=json.dumps(edited))
    cloudwatch.disable_insight_rules(RuleNames=[time])
    # The same definition as data, spaced and ordered otherwise, is not a difference.
    cloudwatch.put_insight_rule(
        RuleName=requests,
        RuleState="ENABLED",
        RuleDefinition=json.dumps(contributor_rules(DEPLOYMENT)[requests], indent=1),
    )

    _, lines = deployed.run()

    statuses = _statuses(lines)
    assert statuses[f"Contributor Insights rule {errors}"] == "updated"
    assert statuses[f"Contributor Insights rule {time}"] == "updated"
    assert statuses[f"Contributor Insights rule {requests}"] == "unchanged"
    assert deployed.mutations() == ["PutInsightRule", "PutInsightRule"]
    rules = deployed.insight_rules()
    assert json.loads(rules[errors]["Definition"]) == contributor_rules(DEPLOYMENT)[errors]
    assert rules[time]["State"] == "ENABLED"
    assert deployed.run()[0].changes == 0


def test_rules_on_later_pages_of_describe_insight_rules_are_found(
    deployed: Stage, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployed.run()
    cloudwatch = deployed.clients.cloudwatch
    describe = cloudwatch.describe_insight_rules
    tokens: list[str | None] = []

    def one_per_page(NextToken: str = "0", **kwargs: Any) -> dict[str, Any]:
        # moto answers every rule on one page; AWS pages them (up to 500 a page).
        tokens.append(NextToken)
        rules, index = describe(**kwargs)["InsightRules"], int(NextToken)
        more = {"NextToken": str(index + 1)} if index + 1 < len(rules) else {}
        return {"InsightRules": rules[index : index + 1], **more}

    monkeypatch.setattr(cloudwatch, "describe_insight_rules", one_per_page)

    report, lines = deployed.run()

    assert tokens == ["0", "1", "2"]
    assert report.changes == 0, lines


def test_paginate_by_token_follows_the_token_and_keeps_the_arguments() -> None:
    pages = {None: {"Items": [1, 2], "Next": "a"}, "a": {"Items": [], "Next": "b"}, "b": {"Items": [3]}}
    calls: list[dict[str, Any]] = []

    def listing(**kwargs: Any) -> dict[str, Any]:
        calls.append(kwargs)
        return pages[kwargs.get("Next")]

    assert list(aws_calls.paginate_by_token(listing, "Items", "Next", Prefix="p")) == [1, 2, 3]
    assert calls == [{"Prefix": "p"}, {"Prefix": "p", "Next": "a"}, {"Prefix": "p", "Next": "b"}]


def test_saved_queries_and_sampling_rule_are_reported_as_unsupported_by_moto(deployed: Stage) -> None:
    report, lines = deployed.run()

    unsupported = {line.split(": ", 1)[1].split(" (")[0]: line for line in lines if line.startswith(UNSUPPORTED)}
    assert sorted(unsupported) == sorted(
        [
            f"saved query {PREFIX}/{name}"
            for name in ("errors-for-a-tenant", "latency-for-a-tenant", "slowest-requests", "security-events")
        ]
        + [f"X-Ray sampling rule {PREFIX}"]
    ), lines
    assert report.counts[UNSUPPORTED] == 5
    # moto implements neither: in-process it raises NotImplementedError for one and answers 404 for the other.
    assert "has not been implemented" in unsupported[f"saved query {PREFIX}/slowest-requests"]
    assert "GetSamplingRules answered HTTP 404" in unsupported[f"X-Ray sampling rule {PREFIX}"]


def test_second_run_reports_and_makes_no_change(deployed: Stage) -> None:
    deployed.run()
    before = deployed.snapshot()

    report, lines = deployed.run()

    assert deployed.mutations() == []
    assert deployed.snapshot() == before
    assert report.changes == 0 and report.failures == 0
    assert report.summary().startswith("no changes")
    assert all(line.startswith(("unchanged: ", UNSUPPORTED)) for line in lines), lines


def test_dry_run_changes_nothing_and_says_what_would_change(deployed: Stage) -> None:
    before = deployed.snapshot()

    report, lines = deployed.run(dry_run=True)

    assert deployed.mutations() == []
    assert deployed.snapshot() == before
    statuses = _statuses(lines)
    assert statuses[f"usage plan {PREFIX}-basic"] == "would be created"
    assert statuses["API key of tenant acme"] == "would be created"
    assert statuses[f"log group {DEPLOYMENT.log_group(DEPLOYMENT.api_function)}"] == "would be updated"
    assert statuses[f"e-mail subscription {ALARM_EMAIL}"] == "would be created"
    assert statuses[f"Contributor Insights rule {PREFIX}-requests-by-tenant"] == "would be created"
    assert "dry run" in report.summary() and "would be created" in report.summary()


def test_dry_run_after_a_run_finds_nothing_to_change(deployed: Stage) -> None:
    deployed.run()

    report, _ = deployed.run(dry_run=True)

    assert report.changes == 0 and deployed.mutations() == []


def test_after_chalice_deploys_again_the_key_source_is_restored_and_the_stage_redeployed(deployed: Stage) -> None:
    deployed.run()
    # What a new `chalice deploy` does: re-import the API (resetting the key source) and deploy it.
    patch = [{"op": "replace", "path": "/apiKeySource", "value": "HEADER"}]
    deployed.apigateway.update_rest_api(restApiId=deployed.api_id, patchOperations=patch)
    deployed.apigateway.create_deployment(restApiId=deployed.api_id, stageName="api")

    report, lines = deployed.run()

    changed = {what: status for what, status in _statuses(lines).items() if status not in ("unchanged", UNSUPPORTED)}
    assert changed == {
        f"API key source of REST API {deployed.api_id}": "updated",
        "deployment of stage api": "created",
        # moto resets a stage's settings when it is redeployed; API Gateway keeps them.
        "X-Ray tracing of stage api": "updated",
    }
    assert deployed.apigateway.get_rest_api(restApiId=deployed.api_id)["apiKeySource"] == "AUTHORIZER"
    assert deployed.run()[0].changes == 0


def test_a_stage_redeployed_by_someone_else_is_redeployed_once(deployed: Stage) -> None:
    deployed.run()
    deployed.apigateway.create_deployment(restApiId=deployed.api_id, stageName="api", description="terraform")
    tracing = [{"op": "replace", "path": "/tracingEnabled", "value": "true"}]
    deployed.apigateway.update_stage(restApiId=deployed.api_id, stageName="api", patchOperations=tracing)

    _, lines = deployed.run()

    assert _statuses(lines)["deployment of stage api"] == "created"
    assert deployed.run()[0].changes == 0


def test_drift_is_put_back(deployed: Stage) -> None:
    deployed.run()
    clients, basic = deployed.clients, deployed.plans()[f"{PREFIX}-basic"]
    deployed.apigateway.update_usage_plan(
        usagePlanId=basic["id"], patchOperations=[{"op": "replace", "path": "/throttle/rateLimit", "value": "1"}]
    )
    clients.logs.put_retention_policy(logGroupName=DEPLOYMENT.log_group(DEPLOYMENT.api_function), retentionInDays=30)
    clients.cloudwatch.put_dashboard(DashboardName=dashboard_name(DEPLOYMENT), DashboardBody='{"widgets": []}')
    definitions = alarm_definitions(DEPLOYMENT, deployed.topic_arn())
    latency = next(d for d in definitions if d["AlarmName"].endswith("p99-latency"))
    clients.cloudwatch.put_metric_alarm(**{**latency, "Threshold": 99999})

    _, lines = deployed.run()

    statuses = _statuses(lines)
    assert statuses[f"usage plan {PREFIX}-basic"] == "updated"
    assert statuses[f"log group {DEPLOYMENT.log_group(DEPLOYMENT.api_function)}"] == "updated"
    assert statuses[f"dashboard {dashboard_name(DEPLOYMENT)}"] == "updated"
    assert statuses[f"alarm {latency['AlarmName']}"] == "updated"
    assert float(deployed.plans()[f"{PREFIX}-basic"]["throttle"]["rateLimit"]) == TIERS["basic"].rate_per_second
    alarm = clients.cloudwatch.describe_alarms(AlarmNames=[latency["AlarmName"]])["MetricAlarms"][0]
    assert alarm["Threshold"] == latency["Threshold"]
    assert deployed.run()[0].changes == 0


def test_the_api_answers_an_authorizer_failure_with_503_retry_after_and_nosniff(deployed: Stage) -> None:
    deployed.run()
    for response_type in ("AUTHORIZER_CONFIGURATION_ERROR", "AUTHORIZER_FAILURE"):
        current = deployed.apigateway.get_gateway_response(restApiId=deployed.api_id, responseType=response_type)
        assert current["statusCode"] == "503", response_type
        assert current["responseParameters"] == {
            "gatewayresponse.header.Retry-After": "'1'",
            "gatewayresponse.header.X-Content-Type-Options": "'nosniff'",
        }
        body = json.loads(current["responseTemplates"]["application/json"])
        assert body["error"]["code"] == "service_unavailable"
    for current in deployed.apigateway.get_gateway_responses(restApiId=deployed.api_id)["items"]:
        if current["responseType"] in gateway_responses():
            assert current["responseParameters"]["gatewayresponse.header.X-Content-Type-Options"] == "'nosniff'"


def test_gateway_responses_of_an_earlier_version_are_brought_up_to_date_and_redeployed(deployed: Stage) -> None:
    deployed.run()
    # As an earlier post-deploy left them: authorizer failures on API Gateway's 500, no headers.
    deployed.apigateway.delete_gateway_response(
        restApiId=deployed.api_id, responseType="AUTHORIZER_CONFIGURATION_ERROR"
    )
    unauthorized = gateway_responses()["UNAUTHORIZED"]
    deployed.apigateway.put_gateway_response(
        restApiId=deployed.api_id,
        responseType="UNAUTHORIZED",
        statusCode=unauthorized["statusCode"],
        responseTemplates=unauthorized["responseTemplates"],
    )
    deployments_before = len(deployed.apigateway.get_deployments(restApiId=deployed.api_id)["items"])

    report, lines = deployed.run()

    statuses = _statuses(lines)
    assert statuses["gateway response AUTHORIZER_CONFIGURATION_ERROR"] == "created"
    assert statuses["gateway response UNAUTHORIZED"] == "updated"
    assert report.failures == 0, lines
    current = deployed.apigateway.get_gateway_response(restApiId=deployed.api_id, responseType="UNAUTHORIZED")
    assert current["responseParameters"] == unauthorized["responseParameters"]
    assert len(deployed.apigateway.get_deployments(restApiId=deployed.api_id)["items"]) == deployments_before + 1
    assert deployed.run()[0].changes == 0


def test_plans_are_bound_to_a_new_api_when_the_stage_is_recreated(deployed: Stage) -> None:
    deployed.run()
    # What `chalice delete` then `chalice deploy` leaves: another API of the same name.
    deployed.apigateway.delete_rest_api(restApiId=deployed.api_id)
    deployed.api_id = _create_chalice_like_api(deployed.apigateway)

    _, lines = deployed.run()

    statuses = _statuses(lines)
    for tier in TIERS.values():
        assert statuses[f"usage plan {usage_plan_name(PREFIX, tier)}"] == "updated"
        bound = [(s["apiId"], s["stage"]) for s in deployed.plans()[usage_plan_name(PREFIX, tier)]["apiStages"]]
        assert (deployed.api_id, "api") in bound
    assert statuses["API key of tenant acme"] == "unchanged"
    assert deployed.run()[0].changes == 0


def test_a_tier_change_moves_the_tenants_key_to_the_new_plan(deployed: Stage) -> None:
    deployed.run()
    registry = TenantRegistry()
    registry.put(registry.get("acme").with_changes(tier="premium"))

    _, lines = deployed.run()

    assert _statuses(lines)["API key of tenant acme"] == "updated"
    assert deployed.plans_holding(deployed.key_ids["acme"]) == [f"{PREFIX}-premium"]


def test_a_tenant_without_a_usable_key_is_a_failure_and_the_others_are_still_set_up(deployed: Stage) -> None:
    registry = TenantRegistry()
    registry.put(registry.get("globex").with_changes(api_key_id="", api_key_value=""))
    registry.put(registry.get("initech").with_changes(api_key_id="nosuchkey"))

    report, lines = deployed.run()

    statuses = _statuses(lines)
    assert statuses["API key of tenant globex"] == "failed"
    assert statuses["API key of tenant initech"] == "failed"
    assert statuses["API key of tenant acme"] == "created"
    assert report.failures == 2
    assert statuses[f"dashboard {dashboard_name(DEPLOYMENT)}"] == "created"


def test_endpoint_lacks_only_answers_without_an_aws_error_code() -> None:
    def error(code: str) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": ""}}, "PutQueryDefinition")

    assert aws_calls.endpoint_lacks(error("500")) and aws_calls.endpoint_lacks(error("404"))
    assert aws_calls.endpoint_lacks(NotImplementedError("put_query_definition"))
    assert not aws_calls.endpoint_lacks(error("InternalFailure"))
    assert not aws_calls.endpoint_lacks(error("AccessDeniedException"))


# The command line


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    """A project directory with this project's stage config, where chalice deploy would record its state."""
    (tmp_path / ".chalice").mkdir()
    shutil.copy(CONFIG_FILE, tmp_path / ".chalice" / "config.json")
    return tmp_path


def _record_deployed_api(project_dir: Path, api_id: str) -> None:
    deployed_dir = project_dir / ".chalice" / "deployed"
    deployed_dir.mkdir()
    function_arn = "arn:aws:lambda:us-east-1:123456789012:function:tenant-api-dev"
    resources = [
        {"name": "api_handler", "resource_type": "lambda_function", "lambda_arn": function_arn},
        {"name": "rest_api", "resource_type": "rest_api", "rest_api_id": api_id, "rest_api_url": "https://x/api/"},
    ]
    record = {"resources": resources, "schema_version": "2.0", "backend": "api"}
    (deployed_dir / f"{STAGE}.json").write_text(json.dumps(record))


def test_cli_uses_the_api_chalice_recorded_and_exits_zero(deployed: Stage, project_dir: Path, capsys: Capture) -> None:
    # Another API of the same name (another stage in the account): the recorded id decides.
    _create_chalice_like_api(deployed.apigateway)
    _record_deployed_api(project_dir, deployed.api_id)

    code = post_deploy.main(["--stage", STAGE, "--project-dir", str(project_dir), "--alarm-email", ALARM_EMAIL])

    output = capsys.readouterr().out
    assert code == 0, output
    assert f"REST API {deployed.api_id}" in output.splitlines()[0]
    assert deployed.apigateway.get_rest_api(restApiId=deployed.api_id)["apiKeySource"] == "AUTHORIZER"
    assert post_deploy.main(["--stage", STAGE, "--project-dir", str(project_dir)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("no changes")


def test_cli_finds_the_api_by_name_when_none_is_recorded(deployed: Stage, project_dir: Path, capsys: Capture) -> None:
    assert post_deploy.main(["--stage", STAGE, "--project-dir", str(project_dir), "--dry-run"]) == 0
    output = capsys.readouterr().out
    assert f"REST API {deployed.api_id}" in output and "would be created" in output
    assert deployed.apigateway.get_rest_api(restApiId=deployed.api_id)["apiKeySource"] == "HEADER"


def test_cli_refuses_two_apis_of_the_same_name(deployed: Stage, project_dir: Path, capsys: Capture) -> None:
    _create_chalice_like_api(deployed.apigateway)

    assert post_deploy.main(["--stage", STAGE, "--project-dir", str(project_dir)]) == 1
    assert "pick one with --rest-api-id" in capsys.readouterr().err


def test_cli_fails_clearly_before_anything_is_deployed(aws: None, project_dir: Path, capsys: Capture) -> None:
    assert post_deploy.main(["--stage", STAGE, "--project-dir", str(project_dir)]) == 1
    assert "no REST API named 'tenant-api'" in capsys.readouterr().err


def test_cli_fails_when_the_recorded_api_is_gone(aws: None, project_dir: Path, capsys: Capture) -> None:
    _record_deployed_api(project_dir, "gone123456")

    assert post_deploy.main(["--stage", STAGE, "--project-dir", str(project_dir)]) == 1
    assert "REST API gone123456 does not exist" in capsys.readouterr().err


def test_cli_refuses_an_unreadable_deployment_record(aws: None, project_dir: Path, capsys: Capture) -> None:
    (project_dir / ".chalice" / "deployed").mkdir()
    (project_dir / ".chalice" / "deployed" / f"{STAGE}.json").write_text("{not json")

    assert post_deploy.main(["--stage", STAGE, "--project-dir", str(project_dir)]) == 1
    assert "is not a deployment record of chalice deploy" in capsys.readouterr().err


def test_cli_exits_non_zero_when_a_tenant_cannot_be_set_up(deployed: Stage, project_dir: Path, capsys: Capture) -> None:
    registry = TenantRegistry()
    registry.put(registry.get("acme").with_changes(tier="platinum"))

    assert post_deploy.main(["--stage", STAGE, "--project-dir", str(project_dir)]) == 1
    captured = capsys.readouterr()
    assert "failed: API key of tenant acme (unknown tier 'platinum')" in captured.out
    assert "could not be set up" in captured.err


def test_cli_help_and_argument_errors(capsys: Capture) -> None:
    with pytest.raises(SystemExit) as help_exit:
        post_deploy.main(["--help"])
    assert help_exit.value.code == 0 and "--dry-run" in capsys.readouterr().out
    with pytest.raises(SystemExit) as bad_email:
        post_deploy.main(["--stage", STAGE, "--alarm-email", "not-an-address"])
    assert bad_email.value.code == 2
    with pytest.raises(SystemExit) as no_stage:
        post_deploy.main([])
    assert no_stage.value.code == 2
