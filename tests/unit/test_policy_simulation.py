"""The smoke test's questions to IAM's policy simulator about the tenant-access role, and how it judges the answers.

AWS's simulator (SimulatePrincipalPolicy) cannot run here and moto does not implement it, so the
runner is tested against botocore's Stubber on a real IAM client: it checks that each request is
exactly the one built, and stands in for the simulator's answers, AccessDenied included. It
proves the requests and the judging, not what AWS decides; the offline evaluator test below
shows the role's policy decides these very cases the intended way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest
from botocore.stub import Stubber

from chalicelib.store import keys
from scripts.deploy import policy_simulation as simulation
from scripts.deploy import smoke
from scripts.deploy.iam_permissions import Permission, allows, with_principal_tags
from scripts.deploy.policy_simulation import Case, Outcome, SimulationError
from scripts.tenant_access_role import access_policy

ACCOUNT = "123456789012"
REGION = "eu-west-1"
TABLE_NAME = "tenant-api-dev"
TABLE = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{TABLE_NAME}"
INDEX = f"{TABLE}/index/catalog"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/tenant-api-dev-tenant-access"
A, B = "tenant-standard", "tenant-premium"


def iam_client() -> Any:
    """A real IAM client that can reach nothing: every call it makes is answered by a Stubber."""
    return boto3.client("iam", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def iam() -> Iterator[tuple[Any, Stubber]]:
    """The stubbed client, and its Stubber, which must have given every answer queued by the end."""
    client = iam_client()
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def answer(case: Case, decision: str, **extra: Any) -> dict[str, Any]:
    """A simulator response for one case, shaped as AWS returns it."""
    result = {"EvalActionName": case.action, "EvalResourceName": case.resource, "EvalDecision": decision, **extra}
    return {"EvaluationResults": [result], "IsTruncated": False}


def expected_decision(case: Case) -> str:
    """What AWS answers a case when the policy is right."""
    return "allowed" if case.expect_allowed else "implicitDeny"


def stub_expected_answers(stubber: Stubber, asked: list[Case]) -> None:
    """The simulator answering each case as the policy should, each request checked to be exactly the one built."""
    for case in asked:
        request = simulation.simulation_request(ROLE, case)
        stubber.add_response("simulate_principal_policy", answer(case, expected_decision(case)), request)


# --- the requests ---------------------------------------------------------------------------


def test_the_cases_are_the_tenants_own_keys_allowed_then_the_other_tenants_denied() -> None:
    asked = simulation.cases(TABLE, A, B)
    assert [(c.name, c.action, c.resource, c.tenant, c.partition_key, c.expect_allowed) for c in asked] == [
        ("GetItem own product", "dynamodb:GetItem", TABLE, A, keys.product_key(A, "smoke-check")["PK"], True),
        ("Query own catalog", "dynamodb:Query", INDEX, A, keys.catalog_partition(A, 0), True),
        ("Query own orders", "dynamodb:Query", TABLE, A, keys.order_partition(A, 0), True),
        (
            "GetItem other tenant's product",
            "dynamodb:GetItem",
            TABLE,
            A,
            keys.product_key(B, "smoke-check")["PK"],
            False,
        ),
        ("Query other tenant's catalog", "dynamodb:Query", INDEX, A, keys.catalog_partition(B, 0), False),
        ("Query other tenant's orders", "dynamodb:Query", TABLE, A, keys.order_partition(B, 0), False),
    ]
    # The literal keys, so that a change in chalicelib.store.keys shows here too.
    assert [c.partition_key for c in asked] == [
        "TENANT#tenant-standard#PRODUCT#smoke-check",
        "TENANT#tenant-standard#CATALOG#00",
        "TENANT#tenant-standard#ORDER#00",
        "TENANT#tenant-premium#PRODUCT#smoke-check",
        "TENANT#tenant-premium#CATALOG#00",
        "TENANT#tenant-premium#ORDER#00",
    ]


def test_the_session_is_always_the_tenants_own() -> None:
    assert {case.tenant for case in simulation.cases(TABLE, A, B)} == {A}


@pytest.mark.parametrize("tenant, other", [(A, A), ("Not#Valid", B), (A, "x#y")])
def test_cases_refuse_the_same_tenant_twice_and_malformed_ids(tenant: str, other: str) -> None:
    with pytest.raises(ValueError):
        simulation.cases(TABLE, tenant, other)


def test_the_context_entries_are_the_session_tag_and_the_leading_key() -> None:
    assert simulation.context_entries(A, "TENANT#tenant-standard#ORDER#00") == [
        {"ContextKeyName": "aws:PrincipalTag/TenantID", "ContextKeyValues": [A], "ContextKeyType": "string"},
        {
            "ContextKeyName": "dynamodb:LeadingKeys",
            "ContextKeyValues": ["TENANT#tenant-standard#ORDER#00"],
            "ContextKeyType": "stringList",
        },
    ]


def test_a_request_asks_about_the_role_as_attached_for_one_action_and_resource() -> None:
    case = simulation.cases(TABLE, A, B)[1]
    assert simulation.simulation_request(ROLE, case) == {
        "PolicySourceArn": ROLE,
        "ActionNames": ["dynamodb:Query"],
        "ResourceArns": [INDEX],
        "ContextEntries": simulation.context_entries(A, "TENANT#tenant-standard#CATALOG#00"),
    }


def test_the_table_arn_is_built_from_the_roles_partition_and_account() -> None:
    assert simulation.role_account(ROLE) == ("aws", ACCOUNT)
    assert simulation.role_account(f"arn:aws-cn:iam::{ACCOUNT}:role/path/to/r") == ("aws-cn", ACCOUNT)
    assert simulation.table_arn("aws", REGION, ACCOUNT, TABLE_NAME) == TABLE
    assert simulation.index_arn(TABLE) == INDEX


@pytest.mark.parametrize(
    "arn", ["", "tenant-api-dev-tenant-access", f"arn:aws:iam::{ACCOUNT}:user/someone", "arn:aws:iam::12:role/r"]
)
def test_what_is_not_a_roles_arn_is_refused(arn: str) -> None:
    with pytest.raises(SimulationError, match="is not an IAM role's ARN"):
        simulation.role_account(arn)


def test_the_table_arn_is_the_one_the_roles_policy_names() -> None:
    resources = {statement["Resource"] for statement in access_policy(TABLE)["Statement"]}
    assert resources == {TABLE, INDEX}
    assert {case.resource for case in simulation.cases(TABLE, A, B)} == resources


# --- judging the answers --------------------------------------------------------------------

ALLOW_CASE, DENY_CASE = simulation.cases(TABLE, A, B)[0], simulation.cases(TABLE, A, B)[3]


@pytest.mark.parametrize(
    "case, decision, passed",
    [
        (ALLOW_CASE, "allowed", True),
        (ALLOW_CASE, "implicitDeny", False),
        (ALLOW_CASE, "explicitDeny", False),
        (DENY_CASE, "implicitDeny", True),
        (DENY_CASE, "explicitDeny", True),
        (DENY_CASE, "allowed", False),
        (ALLOW_CASE, "no result", False),
        (DENY_CASE, "no result", False),
    ],
)
def test_a_case_passes_only_on_its_expected_decision(case: Case, decision: str, passed: bool) -> None:
    assert simulation.passes(case, decision) is passed
    assert Outcome(case, decision).passed is passed


def test_an_outcome_says_what_was_decided_and_asked() -> None:
    assert Outcome(ALLOW_CASE, "allowed").detail() == (
        "allowed for dynamodb:GetItem on table/tenant-api-dev, key TENANT#tenant-standard#PRODUCT#smoke-check, "
        "session TenantID=tenant-standard"
    )
    assert Outcome(DENY_CASE, "allowed").detail() == (
        "allowed (expected a deny) for dynamodb:GetItem on table/tenant-api-dev, "
        "key TENANT#tenant-premium#PRODUCT#smoke-check, session TenantID=tenant-standard"
    )
    missing = Outcome(ALLOW_CASE, "implicitDeny", ("aws:PrincipalTag/TenantID",)).detail()
    assert missing.startswith("implicitDeny (expected allowed) for dynamodb:GetItem")
    assert missing.endswith("; the simulator lacked aws:PrincipalTag/TenantID")


def test_no_result_fails_and_any_unexpected_result_decides() -> None:
    assert simulation.decide(ALLOW_CASE, []) == Outcome(ALLOW_CASE, "no result")
    mixed = [{"EvalDecision": "allowed"}, {"EvalDecision": "implicitDeny", "MissingContextValues": ["k", "k"]}]
    assert simulation.decide(ALLOW_CASE, mixed) == Outcome(ALLOW_CASE, "implicitDeny", ("k",))
    assert simulation.decide(DENY_CASE, mixed) == Outcome(DENY_CASE, "allowed", ("k",))


# --- the runner, against the Stubber standing in for AWS's simulator ------------------------


def test_the_runner_asks_each_case_exactly_and_judges_each_answer(iam: tuple[Any, Stubber]) -> None:
    client, stubber = iam
    asked = simulation.cases(TABLE, A, B)
    stub_expected_answers(stubber, asked)
    outcomes = simulation.run(client, ROLE, asked)
    assert [(o.case, o.decision, o.passed) for o in outcomes] == [(c, expected_decision(c), True) for c in asked]


def test_a_policy_that_lets_the_other_tenant_through_fails_that_case(iam: tuple[Any, Stubber]) -> None:
    client, stubber = iam
    asked = simulation.cases(TABLE, A, B)
    for case in asked:
        stubber.add_response("simulate_principal_policy", answer(case, "allowed"))
    outcomes = simulation.run(client, ROLE, asked)
    assert [o.passed for o in outcomes] == [True, True, True, False, False, False]


def test_the_runner_follows_the_simulators_pages(iam: tuple[Any, Stubber]) -> None:
    client, stubber = iam
    case = DENY_CASE
    request = simulation.simulation_request(ROLE, case)
    first = {**answer(case, "implicitDeny"), "IsTruncated": True, "Marker": "page-2"}
    stubber.add_response("simulate_principal_policy", first, request)
    stubber.add_response("simulate_principal_policy", answer(case, "allowed"), {**request, "Marker": "page-2"})
    # The second page's "allowed" must not be lost: it fails the deny case.
    assert simulation.run(client, ROLE, [case]) == [Outcome(case, "allowed")]


def test_access_denied_on_the_simulator_names_the_permission_needed(iam: tuple[Any, Stubber]) -> None:
    client, stubber = iam
    stubber.add_client_error(
        "simulate_principal_policy",
        service_error_code="AccessDenied",
        service_message="User: arn:aws:iam::123456789012:user/op is not authorized to perform: "
        "iam:SimulatePrincipalPolicy",
        http_status_code=403,
    )
    with pytest.raises(SimulationError) as raised:
        simulation.run(client, ROLE, simulation.cases(TABLE, A, B))
    assert str(raised.value) == f"AccessDenied: the operator's credentials need iam:SimulatePrincipalPolicy on {ROLE}"


def test_a_missing_role_and_other_errors_are_said_plainly(iam: tuple[Any, Stubber]) -> None:
    client, stubber = iam
    stubber.add_client_error("simulate_principal_policy", "NoSuchEntity", "no role", 404)
    with pytest.raises(SimulationError, match="no role .* in the account; has bootstrap run"):
        simulation.run(client, ROLE, [ALLOW_CASE])
    stubber.add_client_error("simulate_principal_policy", "InvalidInput", "bad context", 400)
    with pytest.raises(SimulationError, match="IAM's policy simulator refused: .*InvalidInput"):
        simulation.run(client, ROLE, [ALLOW_CASE])


# --- the same cases, decided by the project's own evaluator on the role's policy ------------


def policy_for_session(tenant: str) -> dict[str, Any]:
    """The role's policy with ${aws:PrincipalTag/TenantID} filled in, as IAM does for a session tagged so."""
    policy = with_principal_tags(access_policy(TABLE), {"TenantID": tenant})
    assert "${" not in json.dumps(policy)
    return policy


