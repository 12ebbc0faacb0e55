"""Each deployed function's IAM policy allows exactly the AWS calls its code makes, recorded while every route runs.

The API handler's own role makes no DynamoDB call: it assumes the tenant-access role for the
tenant of the request, and that role's one policy (with the tenant filled in from the session
tag) must allow exactly the handler's DynamoDB calls.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest
from chalice.cli.factory import CLIFactory

import app as application
from chalicelib.store import keys
from chalicelib.store.orders import OrderInputs, OrderRepository
from scripts import tenant_access_role
from scripts.deploy.iam_permissions import (
    Grant,
    Permission,
    allows,
    grants,
    leading_key_shape,
    matches,
    required_permissions,
    with_principal_tags,
)
from scripts.deploy.operation_recorder import Operation, OperationRecorder
from scripts.stage_config import LOCKED_PACKAGING
from tests.support.api import Api
from tests.support.project import PROJECT_DIR
from tests.support.settings import Environment
from tests.support.tenants import GLOBEX, TABLE_NAME, TENANT_ACCESS_ROLE_ARN, TENANTS

STAGES = ("dev", "prod")
ACCOUNT = "123456789012"
HANDLER, AUTHORIZER = "api_handler", "tenant_authorizer"
SECRET_NAME = "pagination-key-of-the-test"
# What every function needs from the platform rather than from its code: Lambda writes its logs
# with the function's role, and with active tracing the X-Ray segments too.
LOG_ACTIONS = {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}
XRAY_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def function_config(stage: str, function: str) -> Any:
    """Chalice's own view of one function's settings in the stage (what `chalice deploy` would use)."""
    return CLIFactory(str(PROJECT_DIR)).create_config_obj(chalice_stage_name=stage).scope(stage, function)


def policy_of(stage: str, function: str) -> dict[str, Any]:
    config = function_config(stage, function)
    assert config.autogen_policy is False, f"{function} in {stage} would get Chalice's generated policy"
    return json.loads((PROJECT_DIR / ".chalice" / config.iam_policy_file).read_text())


def function_name(stage: str, function: str) -> str:
    app_name = function_config(stage, function).app_name
    return f"{app_name}-{stage}" if function == HANDLER else f"{app_name}-{stage}-{function}"


def as_deployed(permission: Permission, stage: str) -> Permission:
    """The permission as the stage would ask it: its own table name instead of the test's."""
    config = function_config(stage, HANDLER)
    resource = permission.resource.replace(f"table/{TABLE_NAME}", f"table/{config.environment_variables['TABLE_NAME']}")
    resource = resource.replace(f"secret:{SECRET_NAME}", f"secret:{config.app_name}-{stage}/pagination")
    role = tenant_access_role.role_name(f"{config.app_name}-{stage}")
    resource = resource.replace(TENANT_ACCESS_ROLE_ARN.split(":role/")[1], role)
    return Permission(permission.action, resource, permission.leading_keys)


@pytest.fixture
def recorded(api: Api, env: Environment, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Operation]]:
    """Every AWS call of the authorizer and of the API handler while each route runs, each path taken.

    The pagination key comes from Secrets Manager, as in a deployed stage.
    """
    secret = boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name=SECRET_NAME, SecretString="k" * 64
    )
    env.set(PAGINATION_SECRET=None, PAGINATION_SECRET_ARN=secret["ARN"])
    recorder = OperationRecorder()
    authorize = application.authorize

    def labelled_authorize(*args: Any) -> Any:
        with recorder.acting_as(AUTHORIZER):
            return authorize(*args)

    monkeypatch.setattr(application, "authorize", labelled_authorize)
    with recorder, recorder.acting_as(HANDLER):
        exercise_every_route(api, monkeypatch)
    yield recorder.operations


