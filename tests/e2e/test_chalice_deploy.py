"""`chalice deploy --stage dev` end to end, with the operator scripts around it, on two emulators.

The run follows the README's path A as an operator would type it: bootstrap, `chalice deploy`,
a tenant onboarded, post-deploy, post-deploy again (no changes), a second `chalice deploy`
(which updates the API in place), post-deploy, then `chalice delete` and teardown (twice).
The tests below check what each step left behind, in both emulators.

API Gateway is LocalStack's, everything else is moto server's. moto cannot import Chalice's
Swagger 2.0 (the last test keeps that pinned down); LocalStack's API Gateway can, but its
DynamoDB and Lambda download their engines at first use (from outside the package
registries) and its Cognito needs a licence, so only API Gateway is sent to it (`AWS_ENDPOINT_URL_API_GATEWAY`). A 12-digit
access key id makes both emulators use account 123456789012, so the function ARNs Chalice
writes into the API name functions that moto holds.

Not covered: requests through the deployed API. LocalStack runs Lambda functions in Docker
containers, and there is no Docker here; `make smoke` does that against a real stage.

LocalStack runs from .venv-localstack (Python 3.13 or newer, requirements-localstack.txt),
which `make test` creates. Where no Python 3.13+ exists the tests are skipped; where one
exists but the environment does not, they fail and say how to make it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import boto3
import pytest
import requests
from botocore.exceptions import ClientError
from chalice.deploy.swagger import SwaggerGenerator

import app as application
from chalicelib.tiers import TIERS
from chalicelib.web.gateway import gateway_responses
from scripts.deploy.post_deploy import deployment_description
from scripts.local import localstack_python
from scripts.provision import usage_plan_name
from tests.support.project import PROJECT_DIR
from tests.support.stack import free_port, http_session

pytestmark = pytest.mark.e2e

REGION = "us-east-1"
ACCOUNT = "123456789012"
STAGE = "dev"
API_STAGE = "api"
APP_NAME = "tenant-api"
PREFIX = f"{APP_NAME}-{STAGE}"
TABLE_NAME = PREFIX
TENANT, TENANT_TIER = "acme", "standard"
ALARM_EMAIL = "oncall@example.com"
LOCALSTACK_PYTHON = PROJECT_DIR / ".venv-localstack" / "bin" / "python"
START_SECONDS = 60
STOP_SECONDS = 15
COMMAND_TIMEOUT_SECONDS = 120
# What moto server lacks; post-deploy and teardown report these as such, never as done.
UNSUPPORTED_BY_MOTO = [
    f"saved query {PREFIX}/errors-for-a-tenant",
    f"saved query {PREFIX}/latency-for-a-tenant",
    f"saved query {PREFIX}/slowest-requests",
    f"saved query {PREFIX}/security-events",
    f"X-Ray sampling rule {PREFIX}",
]
# LocalStack in host mode: API Gateway only, on loopback, and nothing that reaches outside.
LOCALSTACK_SETTINGS = {
    "SERVICES": "apigateway",
    "DNS_ADDRESS": "0",  # no DNS server (it would bind port 53)
    "DISABLE_EVENTS": "1",  # no usage analytics sent out
    "SKIP_SSL_CERT_DOWNLOAD": "1",  # a self-signed certificate instead of a downloaded one
}


# --- the emulators --------------------------------------------------------------------------


@dataclass
class Emulator:
    """An emulator process on 127.0.0.1: its endpoint, its log and boto3 clients for it."""

    name: str
    process: subprocess.Popen
    endpoint_url: str
    log_path: Path

    def client(self, service: str) -> Any:
        """A boto3 client for service, signed with the shared 12-digit access key id."""
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=ACCOUNT,
            aws_secret_access_key="testing",
        )

    def log(self) -> str:
        """Everything the emulator printed so far."""
        return self.log_path.read_text(errors="replace")

    def wait_until_ready(self, ready: Callable[[requests.Response], bool], path: str) -> None:
        """Poll path until ready says so; fail with the log if the process exits or time runs out."""
        session = http_session()
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"{self.name} exited with code {self.process.returncode}:\n{self.log()}")
            try:
                if ready(session.get(f"{self.endpoint_url}{path}", timeout=2)):
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        pytest.fail(f"{self.name} was not ready within {START_SECONDS} s:\n{self.log()}")

    def stop(self) -> None:
        """Stop the process and everything it started; fail if any of it outlives a SIGKILL."""
        group = self.process.pid
        _signal_group(group, signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            _signal_group(group, signal.SIGKILL)
            self.process.wait()
        deadline = time.monotonic() + STOP_SECONDS
        while _group_members(group):
            if time.monotonic() > deadline:
                pytest.fail(f"{self.name} left processes {_group_members(group)} behind")
            _signal_group(group, signal.SIGKILL)
            time.sleep(0.1)


def _signal_group(group: int, signum: int) -> None:
    try:
        os.killpg(group, signum)
    except ProcessLookupError:
        pass


def _group_members(group: int) -> list[int]:
    """The live (not zombie) processes of a process group, read from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command may contain spaces and parentheses: the fields after its closing ")" are fixed.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def _start(name: str, argv: list[str], env: dict[str, str], log_path: Path, endpoint_url: str) -> Emulator:
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv,
            cwd=log_path.parent,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Emulator(name, process, endpoint_url, log_path)