@pytest.mark.parametrize("tenant, other", [(A, B), (B, A)])
def test_the_roles_policy_decides_each_case_the_way_the_smoke_test_expects(tenant: str, other: str) -> None:
    document = policy_for_session(tenant)
    for case in simulation.cases(TABLE, tenant, other):
        permission = Permission(case.action, case.resource, (case.partition_key,))
        assert allows(document, permission) is case.expect_allowed, case.name


def test_the_cases_would_catch_a_policy_that_ignores_the_tenant() -> None:
    # Proof the deny cases bite: a policy allowing any tenant's keys fails exactly them.
    text = json.dumps(access_policy(TABLE)).replace("TENANT#${aws:PrincipalTag/TenantID}#", "TENANT#*#")
    document = json.loads(text)
    wrong = [
        case.name
        for case in simulation.cases(TABLE, A, B)
        if allows(document, Permission(case.action, case.resource, (case.partition_key,))) is not case.expect_allowed
    ]
    assert wrong == ["GetItem other tenant's product", "Query other tenant's catalog", "Query other tenant's orders"]


# --- the smoke test's lines -----------------------------------------------------------------

CREDENTIALS = smoke.ClientCredentials(A, "client", "secret")


def stage_target(**changes: Any) -> smoke.Target:
    """A deployed stage's target as smoke builds it from --stage, with some of its policy settings changed."""
    values = {"stage": "dev", "region": REGION, "table_name": TABLE_NAME, "role_arn": ROLE, "tenant": A}
    policy = smoke.PolicyTarget(**{**values, "other_tenant": B, **changes})
    return smoke.Target("https://api.invalid", "https://token.invalid", CREDENTIALS, policy=policy)


