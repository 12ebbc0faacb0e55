"""The Node tools are pinned once in package.json and locked in package-lock.json, which names no registry."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from scripts.deploy.terraform.schema import PROVIDER_PACKAGES

PROJECT_DIR = Path(__file__).resolve().parents[2]
# The exact version `make docs` and the lint test run (redocly.yaml's settings are checked with it).
REDOCLY_CLI = "@redocly/cli"


def read(name: str) -> Any:
    return json.loads((PROJECT_DIR / name).read_text())


def test_every_tool_is_pinned_to_one_exact_version():
    pins = read("package.json")["devDependencies"]
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", version) for version in pins.values()), pins
    assert set(pins) == {package for package, _ in PROVIDER_PACKAGES.values()} | {REDOCLY_CLI}


def test_the_provider_packages_are_the_versions_the_schema_reader_expects():
    pins = read("package.json")["devDependencies"]
    for package, version in PROVIDER_PACKAGES.values():
        assert pins[package] == version, package


def test_the_lock_file_locks_package_json_and_names_no_registry():
    pins = read("package.json")["devDependencies"]
    lock = read("package-lock.json")
    assert lock["lockfileVersion"] == 3
    assert lock["packages"][""]["devDependencies"] == pins
    for package, version in pins.items():
        assert lock["packages"][f"node_modules/{package}"]["version"] == version, package
    entries = [entry for path, entry in lock["packages"].items() if path]
    # Each package is checked by its hash, and fetched from whichever registry npm is set up with.
    assert all("integrity" in entry for entry in entries if not entry.get("inBundle") and not entry.get("link"))
    assert not [path for path, entry in lock["packages"].items() if "resolved" in entry]
    assert "registry." not in (PROJECT_DIR / "package-lock.json").read_text()


def test_npm_is_set_to_leave_registries_out_of_the_lock_and_to_run_no_package_scripts():
    settings = dict(
        line.split("=", 1)
        for line in (PROJECT_DIR / ".npmrc").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    assert settings["omit-lockfile-registry-resolved"] == "true"
    assert settings["ignore-scripts"] == "true"
