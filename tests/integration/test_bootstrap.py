"""Bootstrap against moto: what it creates, what it writes into a copy of .chalice/, and that reruns change nothing."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest

from chalicelib import pagination
from chalicelib.store import schema
from chalicelib.tenancy import SCOPES
from chalicelib.tiers import TIERS
from scripts import provision, tenant_access_role
from scripts.change_log import is_mutating
from scripts.deploy import bootstrap
from scripts.stage_config import read_stage_config
from scripts.stage_resources import AwsClients
from tests.support.project import PROJECT_DIR
from tests.support.settings import Environment

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's account
DOMAIN = f"tenant-api-dev-{ACCOUNT}"
TOKEN_URL = f"https://{DOMAIN}.auth.{REGION}.amazoncognito.com/oauth2/token"
TAGS = {"project": "tenant-api", "stage": "dev"}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's .chalice/ settings that bootstrap may write."""
    chalice_dir = tmp_path / ".chalice"
    chalice_dir.mkdir()
    for source in (PROJECT_DIR / ".chalice").glob("*.json"):
        shutil.copy(source, chalice_dir / source.name)
    return tmp_path


@pytest.fixture
def calls(aws: None, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every AWS operation the scripts call, recorded on the clients they make."""
    recorded: list[str] = []
    make = AwsClients.for_region.__func__

    def recording(cls: type, region: str) -> AwsClients:
        clients = make(cls, region)
        for client in clients.all():
            # after-call: only calls that were sent and answered, not those a dry run stopped.
            client.meta.events.register("after-call", lambda model, **_: recorded.append(model.name))
        return clients

    monkeypatch.setattr(AwsClients, "for_region", classmethod(recording))
    return recorded


def run(project: Path, capsys: pytest.CaptureFixture, *argv: str, stage: str = "dev") -> tuple[int, str, str]:
    code = bootstrap.main(["--stage", stage, "--region", REGION, "--project-dir", str(project), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


def dev_environment(project: Path, stage: str = "dev") -> dict[str, str]:
    return read_stage_config(stage, project / ".chalice" / "config.json").environment


def pool_id() -> str:
    pools = client("cognito-idp").list_user_pools(MaxResults=60)["UserPools"]
    assert [pool["Name"] for pool in pools] == ["tenant-api-dev"]
    return pools[0]["Id"]


def snapshot(project: Path) -> dict[str, Any]:
    """The files bootstrap writes, byte for byte."""
    return {path.name: path.read_bytes() for path in sorted((project / ".chalice").glob("*.json"))}


# --- what the first run creates ---------------------------------------------------------------


def test_the_table_is_on_demand_encrypted_recoverable_with_ttl_and_tags(project: Path, calls: list[str], capsys):
    code, out, _ = run(project, capsys)
    assert code == 0, out
    dynamodb = client("dynamodb")
    table = dynamodb.describe_table(TableName="tenant-api-dev")["Table"]
    assert table["KeySchema"] == schema.table_definition("tenant-api-dev")["KeySchema"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSEDescription"]["Status"] == "ENABLED"
    assert table.get("DeletionProtectionEnabled") is False, "only prod's table is protected"
    backups = dynamodb.describe_continuous_backups(TableName="tenant-api-dev")["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    ttl = dynamodb.describe_time_to_live(TableName="tenant-api-dev")["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": schema.TTL_ATTRIBUTE}
    tags = dynamodb.list_tags_of_resource(ResourceArn=table["TableArn"])["Tags"]
    assert {tag["Key"]: tag["Value"] for tag in tags} == TAGS


def test_the_user_pool_has_the_scopes_a_hosted_domain_and_tags(project: Path, calls: list[str], capsys):
    code, out, _ = run(project, capsys)
    assert code == 0, out
    cognito = client("cognito-idp")
    pool = cognito.describe_user_pool(UserPoolId=pool_id())["UserPool"]
    assert pool["UserPoolTags"] == TAGS
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert pool.get("DeletionProtection", "INACTIVE") == "INACTIVE", "only prod's pool is protected"
    assert pool["Domain"] == DOMAIN
    assert cognito.describe_user_pool_domain(Domain=DOMAIN)["DomainDescription"]["UserPoolId"] == pool["Id"]
    server = cognito.describe_resource_server(UserPoolId=pool["Id"], Identifier="tenant-api")["ResourceServer"]
    assert [scope["ScopeName"] for scope in server["Scopes"]] == list(SCOPES)
    assert f"token URL: {TOKEN_URL}" in out


def test_the_pagination_secret_is_long_random_tagged_and_never_printed(project: Path, calls: list[str], capsys):
    code, out, err = run(project, capsys)
    assert code == 0, out
    secretsmanager = client("secretsmanager")
    value = secretsmanager.get_secret_value(SecretId="tenant-api-dev/pagination")["SecretString"]
    assert len(value) >= 48
    assert value not in out + err
    tags = secretsmanager.describe_secret(SecretId="tenant-api-dev/pagination")["Tags"]
    assert {tag["Key"]: tag["Value"] for tag in tags} == TAGS
    assert "GetSecretValue" not in calls, "a new secret's value is not even read back"


def test_one_tagged_usage_plan_per_tier_is_ready_for_the_post_deploy_script(project: Path, calls: list[str], capsys):
    assert run(project, capsys)[0] == 0
    plans = {plan["name"]: plan for plan in client("apigateway").get_usage_plans()["items"]}
    assert set(plans) == {f"tenant-api-dev-{tier}" for tier in TIERS}
    for tier in TIERS.values():
        plan = plans[f"tenant-api-dev-{tier.name}"]
        assert int(plan["throttle"]["burstLimit"]) == tier.burst
        assert plan["tags"] == TAGS
        assert plan.get("apiStages", []) == []


# --- what it writes ---------------------------------------------------------------------------


def test_the_stage_config_gets_the_table_issuer_secret_and_role_arns_and_nothing_else_changes(
    project: Path, calls, capsys
):
    before = json.loads((project / ".chalice" / "config.json").read_text())
    real_config = (PROJECT_DIR / ".chalice" / "config.json").read_bytes()
    assert run(project, capsys)[0] == 0

    environment = dev_environment(project)
    secret_arn = client("secretsmanager").describe_secret(SecretId="tenant-api-dev/pagination")["ARN"]
    assert environment["TABLE_NAME"] == "tenant-api-dev"
    assert environment["TOKEN_ISSUER"] == f"https://cognito-idp.{REGION}.amazonaws.com/{pool_id()}"
    assert environment["TOKEN_URL"] == f"https://tenant-api-dev-{ACCOUNT}.auth.{REGION}.amazoncognito.com/oauth2/token"
    assert environment["PAGINATION_SECRET_ARN"] == secret_arn
    assert environment["TENANT_ACCESS_ROLE_ARN"] == f"arn:aws:iam::{ACCOUNT}:role/tenant-api-dev-tenant-access"
    after = json.loads((project / ".chalice" / "config.json").read_text())
    for name in ("TOKEN_ISSUER", "TOKEN_URL", "PAGINATION_SECRET_ARN", "TENANT_ACCESS_ROLE_ARN"):
        del after["stages"]["dev"]["environment_variables"][name]
        del before["stages"]["dev"]["environment_variables"][name]
    assert after == before
    assert (PROJECT_DIR / ".chalice" / "config.json").read_bytes() == real_config


def test_the_application_reads_the_pagination_key_bootstrap_stored(project: Path, calls, capsys, env: Environment):
    assert run(project, capsys)[0] == 0
    environment = dev_environment(project)
    env.set(PAGINATION_SECRET=None, PAGINATION_SECRET_ARN=environment["PAGINATION_SECRET_ARN"], AWS_REGION=REGION)
    stored = client("secretsmanager").get_secret_value(SecretId="tenant-api-dev/pagination")["SecretString"]
    assert pagination.pagination_secret() == stored.encode()


def test_the_policy_file_is_narrowed_to_the_region_account_table_and_secret(project: Path, calls, capsys):
    assert run(project, capsys)[0] == 0
    policy = json.loads((project / ".chalice" / "policy-dev.json").read_text())
    resources = {statement["Sid"]: statement["Resource"] for statement in policy["Statement"]}
    secret_arn = client("secretsmanager").describe_secret(SecretId="tenant-api-dev/pagination")["ARN"]
    group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/tenant-api-dev"
    assert resources == {
        "AssumeTenantAccessRole": f"arn:aws:iam::{ACCOUNT}:role/tenant-api-dev-tenant-access",
        "PaginationSecret": secret_arn,
        "FunctionLogs": [group, f"{group}:*"],
        "XRayHasNoResourceLevelPermissions": "*",
    }
    original = json.loads((PROJECT_DIR / ".chalice" / "policy-dev.json").read_text())
    assert [s["Action"] for s in policy["Statement"]] == [s["Action"] for s in original["Statement"]]
    assert (project / ".chalice" / "policy-prod.json").read_bytes() == (
        PROJECT_DIR / ".chalice" / "policy-prod.json"
    ).read_bytes()


# --- reruns, dry runs, prod -------------------------------------------------------------------


def test_a_second_run_changes_nothing_and_says_so(project: Path, calls: list[str], capsys):
    assert run(project, capsys)[0] == 0
    files = snapshot(project)
    secret = client("secretsmanager").get_secret_value(SecretId="tenant-api-dev/pagination")["SecretString"]
    calls.clear()

    code, out, _ = run(project, capsys)

    assert code == 0
    assert [name for name in calls if is_mutating(name)] == []
    assert snapshot(project) == files
    assert client("secretsmanager").get_secret_value(SecretId="tenant-api-dev/pagination")["SecretString"] == secret
    assert "created: " not in out and "updated: " not in out
    assert out.strip().splitlines()[-1] == "[bootstrap] no changes: everything was already in place (12 unchanged)"
    assert f"token URL: {TOKEN_URL}" in out


# The README ("Deploy to AWS"): every script prints one line per resource, created / updated / unchanged.
README_STATUSES = ("created", "updated", "unchanged")
RESOURCE_LINE = re.compile(r"\[bootstrap\] (?P<status>[a-z ]+): (?P<what>.+?)(?: \((?P<detail>.*)\))?")


def resource_lines(out: str) -> dict[str, str]:
    """Each resource bootstrap reported, with its status; fails on a resource reported twice."""
    reported: dict[str, str] = {}
    for line in out.splitlines():
        match = RESOURCE_LINE.fullmatch(line)
        if match and match["status"] in README_STATUSES:
            assert match["what"] not in reported, f"{match['what']} reported twice"
            reported[match["what"]] = match["status"]
    return reported


def test_each_resource_is_one_line_created_then_unchanged_in_the_readmes_words(project: Path, calls, capsys):
    made = [
        "table tenant-api-dev",
        "user pool tenant-api-dev",
        "resource server tenant-api",
        f"hosted domain {DOMAIN}",
        "secret tenant-api-dev/pagination",
        *(f"usage plan {provision.usage_plan_name('tenant-api-dev', tier)}" for tier in TIERS.values()),
        f"role {tenant_access_role.role_name('tenant-api-dev')}",
    ]
    # Files of the project, which exist before the first run: it fills them in.
    written = ["config.json stage dev", "policy-dev.json", "policy-dev-authorizer.json"]

    code, first, _ = run(project, capsys)
    assert code == 0, first
    assert resource_lines(first) == {**dict.fromkeys(made, "created"), **dict.fromkeys(written, "updated")}
    code, second, _ = run(project, capsys)
    assert code == 0, second
    assert resource_lines(second) == dict.fromkeys([*made, *written], "unchanged")
    assert first.splitlines()[-1] == "[bootstrap] done: 9 created, 3 updated; next: chalice deploy --stage dev"
    assert second.splitlines()[-1] == "[bootstrap] no changes: everything was already in place (12 unchanged)"


def test_a_dry_run_on_a_new_account_says_what_it_would_make_and_makes_nothing(project: Path, calls, capsys):
    files = snapshot(project)
    code, out, _ = run(project, capsys, "--dry-run")
    assert code == 0, out
    assert [name for name in calls if is_mutating(name)] == []
    assert snapshot(project) == files
    assert client("dynamodb").list_tables()["TableNames"] == []
    assert client("cognito-idp").list_user_pools(MaxResults=60)["UserPools"] == []
    assert client("secretsmanager").list_secrets()["SecretList"] == []
    assert client("apigateway").get_usage_plans()["items"] == []
    assert "[bootstrap] would be created: table tenant-api-dev\n" in out
    assert "[bootstrap] would be created: hosted domain tenant-api-dev-123456789012 (with the user pool)" in out
    assert (
        "[bootstrap] would be updated: config.json stage dev "
        "(TOKEN_ISSUER, TOKEN_URL, PAGINATION_SECRET_ARN, TENANT_ACCESS_ROLE_ARN)" in out
    )
    assert "[bootstrap] dry run: 9 would be created, 3 would be updated; nothing was changed" in out
    assert client("iam").list_roles()["Roles"] == []
    assert "nothing was changed" in out


def test_a_dry_run_after_a_change_by_hand_names_it(project: Path, calls, capsys):
    assert run(project, capsys)[0] == 0
    client("dynamodb").update_continuous_backups(
        TableName="tenant-api-dev", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False}
    )
    code, out, _ = run(project, capsys, "--dry-run")
    assert code == 0
    assert "[bootstrap] would be updated: table tenant-api-dev (point-in-time recovery)" in out
    assert "[bootstrap] dry run: 1 would be updated, 11 unchanged; nothing was changed" in out
    code, out, _ = run(project, capsys)
    assert "[bootstrap] updated: table tenant-api-dev (point-in-time recovery)" in out


def test_a_usage_plan_changed_by_hand_is_named_alone_and_put_back(project: Path, calls, capsys):
    assert run(project, capsys)[0] == 0
    standard = TIERS["standard"]
    name = provision.usage_plan_name("tenant-api-dev", standard)
    plans = {plan["name"]: plan["id"] for plan in client("apigateway").get_usage_plans()["items"]}
    client("apigateway").update_usage_plan(
        usagePlanId=plans[name], patchOperations=[{"op": "replace", "path": "/throttle/rateLimit", "value": "1"}]
    )
    code, out, _ = run(project, capsys, "--dry-run")
    assert code == 0, out
    assert f"[bootstrap] would be updated: usage plan {name} (starting with UpdateUsagePlan)" in out
    # The plans after the changed one are still looked at, each on its own line.
    others = [provision.usage_plan_name("tenant-api-dev", tier) for tier in TIERS.values() if tier != standard]
    for other in others:
        assert re.search(rf"^\[bootstrap\] unchanged: usage plan {other} \(", out, re.MULTILINE), out
    assert "[bootstrap] dry run: 1 would be updated, 11 unchanged; nothing was changed" in out
    code, out, _ = run(project, capsys)
    assert code == 0, out
    assert f"[bootstrap] updated: usage plan {name} (UpdateUsagePlan, " in out
    plan = client("apigateway").get_usage_plan(usagePlanId=plans[name])
    assert float(plan["throttle"]["rateLimit"]) == standard.rate_per_second


def create_legacy_table(name: str = "tenant-api-dev") -> None:
    """The stage's table as bootstrap made it before the catalog index joined the schema."""
    client("dynamodb").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": attribute, "AttributeType": "S"} for attribute in ("PK", "SK")],
        BillingMode="PAY_PER_REQUEST",
        SSESpecification={"Enabled": True},
    )