def exercise_every_route(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each route and each of its paths that reaches AWS differently."""
    assert api.get("/health", tenant=None).status == 200
    assert api.get("/openapi.json", tenant=None).status == 200
    first = api.get("/catalog?limit=2")
    assert first.status == 200 and first.json["next_token"]
    assert api.get(f"/catalog?limit=2&next_token={first.json['next_token']}").status == 200
    assert api.get("/catalog/prod-001").status == 200
    assert api.get("/catalog/prod-404").status == 404
    item = [{"product_id": "prod-001", "quantity": 1}]
    assert api.post_order(item).status == 201
    placed = api.post_order(item, idempotency_key="key-1")
    assert placed.status == 201
    assert api.post_order(item, idempotency_key="key-1").header("Idempotent-Replayed") == "true"
    assert api.post_order([{"product_id": "prod-002", "quantity": 99}]).status == 409
    # A concurrent request with the same key that wins between the read and the write: the
    # loser reads the winner's record. Played by hiding the record from the first read.
    read_inputs = OrderRepository.read_inputs

    def read_without_record(self: OrderRepository, *args: Any, **kwargs: Any) -> OrderInputs:
        monkeypatch.setattr(OrderRepository, "read_inputs", read_inputs)
        return OrderInputs(products=read_inputs(self, *args, **kwargs).products, earlier=None)

    monkeypatch.setattr(OrderRepository, "read_inputs", read_without_record)
    raced = api.post_order(item, idempotency_key="key-1")
    assert raced.status == 201 and raced.json["order_id"] == placed.json["order_id"]
    orders = api.get("/orders?limit=1")
    assert orders.status == 200 and orders.json["next_token"]
    assert api.get(f"/orders?limit=1&next_token={orders.json['next_token']}").status == 200
    assert api.get(f"/orders/{placed.json['order_id']}").status == 200
    assert api.get("/orders/ord_00000000000000000000000000").status == 404
    assert api.get("/catalog", tenant=GLOBEX).status == 200


def code_permissions(
    operations: list[Operation], function: str, stage: str, *, tenant_data: bool = False
) -> list[Permission]:
    """The permissions the function's calls need; the handler's DynamoDB calls (tenant_data) apart from its own."""
    found = []
    for operation in operations:
        if operation.made_by != function:
            continue
        if function == HANDLER and (operation.service == "dynamodb") != tenant_data:
            continue
        found.extend(as_deployed(p, stage) for p in required_permissions(operation, ACCOUNT))
    return found


def tenant_access_policy(stage: str) -> dict[str, Any]:
    """The tenant-access role's policy as bootstrap and Terraform make it for the stage's table."""
    table = function_config(stage, HANDLER).environment_variables["TABLE_NAME"]
    return tenant_access_role.access_policy(f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{table}")


def tenant_of(permission: Permission) -> str:
    """The one tenant whose partitions the call names (a call never names two tenants')."""
    tenants = {key.split("#")[1] for key in permission.leading_keys or ()}
    assert len(tenants) == 1, permission
    return tenants.pop()


def platform_grants(policy: dict[str, Any]) -> set[Grant]:
    return {grant for grant in grants(policy) if grant.action.split(":")[0] in ("logs", "xray")}


def covers(grant: Grant, permission: Permission) -> bool:
    if grant.action != permission.action or not matches(grant.resource, permission.resource):
        return False
    if grant.leading_key is None:
        return True
    return any(leading_key_shape(key) == grant.leading_key for key in permission.leading_keys or ())


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("function", [HANDLER, AUTHORIZER])
def test_each_function_is_allowed_every_call_its_code_makes_and_nothing_else(recorded, stage: str, function: str):
    policy = policy_of(stage, function)
    needed = code_permissions(recorded, function, stage)
    assert needed, f"no calls recorded for {function}"
    refused = [permission for permission in needed if not allows(policy, permission)]
    assert refused == [], f"{function}'s policy ({stage}) refuses calls its code makes"
    unused = [
        grant
        for grant in grants(policy) - platform_grants(policy)
        if not any(covers(grant, permission) for permission in needed)
    ]
    assert unused == [], f"{function}'s policy ({stage}) grants what its code never does"


def test_the_authorizer_only_reads_the_registry(recorded):
    actions = {p.action for p in code_permissions(recorded, AUTHORIZER, "dev")}
    assert actions == {"dynamodb:GetItem"}
    shapes = {leading_key_shape(key) for p in code_permissions(recorded, AUTHORIZER, "dev") for key in p.leading_keys}
    assert shapes == {"CLIENT#*", "TENANT#*"}


@pytest.mark.parametrize("stage", STAGES)
def test_the_authorizer_cannot_reach_tenant_data_write_or_read_the_secret(stage: str):
    policy = policy_of(stage, AUTHORIZER)
    table = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/tenant-api-{stage}"
    tenant_data = [
        keys.product_key("acme", "prod-001")["PK"],
        keys.order_key("acme", "ord_01ARZ3NDEKTSV4RRFFQ69G5FAV")["PK"],
        keys.idempotency_key("acme", "0" * 64)["PK"],
        keys.catalog_partition("acme", 0),
    ]
    registry = [keys.client_lookup_key("acmeclient0001")["PK"], keys.tenant_meta_key("acme")["PK"]]
    for key in registry:
        assert allows(policy, Permission("dynamodb:GetItem", table, (key,)))
    for key in tenant_data:
        assert not allows(policy, Permission("dynamodb:GetItem", table, (key,))), key
    for action in ("PutItem", "UpdateItem", "DeleteItem", "BatchGetItem", "Query", "Scan", "BatchWriteItem"):
        for key in registry:
            assert not allows(policy, Permission(f"dynamodb:{action}", table, (key,))), action
    secret = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:tenant-api-{stage}/pagination-AbCdEf"
    assert not allows(policy, Permission("secretsmanager:GetSecretValue", secret))
    # Another stage's table is out of reach too.
    other = "prod" if stage == "dev" else "dev"
    assert not allows(policy, Permission("dynamodb:GetItem", table.replace(stage, other), (registry[0],)))


@pytest.mark.parametrize("stage", STAGES)
def test_the_handlers_own_role_reaches_no_item_and_may_assume_only_the_tenant_access_role(stage: str):
    policy = policy_of(stage, HANDLER)
    table = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/tenant-api-{stage}"
    every_kind_of_key = [
        keys.client_lookup_key("acmeclient0001")["PK"],
        keys.tenant_meta_key("acme")["PK"],
        keys.product_key("acme", "prod-001")["PK"],
        keys.order_key("acme", "ord_01ARZ3NDEKTSV4RRFFQ69G5FAV")["PK"],
        keys.idempotency_key("acme", "0" * 64)["PK"],
        keys.catalog_partition("acme", 0),
    ]
    for key in every_kind_of_key:
        for action in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "BatchGetItem", "Query"):
            for resource in (table, f"{table}/index/catalog"):
                assert not allows(policy, Permission(f"dynamodb:{action}", resource, (key,))), (action, key)
    assert not allows(policy, Permission("dynamodb:Scan", table))
    role = f"arn:aws:iam::{ACCOUNT}:role/{tenant_access_role.role_name(f'tenant-api-{stage}')}"
    for action in ("sts:AssumeRole", "sts:TagSession"):
        assert allows(policy, Permission(action, role))
        assert not allows(policy, Permission(action, f"arn:aws:iam::{ACCOUNT}:role/tenant-api-{stage}-api_handler"))
        assert not allows(policy, Permission(action, role.replace(stage, "prod" if stage == "dev" else "dev")))


@pytest.mark.parametrize("stage", STAGES)
def test_the_tenant_access_policy_allows_each_dynamodb_call_of_the_handler_for_its_tenant_only(recorded, stage: str):
    policy = tenant_access_policy(stage)
    needed = code_permissions(recorded, HANDLER, stage, tenant_data=True)
    assert {tenant_of(permission) for permission in needed} >= {"acme", "globex"}
    for permission in needed:
        tenant = tenant_of(permission)
        assert allows(with_principal_tags(policy, {"TenantID": tenant}), permission), permission
        for other in {t.tenant_id for t in TENANTS} - {tenant}:
            assert not allows(with_principal_tags(policy, {"TenantID": other}), permission), (other, permission)


@pytest.mark.parametrize("stage", STAGES)
def test_the_tenant_access_policy_grants_nothing_the_handler_never_does(recorded, stage: str):
    needed = code_permissions(recorded, HANDLER, stage, tenant_data=True)
    policy = with_principal_tags(tenant_access_policy(stage), {"TenantID": "acme"})
    acme = [permission for permission in needed if tenant_of(permission) == "acme"]

    def used(grant: Grant, permission: Permission) -> bool:
        return (
            grant.action == permission.action
            and matches(grant.resource, permission.resource)
            and any(matches(grant.leading_key or "*", key) for key in permission.leading_keys or ())
        )

    unused = [grant for grant in grants(policy) if not any(used(grant, permission) for permission in acme)]
    assert unused == []


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("function", [HANDLER, AUTHORIZER])
def test_logs_and_traces_go_to_the_functions_own_log_group_and_x_ray(stage: str, function: str):
    policy = policy_of(stage, function)
    name = function_name(stage, function)
    group = f"arn:aws:logs:*:*:log-group:/aws/lambda/{name}"
    expected = {Grant(action, resource) for action in LOG_ACTIONS for resource in (group, f"{group}:*")}
    if function_config(stage, function).xray_enabled:
        expected |= {Grant(action, "*") for action in XRAY_ACTIONS}
    assert platform_grants(policy) == expected
    # The handler's log group name is a prefix of the authorizer's: the pattern must not reach it.
    if function == HANDLER:
        other = (
            f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/{function_name(stage, AUTHORIZER)}:log-stream:x"
        )
        assert not allows(policy, Permission("logs:PutLogEvents", other))


def test_each_function_has_its_own_role_in_the_package(tmp_path: Path):
    """`chalice package` gives each function a role of its own, with its own policy file's statements."""
    out = tmp_path / "sam"
    chalice = Path(sys.executable).parent / "chalice"
    environment = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", **LOCKED_PACKAGING}
    packaged = subprocess.run(
        [str(chalice), "package", "--stage", "dev", str(out)],
        cwd=PROJECT_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert packaged.returncode == 0, packaged.stderr
    template = json.loads((out / "sam.json").read_text())["Resources"]
    roles = {
        name: resource["Properties"]["Policies"][0]["PolicyDocument"]
        for name, resource in template.items()
        if resource["Type"] == "AWS::IAM::Role"
    }
    functions = {
        resource["Properties"]["Role"]["Fn::GetAtt"][0]
        for resource in template.values()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    assert len(roles) == 2 and functions == set(roles)
    assert sorted(json.dumps(document, sort_keys=True) for document in roles.values()) == sorted(
        json.dumps(policy_of("dev", function), sort_keys=True) for function in (HANDLER, AUTHORIZER)
    )


def test_an_unused_grant_or_a_missing_one_is_named():
    """The comparison itself: a grant no call needs is reported, and a call no grant covers is refused."""
    policy = {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["dynamodb:GetItem", "dynamodb:DeleteItem"],
                "Resource": "arn:aws:dynamodb:*:*:table/t",
                "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["TENANT#*#PRODUCT#*"]}},
            }
        ]
    }
    get = Permission("dynamodb:GetItem", "arn:aws:dynamodb:us-east-1:1:table/t", ("TENANT#acme#PRODUCT#prod-001",))
    put = Permission("dynamodb:PutItem", get.resource, get.leading_keys)
    assert allows(policy, get) and not allows(policy, put)
    unused = [grant for grant in grants(policy) if not covers(grant, get)]
    assert [grant.action for grant in unused] == ["dynamodb:DeleteItem"]