def smoke_lines(run: smoke.SmokeRun, capsys: pytest.CaptureFixture, iam: Any = None) -> list[str]:
    """The lines the smoke test prints for the tenant policy check."""
    run.tenant_policy(iam)
    return capsys.readouterr().out.splitlines()


def test_smoke_prints_a_pass_line_per_case(iam: tuple[Any, Stubber], capsys: pytest.CaptureFixture) -> None:
    client, stubber = iam
    stub_expected_answers(stubber, simulation.cases(TABLE, A, B))
    run = smoke.SmokeRun(stage_target())
    lines = smoke_lines(run, capsys, client)
    assert lines == [
        "[smoke] PASS  tenant policy GetItem own product: allowed for dynamodb:GetItem on table/tenant-api-dev, "
        "key TENANT#tenant-standard#PRODUCT#smoke-check, session TenantID=tenant-standard",
        "[smoke] PASS  tenant policy Query own catalog: allowed for dynamodb:Query on table/tenant-api-dev/index/"
        "catalog, key TENANT#tenant-standard#CATALOG#00, session TenantID=tenant-standard",
        "[smoke] PASS  tenant policy Query own orders: allowed for dynamodb:Query on table/tenant-api-dev, "
        "key TENANT#tenant-standard#ORDER#00, session TenantID=tenant-standard",
        "[smoke] PASS  tenant policy GetItem other tenant's product: implicitDeny for dynamodb:GetItem on "
        "table/tenant-api-dev, key TENANT#tenant-premium#PRODUCT#smoke-check, session TenantID=tenant-standard",
        "[smoke] PASS  tenant policy Query other tenant's catalog: implicitDeny for dynamodb:Query on "
        "table/tenant-api-dev/index/catalog, key TENANT#tenant-premium#CATALOG#00, session TenantID=tenant-standard",
        "[smoke] PASS  tenant policy Query other tenant's orders: implicitDeny for dynamodb:Query on "
        "table/tenant-api-dev, key TENANT#tenant-premium#ORDER#00, session TenantID=tenant-standard",
    ]
    assert [outcome for outcome, _, _ in run.results] == ["PASS"] * 6


