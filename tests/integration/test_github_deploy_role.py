"""The GitHub deploy role against moto: the trust policy it renders, and --apply creating, keeping and repairing it."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
import yaml
from botocore.stub import Stubber

from scripts.deploy import github_deploy_role
from scripts.deploy.operator_policy import policy_path
from tests.support.project import PROJECT_DIR

REPO = "octo-org/octo-repo"
ACCOUNT = "123456789012"  # moto's account
PROVIDER = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
ROLE = "tenant-api-dev-github-deploy"
EVERYTHING = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def run(capsys: pytest.CaptureFixture[str], *argv: str, stage: str = "dev") -> tuple[int, str, str]:
    """Run the command for the stage and REPO; its exit code, stdout and stderr."""
    code = github_deploy_role.main(["--stage", stage, "--repo", REPO, *argv])
    out, err = capsys.readouterr()
    return code, out, err


def expected_trust(account: str, subject: str, ref: str = "refs/heads/main") -> dict[str, Any]:
    """The trust policy the role should have in account, for a token with this subject and ref."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "GitHubDeployJob",
                "Effect": "Allow",
                "Principal": {"Federated": f"arn:aws:iam::{account}:oidc-provider/token.actions.githubusercontent.com"},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                        "token.actions.githubusercontent.com:sub": subject,
                        "token.actions.githubusercontent.com:ref": ref,
                    }
                },
            }
        ],
    }


@pytest.fixture
def iam(aws: None) -> Any:
    """An IAM client of moto's account, for the tests' own looks and hand edits."""
    return boto3.client("iam", region_name="us-east-1")


def trust_of(iam: Any) -> dict[str, Any]:
    """The deploy role's trust policy as IAM holds it."""
    return iam.get_role(RoleName=ROLE)["Role"]["AssumeRolePolicyDocument"]


def operator_policy_file(stage: str = "dev") -> dict[str, Any]:
    """The stage's operator policy as checked in under policies/."""
    return json.loads(policy_path(PROJECT_DIR, stage).read_text())


def attach_administrator_access(iam: Any) -> str:
    """Attach a managed policy allowing everything to the role, as by hand; its ARN."""
    # moto loads none of AWS's managed policies; a customer-managed one is attached the same way.
    policy = iam.create_policy(PolicyName="AdministratorAccess", PolicyDocument=json.dumps(EVERYTHING))["Policy"]
    iam.attach_role_policy(RoleName=ROLE, PolicyArn=policy["Arn"])
    return policy["Arn"]


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_renders_the_trust_policy_for_the_stages_environment_without_asking_aws(
    capsys: pytest.CaptureFixture[str], stage: str
) -> None:
    code, out, err = run(capsys, "--account", "111122223333", "--region", "eu-west-1", stage=stage)
    assert code == 0, err
    assert json.loads(out) == expected_trust("111122223333", f"repo:{REPO}:environment:{stage}")
    assert f"role tenant-api-{stage}-github-deploy" in err
    assert "nothing was changed" in err


