"""The tenant CLI against moto, on a bootstrapped copy of .chalice/: every command, its effect, and its reruns."""

from __future__ import annotations

import base64
import http.client
import json
import shutil
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest
from botocore.exceptions import ClientError

from chalicelib.config import get_settings
from chalicelib.models import OrderLineRequest, OrderRequest
from chalicelib.services import place_order
from chalicelib.store.catalog import CatalogRepository
from chalicelib.store.dynamodb import dynamodb_client
from chalicelib.store.registry import ACTIVE, SUSPENDED, TenantRegistry
from chalicelib.tenancy import SCOPES, TenantContext
from chalicelib.tenant_repositories import repositories_for
from chalicelib.web.auth import JwksCache, TenantAuthorizer, TenantCache
from scripts import provision
from scripts.change_log import is_mutating
from scripts.deploy import bootstrap, smoke
from scripts.local.token_server import TokenServer
from scripts.tenants import cli as tenants
from scripts.tenants import seed
from tests.support.clock import FakeClock
from tests.support.project import PROJECT_DIR, keep_tenant_secrets, set_stage_settings
from tests.support.settings import Environment

REGION = "us-east-1"
TABLE = "tenant-api-dev"
PREFIX = "tenant-api-dev"
FULL_SCOPES = [f"tenant-api/{scope}" for scope in SCOPES]
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/api/GET/catalog"


@pytest.fixture
def calls(operator_calls: list[str]) -> list[str]:
    """The AWS operations the scripts' clients and the registry's DynamoDB client complete."""
    return operator_calls


