"""What a team adopting the project relies on: the licence, `make help`, and lint, format and type checks that pass."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from scripts.stage_config import PROJECT_DIR


def make(*arguments: str) -> str:
    return subprocess.run(
        ["make", "-s", *arguments], cwd=PROJECT_DIR, capture_output=True, text=True, check=True, timeout=60
    ).stdout


def phony_targets() -> list[str]:
    [line] = [line for line in (PROJECT_DIR / "Makefile").read_text().splitlines() if line.startswith(".PHONY:")]
    return line.split(":", 1)[1].split()


def test_make_alone_and_make_help_list_every_target_with_what_it_does():
    listed = make("help")
    assert make() == listed
    described = dict(re.findall(r"^  (\S+) +(\S.*)$", listed, flags=re.MULTILINE))
    assert set(phony_targets()) == set(described), listed
    assert all(len(text) > 10 for text in described.values()), described


def test_the_licence_is_mit_no_attribution_and_the_readme_says_so():
    assert (PROJECT_DIR / "LICENSE").read_text().startswith("MIT No Attribution\n")
    assert 'license = "MIT-0"' in (PROJECT_DIR / "pyproject.toml").read_text()
    assert "MIT-0" in (PROJECT_DIR / "README.md").read_text()


@pytest.mark.parametrize("command", [["check", "."], ["format", "--check", "."]], ids=["ruff check", "ruff format"])
def test_the_code_passes_ruff(command):
    done = subprocess.run(
        [sys.executable, "-m", "ruff", *command], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_chalicelib_passes_mypy_strict():
    # pyproject.toml's [tool.mypy]: strict on chalicelib, the untyped AWS libraries as Any.
    done = subprocess.run([sys.executable, "-m", "mypy"], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success" in done.stdout