def test_a_table_made_before_the_catalog_index_gets_it_and_a_rerun_leaves_it(project: Path, calls, capsys):
    create_legacy_table()
    code, out, _ = run(project, capsys)
    assert code == 0, out
    assert "[bootstrap] updated: table tenant-api-dev (catalog index, point-in-time recovery, TTL, tags)" in out
    table = client("dynamodb").describe_table(TableName="tenant-api-dev")["Table"]
    assert [(index["IndexName"], index["IndexStatus"]) for index in table["GlobalSecondaryIndexes"]] == [
        ("catalog", "ACTIVE")
    ]
    code, out, _ = run(project, capsys)
    assert code == 0
    assert "[bootstrap] unchanged: table tenant-api-dev" in out
    assert out.strip().splitlines()[-1] == "[bootstrap] no changes: everything was already in place (12 unchanged)"


def test_a_dry_run_on_a_table_without_the_catalog_index_says_it_would_add_it(project: Path, calls, capsys):
    create_legacy_table()
    code, out, _ = run(project, capsys, "--dry-run")
    assert code == 0, out
    assert (
        "[bootstrap] would be updated: table tenant-api-dev (catalog index, point-in-time recovery, TTL, tags)" in out
    )
    table = client("dynamodb").describe_table(TableName="tenant-api-dev")["Table"]
    assert table.get("GlobalSecondaryIndexes", []) == []


