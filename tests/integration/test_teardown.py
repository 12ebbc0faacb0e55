"""Teardown against moto: a stage bootstrapped, deployed, post-deployed and onboarded, then removed, and again."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from chalicelib.tiers import TIERS
from scripts import provision
from scripts.change_log import is_mutating
from scripts.deploy import bootstrap, post_deploy, teardown
from scripts.monitoring import alarm_definitions, alarm_topic_name, dashboard_name, insight_rules
from scripts.stage_config import read_stage_config
from scripts.tenants import cli as tenants
from tests.support.project import PROJECT_DIR, keep_tenant_secrets

REGION = "us-east-1"
Capture = pytest.CaptureFixture[str]


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


def deployment(stage: str) -> Any:
    return post_deploy.deployment_of(read_stage_config(stage), REGION)


def _deploy_like_chalice(name: str) -> str:
    """A REST API with one route and the stage "api", as `chalice deploy` leaves it; returns its id."""
    apigateway = client("apigateway")
    api_id = apigateway.create_rest_api(name=name)["id"]
    root = apigateway.get_resources(restApiId=api_id)["items"][0]["id"]
    apigateway.put_method(restApiId=api_id, resourceId=root, httpMethod="GET", authorizationType="NONE")
    apigateway.put_integration(restApiId=api_id, resourceId=root, httpMethod="GET", type="MOCK")
    apigateway.create_deployment(restApiId=api_id, stageName="api")
    return api_id


@pytest.fixture
def project(tmp_path: Path, aws: None) -> Path:
    """A copy of the project's .chalice/ settings, which bootstrap writes into."""
    chalice_dir = tmp_path / ".chalice"
    chalice_dir.mkdir()
    for source in (PROJECT_DIR / ".chalice").glob("*.json"):
        shutil.copy(source, chalice_dir / source.name)
    # With the optional stored copies of tenants' secrets, so that their removal is seen too.
    keep_tenant_secrets(tmp_path, "dev", "prod")
    return tmp_path


def set_up(project: Path, capsys: Capture, stage: str = "dev") -> str:
    """Bootstrap, deploy, post-deploy and onboard one tenant, as the README's path A does; the API's id."""
    assert bootstrap.main(["--stage", stage, "--region", REGION, "--project-dir", str(project)]) == 0
    api_id = _deploy_like_chalice(deployment(stage).api_name)
    create = ["--stage", stage, "--project-dir", str(project), "create", "acme", "--tier", "standard"]
    assert tenants.main(create) == 0
    report = post_deploy.Report(write=lambda line: None)
    clients = post_deploy.AwsClients.create(REGION)
    post_deploy.post_deploy(clients, report, deployment(stage), api_id, "ops@example.com")
    assert report.failures == 0
    capsys.readouterr()
    return api_id


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The AWS operations teardown's clients complete."""
    recorded: list[str] = []
    make = teardown.Clients.create.__func__

    def recording(cls: type, region: str) -> teardown.Clients:
        clients = make(cls, region)
        for each in vars(clients).values():
            each.meta.events.register("after-call", lambda model, **_: recorded.append(model.name))
        return clients

    monkeypatch.setattr(teardown.Clients, "create", classmethod(recording))
    return recorded


