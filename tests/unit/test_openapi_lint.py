"""The OpenAPI document of the local stage and of a deployed one passes `redocly lint` (redocly.yaml) with no problem."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from chalicelib.web.openapi import StageAddresses, openapi_document

PROJECT_DIR = Path(__file__).resolve().parents[2]
# Installed by `npm ci` from package-lock.json (make test and make unit do it).
REDOCLY = PROJECT_DIR / "node_modules" / ".bin" / "redocly"
CONFIG = PROJECT_DIR / "redocly.yaml"
LINT_TIMEOUT_SECONDS = 120
# As `make run` names the local stack (its token endpoint's port is chosen free) and as a deployed stage's are.
STAGES = {
    "local": StageAddresses("http://127.0.0.1:8000", "http://127.0.0.1:41234/oauth2/token"),
    "deployed": StageAddresses(
        "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/api",
        "https://tenant-api-dev-123456789012.auth.us-east-1.amazoncognito.com/oauth2/token",
    ),
}


@pytest.fixture(scope="module")
def redocly() -> Path:
    """The Redocly CLI; without it a skip locally, a failure in CI (where make test installs it)."""
    if not REDOCLY.exists():
        message = f"{REDOCLY} is not installed; install the Node tools with: npm ci"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return REDOCLY


def lint(redocly: Path, document: dict[str, Any], folder: Path) -> tuple[int, dict[str, Any]]:
    """Run `redocly lint` on the document; its exit code and JSON report."""
    path = folder / "openapi.json"
    path.write_text(json.dumps(document, indent=2))
    completed = subprocess.run(
        [str(redocly), "lint", str(path), "--format", "json", "--config", str(CONFIG)],
        cwd=PROJECT_DIR,
        # Redocly CLI would otherwise report the run to its maker and look for a newer release.
        env={**os.environ, "REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=LINT_TIMEOUT_SECONDS,
    )
    try:
        report = json.loads(completed.stdout)
    except ValueError:
        pytest.fail(f"redocly lint printed no JSON report:\n{completed.stdout}\n{completed.stderr}")
    return completed.returncode, report


def problems(report: dict[str, Any]) -> list[str]:
    """Each problem of a report as one readable line."""
    return [
        f"{problem['severity']} {problem['ruleId']}: {problem['message']} "
        f"at {[location.get('pointer') for location in problem.get('location', [])]}"
        for problem in report["problems"]
    ]


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_the_stages_document_lints_with_no_error_and_no_warning(redocly: Path, tmp_path: Path, stage: str):
    code, report = lint(redocly, openapi_document(STAGES[stage]), tmp_path)
    assert report["totals"] == {"errors": 0, "warnings": 0, "ignored": 0}, problems(report)
    assert code == 0


def test_a_broken_document_fails_the_lint(redocly: Path, tmp_path: Path):
    broken = copy.deepcopy(openapi_document(STAGES["local"]))
    del broken["info"]["title"]
    broken["components"]["schemas"]["OrderPage"]["properties"]["items"]["items"] = {
        "$ref": "#/components/schemas/Missing"
    }
    code, report = lint(redocly, broken, tmp_path)
    assert code != 0
    rules = {problem["ruleId"] for problem in report["problems"] if problem["severity"] == "error"}
    assert {"struct", "no-unresolved-refs"} <= rules, problems(report)


def test_a_document_with_only_warnings_is_not_clean(redocly: Path, tmp_path: Path):
    untidy = copy.deepcopy(openapi_document(STAGES["local"]))
    del untidy["tags"][0]["description"]
    del untidy["info"]["license"]
    _, report = lint(redocly, untidy, tmp_path)
    assert report["totals"]["errors"] == 0
    warned = {problem["ruleId"] for problem in report["problems"] if problem["severity"] == "warn"}
    assert {"tag-description", "info-license"} <= warned, problems(report)