@pytest.fixture
def project(tmp_path: Path, calls: list[str], env: Environment, capsys: pytest.CaptureFixture) -> Path:
    """A copy of .chalice/ whose dev stage is bootstrapped in moto; registry reads in the test use its table."""
    chalice_dir = tmp_path / ".chalice"
    chalice_dir.mkdir()
    for source in (PROJECT_DIR / ".chalice").glob("*.json"):
        shutil.copy(source, chalice_dir / source.name)
    # Most tests here follow the optional stored copy too; the default (none) has tests of its own.
    keep_tenant_secrets(tmp_path, "dev", "prod")
    assert bootstrap.main(["--stage", "dev", "--region", REGION, "--project-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    env.set(TABLE_NAME=TABLE)
    calls.clear()
    return tmp_path


class Cli:
    """Runs `python -m scripts.tenants --stage dev ...` in this process and keeps what it printed."""

    def __init__(self, project: Path, capsys: pytest.CaptureFixture):
        self.project = project
        self.capsys = capsys
        self.out = self.err = ""

    def __call__(self, *argv: str, stage: str = "dev") -> int:
        code = tenants.main(["--stage", stage, "--project-dir", str(self.project), *argv])
        self.out, self.err = self.capsys.readouterr()
        return code

    def ok(self, *argv: str) -> str:
        """Run a command that must succeed; its output."""
        code = self(*argv)
        assert code == 0, self.out + self.err
        return self.out


@pytest.fixture
def cli(project: Path, capsys: pytest.CaptureFixture) -> Cli:
    return Cli(project, capsys)


def aws(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


def pool_id() -> str:
    return aws("cognito-idp").list_user_pools(MaxResults=60)["UserPools"][0]["Id"]


def app_clients() -> dict[str, list[str]]:
    """Client ids by client name."""
    found: dict[str, list[str]] = {}
    for client in aws("cognito-idp").list_user_pool_clients(UserPoolId=pool_id(), MaxResults=60)["UserPoolClients"]:
        found.setdefault(client["ClientName"], []).append(client["ClientId"])
    return found


def plan_ids() -> dict[str, str]:
    return {
        plan["name"].removeprefix(f"{PREFIX}-"): plan["id"] for plan in aws("apigateway").get_usage_plans()["items"]
    }


def plans_holding(key_id: str) -> list[str]:
    apigateway = aws("apigateway")
    return sorted(
        tier
        for tier, plan_id in plan_ids().items()
        if key_id in {key["id"] for key in apigateway.get_usage_plan_keys(usagePlanId=plan_id)["items"]}
    )


def stored_secret(tenant_id: str) -> dict[str, str]:
    return json.loads(aws("secretsmanager").get_secret_value(SecretId=f"{PREFIX}/tenants/{tenant_id}")["SecretString"])


def table_items() -> list[dict[str, Any]]:
    """Every item of the stage's table (a test may scan; the application never does)."""
    return aws("dynamodb").scan(TableName=TABLE, ConsistentRead=True)["Items"]


def mutations(calls: list[str]) -> list[str]:
    return [name for name in calls if is_mutating(name)]


# --- create -----------------------------------------------------------------------------------


def test_create_gives_the_tenant_registry_items_a_client_credentials_client_a_key_in_its_plan_and_a_secret(cli: Cli):
    out = cli.ok("create", "acme", "--tier", "basic", "--name", "Acme Corp")

    record = TenantRegistry().get("acme")
    assert (record.tier, record.status, record.display_name) == ("basic", ACTIVE, "Acme Corp")
    assert TenantRegistry().find_by_client_id(record.client_id) == record

    app_client = aws("cognito-idp").describe_user_pool_client(UserPoolId=pool_id(), ClientId=record.client_id)[
        "UserPoolClient"
    ]
    assert app_client["ClientName"] == "acme"
    assert app_client["AllowedOAuthFlows"] == ["client_credentials"]
    assert app_client["AllowedOAuthFlowsUserPoolClient"] is True
    assert sorted(app_client["AllowedOAuthScopes"]) == sorted(FULL_SCOPES)

    key = aws("apigateway").get_api_key(apiKey=record.api_key_id, includeValue=True)
    assert (key["name"], key["enabled"], key["value"]) == (f"{PREFIX}-acme", True, record.api_key_value)
    assert key["tags"] == {"project": "tenant-api", "stage": "dev", "tenant": "acme"}
    assert plans_holding(record.api_key_id) == ["basic"]

    assert stored_secret("acme") == {
        "tenant_id": "acme",
        "client_id": record.client_id,
        "client_secret": app_client["ClientSecret"],
    }
    described = aws("secretsmanager").describe_secret(SecretId=f"{PREFIX}/tenants/acme")
    assert {tag["Key"]: tag["Value"] for tag in described["Tags"]}["tenant"] == "acme"
    assert app_client["ClientSecret"] not in out
    assert f"acme: API key {record.api_key_id} in usage plan basic" in out


def test_creating_again_changes_nothing_and_says_so(cli: Cli, calls: list[str]):
    cli.ok("create", "acme", "--tier", "basic")
    before = (table_items(), app_clients(), stored_secret("acme"))
    calls.clear()
    out = cli.ok("create", "acme", "--tier", "basic")
    assert mutations(calls) == []
    assert (table_items(), app_clients(), stored_secret("acme")) == before
    assert out.splitlines()[-1] == "[tenants] nothing changed"


def test_create_repairs_a_key_taken_out_of_its_plan(cli: Cli):
    cli.ok("create", "acme", "--tier", "standard")
    key_id = TenantRegistry().get("acme").api_key_id
    aws("apigateway").delete_usage_plan_key(usagePlanId=plan_ids()["standard"], keyId=key_id)
    cli.ok("create", "acme", "--tier", "standard")
    assert plans_holding(key_id) == ["standard"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["create", "Acme", "--tier", "basic"], "not a valid tenant id: 'Acme'"),
        (["create", "acme#2", "--tier", "basic"], "not a valid tenant id: 'acme#2'"),
        (["create", "acme-", "--tier", "basic"], "not a valid tenant id: 'acme-'"),
        (["show", "nobody"], "stage dev has no tenant 'nobody'"),
        (["suspend", "nobody"], "stage dev has no tenant 'nobody'"),
        (["resume", "nobody"], "stage dev has no tenant 'nobody'"),
        (["change-tier", "nobody", "--tier", "premium"], "stage dev has no tenant 'nobody'"),
        (["rotate-secret", "nobody"], "stage dev has no tenant 'nobody'"),
        (["delete", "acme", "--recovery-days", "3"], "the recovery window must be 7 to 30 days"),
    ],
    ids=["uppercase", "separator", "trailing-hyphen", "show", "suspend", "resume", "change-tier", "rotate", "recovery"],
)
def test_bad_requests_exit_non_zero_with_a_clear_message_and_change_nothing(
    cli: Cli, calls, argv: list[str], message: str
):
    assert cli(*argv) == 1
    assert f"[tenants] error: {message}" in cli.err
    assert mutations(calls) == []


def test_an_unknown_tier_is_refused_by_the_command_line(cli: Cli):
    with pytest.raises(SystemExit) as exited:
        cli("create", "acme", "--tier", "gold")
    assert exited.value.code == 2
    assert "invalid choice: 'gold'" in cli.capsys.readouterr().err
    assert TenantRegistry().get("acme") is None


def test_an_existing_tenant_is_not_created_again_with_another_tier(cli: Cli):
    cli.ok("create", "acme", "--tier", "basic")
    assert cli("create", "acme", "--tier", "premium") == 1
    assert "acme exists with tier basic; use change-tier" in cli.err
    assert TenantRegistry().get("acme").tier == "basic"


def test_nothing_works_before_the_stage_is_bootstrapped(tmp_path: Path, calls, capsys):
    (tmp_path / ".chalice").mkdir()
    shutil.copy(PROJECT_DIR / ".chalice" / "config.json", tmp_path / ".chalice" / "config.json")
    cli = Cli(tmp_path, capsys)
    assert cli("list") == 1
    assert "has no Cognito TOKEN_ISSUER" in cli.err
    assert "run `python -m scripts.deploy.bootstrap --stage dev` first" in cli.err
    assert calls == []


# --- list and show ----------------------------------------------------------------------------


def test_list_prints_every_tenant_with_tier_status_and_client_never_a_secret(cli: Cli):
    cli.ok("create", "globex", "--tier", "premium", "--name", "Globex")
    cli.ok("create", "acme", "--tier", "basic")
    cli.ok("suspend", "acme")
    out = cli.ok("list")
    lines = out.splitlines()
    assert lines[0].split() == ["TENANT", "TIER", "STATUS", "CLIENT", "ID", "NAME"]
    acme, globex = TenantRegistry().get("acme"), TenantRegistry().get("globex")
    assert lines[1].split() == ["acme", "basic", "suspended", acme.client_id]
    assert lines[2].split() == ["globex", "premium", "active", globex.client_id, "Globex"]
    assert len(lines) == 3
    for tenant_id in ("acme", "globex"):
        assert stored_secret(tenant_id)["client_secret"] not in out
    assert acme.api_key_value not in out


def test_show_hides_the_client_secret_unless_asked_to_reveal_it(cli: Cli):
    cli.ok("create", "acme", "--tier", "standard")
    secret = stored_secret("acme")["client_secret"]
    out = cli.ok("show", "acme")
    assert secret not in out
    assert "client secret: (hidden; --reveal-secret shows it)" in out
    assert f"token url:     https://{PREFIX}-123456789012.auth.{REGION}.amazoncognito.com/oauth2/token" in out
    assert f"client secret: {secret}" in cli.ok("show", "acme", "--reveal-secret")


@pytest.mark.parametrize("removed", [(), ("premium",), ("basic", "standard", "premium")])
def test_list_and_show_only_read_and_name_the_usage_plans_the_stage_lacks(
    cli: Cli, calls: list[str], removed: tuple[str, ...]
):
    cli.ok("create", "acme", "--tier", "basic")
    apigateway = aws("apigateway")
    for tier in removed:
        plan_id = plan_ids()[tier]
        for key in apigateway.get_usage_plan_keys(usagePlanId=plan_id)["items"]:
            apigateway.delete_usage_plan_key(usagePlanId=plan_id, keyId=key["id"])
        apigateway.delete_usage_plan(usagePlanId=plan_id)
    calls.clear()

    assert "acme" in cli.ok("list")
    warnings = [cli.err]
    assert "tier:          basic" in cli.ok("show", "acme")
    warnings.append(cli.err)
    cli.ok("show", "acme", "--reveal-secret")
    warnings.append(cli.err)

    # The stage's plans, pool and registry were read, and nothing was changed or made.
    assert {"GetUsagePlans", "DescribeUserPool", "ListUserPoolClients", "GetItem"} <= set(calls)
    assert mutations(calls) == []
    assert sorted(plan_ids()) == sorted({"basic", "standard", "premium"} - set(removed))
    for err in warnings:
        if removed:
            missing = ", ".join(f"{PREFIX}-{tier}" for tier in ("basic", "standard", "premium") if tier in removed)
            assert f"[tenants] warning: stage dev has no usage plan {missing};" in err
        else:
            assert err == ""


# --- suspend, resume, change-tier -------------------------------------------------------------


def test_suspend_and_resume_flip_the_registry_status_once(cli: Cli, calls: list[str]):
    cli.ok("create", "acme", "--tier", "basic")
    record = TenantRegistry().get("acme")
    cli.ok("suspend", "acme")
    assert TenantRegistry().get("acme") == record.with_changes(status=SUSPENDED)
    assert TenantRegistry().find_by_client_id(record.client_id).status == SUSPENDED
    calls.clear()
    assert "acme: already suspended" in cli.ok("suspend", "acme")
    assert mutations(calls) == []
    cli.ok("resume", "acme")
    assert TenantRegistry().get("acme") == record


def test_change_tier_moves_the_same_key_to_the_other_plan_and_records_the_tier(cli: Cli, calls: list[str]):
    cli.ok("create", "acme", "--tier", "basic")
    before = TenantRegistry().get("acme")
    calls.clear()
    cli.ok("change-tier", "acme", "--tier", "premium")
    after = TenantRegistry().get("acme")
    assert after == before.with_changes(tier="premium")
    assert plans_holding(before.api_key_id) == ["premium"]
    # API Gateway allows a key in one plan per stage: it must leave the old plan before joining the new.
    assert [name for name in calls if name.endswith("UsagePlanKey")] == ["DeleteUsagePlanKey", "CreateUsagePlanKey"]
    calls.clear()
    assert "acme: already premium" in cli.ok("change-tier", "acme", "--tier", "premium")
    assert mutations(calls) == []


class Authorization:
    """The app's authorizer for the stage's tenants, with tokens from a token endpoint on the stage's pool."""

    def __init__(self, env: Environment):
        self.server = TokenServer(aws("cognito-idp"), pool_id())
        self.server.start()
        # As in Lambda, refusals are the plain "Unauthorized" exception and a Deny policy.
        env.set(TOKEN_ISSUER=self.server.issuer.issuer, AWS_LAMBDA_FUNCTION_NAME="tenant-api-dev-tenant_authorizer")
        self.clock = FakeClock()
        settings = get_settings()
        self.authorizer = TenantAuthorizer(
            settings,
            JwksCache(settings.jwks_url),
            TenantCache(TenantRegistry(), settings.tenant_cache_seconds, self.clock),
        )

    def token_reply(self, client_id: str, client_secret: str) -> tuple[int, dict[str, Any]]:
        """POST /oauth2/token with HTTP Basic, as a tenant would."""
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=5)
        basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Basic {basic}"}
        connection.request("POST", "/oauth2/token", b"grant_type=client_credentials", headers)
        response = connection.getresponse()
        reply = response.status, json.loads(response.read())
        connection.close()
        return reply

    def token(self, tenant_id: str) -> str:
        """An access token from the credentials the CLI stored for the tenant."""
        stored = stored_secret(tenant_id)
        status, body = self.token_reply(stored["client_id"], stored["client_secret"])
        assert status == 200, body
        return body["access_token"]

    def answer(self, token: str) -> dict[str, Any] | str:
        """The authorizer's answer, or "Unauthorized" when it refuses with a 401."""
        try:
            return self.authorizer(f"Bearer {token}", METHOD_ARN)
        except Exception as refusal:  # noqa: BLE001 - in Lambda the 401 is a plain Exception("Unauthorized")
            return str(refusal)

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def authorization(project: Path, env: Environment) -> Iterator[Authorization]:
    env.set(TENANT_CACHE_SECONDS="60")
    authorization = Authorization(env)
    yield authorization
    authorization.stop()