def test_the_prod_table_and_user_pool_are_protected_from_deletion(project: Path, calls, capsys):
    code, out, _ = run(project, capsys, stage="prod")
    assert code == 0, out
    table = client("dynamodb").describe_table(TableName="tenant-api-prod")["Table"]
    assert table["DeletionProtectionEnabled"] is True
    pools = client("cognito-idp").list_user_pools(MaxResults=60)["UserPools"]
    pool = client("cognito-idp").describe_user_pool(UserPoolId=pools[0]["Id"])["UserPool"]
    assert pool["DeletionProtection"] == "ACTIVE"
    assert dev_environment(project, "prod")["TOKEN_ISSUER"].startswith(f"https://cognito-idp.{REGION}.amazonaws.com/")
    assert dev_environment(project)["TOKEN_ISSUER"] == "", "the dev stage is left alone"


def test_a_prod_pool_made_before_protection_is_protected_on_the_next_run(project: Path, calls, capsys):
    cognito = client("cognito-idp")
    pool_id = provision.ensure_user_pool(cognito, "tenant-api-prod", TAGS | {"stage": "prod"})
    code, out, _ = run(project, capsys, stage="prod")
    assert code == 0, out
    assert "[bootstrap] updated: user pool tenant-api-prod (deletion protection, id " in out
    pool = cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    assert pool["DeletionProtection"] == "ACTIVE"
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True