def _base_environment() -> dict[str, str]:
    """The environment less AWS settings and proxies, which must not leak into the emulators or the commands."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("AWS_") and name.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    }


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """moto server: everything but API Gateway."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    server = _start("moto server", argv, _base_environment(), log_path, f"http://127.0.0.1:{port}")
    try:
        server.wait_until_ready(lambda response: response.ok, "/moto-api/")
        yield server
    finally:
        server.stop()


def _localstack_interpreter() -> Path:
    """LocalStack's Python, or a skip (no Python 3.13+ here) or a failure (the environment is missing)."""
    if LOCALSTACK_PYTHON.exists() and localstack_python.runs(str(LOCALSTACK_PYTHON)):
        return LOCALSTACK_PYTHON
    python = localstack_python.find()
    if python is None:
        pytest.skip(
            "LocalStack needs Python 3.13 or newer and this machine has none (python -m scripts.local.localstack_python)"
        )
    pytest.fail(
        f"{LOCALSTACK_PYTHON.parent.parent} is missing or broken; `make test` creates it, or by hand: "
        f"{python} -m venv .venv-localstack && .venv-localstack/bin/python -m pip install -r requirements-localstack.txt"
    )


@pytest.fixture(scope="module")
def localstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """LocalStack in host mode: API Gateway only, its files in a temporary directory."""
    python = _localstack_interpreter()
    home = tmp_path_factory.mktemp("localstack")
    port = free_port()
    env = {
        **_base_environment(),
        **LOCALSTACK_SETTINGS,
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "FILESYSTEM_ROOT": str(home / "filesystem"),
        "CONFIG_DIR": str(home / "config"),
        "HOME": str(home),
    }
    argv = [str(python), "-m", "localstack.runtime.main"]
    server = _start("LocalStack", argv, env, home / "localstack.log", f"http://127.0.0.1:{port}")

    def ready(response: requests.Response) -> bool:
        try:
            services = response.json().get("services", {}) if response.ok else {}
        except ValueError:
            return False
        return services.get("apigateway") in ("available", "running")

    try:
        server.wait_until_ready(ready, "/_localstack/health")
        yield server
    finally:
        server.stop()


# --- the run --------------------------------------------------------------------------------


@dataclass
class Step:
    """One command of the run and what it printed."""

    name: str
    result: subprocess.CompletedProcess[str]

    @property
    def output(self) -> str:
        """stdout then stderr."""
        return self.result.stdout + self.result.stderr

    @property
    def lines(self) -> list[str]:
        """stdout's lines."""
        return self.result.stdout.splitlines()