def effect(answer: dict[str, Any] | str) -> str:
    return answer if isinstance(answer, str) else answer["policyDocument"]["Statement"][0]["Effect"]


def test_suspension_and_a_tier_change_reach_the_authorizer_once_the_registry_cache_expires(cli: Cli, authorization):
    cli.ok("create", "acme", "--tier", "basic")
    token = authorization.token("acme")
    first = authorization.answer(token)
    assert effect(first) == "Allow"
    assert first["context"]["tier"] == "basic"
    assert first["usageIdentifierKey"] == TenantRegistry().get("acme").api_key_value

    cli.ok("suspend", "acme")
    assert effect(authorization.answer(token)) == "Allow", "the cached record applies for TENANT_CACHE_SECONDS"
    authorization.clock.advance(61)
    assert effect(authorization.answer(token)) == "Deny"

    cli.ok("resume", "acme")
    cli.ok("change-tier", "acme", "--tier", "premium")
    assert effect(authorization.answer(token)) == "Deny"
    authorization.clock.advance(61)
    answer = authorization.answer(token)
    assert effect(answer) == "Allow"
    assert answer["context"]["tier"] == "premium"
    assert answer["usageIdentifierKey"] == first["usageIdentifierKey"], "the same key, now in the premium plan"


# --- rotate-secret ----------------------------------------------------------------------------


