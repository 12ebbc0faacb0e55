"""`chalice deploy --stage dev` against moto server on loopback, and post-deploy after it.

`chalice deploy` cannot finish against moto 5.2.5, and nothing in the project can change that:
Chalice creates the IAM role and both Lambda functions, then imports its Swagger 2.0 document
with ImportRestApi. moto reads `info.description` unconditionally (KeyError, HTTP 500), and
Chalice's document has no description and no setting to add one. With a description, moto
would still refuse the document: its import (and PutRestApi, which `chalice deploy` uses once
an API is recorded in .chalice/deployed) accepts only OpenAPI 3. These tests keep that
failure pinned down, so that a moto or Chalice upgrade that lifts it is noticed, and then
run post-deploy as an operator would, against the same server, on an API created the way
`terraform apply` would create it.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest
import requests
from botocore.exceptions import ClientError
from chalice.deploy.swagger import SwaggerGenerator

import app as application
from chalicelib import keys
from chalicelib.registry import ACTIVE
from chalicelib.repository import to_item
from chalicelib.schema import table_definition
from tests.e2e.conftest import PROJECT_DIR, free_port, http_session

pytestmark = pytest.mark.e2e

REGION = "us-east-1"
STAGE = "dev"
APP_NAME = "tenant-api"
TABLE_NAME = "tenant-api-dev"
FUNCTIONS = ["tenant-api-dev", "tenant-api-dev-tenant_authorizer"]
SERVER_START_SECONDS = 30
COMMAND_TIMEOUT_SECONDS = 90
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}


@dataclass
class MotoServer:
    """moto server on 127.0.0.1, its log, and boto3 clients for it."""

    process: subprocess.Popen
    endpoint_url: str
    log_path: Path

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def environment(self) -> dict[str, str]:
        """The environment for a command that must reach this server and nothing else."""
        inherited = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("AWS_") and name.lower() not in ("http_proxy", "https_proxy", "all_proxy")
        }
        return {
            **inherited,
            **CREDENTIALS,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            # The project copy has no dependencies to package, and pip must not look for any.
            "PIP_NO_INDEX": "1",
            "PYTHONUNBUFFERED": "1",
        }


def _wait_until_up(server: MotoServer, session: requests.Session) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"moto server exited with code {server.process.returncode}:\n{server.log()}")
        try:
            session.get(f"{server.endpoint_url}/moto-api/", timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    pytest.fail(f"moto server did not answer within {SERVER_START_SECONDS} s:\n{server.log()}")


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """A moto server of its own, stopped (with anything it started) at the end of the module."""
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = MotoServer(process, f"http://127.0.0.1:{port}", log_path)
    try:
        _wait_until_up(server, http_session())
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `chalice deploy` reads, in a temporary directory, so .chalice/deployed stays out of the repository.

    requirements.txt is left without packages: the dependencies play no part in where the
    deploy stops, and packaging them would need the package index.
    """
    target = tmp_path_factory.mktemp("project")
    shutil.copy(PROJECT_DIR / "app.py", target / "app.py")
    shutil.copytree(PROJECT_DIR / "chalicelib", target / "chalicelib", ignore=shutil.ignore_patterns("__pycache__"))
    (target / ".chalice").mkdir()
    for name in ("config.json", "policy-dev.json", "policy-prod.json"):
        shutil.copy(PROJECT_DIR / ".chalice" / name, target / ".chalice" / name)
    (target / "requirements.txt").write_text("# No packages: see tests/e2e/test_chalice_deploy.py.\n")
    return target


