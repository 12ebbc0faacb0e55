"""The GitHub workflows and Dependabot settings: valid by their schemas, clean by zizmor, every action pinned by SHA.

check-jsonschema and zizmor come from requirements-dev.txt and run from the virtual environment the
tests run in, offline. Each check also runs on a copy of .github/ spoiled the way it must catch.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from tests.support.project import PROJECT_DIR

GITHUB_DIR = PROJECT_DIR / ".github"
# An action or reusable workflow of another repository, pinned by full commit SHA.
PINNED = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(?:/[^@\s]+)?@[0-9a-f]{40}")
# The release a pin stands for, as Dependabot keeps it beside the SHA.
VERSION_COMMENT = re.compile(r"v[0-9]+\.[0-9]+\.[0-9]+")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?:\s+#\s*(?P<comment>\S+))?", re.MULTILINE)
# zizmor exits 10 + the highest severity it found; 1 and 2 are its own failures.
ZIZMOR_FINDINGS_EXIT_CODES = {0, *range(10, 15)}


def tool(name: str) -> str:
    """An executable installed beside the Python running the tests (the project's .venv in a fresh clone)."""
    path = Path(sys.executable).parent / name
    assert path.exists(), f"{name} is not installed beside {sys.executable}: install requirements-dev.txt (make test)"
    return str(path)


def workflow_files(github_dir: Path) -> list[Path]:
    """The workflow files under github_dir."""
    return sorted([*github_dir.glob("workflows/*.yml"), *github_dir.glob("workflows/*.yaml")])


def schema_failures(github_dir: Path) -> list[str]:
    """What check-jsonschema says of each file that does not match its schema (GitHub's workflows, Dependabot)."""
    checks = [
        ("vendor.github-workflows", workflow_files(github_dir)),
        ("vendor.dependabot", [github_dir / "dependabot.yml"]),
    ]
    failures = []
    for schema, files in checks:
        assert files and all(path.exists() for path in files), (schema, files)
        done = subprocess.run(
            [tool("check-jsonschema"), "--builtin-schema", schema, *map(str, files)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            failures.append(done.stdout + done.stderr)
    return failures


def zizmor_findings(github_dir: Path) -> list[dict[str, Any]]:
    """zizmor's findings of medium or high severity in github_dir (its workflows and Dependabot settings)."""
    done = subprocess.run(
        [tool("zizmor"), "--offline", "--min-severity", "medium", "--format", "json", "--no-progress", str(github_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode in ZIZMOR_FINDINGS_EXIT_CODES, done.stderr
    return json.loads(done.stdout)


def _uses(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "uses" and isinstance(value, str):
                yield value
            else:
                yield from _uses(value)
    elif isinstance(node, list):
        for item in node:
            yield from _uses(item)


def unpinned_uses(github_dir: Path) -> list[str]:
    """Every `uses:` of another repository that is not pinned by full commit SHA with a `# vX.Y.Z` comment."""
    problems = []
    for path in workflow_files(github_dir):
        text = path.read_text()
        comments = {match["ref"]: match["comment"] or "" for match in USES_LINE.finditer(text)}
        for ref in _uses(yaml.safe_load(text)):
            if ref.startswith("./"):
                continue
            if not PINNED.fullmatch(ref):
                problems.append(f"{path.name}: {ref} is not pinned by commit SHA")
            elif not VERSION_COMMENT.fullmatch(comments.get(ref, "")):
                problems.append(f"{path.name}: {ref} has no '# vX.Y.Z' comment naming its release")
    return problems


@pytest.fixture
def spoiled(tmp_path: Path) -> Path:
    """A copy of .github/ that a test may spoil."""
    copy = tmp_path / ".github"
    shutil.copytree(GITHUB_DIR, copy)
    return copy


def replace_once(path: Path, old: str, new: str) -> None:
    """Replace the first occurrence of old in path, which must be there."""
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def test_the_workflows_and_dependabot_settings_match_their_schemas() -> None:
    assert schema_failures(GITHUB_DIR) == []


def test_zizmor_finds_nothing_of_medium_or_high_severity() -> None:
    findings = zizmor_findings(GITHUB_DIR)
    assert findings == [], [(finding["ident"], finding["desc"]) for finding in findings]


def test_every_action_is_pinned_by_commit_sha_with_its_release_beside_it() -> None:
    assert workflow_files(GITHUB_DIR), "no workflows found"
    assert unpinned_uses(GITHUB_DIR) == []


def test_an_action_pinned_by_tag_is_caught_by_the_pin_check_and_by_zizmor(spoiled: Path) -> None:
    ci = spoiled / "workflows" / "ci.yml"
    replace_once(ci, "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1", "actions/checkout@v4")
    assert unpinned_uses(spoiled) == ["ci.yml: actions/checkout@v4 is not pinned by commit SHA"]
    # .github/zizmor.yml asks for SHA pins of GitHub's own actions too, which zizmor lets off by default.
    assert "unpinned-uses" in {finding["ident"] for finding in zizmor_findings(spoiled)}


def test_a_pin_without_its_release_comment_is_caught(spoiled: Path) -> None:
    replace_once(spoiled / "workflows" / "deploy.yml", " # v6.2.3", "")
    assert unpinned_uses(spoiled) == [
        "deploy.yml: aws-actions/configure-aws-credentials@e6de054238d6b7531b4efff3b6587d9aade6a06c has no "
        "'# vX.Y.Z' comment naming its release"
    ]


def test_zizmor_catches_an_expression_expanded_into_a_script(spoiled: Path) -> None:
    replace_once(
        spoiled / "workflows" / "ci.yml",
        "        run: make test\n",
        '        run: make test\n      - run: echo "${{ github.event.pull_request.title }}"\n',
    )
    assert "template-injection" in {finding["ident"] for finding in zizmor_findings(spoiled)}


def test_zizmor_catches_a_checkout_that_keeps_its_credentials(spoiled: Path) -> None:
    # Left out, the setting defaults to keeping the token in .git/config for every later step.
    replace_once(spoiled / "workflows" / "deploy.yml", "        with:\n          persist-credentials: false\n", "")
    assert "artipacked" in {finding["ident"] for finding in zizmor_findings(spoiled)}


def test_the_schema_check_catches_a_job_without_a_runner_and_a_bad_schedule(spoiled: Path) -> None:
    replace_once(spoiled / "workflows" / "ci.yml", "    runs-on: ubuntu-24.04\n", "")
    replace_once(spoiled / "dependabot.yml", "interval: weekly", "interval: fortnightly")
    failures = schema_failures(spoiled)
    assert len(failures) == 2, failures
    assert "ci.yml" in failures[0] and "dependabot.yml" in failures[1], failures
