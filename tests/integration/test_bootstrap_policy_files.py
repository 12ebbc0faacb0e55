"""Bootstrap narrows every IAM policy file a stage deploys with: the stage's own and each function's own."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import boto3
import pytest

from scripts.deploy import bootstrap
from tests.support.project import PROJECT_DIR

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's account
TABLE_ARN = "arn:aws:dynamodb:*:*:table/tenant-api-dev"
NARROWED_TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/tenant-api-dev"


def policy(*statements: dict) -> dict:
    """An IAM policy document of the statements."""
    return {"Version": "2012-10-17", "Statement": list(statements)}


def table_statement(sid: str) -> dict:
    """A statement on the dev table, with the region and account left as wildcards."""
    return {"Sid": sid, "Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": TABLE_ARN}


@pytest.fixture
def project(tmp_path: Path, aws: None) -> Path:
    """A .chalice/ whose dev stage gives the authorizer (in the stage) and a worker (top level) their own files."""
    chalice_dir = tmp_path / ".chalice"
    chalice_dir.mkdir()
    for source in (PROJECT_DIR / ".chalice").glob("*.json"):
        shutil.copy(source, chalice_dir / source.name)
    config = json.loads((chalice_dir / "config.json").read_text())
    config["lambda_functions"] = {
        "worker": {"iam_policy_file": "policy-worker.json"},
        # The stage's own entry wins over this one, as in Chalice.
        "tenant_authorizer": {"iam_policy_file": "policy-not-used.json"},
    }
    dev = config["stages"]["dev"]
    dev["iam_policy_file"] = "policy-dev.json"
    dev["lambda_functions"] = {"tenant_authorizer": {"iam_policy_file": "policy-dev-authorizer.json"}}
    (chalice_dir / "config.json").write_text(json.dumps(config, indent=2))
    for name in ("policy-dev-authorizer.json", "policy-worker.json", "policy-not-used.json"):
        (chalice_dir / name).write_text(json.dumps(policy(table_statement("ReadRegistry")), indent=2))
    return tmp_path


def run(project: Path, capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    """Bootstrap the dev stage of project; its exit code, stdout and stderr."""
    code = bootstrap.main(["--stage", "dev", "--region", REGION, "--project-dir", str(project)])
    out, err = capsys.readouterr()
    return code, out, err


def resources(project: Path, name: str) -> list:
    """The Resource of each statement of the policy file."""
    document = json.loads((project / ".chalice" / name).read_text())
    return [statement["Resource"] for statement in document["Statement"]]


def test_each_functions_own_policy_file_is_narrowed_too(project: Path, capsys: pytest.CaptureFixture):
    untouched = (project / ".chalice" / "policy-not-used.json").read_bytes()

    code, out, err = run(project, capsys)

    assert code == 0, out + err
    assert resources(project, "policy-dev-authorizer.json") == [NARROWED_TABLE_ARN]
    assert resources(project, "policy-worker.json") == [NARROWED_TABLE_ARN]
    assert (project / ".chalice" / "policy-not-used.json").read_bytes() == untouched
    for name in ("policy-dev.json", "policy-dev-authorizer.json", "policy-worker.json"):
        assert f"[bootstrap] updated: {name} (resources narrowed to {REGION}, account {ACCOUNT})" in out
    assert "policy-not-used.json" not in out

    code, out, _ = run(project, capsys)
    assert code == 0
    assert "[bootstrap] unchanged: policy-dev-authorizer.json" in out
    assert out.strip().splitlines()[-1].startswith("[bootstrap] no changes: everything was already in place (")


def test_a_policy_file_named_but_missing_is_an_error_that_says_which(project: Path, capsys: pytest.CaptureFixture):
    (project / ".chalice" / "policy-worker.json").unlink()

    code, _, err = run(project, capsys)

    assert code == 1
    assert "policy-worker.json is named in" in err and "does not exist" in err
    # Checked before anything is made.
    assert boto3.client("dynamodb", region_name=REGION).list_tables()["TableNames"] == []
