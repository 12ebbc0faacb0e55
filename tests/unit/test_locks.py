"""The lock files agree with the ranges people edit, with each other and with the environment the tests run in.

requirements*.in hold the ranges; `make lock` (pip-compile) writes each into requirements*.txt with
every package pinned to one version and the hashes of the files it may be installed from.
requirements.txt is what Chalice packages into the functions; requirements-dev.txt is what `make`
installs into .venv, held at requirements.txt's runtime versions. So the tests run with the versions
the Lambda package carries (tests/integration/test_lambda_package.py reads them from the package).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from tests.support.project import PROJECT_DIR

RUNTIME_LOCK = PROJECT_DIR / "requirements.txt"
DEV_LOCK = PROJECT_DIR / "requirements-dev.txt"
# Each lock beside the ranges it is compiled from.
LOCKS = {
    RUNTIME_LOCK: PROJECT_DIR / "requirements.in",
    DEV_LOCK: PROJECT_DIR / "requirements-dev.in",
    PROJECT_DIR / "requirements-checkov.txt": PROJECT_DIR / "requirements-checkov.in",
}
# LocalStack's environment is Python 3.13+ only, so no lock is compiled for it here; its file is exact pins.
LOCALSTACK_PINS = PROJECT_DIR / "requirements-localstack.txt"
HASH_OPTION = re.compile(r"--hash=(sha256:[0-9a-f]{64})")
# A comment starts a line or follows whitespace; a `#` inside a URL fragment is not one.
COMMENT = re.compile(r"(^|\s)#.*$")


@dataclass(frozen=True)
class Pin:
    """One locked package: its version, and the hashes of the files pip may install it from."""

    version: Version
    hashes: frozenset[str]


def requirement_lines(path: Path) -> list[str]:
    """A requirements file's logical lines as pip reads them: continuations joined, comments and blanks dropped."""
    joined = path.read_text().replace("\\\n", " ")
    lines = (COMMENT.sub("", line).strip() for line in joined.splitlines())
    return [line for line in lines if line]


def pinned_version(requirement: Requirement) -> Version | None:
    """The one version an `==` requirement allows, or None when it allows a range."""
    specifiers = list(requirement.specifier)
    if len(specifiers) == 1 and specifiers[0].operator == "==" and not specifiers[0].version.endswith(".*"):
        return Version(specifiers[0].version)
    return None


def hashed_pin(line: str) -> tuple[NormalizedName, Pin] | None:
    """A lock line's package and pin, or None unless it is `name==version` followed only by sha256 hashes."""
    requirement_text, *options = line.split()
    if requirement_text.startswith("-"):
        return None
    requirement = Requirement(requirement_text)
    version = pinned_version(requirement)
    hashes = [HASH_OPTION.fullmatch(option) for option in options]
    if version is None or not hashes or not all(hashes):
        return None
    return canonicalize_name(requirement.name), Pin(version, frozenset(match[1] for match in hashes if match))


def locked(path: Path) -> dict[NormalizedName, Pin]:
    """Every package a lock file pins, by normalized name."""
    pins = {}
    for line in requirement_lines(path):
        found = hashed_pin(line)
        assert found is not None, f"{path.name}: not a hashed pin: {line}"
        name, pin = found
        pins[name] = pin
    return pins


def ranges(path: Path) -> list[Requirement]:
    """The requirements a .in file asks for, those of the files it includes with -r too (-c lines are locks)."""
    found = []
    for line in requirement_lines(path):
        option, _, argument = line.partition(" ")
        if option in ("-r", "--requirement"):
            found += ranges(path.parent / argument.strip())
        elif option not in ("-c", "--constraint"):
            found.append(Requirement(line))
    return found


@pytest.mark.parametrize("lock", list(LOCKS), ids=lambda path: path.name)
def test_every_line_of_a_lock_pins_one_version_with_its_hashes(lock: Path):
    # An index, find-links or trusted-host line, a range or a missing hash each fails here.
    lines = requirement_lines(lock)
    assert lines
    assert [line for line in lines if hashed_pin(line) is None] == []


@pytest.mark.parametrize("lock", list(LOCKS), ids=lambda path: path.name)
def test_every_range_in_the_in_file_is_met_by_the_locked_version(lock: Path):
    pins = locked(lock)
    unmet = {}
    for requirement in ranges(LOCKS[lock]):
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        pin = pins.get(canonicalize_name(requirement.name))
        if pin is None or not requirement.specifier.contains(pin.version, prereleases=True):
            unmet[str(requirement)] = str(pin.version) if pin else None
    assert unmet == {}


def test_the_dev_lock_pins_each_runtime_package_as_requirements_txt_does():
    runtime = locked(RUNTIME_LOCK)
    dev = locked(DEV_LOCK)
    assert {name: dev.get(name) for name in runtime} == runtime


def test_the_running_environment_has_every_package_of_the_dev_lock_at_its_version():
    # What the tests ran with: a package installed at another version (or missing) means .venv is not the lock.
    differing = {}
    for name, pin in locked(DEV_LOCK).items():
        try:
            installed: Version | None = Version(metadata.version(name))
        except metadata.PackageNotFoundError:
            installed = None
        if installed != pin.version:
            differing[name] = (str(pin.version), installed and str(installed))
    assert differing == {}


def test_the_localstack_environment_is_pinned_exactly():
    requirements = [Requirement(line) for line in requirement_lines(LOCALSTACK_PINS)]
    assert requirements
    assert [str(requirement) for requirement in requirements if pinned_version(requirement) is None] == []