def test_rotation_replaces_the_client_so_only_the_new_secret_gets_tokens(cli: Cli, authorization):
    cli.ok("create", "acme", "--tier", "standard")
    old = stored_secret("acme")
    old_token = authorization.token("acme")

    out = cli.ok("rotate-secret", "acme")

    new = stored_secret("acme")
    assert new["client_id"] != old["client_id"] and new["client_secret"] != old["client_secret"]
    assert new["client_secret"] not in out
    assert app_clients() == {"acme": [new["client_id"]]}
    registry = TenantRegistry()
    assert registry.get("acme").client_id == new["client_id"]
    assert registry.find_by_client_id(new["client_id"]).tenant_id == "acme"
    assert registry.find_by_client_id(old["client_id"]) is None
    lookups = [item["PK"]["S"] for item in table_items() if item["PK"]["S"].startswith("CLIENT#")]
    assert lookups == [f"CLIENT#{new['client_id']}"]

    assert authorization.token_reply(old["client_id"], old["client_secret"]) == (400, {"error": "invalid_client"})
    new_token = authorization.token("acme")
    assert authorization.answer(new_token)["context"]["tenant_id"] == "acme"
    assert authorization.answer(old_token) == "Unauthorized"


def test_rotation_removes_a_client_left_by_an_interrupted_rotation(cli: Cli):
    cli.ok("create", "acme", "--tier", "basic")
    stray = aws("cognito-idp").create_user_pool_client(UserPoolId=pool_id(), ClientName="acme", GenerateSecret=True)
    stray_id = stray["UserPoolClient"]["ClientId"]
    out = cli.ok("rotate-secret", "acme")
    assert f"removed app client {stray_id} left by an interrupted rotation" in out
    assert app_clients() == {"acme": [stored_secret("acme")["client_id"]]}


