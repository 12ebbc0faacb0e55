"""The IAM role GitHub Actions assumes to deploy a stage: `python -m scripts.deploy.github_deploy_role --stage dev --repo O/N`.

Without --apply it prints the role's trust policy. With --apply it creates GitHub's OIDC identity
provider in the account if the account has none, and creates the role `tenant-api-<stage>-github-deploy`
or puts back whatever of it drifted (trust, policy, description, session length, tags) and removes
any policy added to it by hand, inline or managed, printing created / updated / unchanged for each.
The trust admits one kind of caller only: a token GitHub issued for sts.amazonaws.com to a job of
the repository that runs on the branch in the GitHub environment named after the stage, which is
how .github/workflows/deploy.yml deploys. The role's one policy is an inline copy of the stage's
operator policy (scripts.deploy.operator_policy, the document kept in policies/operator-<stage>.json).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Callable

from botocore.exceptions import BotoCoreError, ClientError

from scripts import provision
from scripts.aws_calls import error_code
from scripts.change_log import ChangeLog
from scripts.command_output import AWS_UNREACHABLE, CommandOutput
from scripts.deploy.operator_permissions import operator_policy
from scripts.stage_config import PROJECT_DIR, StageConfigError
from scripts.stage_resources import StageResources, load_stage

OUTPUT = CommandOutput("github_deploy_role", progress_on_stderr=True)

GITHUB_ISSUER = "token.actions.githubusercontent.com"
PROVIDER_URL = f"https://{GITHUB_ISSUER}"
# The audience aws-actions/configure-aws-credentials asks GitHub to put in its tokens.
AUDIENCE = "sts.amazonaws.com"
POLICY_NAME = "operator"
# IAM's quota on the inline policies of one role, in characters other than whitespace.
ROLE_POLICY_MAX_CHARS = 10_240
# configure-aws-credentials asks for an hour unless told otherwise; bootstrap, deploy and smoke take minutes.
MAX_SESSION_SECONDS = 3600
# OWNER/NAME, or OWNER@ORG_ID/NAME@REPO_ID: repositories created on or after 15 July 2026 (and older
# ones opted in) put their owner's and their own numeric ids in the token's subject.
REPOSITORY = re.compile(
    r"(?P<owner>[A-Za-z0-9][A-Za-z0-9-]{0,38})(?P<owner_id>@[0-9]+)?/(?P<name>[A-Za-z0-9._-]{1,100})(?P<name_id>@[0-9]+)?"
)
# A branch name as it follows refs/heads/; no wildcards, since the trust compares with StringEquals.
BRANCH = re.compile(r"[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*")


class DeployRoleError(Exception):
    """The role cannot be made as asked; the message says why."""


def role_name(resource_prefix: str) -> str:
    """The deploy role's name in a stage whose resources are named "{app}-{stage}"."""
    return f"{resource_prefix}-github-deploy"


def provider_arn(partition: str, account: str) -> str:
    """The ARN of GitHub's OIDC identity provider in an account (IAM names it after the issuer's host)."""
    return f"arn:{partition}:iam::{account}:oidc-provider/{GITHUB_ISSUER}"


def subject(repository: str, environment: str) -> str:
    """The `sub` claim of a token GitHub issues to a job of repository that runs in environment."""
    return f"repo:{repository}:environment:{environment}"


def trust_policy(provider: str, repository: str, environment: str, branch: str) -> dict[str, Any]:
    """Who may assume the role: a job of repository in environment on branch, with a token meant for STS.

    GitHub puts the environment, not the branch, in the subject of an environment's jobs; the branch
    is checked through the token's `ref` claim, which STS exposes as a condition key of its own.
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "GitHubDeployJob",
                "Effect": "Allow",
                "Principal": {"Federated": provider},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{GITHUB_ISSUER}:aud": AUDIENCE,
                        f"{GITHUB_ISSUER}:sub": subject(repository, environment),
                        f"{GITHUB_ISSUER}:ref": f"refs/heads/{branch}",
                    }
                },
            }
        ],
    }


def description(repository: str, environment: str, branch: str) -> str:
    """The role's description, saying who assumes it."""
    return f"Deploys the stage from GitHub Actions: {repository}, environment {environment}, branch {branch}."


def ensure_github_provider(iam: Any, arn: str) -> str:
    """GitHub's OIDC identity provider at arn, created if missing, accepting tokens meant for STS."""
    try:
        provider = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    except ClientError as error:
        if error_code(error) != "NoSuchEntity":
            raise
        # No thumbprint: IAM checks GitHub's certificate against its own library of trusted CAs.
        return iam.create_open_id_connect_provider(Url=PROVIDER_URL, ClientIDList=[AUDIENCE])[
            "OpenIDConnectProviderArn"
        ]
    if AUDIENCE not in provider.get("ClientIDList", []):
        # One provider serves every role in the account that trusts GitHub: audiences are added, never removed.
        iam.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID=AUDIENCE)
    return arn


def ensure_deploy_role(
    iam: Any, resources: StageResources, *, provider: str, repository: str, branch: str, policy: dict[str, Any]
) -> str:
    """The ARN of the stage's deploy role, with exactly its trust and the operator policy as its one policy."""
    environment = resources.stage
    return provision.ensure_role(
        iam,
        role_name(resources.prefix),
        trust=trust_policy(provider, repository, environment, branch),
        policy_name=POLICY_NAME,
        policy=policy,
        description=description(repository, environment, branch),
        max_session_seconds=MAX_SESSION_SECONDS,
        tags=resources.tags,
    )