@dataclass
class Run:
    """The commands run so far, and what the emulators held at named points of the run."""

    project: Path
    moto: Emulator
    localstack: Emulator
    steps: dict[str, Step] = field(default_factory=dict)
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)

    def step(self, name: str) -> Step:
        """The named step; a failure naming the step that stopped the run if it never ran."""
        if name not in self.steps:
            failed = next((step for step in self.steps.values() if step.result.returncode != 0), None)
            detail = f"{failed.name} failed:\n{failed.output}" if failed else "the run stopped early"
            pytest.fail(f"step {name!r} did not run: {detail}")
        return self.steps[name]

    def succeeded(self, name: str) -> Step:
        """The named step, which must have exited 0."""
        step = self.step(name)
        assert step.result.returncode == 0, f"{name} exited {step.result.returncode}:\n{step.output}"
        return step

    def snapshot(self, name: str) -> dict[str, Any]:
        """What the emulators held right after the named step, which must have succeeded."""
        self.succeeded(name)
        return self.snapshots[name]

    def deployed_record(self) -> dict[str, Any]:
        """What .chalice/deployed/dev.json holds now, by resource name (`chalice delete` empties it)."""
        path = self.project / ".chalice" / "deployed" / f"{STAGE}.json"
        record = json.loads(path.read_text()) if path.exists() else {"resources": []}
        return {resource["name"]: resource for resource in record["resources"]}


def _copy_project(target: Path) -> Path:
    """What `chalice deploy` reads, with every .chalice/*.json (per-function policy files too).

    requirements.txt is left without packages: nothing here invokes the functions, and
    packaging the dependencies for Lambda would download them.
    """
    shutil.copy(PROJECT_DIR / "app.py", target / "app.py")
    shutil.copytree(PROJECT_DIR / "chalicelib", target / "chalicelib", ignore=shutil.ignore_patterns("__pycache__"))
    (target / ".chalice").mkdir()
    for source in (PROJECT_DIR / ".chalice").glob("*.json"):
        shutil.copy(source, target / ".chalice" / source.name)
    (target / "requirements.txt").write_text("# No packages: see tests/e2e/test_chalice_deploy.py.\n")
    return target