# --- delete -----------------------------------------------------------------------------------


def place_an_order(tenant_id: str, tier: str) -> None:
    context = TenantContext(tenant_id, tier, frozenset(FULL_SCOPES))
    place_order(
        context, repositories_for(context), OrderRequest((OrderLineRequest("prod-001", 2),)), idempotency_key="order-1"
    )


def test_delete_with_purge_data_leaves_nothing_of_the_tenant_behind(cli: Cli):
    cli.ok("create", "acme", "--tier", "basic")
    cli.ok("create", "globex", "--tier", "premium")
    record = TenantRegistry().get("acme")
    for product in seed.seed_products("tenant-basic"):
        CatalogRepository("acme", dynamodb_client()).put(product)
        CatalogRepository("globex", dynamodb_client()).put(product)
    place_an_order("acme", "basic")
    globex_items = [
        item for item in table_items() if "globex" in item["PK"]["S"] or item.get("tenant_id", {}).get("S") == "globex"
    ]

    out = cli.ok("delete", "acme", "--purge-data")

    assert "acme: deleted 12 products, 1 orders, 1 idempotency records" in out
    assert [item for item in table_items() if "acme" in json.dumps(item) or record.client_id in json.dumps(item)] == []
    assert sorted(table_items(), key=str) == sorted(globex_items, key=str), "the other tenant is untouched"
    assert "acme" not in app_clients()
    with pytest.raises(ClientError):
        aws("apigateway").get_api_key(apiKey=record.api_key_id)
    assert plans_holding(record.api_key_id) == []
    described = aws("secretsmanager").describe_secret(SecretId=f"{PREFIX}/tenants/acme")
    assert described.get("DeletedDate") is not None, "scheduled for deletion, recoverable for 7 days"
    assert [key["name"] for key in aws("apigateway").get_api_keys()["items"]] == [f"{PREFIX}-globex"]