def run(project: Path, capsys: Capture, *argv: str, stage: str = "dev") -> tuple[int, str, str]:
    code = teardown.main(["--stage", stage, "--project-dir", str(project), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def statuses(out: str) -> dict[str, str]:
    """Each resource line's status, by what it names (without the detail in parentheses)."""
    found = {}
    for line in out.splitlines():
        status, _, rest = line.removeprefix("[teardown] ").partition(": ")
        if rest:
            found[rest.split(" (")[0]] = status
    return found


def remaining(prefix: str) -> dict[str, list[str]]:
    """What of the stage is still in the account (secrets scheduled for deletion count as gone)."""
    secrets = client("secretsmanager").list_secrets()["SecretList"]
    return {
        "plans": [p["name"] for p in client("apigateway").get_usage_plans()["items"] if p["name"].startswith(prefix)],
        "keys": [k["name"] for k in client("apigateway").get_api_keys()["items"] if k["name"].startswith(prefix)],
        "alarms": [a["AlarmName"] for a in client("cloudwatch").describe_alarms()["MetricAlarms"]],
        "dashboards": [d["DashboardName"] for d in client("cloudwatch").list_dashboards()["DashboardEntries"]],
        "insight rules": [r["Name"] for r in client("cloudwatch").describe_insight_rules()["InsightRules"]],
        "topics": [t["TopicArn"] for t in client("sns").list_topics()["Topics"]],
        "log groups": [g["logGroupName"] for g in client("logs").describe_log_groups()["logGroups"]],
        "secrets": [s["Name"] for s in secrets if s["Name"].startswith(prefix) and not s.get("DeletedDate")],
        "pools": [p["Name"] for p in client("cognito-idp").list_user_pools(MaxResults=60)["UserPools"]],
        "tables": client("dynamodb").list_tables()["TableNames"],
    }


NOTHING: dict[str, list[str]] = {
    "plans": [],
    "keys": [],
    "alarms": [],
    "dashboards": [],
    "insight rules": [],
    "topics": [],
    "log groups": [],
    "secrets": [],
    "pools": [],
    "tables": [],
}


def test_everything_the_stage_had_is_removed_and_a_rerun_finds_it_absent(project: Path, calls, capsys: Capture):
    api_id = set_up(project, capsys)
    assert remaining("tenant-api-dev") != NOTHING

    code, out, err = run(project, capsys)

    assert code == 0, out + err
    assert remaining("tenant-api-dev") == NOTHING
    lines = statuses(out)
    for tier in TIERS.values():
        # API Gateway refuses to delete a plan bound to a stage: it is unbound first.
        assert lines[f"usage plan tenant-api-dev-{tier.name}"] == "deleted"
        assert f"usage plan tenant-api-dev-{tier.name} (unbound from {api_id}:api first)" in out
    assert lines["API key tenant-api-dev-acme"] == "deleted"
    for alarm in alarm_definitions(deployment("dev"), ""):
        assert lines[f"alarm {alarm['AlarmName']}"] == "deleted"
    assert lines[f"dashboard {dashboard_name(deployment('dev'))}"] == "deleted"
    for rule in insight_rules(deployment("dev")):
        assert lines[f"Contributor Insights rule {rule['RuleName']}"] == "deleted"
    assert lines[f"SNS topic {alarm_topic_name(deployment('dev'))}"] == "deleted"
    assert lines["log group /aws/lambda/tenant-api-dev"] == "deleted"
    assert lines["secret tenant-api-dev/tenants/acme"] == "scheduled for deletion"
    assert lines["secret tenant-api-dev/pagination"] == "scheduled for deletion"
    assert lines["user pool domain tenant-api-dev-123456789012"] == "deleted"
    assert lines["user pool tenant-api-dev"] == "deleted"
    assert lines["table tenant-api-dev"] == "deleted"
    assert lines["role tenant-api-dev-tenant-access"] == "deleted"
    assert [role["RoleName"] for role in client("iam").list_roles()["Roles"]] == []
    # moto has no X-Ray sampling rules and no saved queries; like post-deploy, teardown says so.
    assert lines["X-Ray sampling rule tenant-api-dev"] == teardown.UNSUPPORTED
    secret = client("secretsmanager").describe_secret(SecretId="tenant-api-dev/pagination")
    assert secret["DeletedDate"], "recoverable, so a new bootstrap restores the same secret"

    calls.clear()
    code, out, _ = run(project, capsys)
    assert code == 0
    assert [name for name in calls if is_mutating(name)] == []
    assert set(statuses(out).values()) <= {"absent", teardown.UNSUPPORTED}, out


def test_a_role_with_a_managed_policy_attached_by_hand_is_still_deleted(project: Path, calls, capsys: Capture):
    set_up(project, capsys)
    iam = client("iam")
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}],
    }
    policy = iam.create_policy(PolicyName="hand-made", PolicyDocument=json.dumps(document))
    iam.attach_role_policy(RoleName="tenant-api-dev-tenant-access", PolicyArn=policy["Policy"]["Arn"])

    code, out, err = run(project, capsys)

    assert code == 0, out + err
    assert statuses(out)["role tenant-api-dev-tenant-access"] == "deleted"
    assert iam.list_roles()["Roles"] == []
    # Detached, not deleted: a managed policy may serve other roles.
    assert iam.get_policy(PolicyArn=policy["Policy"]["Arn"])["Policy"]["AttachmentCount"] == 0


def test_a_dry_run_says_what_it_would_remove_and_removes_nothing(project: Path, calls, capsys: Capture):
    set_up(project, capsys)
    before = remaining("tenant-api-dev")

    code, out, _ = run(project, capsys, "--dry-run")

    assert code == 0, out
    assert [name for name in calls if is_mutating(name)] == []
    assert remaining("tenant-api-dev") == before
    assert "[teardown] would be deleted: table tenant-api-dev" in out
    assert "[teardown] would be deleted: Contributor Insights rule tenant-api-dev-errors-by-tenant" in out
    assert "[teardown] would be scheduled for deletion: secret tenant-api-dev/pagination" in out
    assert "dry run, nothing was changed" in out


def test_force_deletes_the_secrets_without_recovery(project: Path, calls, capsys: Capture):
    set_up(project, capsys)
    code, out, _ = run(project, capsys, "--force")
    assert code == 0, out
    for name in ("tenant-api-dev/pagination", "tenant-api-dev/tenants/acme"):
        with pytest.raises(ClientError, match="ResourceNotFoundException"):
            client("secretsmanager").describe_secret(SecretId=name)