def test_an_explicit_domain_prefix_is_used_once_and_then_kept(project: Path, calls, capsys):
    assert run(project, capsys, "--domain-prefix", "acme-tenant-api")[0] == 0
    assert (
        "no changes: everything was already in place" in run(project, capsys, "--domain-prefix", "acme-tenant-api")[1]
    )
    code, _, err = run(project, capsys, "--domain-prefix", "another-prefix")
    assert code == 1
    assert "already has the domain 'acme-tenant-api'" in err
    code, out, _ = run(project, capsys)
    assert code == 0 and "token URL: https://acme-tenant-api.auth." in out


def test_a_domain_prefix_taken_by_another_pool_is_refused(project: Path, calls, capsys):
    cognito = client("cognito-idp")
    other = cognito.create_user_pool(PoolName="someone-else")["UserPool"]["Id"]
    cognito.create_user_pool_domain(UserPoolId=other, Domain=DOMAIN)
    code, _, err = run(project, capsys)
    assert code == 1
    assert f"the Cognito domain prefix '{DOMAIN}' is taken" in err


def test_the_region_must_match_the_one_the_stage_was_bootstrapped_in(project: Path, calls, capsys):
    assert run(project, capsys)[0] == 0
    code = bootstrap.main(["--stage", "dev", "--region", "us-east-1", "--project-dir", str(project)])
    _, err = capsys.readouterr()
    assert code == 1
    assert f"bootstrapped in {REGION}" in err