def checked_size(policy: dict[str, Any]) -> dict[str, Any]:
    """policy, if IAM would accept it as a role's inline policy; DeployRoleError naming its size if not."""
    size = sum(not character.isspace() for character in json.dumps(policy))
    if size > ROLE_POLICY_MAX_CHARS:
        raise DeployRoleError(
            f"the operator policy has {size} characters, more than the {ROLE_POLICY_MAX_CHARS} IAM allows "
            "a role's inline policies; split it before applying"
        )
    return policy


def outcome(operations: list[str]) -> str:
    """What a step's changing calls amount to: created, updated (naming the calls) or unchanged."""
    if not operations:
        return "unchanged"
    if operations[0].startswith("Create"):
        return "created"
    return f"updated ({', '.join(operations)})"


def apply(iam: Any, resources: StageResources, *, partition: str, account: str, repository: str, branch: str) -> str:
    """Make or correct the provider and the role, reporting each; returns the role's ARN."""
    policy = checked_size(operator_policy(resources.project_dir, resources.stage))
    log = ChangeLog()
    with log.watching([iam]):
        provider = _reported(
            log,
            f"OIDC provider {GITHUB_ISSUER}",
            lambda: ensure_github_provider(iam, provider_arn(partition, account)),
        )
        return _reported(
            log,
            f"role {role_name(resources.prefix)}",
            lambda: ensure_deploy_role(
                iam, resources, provider=provider, repository=repository, branch=branch, policy=policy
            ),
        )


def _reported(log: ChangeLog, label: str, action: Callable[[], str]) -> str:
    mark = log.mark()
    result = action()
    OUTPUT.progress(f"{label}: {outcome(log.since(mark))}")
    return result


def _repository(value: str) -> str:
    match = REPOSITORY.fullmatch(value)
    if not match:
        raise argparse.ArgumentTypeError(f"not OWNER/NAME or OWNER@ORG_ID/NAME@REPO_ID: {value!r}")
    if bool(match["owner_id"]) != bool(match["name_id"]):
        raise argparse.ArgumentTypeError(f"give both ids (OWNER@ORG_ID/NAME@REPO_ID) or neither: {value!r}")
    return value


def _branch(value: str) -> str:
    if value.startswith("refs/") or ".." in value or not BRANCH.fullmatch(value):
        raise argparse.ArgumentTypeError(f"not a branch name (as after refs/heads/): {value!r}")
    return value


def _account(value: str) -> str:
    if not re.fullmatch(r"[0-9]{12}", value):
        raise argparse.ArgumentTypeError(f"an AWS account id has 12 digits: {value!r}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.deploy.github_deploy_role",
        description=__doc__.splitlines()[0] if __doc__ else None,
        epilog="Then give the GitHub environment named after the stage the variables AWS_DEPLOY_ROLE_ARN and "
        'AWS_REGION (README "CI/CD on GitHub").',
    )
    parser.add_argument("--stage", required=True, help="the Chalice stage, and the GitHub environment that deploys it")
    parser.add_argument(
        "--repo",
        required=True,
        type=_repository,
        help="the GitHub repository as its tokens name it: OWNER/NAME, or OWNER@ORG_ID/NAME@REPO_ID for "
        "repositories with immutable subject claims (created on or after 15 July 2026, or opted in)",
    )
    parser.add_argument("--branch", default="main", type=_branch, help="the branch deployed from (default %(default)s)")
    parser.add_argument("--apply", action="store_true", help="create or correct the provider and the role")
    parser.add_argument(
        "--account",
        type=_account,
        help="the AWS account: without --apply, render for it without asking AWS; with --apply, refuse any other",
    )
    parser.add_argument(
        "--region", help="AWS region for STS (default: the stage's, else AWS_DEFAULT_REGION or the profile's)"
    )
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR, help="the project (default: this one)")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    """Render or apply as the arguments say; errors are raised, not reported."""
    import boto3

    resources = load_stage(args.stage, args.project_dir)
    region = resources.region(args.region)
    partition = boto3.session.Session().get_partition_for_region(region)
    name = role_name(resources.prefix)
    if not args.apply:
        account = args.account or boto3.client("sts", region_name=region).get_caller_identity()["Account"]
        trust = trust_policy(provider_arn(partition, account), args.repo, resources.stage, args.branch)
        sys.stdout.write(json.dumps(trust, indent=2) + "\n")
        OUTPUT.progress(f"above: the trust policy of role {name} in account {account}")
        OUTPUT.progress(
            f"its inline policy {POLICY_NAME!r}: `python -m scripts.deploy.operator_policy --stage {resources.stage}`"
        )
        OUTPUT.progress("nothing was changed; --apply creates or corrects the OIDC provider and the role")
        return 0
    account = boto3.client("sts", region_name=region).get_caller_identity()["Account"]
    if args.account and args.account != account:
        raise DeployRoleError(f"these credentials are for account {account}, not {args.account}; nothing was changed")
    OUTPUT.progress(f"stage {resources.stage}, account {account}, repository {args.repo}, branch {args.branch}")
    iam = boto3.client("iam", region_name=region)
    arn = apply(iam, resources, partition=partition, account=account, repository=args.repo, branch=args.branch)
    OUTPUT.progress(
        f"next: in GitHub, give the environment {resources.stage!r} the variables AWS_DEPLOY_ROLE_ARN={arn}"
    )
    OUTPUT.progress(f"and AWS_REGION={region}, and limit its deployment branches to {args.branch}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Render or apply; 0 on success, 1 with a message on failure."""
    args = parse_args(argv)
    try:
        return run(args)
    except (DeployRoleError, StageConfigError) as error:
        OUTPUT.error(error)
    except (ClientError, BotoCoreError) as error:
        OUTPUT.error(f"{AWS_UNREACHABLE}: {error}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