def test_delete_keeps_the_data_by_default_and_a_new_tenant_of_that_id_must_purge_or_adopt_it(cli: Cli):
    cli.ok("create", "acme", "--tier", "basic")
    CatalogRepository("acme", dynamodb_client()).put(seed.seed_products("tenant-basic")[0])
    out = cli.ok("delete", "acme")
    assert "acme: kept its data (1 products, 0 orders, 0 idempotency records)" in out
    assert TenantRegistry().get("acme") is None
    assert CatalogRepository("acme", dynamodb_client()).get("prod-001") is not None

    assert cli("create", "acme", "--tier", "basic") == 1
    assert "still holds data of an earlier tenant 'acme' (1 products)" in cli.err
    assert TenantRegistry().get("acme") is None

    cli.ok("create", "acme", "--tier", "basic", "--adopt-data")
    record = TenantRegistry().get("acme")
    assert stored_secret("acme")["client_id"] == record.client_id, "the deleted secret is restored with the new client"
    assert aws("secretsmanager").describe_secret(SecretId=f"{PREFIX}/tenants/acme").get("DeletedDate") is None


def test_deleting_again_finds_nothing_and_succeeds(cli: Cli, calls: list[str]):
    cli.ok("create", "acme", "--tier", "basic")
    cli.ok("delete", "acme")
    calls.clear()
    out = cli.ok("delete", "acme")
    assert "acme: nothing left to delete" in out
    assert mutations(calls) == []


# --- seed-demo --------------------------------------------------------------------------------


def test_seed_demo_creates_the_three_seed_tenants_with_their_catalogs_once(cli: Cli, calls: list[str]):
    cli.ok("seed-demo")
    for tenant in seed.SEED_TENANTS:
        record = TenantRegistry().get(tenant.tenant_id)
        assert (record.tier, record.status, record.display_name) == (tenant.tier, ACTIVE, tenant.display_name)
        assert plans_holding(record.api_key_id) == [tenant.tier]
        products, _ = CatalogRepository(tenant.tenant_id, dynamodb_client()).list(100)
        assert [p.name for p in products] == [name for _, (name, _) in sorted(seed.CATALOGS[tenant.tenant_id].items())]
    calls.clear()
    assert cli.ok("seed-demo").splitlines()[-1] == "[tenants] nothing changed"
    assert mutations(calls) == []


def test_seed_demo_is_refused_for_prod(cli: Cli, calls: list[str]):
    assert cli("seed-demo", stage="prod") == 1
    assert "not for prod" in cli.err
    assert mutations(calls) == []


def test_the_smoke_test_finds_a_stages_urls_and_the_stored_credentials(cli: Cli, project: Path):
    cli.ok("seed-demo")
    deployed = project / ".chalice" / "deployed"
    deployed.mkdir()
    api_url = "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/api/"
    (deployed / "dev.json").write_text(
        json.dumps(
            {
                "schema_version": "2.0",
                "resources": [{"name": "rest_api", "resource_type": "rest_api", "rest_api_url": api_url}],
            }
        )
    )
    target = smoke.target_from_stage("dev", project, smoke.DEMO_TENANTS, None)
    assert target.api_url == api_url
    assert target.token_url == f"https://{PREFIX}-123456789012.auth.{REGION}.amazoncognito.com/oauth2/token"
    for credentials, tenant_id in (
        (target.tenant, "tenant-standard"),
        (target.other, "tenant-premium"),
        (target.basic, "tenant-basic"),
    ):
        stored = stored_secret(tenant_id)
        assert (credentials.label, credentials.client_id, credentials.client_secret) == (
            tenant_id,
            stored["client_id"],
            stored["client_secret"],
        )