@pytest.mark.parametrize(("stage", "message"), [("local", "provisioned by `make run`"), ("qa", "has no 'qa' stage")])
def test_the_local_stage_and_unknown_stages_are_refused(project: Path, calls, capsys, stage: str, message: str):
    code, _, err = run(project, capsys, stage=stage)
    assert code == 1
    assert message in err
    assert calls == []


def test_a_short_pagination_secret_made_by_hand_is_refused(project: Path, calls, capsys):
    client("secretsmanager").create_secret(Name="tenant-api-dev/pagination", SecretString="too-short")
    code, _, err = run(project, capsys)
    assert code == 1
    assert "shorter than 32 characters" in err
    assert "too-short" not in err


# --- one provisioning detail ------------------------------------------------------------------


class NewTable:
    """A DynamoDB client whose table refuses point-in-time recovery until its backups are ready."""

    def __init__(self, refusals: int):
        self.refusals = refusals
        self.updates = 0

    def describe_continuous_backups(self, **_: Any) -> dict[str, Any]:
        return {
            "ContinuousBackupsDescription": {
                "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "DISABLED"}
            }
        }

    def update_continuous_backups(self, **_: Any) -> None:
        from botocore.exceptions import ClientError

        self.updates += 1
        if self.updates <= self.refusals:
            error = {"Error": {"Code": "ContinuousBackupsUnavailableException", "Message": "Backups are being enabled"}}
            raise ClientError(error, "UpdateContinuousBackups")


