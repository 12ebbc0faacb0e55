"""The operator policy covers every call the operator scripts and `chalice deploy` make, and the checked-in copy is current.

The scripts' calls are recorded by running the scripts' own tests (against in-process moto) with
the tests.operator_calls plugin; Chalice's are read from its source by scripts.deploy.chalice_calls.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from scripts.deploy import operator_permissions, operator_policy
from scripts.deploy.chalice_calls import client_methods, operations_of, resource_types
from scripts.deploy.iam_permissions import Permission, allows, matches
from scripts.deploy.post_deploy import deployment_of
from scripts.monitoring import insight_rules
from scripts.stage_config import read_stage_config
from tests.support.project import PROJECT_DIR

# The recording subprocess and its output file, once started for this session.
RECORDING = pytest.StashKey[tuple[subprocess.Popen, Path]]()
STAGES = ("dev", "prod")
# The tests that run the operator scripts: bootstrap, post-deploy, teardown, the tenants command
# (and tenant_lifecycle under it), the layout migration, and the provisioning steps they share.
SCRIPT_TESTS = (
    "tests/integration/test_bootstrap.py",
    "tests/integration/test_post_deploy.py",
    "tests/integration/test_teardown.py",
    "tests/integration/test_tenants_cli.py",
    "tests/integration/test_tenant_data.py",
    "tests/integration/test_migrate_layout.py",
    "tests/integration/test_provision.py",
)


def start_recording(output: Path) -> subprocess.Popen:
    """Start the scripts' tests in a subprocess that records their calls into output."""
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.operator_calls", "-p", "no:cacheprovider", *SCRIPT_TESTS],
        cwd=PROJECT_DIR,
        env={**os.environ, "OPERATOR_CALLS_FILE": str(output)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture(scope="module")
def script_calls(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, str]]:
    """The permission each recorded call of the scripts needed: operation, action, resource."""
    # tests/conftest.py starts the recording when the session is collected, so that it runs
    # beside the other tests instead of after them; run on its own, this module starts it here.
    started = request.config.stash.get(RECORDING, None)
    if started is None:
        output = tmp_path_factory.mktemp("operator-calls") / "calls.jsonl"
        started = (start_recording(output), output)
    process, output = started
    log, _ = process.communicate(timeout=1500)
    # Those tests judge the scripts; here only the calls matter, so a failed test there does not
    # stop this check (exit status 1), but a run that could not start does.
    assert process.returncode in (0, 1), log[-6000:]
    return [json.loads(line) for line in output.read_text().splitlines()]


def policy(stage: str) -> dict[str, Any]:
    return json.loads(operator_policy.policy_path(PROJECT_DIR, stage).read_text())