def test_another_stages_resources_are_left_alone(project: Path, calls, capsys: Capture):
    set_up(project, capsys)
    prod_key = client("apigateway").create_api_key(name="tenant-api-prod-acme", enabled=True)["id"]
    prod_plans = provision.ensure_usage_plans(client("apigateway"), "tenant-api-prod")
    prod_rules = insight_rules(deployment("prod"))
    for rule in prod_rules:
        client("cloudwatch").put_insight_rule(**rule)

    assert run(project, capsys)[0] == 0

    assert client("apigateway").get_api_key(apiKey=prod_key)["name"] == "tenant-api-prod-acme"
    assert {plan["id"] for plan in client("apigateway").get_usage_plans()["items"]} == set(prod_plans.values())
    assert remaining("tenant-api-dev")["insight rules"] == [rule["RuleName"] for rule in prod_rules]


def test_prod_keeps_its_pool_and_table_without_consent_and_while_they_are_protected(project: Path, calls, capsys):
    set_up(project, capsys, stage="prod")
    pool_id = client("cognito-idp").list_user_pools(MaxResults=60)["UserPools"][0]["Id"]

    code, out, err = run(project, capsys, stage="prod")
    assert code == 1
    assert statuses(out)["user pool tenant-api-prod and its domain"] == "kept"
    assert statuses(out)["table tenant-api-prod"] == "kept"
    assert "pass --yes-delete-prod" in out
    assert "2 resource(s) remain" in err
    assert remaining("tenant-api-prod")["plans"] == [], "everything else is gone"

    # Consent alone does not lift deletion protection; the output says how to.
    code, out, _ = run(project, capsys, "--yes-delete-prod", stage="prod")
    assert code == 1
    assert "--no-deletion-protection-enabled" in out and "--deletion-protection INACTIVE" in out
    assert remaining("tenant-api-prod")["tables"] == ["tenant-api-prod"]

    client("dynamodb").update_table(TableName="tenant-api-prod", DeletionProtectionEnabled=False)
    client("cognito-idp").update_user_pool(UserPoolId=pool_id, DeletionProtection="INACTIVE")
    code, out, err = run(project, capsys, "--yes-delete-prod", stage="prod")
    assert code == 0, out + err
    assert remaining("tenant-api-prod") == NOTHING


def test_a_resource_that_cannot_be_deleted_fails_the_run_but_not_the_others(
    project: Path, calls, capsys: Capture, monkeypatch: pytest.MonkeyPatch
):
    set_up(project, capsys)
    make = teardown.Clients.create.__func__

    def refusing(cls: type, region: str) -> teardown.Clients:
        clients = make(cls, region)

        def denied(**_: Any) -> None:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "DeleteTable")

        monkeypatch.setattr(clients.dynamodb, "delete_table", denied)
        return clients

    monkeypatch.setattr(teardown.Clients, "create", classmethod(refusing))
    code, out, err = run(project, capsys)
    assert code == 1
    assert statuses(out)["table tenant-api-dev"] == "failed"
    assert "not allowed" in out
    assert "1 resource(s) remain" in err
    assert {name: items for name, items in remaining("tenant-api-dev").items() if items} == {
        "tables": ["tenant-api-dev"]
    }


def test_a_rule_delete_insight_rules_could_not_delete_fails_the_run(
    project: Path, calls, capsys: Capture, monkeypatch: pytest.MonkeyPatch
):
    set_up(project, capsys)
    make = teardown.Clients.create.__func__
    kept = "tenant-api-dev-time-by-tenant"

    def refusing(cls: type, region: str) -> teardown.Clients:
        clients = make(cls, region)
        delete = clients.cloudwatch.delete_insight_rules

        def partly(RuleNames: list[str]) -> dict[str, Any]:
            # AWS answers 200 and lists the rules it could not delete.
            if RuleNames == [kept]:
                failure = {"FailureResource": kept, "ExceptionType": "AccessDenied", "FailureDescription": "no"}
                return {"Failures": [failure]}
            return delete(RuleNames=RuleNames)

        monkeypatch.setattr(clients.cloudwatch, "delete_insight_rules", partly)
        return clients

    monkeypatch.setattr(teardown.Clients, "create", classmethod(refusing))
    code, out, err = run(project, capsys)
    assert code == 1
    assert statuses(out)[f"Contributor Insights rule {kept}"] == "failed"
    assert statuses(out)["Contributor Insights rule tenant-api-dev-requests-by-tenant"] == "deleted"
    assert "(AccessDenied) when calling the DeleteInsightRules operation: no" in out
    assert "1 resource(s) remain" in err
    assert {name: items for name, items in remaining("tenant-api-dev").items() if items} == {"insight rules": [kept]}


def test_a_stage_that_is_not_configured_is_refused(project: Path, capsys: Capture):
    code, _, err = run(project, capsys, stage="qa")
    assert code == 1
    assert "has no 'qa' stage" in err


def test_help_names_the_order(capsys: Capture):
    with pytest.raises(SystemExit):
        teardown.main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "chalice delete --stage STAGE, then this" in out
    assert "--yes-delete-prod" in out and "--dry-run" in out