def _command_environment(moto: Emulator, localstack: Emulator, home: Path) -> dict[str, str]:
    """The environment of every command: moto for AWS, LocalStack for API Gateway, no profile."""
    return {
        **_base_environment(),
        "AWS_ACCESS_KEY_ID": ACCOUNT,
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": moto.endpoint_url,
        "AWS_ENDPOINT_URL_API_GATEWAY": localstack.endpoint_url,
        # An operator's profile or credentials file must not take part.
        "AWS_CONFIG_FILE": str(home / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "PIP_NO_INDEX": "1",
        "PYTHONUNBUFFERED": "1",
    }


def _api_state(apigateway: Any, api_id: str) -> dict[str, Any]:
    """What API Gateway holds of the REST API: settings, stage, authorizers, methods, responses, deployments."""

    def strip(item: dict[str, Any]) -> dict[str, Any]:
        return {name: value for name, value in item.items() if name != "ResponseMetadata"}

    methods = {}
    for resource in apigateway.get_resources(restApiId=api_id, limit=500)["items"]:
        for verb in resource.get("resourceMethods") or {}:
            method = apigateway.get_method(restApiId=api_id, resourceId=resource["id"], httpMethod=verb)
            methods[f"{verb} {resource['path']}"] = strip(method)
    return {
        "rest_api": strip(apigateway.get_rest_api(restApiId=api_id)),
        "stage": strip(apigateway.get_stage(restApiId=api_id, stageName=API_STAGE)),
        "authorizers": apigateway.get_authorizers(restApiId=api_id)["items"],
        "methods": methods,
        "gateway_responses": {
            response["responseType"]: response
            for response in apigateway.get_gateway_responses(restApiId=api_id, limit=500)["items"]
        },
        "deployments": apigateway.get_deployments(restApiId=api_id, limit=500)["items"],
    }


def _account_state(moto: Emulator, localstack: Emulator) -> dict[str, Any]:
    """Everything of the stage in both emulators, by kind; the REST APIs and plans from LocalStack."""
    apigateway = localstack.client("apigateway")
    plans = {}
    for plan in apigateway.get_usage_plans(limit=500)["items"]:
        keys = apigateway.get_usage_plan_keys(usagePlanId=plan["id"], limit=500)["items"]
        plans[plan["name"]] = {**plan, "keys": [key["name"] for key in keys]}
    secrets = moto.client("secretsmanager").list_secrets(IncludePlannedDeletion=True)["SecretList"]
    return {
        "rest_apis": {api["id"]: api["name"] for api in apigateway.get_rest_apis(limit=500)["items"]},
        "usage_plans": plans,
        "api_keys": [key["name"] for key in apigateway.get_api_keys(limit=500)["items"]],
        "moto_rest_apis": moto.client("apigateway").get_rest_apis()["items"],
        "functions": sorted(f["FunctionName"] for f in moto.client("lambda").list_functions()["Functions"]),
        "tenant_access_role_arns": {
            f["FunctionName"]: f.get("Environment", {}).get("Variables", {}).get("TENANT_ACCESS_ROLE_ARN")
            for f in moto.client("lambda").list_functions()["Functions"]
        },
        "roles": sorted(
            role["RoleName"] for role in moto.client("iam").list_roles()["Roles"] if role["RoleName"].startswith(PREFIX)
        ),
        "tables": moto.client("dynamodb").list_tables()["TableNames"],
        "user_pools": [pool["Name"] for pool in moto.client("cognito-idp").list_user_pools(MaxResults=60)["UserPools"]],
        "secrets": {secret["Name"]: secret.get("DeletedDate") for secret in secrets},
        "log_groups": [group["logGroupName"] for group in moto.client("logs").describe_log_groups()["logGroups"]],
        "alarms": [alarm["AlarmName"] for alarm in moto.client("cloudwatch").describe_alarms()["MetricAlarms"]],
        "topics": [topic["TopicArn"] for topic in moto.client("sns").list_topics()["Topics"]],
    }


def _walk_through(run: Run, env: dict[str, str]) -> None:
    """Every step in order, each followed by a snapshot; stops at the first command that fails."""
    chalice = str(Path(sys.executable).parent / "chalice")
    script = [sys.executable, "-m"]
    project = ["--stage", STAGE, "--project-dir", str(run.project)]
    plan = [
        ("bootstrap", [*script, "scripts.deploy.bootstrap", *project], PROJECT_DIR),
        ("deploy", [chalice, "deploy", "--stage", STAGE], run.project),
        ("tenant", [*script, "scripts.tenants", *project, "create", TENANT, "--tier", TENANT_TIER], PROJECT_DIR),
        ("post-deploy", [*script, "scripts.deploy.post_deploy", *project, "--alarm-email", ALARM_EMAIL], PROJECT_DIR),
        (
            "post-deploy again",
            [*script, "scripts.deploy.post_deploy", *project, "--alarm-email", ALARM_EMAIL],
            PROJECT_DIR,
        ),
        ("second deploy", [chalice, "deploy", "--stage", STAGE], run.project),
        ("post-deploy after the second deploy", [*script, "scripts.deploy.post_deploy", *project], PROJECT_DIR),
        ("chalice delete", [chalice, "delete", "--stage", STAGE], run.project),
        ("teardown", [*script, "scripts.deploy.teardown", *project], PROJECT_DIR),
        ("teardown again", [*script, "scripts.deploy.teardown", *project], PROJECT_DIR),
    ]
    for name, argv, cwd in plan:
        result = subprocess.run(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
        )
        run.steps[name] = Step(name, result)
        if result.returncode != 0:
            return
        snapshot = _account_state(run.moto, run.localstack)
        snapshot["deployed"] = run.deployed_record()
        for api_id in snapshot["rest_apis"]:
            snapshot[f"api {api_id}"] = _api_state(run.localstack.client("apigateway"), api_id)
        run.snapshots[name] = snapshot


@pytest.fixture(scope="module")
def run(moto_server: Emulator, localstack: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The whole run, once for the module."""
    project = _copy_project(tmp_path_factory.mktemp("project"))
    home = tmp_path_factory.mktemp("home")
    result = Run(project, moto_server, localstack)
    _walk_through(result, _command_environment(moto_server, localstack, home))
    return result


# --- checks ---------------------------------------------------------------------------------


def _api_id(run: Run) -> str:
    """The REST API the first `chalice deploy` made."""
    return run.snapshot("deploy")["deployed"]["rest_api"]["rest_api_id"]


def _function_arn(name: str) -> str:
    """The ARN moto gives the function of that name."""
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def _unsupported(step: Step) -> list[str]:
    """The resources the step reported as not supported by the endpoint."""
    prefix = "not supported by this endpoint: "
    return [line[len(prefix) :].split(" (")[0] for line in step.lines if line.startswith(prefix)]


def _assert_post_deployed(run: Run, snapshot: dict[str, Any]) -> None:
    """The REST API in LocalStack as post-deploy leaves it."""
    api_id = _api_id(run)
    api = snapshot[f"api {api_id}"]
    assert api["rest_api"]["apiKeySource"] == "AUTHORIZER"
    for response_type, wanted in gateway_responses().items():
        current = api["gateway_responses"][response_type]
        assert current.get("statusCode") == wanted.get("statusCode"), response_type
        assert current.get("responseTemplates") == wanted["responseTemplates"], response_type
        assert (current.get("responseParameters") or {}) == wanted.get("responseParameters", {}), response_type
        assert current.get("defaultResponse") is False, response_type
    stage = api["stage"]
    assert stage["tracingEnabled"] is True
    served = next(item for item in api["deployments"] if item["id"] == stage["deploymentId"])
    # The stage serves post-deploy's own deployment, the one that carries these settings.
    assert served.get("description") == deployment_description()
    for tier in TIERS.values():
        plan = snapshot["usage_plans"][usage_plan_name(PREFIX, tier)]
        assert plan["apiStages"] == [{"apiId": api_id, "stage": API_STAGE}]
        assert plan["throttle"] == {"rateLimit": tier.rate_per_second, "burstLimit": tier.burst}
        assert plan["quota"]["limit"] == tier.monthly_quota and plan["quota"]["period"] == "MONTH"
        assert plan["keys"] == ([f"{PREFIX}-{TENANT}"] if tier.name == TENANT_TIER else [])
    authorizer_arn = _function_arn(f"{PREFIX}-tenant_authorizer")
    # Every authorizer is the tenant authorizer: LocalStack 2026.3.0 handles PutRestApi's overwrite
    # mode as a merge and adds one more copy of it on each re-import.
    described = {(a["name"], a["type"], a["identitySource"], a["authorizerUri"]) for a in api["authorizers"]}
    assert len(described) == 1
    name, kind, source, uri = described.pop()
    assert (name, kind, source) == ("tenant_authorizer", "TOKEN", "method.request.header.Authorization")
    assert authorizer_arn in uri


def test_bootstrap_makes_the_table_pool_and_secret_in_moto_and_the_usage_plans_in_localstack(run: Run):
    step = run.succeeded("bootstrap")
    snapshot = run.snapshot("bootstrap")
    assert step.lines[-1].startswith("[bootstrap] done:")
    assert snapshot["tables"] == [TABLE_NAME]
    assert snapshot["user_pools"] == [PREFIX]
    assert list(snapshot["secrets"]) == [f"{PREFIX}/pagination"]
    assert sorted(snapshot["usage_plans"]) == sorted(usage_plan_name(PREFIX, tier) for tier in TIERS.values())
    assert all(plan["apiStages"] == [] for plan in snapshot["usage_plans"].values())
    assert run.moto.client("apigateway").get_usage_plans()["items"] == [], "API Gateway calls go to LocalStack only"
    config = json.loads((run.project / ".chalice" / "config.json").read_text())
    environment = config["stages"][STAGE]["environment_variables"]
    assert environment["TOKEN_ISSUER"].startswith(f"https://cognito-idp.{REGION}.amazonaws.com/{REGION}_")
    assert environment["PAGINATION_SECRET_ARN"].startswith(f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:")


def test_chalice_deploy_creates_the_roles_and_functions_in_moto_and_imports_the_api_into_localstack(run: Run):
    step = run.succeeded("deploy")
    snapshot = run.snapshot("deploy")
    record = snapshot["deployed"]
    api_id = _api_id(run)

    assert "Creating Rest API" in step.output
    assert snapshot["rest_apis"] == {api_id: APP_NAME}
    assert snapshot["moto_rest_apis"] == []
    # One role per function or one shared: whichever .chalice/config.json asks for, as recorded.
    roles = sorted({resource["role_name"] for resource in record.values() if resource["resource_type"] == "iam_role"})
    # Beside Chalice's: the role the API function assumes per tenant, which bootstrap made.
    assert roles and snapshot["roles"] == sorted([*roles, f"{PREFIX}-tenant-access"])
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/{PREFIX}-tenant-access"
    assert snapshot["tenant_access_role_arns"][PREFIX] == role_arn
    functions = sorted(r["lambda_arn"] for r in record.values() if r["resource_type"] == "lambda_function")
    assert functions == sorted(map(_function_arn, snapshot["functions"]))
    assert snapshot["functions"] == [PREFIX, f"{PREFIX}-tenant_authorizer"]

    api = snapshot[f"api {api_id}"]
    # What post-deploy exists for: Chalice's import leaves the key source at HEADER.
    assert api["rest_api"].get("apiKeySource", "HEADER") == "HEADER"
    assert api["stage"]["tracingEnabled"] is True, "xray: true in the stage's config"
    [authorizer] = api["authorizers"]
    assert authorizer["type"] == "TOKEN" and _function_arn(f"{PREFIX}-tenant_authorizer") in authorizer["authorizerUri"]
    routes = {
        f"{verb} {path}": entry for path, verbs in application.app.routes.items() for verb, entry in verbs.items()
    }
    assert set(api["methods"]) == set(routes)
    for route, entry in routes.items():
        method = api["methods"][route]
        assert _function_arn(PREFIX) in method["methodIntegration"]["uri"], route
        if entry.authorizer is None:
            assert method["authorizationType"] == "NONE", route
            continue
        assert method["authorizationType"] == "CUSTOM", route
        assert method["authorizerId"] == authorizer["id"], route
        assert method["apiKeyRequired"] is True, route


def test_post_deploy_sets_up_the_api_in_localstack_and_the_monitoring_in_moto(run: Run):
    step = run.succeeded("post-deploy")
    snapshot = run.snapshot("post-deploy")
    api_id = _api_id(run)

    assert f"REST API {api_id}" in step.lines[0]
    assert f"updated: API key source of REST API {api_id} (HEADER -> AUTHORIZER)" in step.lines
    # The tenants command put the key in its tier's plan already.
    assert f"unchanged: API key of tenant {TENANT} (" in step.output
    _assert_post_deployed(run, snapshot)
    assert _unsupported(step) == UNSUPPORTED_BY_MOTO
    assert sorted(snapshot["log_groups"]) == [f"/aws/lambda/{name}" for name in snapshot["functions"]]
    assert snapshot["alarms"] and all(name.startswith(f"{PREFIX}-") for name in snapshot["alarms"])
    assert [arn.rsplit(":", 1)[1] for arn in snapshot["topics"]] == [f"{PREFIX}-alarms"]


def test_post_deploy_run_again_changes_nothing(run: Run):
    step = run.succeeded("post-deploy again")
    assert step.lines[-1].startswith("no changes"), step.output
    assert run.snapshot("post-deploy again") == run.snapshot("post-deploy")


def test_a_second_chalice_deploy_updates_the_same_api_in_place(run: Run):
    step = run.succeeded("second deploy")
    snapshot = run.snapshot("second deploy")
    api_id = _api_id(run)

    assert "Updating rest API" in step.output and "Creating Rest API" not in step.output
    assert "Creating lambda function" not in step.output and "Creating IAM role" not in step.output
    assert snapshot["rest_apis"] == {api_id: APP_NAME}
    assert snapshot["deployed"]["rest_api"]["rest_api_id"] == api_id
    assert snapshot["functions"] == run.snapshot("deploy")["functions"]
    assert snapshot["roles"] == run.snapshot("deploy")["roles"]


def test_post_deploy_after_the_second_deploy_brings_the_stage_back(run: Run):
    step = run.succeeded("post-deploy after the second deploy")
    snapshot = run.snapshot("post-deploy after the second deploy")
    # Chalice's deploy put its own deployment on the stage, without the API settings: post-deploy redeploys.
    assert "created: deployment of stage api" in step.output
    _assert_post_deployed(run, snapshot)
    assert _unsupported(step) == UNSUPPORTED_BY_MOTO


def test_chalice_delete_then_teardown_leave_nothing_in_either_emulator(run: Run):
    run.succeeded("chalice delete")
    step = run.succeeded("teardown")
    again = run.succeeded("teardown again")
    snapshot = run.snapshot("teardown again")

    api_id = _api_id(run)
    for tier in TIERS.values():
        # LocalStack keeps a plan's binding to the API `chalice delete` removed, and refuses to remove it.
        line = f"[teardown] deleted: usage plan {usage_plan_name(PREFIX, tier)} (was bound to {api_id}:api, deleted before)"
        assert line in step.lines, step.output
    assert f"[teardown] deleted: API key {PREFIX}-{TENANT}" in step.lines
    assert snapshot["rest_apis"] == {} and snapshot["moto_rest_apis"] == []
    assert snapshot["usage_plans"] == {}
    assert snapshot["api_keys"] == []
    assert snapshot["functions"] == []
    assert snapshot["roles"] == []
    assert snapshot["tables"] == []
    assert snapshot["user_pools"] == []
    assert snapshot["log_groups"] == []
    assert snapshot["alarms"] == []
    assert snapshot["topics"] == []
    # Secrets are recoverable for 7 days (without --force), as in AWS: scheduled, not gone. The
    # tenant's client secret was never copied there (store_tenant_secrets is off by default).
    assert set(snapshot["secrets"]) == {f"{PREFIX}/pagination"}
    assert all(snapshot["secrets"].values())
    statuses = {line.split(": ", 1)[0] for line in again.lines[1:-1]}
    assert statuses <= {"[teardown] absent", "[teardown] not supported by this endpoint"}, again.output


def test_moto_still_cannot_import_chalices_swagger_which_is_why_api_gateway_is_localstacks(moto_server: Emulator):
    """If a moto upgrade lifts this, LocalStack is no longer needed for `chalice deploy`."""
    deployed = {
        "api_handler_arn": _function_arn(PREFIX),
        "api_handler_name": PREFIX,
        "lambda_functions": {f"{PREFIX}-tenant_authorizer": {"arn": _function_arn(f"{PREFIX}-tenant_authorizer")}},
    }
    swagger = SwaggerGenerator(REGION, deployed).generate_swagger(application.app)
    assert swagger["swagger"] == "2.0" and "description" not in swagger["info"]
    apigateway = moto_server.client("apigateway")
    try:
        with pytest.raises(ClientError) as refused:
            apigateway.import_rest_api(body=json.dumps(swagger), parameters={"endpointConfigurationTypes": "EDGE"})
        described = {**swagger, "info": {**swagger["info"], "description": APP_NAME}}
        with pytest.raises(ClientError) as still_refused:
            apigateway.import_rest_api(body=json.dumps(described), parameters={"endpointConfigurationTypes": "EDGE"})
    finally:
        # moto may create the API before it refuses the document.
        for api in apigateway.get_rest_apis()["items"]:
            apigateway.delete_rest_api(restApiId=api["id"])
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert still_refused.value.response["Error"]["Message"] == "Only OpenAPI 3.x.x are currently supported"