def test_a_stages_access_token_lifetime_reaches_its_clients_and_a_change_reaches_them_on_the_next_create(cli: Cli):
    cli.ok("create", "acme", "--tier", "basic")
    record = TenantRegistry().get("acme")

    def validity() -> int:
        client = aws("cognito-idp").describe_user_pool_client(UserPoolId=pool_id(), ClientId=record.client_id)
        return client["UserPoolClient"]["AccessTokenValidity"]

    assert validity() == provision.ACCESS_TOKEN_MINUTES
    set_stage_settings(cli.project, "dev", access_token_minutes=15)
    # Running create again brings the client's settings to the stage's.
    cli.ok("create", "acme", "--tier", "basic")
    assert validity() == 15


@pytest.mark.parametrize("minutes", [4, 1441, "60", 1.5, True])
def test_an_access_token_lifetime_cognito_would_refuse_is_refused_with_the_range(cli: Cli, minutes: Any):
    set_stage_settings(cli.project, "dev", access_token_minutes=minutes)
    assert cli("create", "acme", "--tier", "basic") != 0
    assert "access_token_minutes must be a whole number from 5 to 1440" in cli.err + cli.out
    assert TenantRegistry().get("acme") is None


def stored_secrets() -> list[str]:
    return [secret["Name"] for secret in aws("secretsmanager").list_secrets()["SecretList"]]


def test_by_default_no_secret_is_stored_and_show_reveals_it_from_cognito(cli: Cli):
    set_stage_settings(cli.project, "dev", store_tenant_secrets=None)  # the default: no copy
    out = cli.ok("create", "acme", "--tier", "basic")
    assert "acme: client secret kept in Cognito only" in out
    assert [name for name in stored_secrets() if "/tenants/" in name] == []
    record = TenantRegistry().get("acme")
    secret = aws("cognito-idp").describe_user_pool_client(UserPoolId=pool_id(), ClientId=record.client_id)[
        "UserPoolClient"
    ]["ClientSecret"]
    assert secret not in cli.ok("show", "acme")
    revealed = cli.ok("show", "acme", "--reveal-secret")
    assert secret in revealed and "(none stored)" in revealed
    # Rotation too: the new secret is revealed from Cognito, and nothing is stored.
    cli.ok("rotate-secret", "acme")
    new = TenantRegistry().get("acme")
    new_secret = aws("cognito-idp").describe_user_pool_client(UserPoolId=pool_id(), ClientId=new.client_id)[
        "UserPoolClient"
    ]["ClientSecret"]
    assert new_secret in cli.ok("show", "acme", "--reveal-secret")
    assert [name for name in stored_secrets() if "/tenants/" in name] == []


def test_the_smoke_test_finds_a_tenants_credentials_in_cognito_without_a_stored_copy(cli: Cli):
    set_stage_settings(cli.project, "dev", store_tenant_secrets=None)
    cli.ok("create", "tenant-standard", "--tier", "standard")
    record = TenantRegistry().get("tenant-standard")
    target = smoke.target_from_stage(
        "dev", cli.project, {"tenant": "tenant-standard", "other": None, "basic": None}, "https://api.invalid"
    )
    assert (target.tenant.client_id, target.other) == (record.client_id, None)
    described = aws("cognito-idp").describe_user_pool_client(UserPoolId=pool_id(), ClientId=record.client_id)
    assert target.tenant.client_secret == described["UserPoolClient"]["ClientSecret"]


def test_a_store_setting_that_is_not_a_boolean_is_refused(cli: Cli):
    set_stage_settings(cli.project, "dev", store_tenant_secrets="yes")
    assert cli("create", "acme", "--tier", "basic") != 0
    assert "store_tenant_secrets must be true or false" in cli.err + cli.out