def policy_actions(document: dict[str, Any]) -> set[str]:
    actions: set[str] = set()
    for statement in document["Statement"]:
        actions.update(statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
    return actions


def as_deployed(call: dict[str, str]) -> tuple[str, Permission]:
    """The stage a recorded call worked on, and its permission as that stage would ask it.

    The scripts' tests work on the dev stage, and on prod where they check its protection; the
    layout migration's tests use the local stage's table as the table to migrate.
    """
    resource = call["resource"].replace("table/tenant-api-local", "table/tenant-api-dev")
    return ("prod" if "tenant-api-prod" in resource else "dev"), Permission(call["action"], resource)


@pytest.mark.parametrize("stage", STAGES)
def test_the_checked_in_policy_is_the_generated_one(stage: str) -> None:
    path = operator_policy.policy_path(PROJECT_DIR, stage)
    expected = operator_policy.render(operator_permissions.operator_policy(PROJECT_DIR, stage))
    assert path.read_text() == expected, (
        f"{path.relative_to(PROJECT_DIR)} is stale: run `python -m scripts.deploy.operator_policy --stage {stage} --write`"
    )


def test_every_action_the_scripts_need_is_granted(script_calls: list[dict[str, str]]) -> None:
    assert script_calls, "no calls of the scripts were recorded"
    granted = policy_actions(policy("dev"))
    missing = sorted(
        f"{call['action']} (for {call['operation']})"
        for call in script_calls
        if not any(matches(action, call["action"], ignore_case=True) for action in granted)
    )
    assert missing == [], f"add to scripts.deploy.operator_permissions.SCRIPT_ACTIONS: {', '.join(missing)}"


def test_every_call_the_scripts_make_on_the_stages_resources_is_allowed(script_calls: list[dict[str, str]]) -> None:
    refused = sorted(
        f"{permission.action} on {permission.resource} ({stage})"
        for stage, permission in map(as_deployed, script_calls)
        if not allows(policy(stage), permission)
    )
    assert refused == [], "the operator policy refuses calls the scripts make"


def test_every_script_action_listed_is_one_a_script_makes(script_calls: list[dict[str, str]]) -> None:
    needed = {call["action"] for call in script_calls}
    unused = sorted(
        operator_permissions.script_actions() - needed - set(operator_permissions.UNRECORDED_SCRIPT_ACTIONS)
    )
    assert unused == [], (
        f"remove from scripts.deploy.operator_permissions.SCRIPT_ACTIONS (no script calls them): {unused}"
    )


def test_the_calls_the_tests_cannot_reach_are_in_the_scripts_and_really_unreached(
    script_calls: list[dict[str, str]],
) -> None:
    """Each action kept without a recorded call names a method the scripts call; once recorded, it moves."""
    sources = "\n".join(path.read_text() for path in (PROJECT_DIR / "scripts").rglob("*.py"))
    recorded = {call["action"] for call in script_calls}
    for action, method in operator_permissions.UNRECORDED_SCRIPT_ACTIONS.items():
        assert re.search(rf"\.{method}\b", sources), f"no script calls {method} any more: drop {action}"
        assert action not in recorded, f"{action} is recorded now: move it to SCRIPT_ACTIONS"


def test_chalice_deploy_is_read_from_chalices_planner_for_this_apps_resources() -> None:
    types = resource_types(PROJECT_DIR, "dev")
    assert {"lambdafunction", "managediamrole", "restapi"} <= types
    methods = client_methods(types)
    # First deploy, redeploy, and the sweep of what a deploy no longer has.
    assert {"create_function", "update_function", "create_role", "put_role_policy", "import_rest_api"} <= methods
    assert {"update_api_from_swagger", "deploy_rest_api", "add_permission_for_apigateway", "delete_function"} <= methods
    operations = operations_of(methods)
    assert {("lambda", "CreateFunction"), ("iam", "PutRolePolicy"), ("apigateway", "ImportRestApi")} <= operations
    assert not any(service == "apigatewayv2" for service, _ in operations), "this app has no websocket API"
    with pytest.raises(ValueError):
        operations_of({"no_such_method"})


@pytest.mark.parametrize("stage", STAGES)
def test_chalice_deploy_reaches_the_stages_own_functions_and_roles_only(stage: str) -> None:
    document = policy(stage)
    actions = operator_permissions.chalice_actions(PROJECT_DIR, stage)
    assert actions <= policy_actions(document)
    other = "prod" if stage == "dev" else "dev"
    for name in (f"tenant-api-{stage}", f"tenant-api-{stage}-tenant_authorizer"):
        function = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
        assert allows(document, Permission("lambda:UpdateFunctionCode", function))
        assert not allows(document, Permission("lambda:UpdateFunctionCode", function.replace(stage, other)))
    for function in ("api_handler", "tenant_authorizer"):
        role = f"arn:aws:iam::123456789012:role/tenant-api-{stage}-{function}"
        assert allows(document, Permission("iam:PutRolePolicy", role))
        assert not allows(document, Permission("iam:PutRolePolicy", role.replace(stage, other)))
    (passing,) = [s for s in document["Statement"] if s["Action"] == "iam:PassRole"]
    assert passing["Resource"] == [f"arn:aws:iam::*:role/tenant-api-{stage}-*"]
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}


@pytest.mark.parametrize("stage", STAGES)
def test_the_stages_contributor_insights_rules_are_managed_and_no_other_stages(stage: str) -> None:
    document = policy(stage)
    other = "prod" if stage == "dev" else "dev"
    names = [rule["RuleName"] for rule in insight_rules(deployment_of(read_stage_config(stage), "eu-west-1"))]
    assert len(names) == 3
    for name in names:
        rule = f"arn:aws:cloudwatch:eu-west-1:123456789012:insight-rule/{name}"
        for action in ("cloudwatch:PutInsightRule", "cloudwatch:DeleteInsightRules"):
            assert allows(document, Permission(action, rule)), (action, rule)
            assert not allows(document, Permission(action, rule.replace(f"-{stage}-", f"-{other}-"))), (action, rule)
    assert allows(document, Permission("cloudwatch:DescribeInsightRules", "*"))


def test_only_actions_iam_cannot_narrow_are_granted_on_any_resource() -> None:
    from policy_sentry.querying.actions import get_action_data

    for stage in STAGES:
        (anywhere,) = [s for s in policy(stage)["Statement"] if s["Resource"] == "*"]
        for action in anywhere["Action"]:
            service, name = action.split(":")
            formats = {entry["resource_arn_format"] for entry in get_action_data(service, name)[service]}
            assert formats == {"*"}, action


def test_the_command_prints_the_policy(capsys: pytest.CaptureFixture[str]) -> None:
    assert operator_policy.main(["--stage", "dev"]) == 0
    assert json.loads(capsys.readouterr().out) == policy("dev")
    assert operator_policy.main(["--stage", "nope"]) == 1