def test_point_in_time_recovery_waits_for_a_new_tables_backups():
    table, sleeps = NewTable(refusals=2), []
    provision.ensure_point_in_time_recovery(table, "t", sleep=sleeps.append)
    assert table.updates == 3
    assert len(sleeps) == 2


@pytest.fixture(autouse=True)
def _no_real_config_writes() -> Iterator[None]:
    """Whatever a test does, the project's own .chalice files are left as they were."""
    before = snapshot(PROJECT_DIR)
    yield
    assert snapshot(PROJECT_DIR) == before


# --- the tenant-access role ---------------------------------------------------------------------


def test_the_tenant_access_role_is_made_exactly_from_its_one_definition(project: Path, calls, capsys):
    assert run(project, capsys)[0] == 0
    iam = client("iam")
    name = tenant_access_role.role_name("tenant-api-dev")
    role = iam.get_role(RoleName=name)["Role"]
    handler_role = f"arn:aws:iam::{ACCOUNT}:role/tenant-api-dev-api_handler"
    assert role["AssumeRolePolicyDocument"] == tenant_access_role.trust_policy(
        f"arn:aws:iam::{ACCOUNT}:root", handler_role
    )
    assert role["MaxSessionDuration"] == 3600
    assert iam.list_role_policies(RoleName=name)["PolicyNames"] == [tenant_access_role.POLICY_NAME]
    policy = iam.get_role_policy(RoleName=name, PolicyName=tenant_access_role.POLICY_NAME)["PolicyDocument"]
    assert policy == tenant_access_role.access_policy(f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/tenant-api-dev")
    assert iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"] == []
    assert {tag["Key"]: tag["Value"] for tag in iam.list_role_tags(RoleName=name)["Tags"]} == {
        "project": "tenant-api",
        "stage": "dev",
    }


def test_a_tenant_access_policy_widened_by_hand_is_put_back(project: Path, calls: list[str], capsys):
    assert run(project, capsys)[0] == 0
    iam = client("iam")
    name = tenant_access_role.role_name("tenant-api-dev")
    wide = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}]}
    iam.put_role_policy(RoleName=name, PolicyName=tenant_access_role.POLICY_NAME, PolicyDocument=json.dumps(wide))
    anyone_in_the_account = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"}],
    }
    iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(anyone_in_the_account))
    iam.update_role(RoleName=name, Description="anything goes", MaxSessionDuration=43200)
    iam.untag_role(RoleName=name, TagKeys=["stage"])
    calls.clear()

    code, out, _ = run(project, capsys)

    assert code == 0
    assert f"updated: role {name} (UpdateAssumeRolePolicy, UpdateRole, TagRole, PutRolePolicy)" in out
    role = iam.get_role(RoleName=name)["Role"]
    assert (role["Description"], role["MaxSessionDuration"]) == (tenant_access_role.DESCRIPTION, 3600)
    assert {tag["Key"] for tag in iam.list_role_tags(RoleName=name)["Tags"]} == {"project", "stage"}
    policy = iam.get_role_policy(RoleName=name, PolicyName=tenant_access_role.POLICY_NAME)["PolicyDocument"]
    assert policy == tenant_access_role.access_policy(f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/tenant-api-dev")
    assert iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"] == tenant_access_role.trust_policy(
        f"arn:aws:iam::{ACCOUNT}:root", f"arn:aws:iam::{ACCOUNT}:role/tenant-api-dev-api_handler"
    )