@pytest.fixture(scope="module")
def chalice_deploy(moto_server: MotoServer, project_copy: Path) -> subprocess.CompletedProcess[str]:
    """`chalice deploy --stage dev` from the project copy against the moto server, once for the module."""
    chalice = Path(sys.executable).parent / "chalice"
    return subprocess.run(
        [str(chalice), "deploy", "--stage", STAGE],
        cwd=project_copy,
        env=moto_server.environment(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
    )


def test_chalice_deploy_stops_at_import_rest_api_because_moto_requires_info_description(
    chalice_deploy: subprocess.CompletedProcess[str], moto_server: MotoServer
) -> None:
    output = chalice_deploy.stdout + chalice_deploy.stderr
    assert chalice_deploy.returncode != 0, output
    assert "ImportRestApi" in output and "(500)" in output, output
    # The server's side of the 500: moto's import_rest_api reads info.description unconditionally.
    assert 'description = api_doc["info"]["description"]' in moto_server.log()
    assert "KeyError: 'description'" in moto_server.log()


def test_chalice_deploy_got_as_far_as_the_functions_and_created_no_api(
    chalice_deploy: subprocess.CompletedProcess[str], moto_server: MotoServer, project_copy: Path
) -> None:
    functions = {function["FunctionName"] for function in moto_server.client("lambda").list_functions()["Functions"]}
    assert set(FUNCTIONS) <= functions
    assert moto_server.client("apigateway").get_rest_apis()["items"] == []
    # Chalice records nothing of a failed deploy.
    assert not (project_copy / ".chalice" / "deployed" / f"{STAGE}.json").exists()


def _chalice_swagger(moto_server: MotoServer) -> dict[str, Any]:
    """The Swagger document `chalice deploy` sends, for the functions it created on the server."""
    lambda_client = moto_server.client("lambda")
    arns = {name: lambda_client.get_function(FunctionName=name)["Configuration"]["FunctionArn"] for name in FUNCTIONS}
    deployed = {
        "api_handler_arn": arns[FUNCTIONS[0]],
        "api_handler_name": FUNCTIONS[0],
        "lambda_functions": {FUNCTIONS[1]: {"arn": arns[FUNCTIONS[1]]}},
    }
    return SwaggerGenerator(REGION, deployed).generate_swagger(application.app)


def test_with_a_description_moto_still_refuses_chalices_swagger_2_document(
    chalice_deploy: subprocess.CompletedProcess[str], moto_server: MotoServer
) -> None:
    swagger = _chalice_swagger(moto_server)
    assert swagger["swagger"] == "2.0" and "description" not in swagger["info"]
    described = copy.deepcopy(swagger)
    described["info"]["description"] = "tenant API"
    apigateway = moto_server.client("apigateway")

    try:
        with pytest.raises(ClientError) as imported:
            apigateway.import_rest_api(body=json.dumps(described), parameters={"endpointConfigurationTypes": "EDGE"})
        # And the update path, taken once .chalice/deployed names an API: PutRestApi in overwrite mode.
        api_id = apigateway.create_rest_api(name="swagger-probe")["id"]
        with pytest.raises(ClientError) as put:
            apigateway.put_rest_api(restApiId=api_id, mode="overwrite", body=json.dumps(swagger))
    finally:
        # moto creates the API before it refuses the document; leave the server as chalice deploy left it.
        for api in apigateway.get_rest_apis()["items"]:
            apigateway.delete_rest_api(restApiId=api["id"])

    for refusal in (imported.value, put.value):
        assert refusal.response["Error"]["Code"] == "BadRequestException"
        assert refusal.response["Error"]["Message"] == "Only OpenAPI 3.x.x are currently supported"


def _create_stage_like_terraform(moto_server: MotoServer) -> str:
    """The REST API and its stage "api" as `terraform apply` of the Chalice package creates them."""
    apigateway = moto_server.client("apigateway")
    api_id = apigateway.create_rest_api(name=APP_NAME)["id"]
    root = apigateway.get_resources(restApiId=api_id)["items"][0]["id"]
    health = apigateway.create_resource(restApiId=api_id, parentId=root, pathPart="health")["id"]
    apigateway.put_method(restApiId=api_id, resourceId=health, httpMethod="GET", authorizationType="NONE")
    apigateway.put_integration(restApiId=api_id, resourceId=health, httpMethod="GET", type="MOCK")
    apigateway.create_deployment(restApiId=api_id, stageName="api")
    return api_id


def _create_tenant(moto_server: MotoServer, tenant_id: str, tier: str) -> str:
    """A tenant's API key and registry record, as the tenants script writes them; returns the key id."""
    key = moto_server.client("apigateway").create_api_key(name=f"tenant-api-dev-{tenant_id}", enabled=True)
    record = {
        **keys.tenant_meta_key(tenant_id),
        "tenant_id": tenant_id,
        "tier": tier,
        "status": ACTIVE,
        "client_id": f"{tenant_id}client",
        "api_key_id": key["id"],
        "api_key_value": key["value"],
    }
    moto_server.client("dynamodb").put_item(TableName=TABLE_NAME, Item=to_item(record))
    return key["id"]


def _post_deploy(moto_server: MotoServer, project_copy: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scripts.post_deploy", "--stage", STAGE, "--project-dir", str(project_copy), *args],
        cwd=PROJECT_DIR,
        env=moto_server.environment(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
    )


def test_post_deploy_against_moto_server_sets_up_the_stage_and_a_rerun_changes_nothing(
    chalice_deploy: subprocess.CompletedProcess[str], moto_server: MotoServer, project_copy: Path
) -> None:
    api_id = _create_stage_like_terraform(moto_server)
    moto_server.client("dynamodb").create_table(**table_definition(TABLE_NAME))
    key_id = _create_tenant(moto_server, "acme", "standard")

    first = _post_deploy(moto_server, project_copy, "--alarm-email", "oncall@example.com")

    assert first.returncode == 0, first.stdout + first.stderr
    lines = first.stdout.splitlines()
    assert f"REST API {api_id}" in lines[0]
    assert "created: usage plan tenant-api-dev-standard" in first.stdout
    assert f"created: API key of tenant acme ({key_id} in usage plan tenant-api-dev-standard)" in first.stdout
    # What moto server lacks is reported as such, never as done.
    unsupported = [line for line in lines if line.startswith("not supported by this endpoint")]
    assert [line.split(": ", 1)[1].split(" (")[0] for line in unsupported] == [
        "saved query tenant-api-dev/errors-for-a-tenant",
        "saved query tenant-api-dev/slowest-requests",
        "saved query tenant-api-dev/security-events",
        "X-Ray sampling rule tenant-api-dev",
    ]
    assert "(DescribeQueryDefinitions answered HTTP 500)" in unsupported[0]
    assert "(GetSamplingRules answered HTTP 404)" in unsupported[-1]
    apigateway = moto_server.client("apigateway")
    assert apigateway.get_rest_api(restApiId=api_id)["apiKeySource"] == "AUTHORIZER"
    assert apigateway.get_stage(restApiId=api_id, stageName="api")["tracingEnabled"] is True
    deployments = apigateway.get_deployments(restApiId=api_id)["items"]

    second = _post_deploy(moto_server, project_copy, "--alarm-email", "oncall@example.com")

    assert second.returncode == 0, second.stdout + second.stderr
    assert second.stdout.splitlines()[-1].startswith("no changes")
    assert apigateway.get_deployments(restApiId=api_id)["items"] == deployments