def test_renders_for_the_account_the_credentials_belong_to(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--branch", "release/2027")
    assert code == 0
    assert json.loads(out) == expected_trust(ACCOUNT, f"repo:{REPO}:environment:dev", "refs/heads/release/2027")


def test_a_repository_with_immutable_subject_claims_is_named_with_its_ids(capsys: pytest.CaptureFixture[str]) -> None:
    code = github_deploy_role.main(
        ["--stage", "dev", "--repo", "octo-org@123456/octo-repo@789012", "--account", ACCOUNT, "--region", "us-east-1"]
    )
    out, _ = capsys.readouterr()
    assert code == 0
    statement = json.loads(out)["Statement"][0]
    subject = statement["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"]
    assert subject == "repo:octo-org@123456/octo-repo@789012:environment:dev"


@pytest.mark.parametrize(
    "option, value",
    [
        ("--repo", "octo-org"),
        ("--repo", "octo-org/octo-repo:ref:refs/heads/main"),
        ("--repo", "octo-org/*"),
        ("--repo", "octo-org@123456/octo-repo"),
        ("--branch", "refs/heads/main"),
        ("--branch", "*"),
        ("--account", "12345"),
    ],
)
def test_a_malformed_repository_branch_or_account_is_refused(
    capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    arguments = {"--stage": "dev", "--repo": REPO, "--account": ACCOUNT, option: value}
    with pytest.raises(SystemExit) as exit_info:
        github_deploy_role.main([item for pair in arguments.items() for item in pair])
    assert exit_info.value.code == 2
    assert f"argument {option}" in capsys.readouterr().err


def test_the_subject_names_the_environment_the_deploy_workflow_runs_in() -> None:
    workflow = yaml.safe_load((PROJECT_DIR / ".github" / "workflows" / "deploy.yml").read_text())
    job = workflow["jobs"]["deploy"]
    # The job deploys STAGE, in the environment of that name, which is what the role's subject names.
    assert job["environment"]["name"] == job["env"]["STAGE"] == "${{ inputs.stage || 'dev' }}"
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    # PyYAML reads the key `on` as True (YAML 1.1).
    assert workflow[True]["push"] == {"branches": ["main"]}


def test_a_queued_deploy_is_never_dropped_for_a_later_run() -> None:
    workflows = PROJECT_DIR / ".github" / "workflows"
    deploy = yaml.safe_load((workflows / "deploy.yml").read_text())
    # GitHub keeps one pending run per group unless told to queue, cancelling the older one. The
    # group is the whole run's, so runs of a stage wait in the order they started, tests included.
    assert deploy["concurrency"] == {
        "group": "deploy-${{ inputs.stage || 'dev' }}",
        "cancel-in-progress": False,
        "queue": "max",
    }
    assert [name for name, job in deploy["jobs"].items() if "concurrency" in job] == []
    # ci.yml, called by the deploy, sees the deploy's github context: grouped by branch, the next
    # push to main would cancel a deploy's tests while they wait.
    ci = yaml.safe_load((workflows / "ci.yml").read_text())["concurrency"]
    assert "github.run_id" in ci["group"] and "github.ref" not in ci["group"]
    assert ci["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"


def test_apply_creates_the_provider_and_the_role_with_the_operator_policy(
    iam: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "--apply")
    assert code == 0, err
    assert "OIDC provider token.actions.githubusercontent.com: created" in err
    assert f"role {ROLE}: created" in err
    provider = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=PROVIDER)
    assert provider["ClientIDList"] == ["sts.amazonaws.com"]
    role = iam.get_role(RoleName=ROLE)["Role"]
    assert role["AssumeRolePolicyDocument"] == expected_trust(ACCOUNT, f"repo:{REPO}:environment:dev")
    assert role["MaxSessionDuration"] == 3600
    assert {tag["Key"]: tag["Value"] for tag in role["Tags"]} == {"project": "tenant-api", "stage": "dev"}
    assert iam.list_role_policies(RoleName=ROLE)["PolicyNames"] == ["operator"]
    policy = iam.get_role_policy(RoleName=ROLE, PolicyName="operator")["PolicyDocument"]
    assert policy == operator_policy_file()
    assert f"AWS_DEPLOY_ROLE_ARN=arn:aws:iam::{ACCOUNT}:role/{ROLE}" in err


def test_a_rerun_changes_nothing(iam: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--apply")[0] == 0
    code, _, err = run(capsys, "--apply")
    assert code == 0, err
    assert "OIDC provider token.actions.githubusercontent.com: unchanged" in err
    assert f"role {ROLE}: unchanged" in err


def test_a_provider_made_before_is_kept(iam: Any, capsys: pytest.CaptureFixture[str]) -> None:
    iam.create_open_id_connect_provider(
        Url="https://token.actions.githubusercontent.com", ClientIDList=["sts.amazonaws.com", "https://github.com/x"]
    )
    code, _, err = run(capsys, "--apply")
    assert code == 0, err
    assert "OIDC provider token.actions.githubusercontent.com: unchanged" in err
    provider = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=PROVIDER)
    assert provider["ClientIDList"] == ["sts.amazonaws.com", "https://github.com/x"]


def test_a_trust_policy_edited_by_hand_is_put_back(iam: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--apply")[0] == 0
    widened = expected_trust(ACCOUNT, "unused")
    condition = widened["Statement"][0]["Condition"]
    condition["StringEquals"] = {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}
    condition["StringLike"] = {"token.actions.githubusercontent.com:sub": "repo:octo-org/*"}
    iam.update_assume_role_policy(RoleName=ROLE, PolicyDocument=json.dumps(widened))

    code, _, err = run(capsys, "--apply")
    assert code == 0, err
    assert f"role {ROLE}: updated (UpdateAssumeRolePolicy)" in err
    assert trust_of(iam) == expected_trust(ACCOUNT, f"repo:{REPO}:environment:dev")


def test_a_permission_policy_edited_by_hand_is_put_back(iam: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--apply")[0] == 0
    iam.put_role_policy(RoleName=ROLE, PolicyName="operator", PolicyDocument=json.dumps(EVERYTHING))

    code, _, err = run(capsys, "--apply")
    assert code == 0, err
    assert f"role {ROLE}: updated (PutRolePolicy)" in err
    assert iam.get_role_policy(RoleName=ROLE, PolicyName="operator")["PolicyDocument"] == operator_policy_file()


def test_permissions_added_by_hand_are_removed_and_a_rerun_leaves_the_role(
    iam: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "--apply")[0] == 0
    administrator = attach_administrator_access(iam)
    iam.put_role_policy(RoleName=ROLE, PolicyName="debugging", PolicyDocument=json.dumps(EVERYTHING))

    code, _, err = run(capsys, "--apply")
    assert code == 0, err
    assert f"role {ROLE}: updated (DeleteRolePolicy, DetachRolePolicy)" in err
    assert iam.list_role_policies(RoleName=ROLE)["PolicyNames"] == ["operator"]
    assert iam.list_attached_role_policies(RoleName=ROLE)["AttachedPolicies"] == []
    assert iam.get_role_policy(RoleName=ROLE, PolicyName="operator")["PolicyDocument"] == operator_policy_file()
    # The managed policy itself is left: it may be attached elsewhere, and is not the role's to delete.
    assert iam.get_policy(PolicyArn=administrator)["Policy"]["AttachmentCount"] == 0

    code, _, err = run(capsys, "--apply")
    assert code == 0, err
    assert f"role {ROLE}: unchanged" in err


def test_a_managed_policy_attached_by_hand_alone_is_detached(iam: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--apply")[0] == 0
    attach_administrator_access(iam)

    code, _, err = run(capsys, "--apply")
    assert code == 0, err
    assert f"role {ROLE}: updated (DetachRolePolicy)" in err
    assert iam.list_attached_role_policies(RoleName=ROLE)["AttachedPolicies"] == []


def test_another_repository_or_branch_is_written_over_the_old_trust(
    iam: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "--apply")[0] == 0
    code, _, err = run(capsys, "--apply", "--branch", "trunk")
    assert code == 0, err
    assert f"role {ROLE}: updated (UpdateAssumeRolePolicy, UpdateRole)" in err
    assert trust_of(iam) == expected_trust(ACCOUNT, f"repo:{REPO}:environment:dev", "refs/heads/trunk")


def test_apply_refuses_credentials_of_another_account(iam: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--apply", "--account", "999999999999")
    assert code == 1
    assert f"these credentials are for account {ACCOUNT}, not 999999999999" in err
    assert iam.list_open_id_connect_providers()["OpenIDConnectProviderList"] == []
    assert [role["RoleName"] for role in iam.list_roles()["Roles"]] == []


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_the_operator_policy_fits_in_a_roles_inline_policies(stage: str) -> None:
    assert github_deploy_role.checked_size(operator_policy_file(stage)) == operator_policy_file(stage)


def test_a_policy_too_large_for_a_role_is_refused_before_anything_is_made(
    iam: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(github_deploy_role, "ROLE_POLICY_MAX_CHARS", 1000)
    code, _, err = run(capsys, "--apply")
    assert code == 1
    assert "more than the 1000 IAM allows" in err
    assert iam.list_open_id_connect_providers()["OpenIDConnectProviderList"] == []


def test_an_unknown_stage_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--account", ACCOUNT, "--region", "us-east-1", stage="staging")
    assert code == 1
    assert "no 'staging' stage" in err


def test_an_existing_provider_without_the_sts_audience_gets_it_added(aws: None) -> None:
    # moto 5.2.5 does not implement AddClientIDToOpenIDConnectProvider; botocore's Stubber answers
    # in its place and checks each request against IAM's API model.
    iam = boto3.client("iam", region_name="us-east-1")
    with Stubber(iam) as stub:
        stub.add_response(
            "get_open_id_connect_provider",
            {"Url": "token.actions.githubusercontent.com", "ClientIDList": ["https://github.com/octo-org"]},
            {"OpenIDConnectProviderArn": PROVIDER},
        )
        stub.add_response(
            "add_client_id_to_open_id_connect_provider",
            {},
            {"OpenIDConnectProviderArn": PROVIDER, "ClientID": "sts.amazonaws.com"},
        )
        assert github_deploy_role.ensure_github_provider(iam, PROVIDER) == PROVIDER
        stub.assert_no_pending_responses()