def grant_everything_by_hand(iam: Any, role: str) -> str:
    """Attach a managed policy allowing everything to role and add such an inline one, as by hand; the former's ARN."""
    everything = json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    )
    # moto loads none of AWS's managed policies; a customer-managed one is attached the same way.
    managed = iam.create_policy(PolicyName="AdministratorAccess", PolicyDocument=everything)["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=role, PolicyArn=managed)
    iam.put_role_policy(RoleName=role, PolicyName="debugging", PolicyDocument=everything)
    return managed


def test_policies_added_to_the_tenant_access_role_by_hand_are_removed(project: Path, calls: list[str], capsys):
    assert run(project, capsys)[0] == 0
    iam = client("iam")
    name = tenant_access_role.role_name("tenant-api-dev")
    managed = grant_everything_by_hand(iam, name)

    code, out, _ = run(project, capsys)

    assert code == 0, out
    assert f"updated: role {name} (DeleteRolePolicy, DetachRolePolicy)" in out
    assert iam.list_role_policies(RoleName=name)["PolicyNames"] == [tenant_access_role.POLICY_NAME]
    assert iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"] == []
    # The managed policy is not the role's: it is detached, never deleted.
    assert iam.get_policy(PolicyArn=managed)["Policy"]["AttachmentCount"] == 0
    code, out, _ = run(project, capsys)
    assert code == 0, out
    assert f"unchanged: role {name}" in out


def test_a_dry_run_names_a_managed_policy_attached_by_hand_and_leaves_it(project: Path, calls: list[str], capsys):
    assert run(project, capsys)[0] == 0
    iam = client("iam")
    name = tenant_access_role.role_name("tenant-api-dev")
    managed = grant_everything_by_hand(iam, name)
    iam.delete_role_policy(RoleName=name, PolicyName="debugging")

    code, out, _ = run(project, capsys, "--dry-run")

    assert code == 0, out
    assert f"would be updated: role {name} (starting with DetachRolePolicy)" in out
    assert [policy["PolicyArn"] for policy in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]] == [
        managed
    ]


def test_the_trust_policy_admits_the_api_functions_role_only_and_the_tenant_tag_only():
    trust = tenant_access_role.trust_policy(f"arn:aws:iam::{ACCOUNT}:root", "arn:aws:iam::1:role/x-api_handler")
    statements = {statement["Action"]: statement for statement in trust["Statement"]}
    assert set(statements) == {"sts:AssumeRole", "sts:TagSession"}
    for statement in statements.values():
        assert statement["Effect"] == "Allow"
        assert statement["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
        assert statement["Condition"]["ArnEquals"] == {"aws:PrincipalArn": "arn:aws:iam::1:role/x-api_handler"}
    tagging = statements["sts:TagSession"]["Condition"]
    assert tagging["StringLike"] == {"aws:RequestTag/TenantID": "?*"}
    assert tagging["ForAllValues:StringEquals"] == {"aws:TagKeys": ["TenantID"]}
    # Only the tagged session reaches anything: the policy names the tag and nothing else.
    policy = json.dumps(tenant_access_role.access_policy("arn:aws:dynamodb:r:1:table/t"))
    assert "${aws:PrincipalTag/TenantID}" in policy and "TENANT#*" not in policy