def test_smoke_fails_a_case_the_simulator_decides_wrongly(
    iam: tuple[Any, Stubber], capsys: pytest.CaptureFixture
) -> None:
    client, stubber = iam
    for case in simulation.cases(TABLE, A, B):
        stubber.add_response("simulate_principal_policy", answer(case, "allowed"))
    run = smoke.SmokeRun(stage_target())
    lines = smoke_lines(run, capsys, client)
    assert lines[3].startswith(
        "[smoke] FAIL  tenant policy GetItem other tenant's product: allowed (expected a deny) for dynamodb:GetItem"
    )
    assert [outcome for outcome, _, _ in run.results] == ["PASS"] * 3 + ["FAIL"] * 3
    # Every case got the same answer: the simulator may have ignored the LeadingKeys condition.
    assert lines[-1] == f"[smoke]       tenant policy: {simulation.UNTOLD_APART}"
    assert len(lines) == 7


def test_smoke_says_nothing_more_when_the_simulator_tells_the_tenants_apart(
    iam: tuple[Any, Stubber], capsys: pytest.CaptureFixture
) -> None:
    client, stubber = iam
    stub_expected_answers(stubber, simulation.cases(TABLE, A, B))
    lines = smoke_lines(smoke.SmokeRun(stage_target()), capsys, client)
    assert simulation.UNTOLD_APART not in "\n".join(lines)


def test_smoke_prints_one_fail_line_on_access_denied(iam: tuple[Any, Stubber], capsys: pytest.CaptureFixture) -> None:
    client, stubber = iam
    stubber.add_client_error("simulate_principal_policy", "AccessDenied", "not authorized", 403)
    run = smoke.SmokeRun(stage_target())
    assert smoke_lines(run, capsys, client) == [
        "[smoke] FAIL  tenant policy: AccessDenied: the operator's credentials need iam:SimulatePrincipalPolicy "
        f"on {ROLE}"
    ]


def test_smoke_fails_a_stage_without_the_roles_arn_without_asking(capsys: pytest.CaptureFixture) -> None:
    # No client is given: asking AWS here would fail the test.
    lines = smoke_lines(smoke.SmokeRun(stage_target(role_arn="")), capsys)
    assert lines == [
        "[smoke] FAIL  tenant policy: stage dev has no TENANT_ACCESS_ROLE_ARN in .chalice/config.json; "
        "run `python -m scripts.deploy.bootstrap --stage dev`"
    ]


def test_smoke_skips_without_another_tenant(capsys: pytest.CaptureFixture) -> None:
    lines = smoke_lines(smoke.SmokeRun(stage_target(other_tenant=None)), capsys)
    assert lines == ["[smoke] SKIP  tenant policy: needs another tenant (--other-tenant) whose keys must be denied"]


def test_smoke_against_the_local_stack_says_once_why_the_simulator_is_not_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    stack_file = tmp_path / "stack.json"
    tenant = {"tier": "standard", "tenant_id": A, "client_id": "c", "client_secret": "s"}
    stack_file.write_text(
        json.dumps({"api_url": "http://127.0.0.1:1", "token_url": "http://127.0.0.1:2", "tenants": [tenant]})
    )
    run = smoke.SmokeRun(smoke.target_from_stack_file(stack_file))
    assert smoke_lines(run, capsys) == [
        "[smoke] SKIP  tenant policy: IAM's policy simulator is not available on the local stack: "
        "moto does not implement SimulatePrincipalPolicy; the check runs with --stage against a deployed stage"
    ]
    assert run.results[0][0] == "SKIP"  # a skip does not fail the run


def test_smoke_with_urls_given_one_by_one_says_the_check_needs_a_stage(capsys: pytest.CaptureFixture) -> None:
    run = smoke.SmokeRun(smoke.Target("https://api.invalid", "https://token.invalid", CREDENTIALS))
    assert smoke_lines(run, capsys) == [
        "[smoke] SKIP  tenant policy: needs --stage: IAM's policy simulator is asked about a deployed stage's role "
        "and table"
    ]
