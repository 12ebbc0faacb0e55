"""The functions run on arm64 (Graviton, 20 % less per GB-second than x86): the package carries arm64 code only.

`lambda_architecture` in .chalice/config.json makes Chalice fetch the aarch64 wheels of every
compiled dependency (cryptography for RS256, cffi); a wheel built for the machine running the
packager would load on x86 only. This reads every shared object in the package's zip, and the
versions of every distribution in it, which must be requirements.txt's: the versions the tests ran with.
Chalice packages app.py and all of chalicelib/, so the deploy-time definitions (the dashboard and
alarms of scripts.monitoring) live outside it, and nothing the function runs may import scripts.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from chalice.deploy.packager import PipRunner, SubprocessPip
from packaging.utils import canonicalize_name
from packaging.version import Version

from scripts.stage_config import LOCKED_PACKAGING
from tests.support.project import PROJECT_DIR
from tests.unit.test_locks import RUNTIME_LOCK, locked

ELF_MAGIC = b"\x7fELF"
# e_machine in an ELF header: what the code was compiled for.
AARCH64, X86_64 = 183, 62


def package(out: Path, *options: str) -> Path:
    """`chalice package` of the dev stage into out; the folder."""
    chalice = Path(sys.executable).parent / "chalice"
    packaged = subprocess.run(
        [str(chalice), "package", "--stage", "dev", *options, str(out)],
        cwd=PROJECT_DIR,
        env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1", **LOCKED_PACKAGING},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert packaged.returncode == 0, packaged.stderr
    return out


def machines(deployment: Path) -> dict[str, int]:
    """The ELF machine of every shared object in a deployment zip, by its path."""
    found = {}
    with zipfile.ZipFile(deployment) as archive:
        for name in archive.namelist():
            if name.endswith(".so") or ".so." in name:
                header = archive.read(name)[:20]
                if header[:4] == ELF_MAGIC:
                    found[name] = int.from_bytes(header[18:20], "little")
    return found


@pytest.fixture(scope="module")
def sam_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return package(tmp_path_factory.mktemp("sam") / "out")


def test_every_compiled_dependency_in_the_package_is_arm64_code(sam_package: Path):
    found = machines(sam_package / "deployment.zip")
    assert any("cryptography" in name for name in found), "RS256 verification needs cryptography's compiled code"
    assert {name: machine for name, machine in found.items() if machine != AARCH64} == {}


def test_both_functions_are_declared_arm64_in_each_package(sam_package: Path, tmp_path: Path):
    template = json.loads((sam_package / "sam.json").read_text())["Resources"]
    functions = {name: r["Properties"] for name, r in template.items() if r["Type"] == "AWS::Serverless::Function"}
    assert len(functions) == 2
    assert {name: properties["Architectures"] for name, properties in functions.items()} == {
        name: ["arm64"] for name in functions
    }
    terraform = json.loads((package(tmp_path / "tf", "--pkg-format", "terraform") / "chalice.tf.json").read_text())
    lambdas = terraform["resource"]["aws_lambda_function"]
    assert len(lambdas) == 2 and all(function["architectures"] == ["arm64"] for function in lambdas.values())


def test_the_package_carries_exactly_the_versions_requirements_txt_locks(sam_package: Path):
    # Chalice only warns (and exits 0) when it cannot fetch a wheel for Lambda: a missing one shows here.
    packaged = metadata.distributions(path=[str(sam_package / "deployment.zip")])
    versions = {
        canonicalize_name(distribution.metadata["Name"]): Version(distribution.version) for distribution in packaged
    }
    assert versions == {name: pin.version for name, pin in locked(RUNTIME_LOCK).items()}


def test_chalice_fetches_an_aarch64_wheel_only_when_its_hash_is_locked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    pin = locked(RUNTIME_LOCK)["cryptography"]
    wanted = f"cryptography=={pin.version}"
    abi = f"cp{sys.version_info.major}{sys.version_info.minor}"

    def fetch(constraints: Path, into: Path) -> list[Path]:
        """The wheels chalice's own aarch64 download pass saves, with constraints as pip's constraints file."""
        monkeypatch.setenv("PIP_CONSTRAINT", str(constraints))
        PipRunner(SubprocessPip()).download_manylinux_wheels(abi, [wanted], str(into), ["manylinux2014_aarch64"])
        return sorted(into.glob("*.whl"))

    [wheel] = fetch(RUNTIME_LOCK, tmp_path / "locked")
    assert "aarch64" in wheel.name
    assert f"sha256:{hashlib.sha256(wheel.read_bytes()).hexdigest()}" in pin.hashes
    unknown = tmp_path / "unknown-hash.txt"
    unknown.write_text(f"{wanted} --hash=sha256:{hashlib.sha256(b'no such wheel').hexdigest()}\n")
    assert fetch(unknown, tmp_path / "unknown") == []


def test_the_package_carries_the_metric_names_but_not_the_deploy_time_definitions(sam_package: Path):
    with zipfile.ZipFile(sam_package / "deployment.zip") as archive:
        names = set(archive.namelist())
    assert {"app.py", "chalicelib/telemetry/emf.py", "chalicelib/telemetry/metrics.py"} <= names
    assert "chalicelib/monitoring.py" not in names
    assert not any(name.startswith("scripts/") for name in names)


def test_importing_the_app_imports_the_metric_names_and_not_the_scripts_definitions():
    imported = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, sys, app; print(json.dumps([name in sys.modules for name in "
            "('chalicelib.telemetry.metrics', 'scripts.monitoring')]))",
        ],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout.splitlines()[-1]) == [True, False]


def imported_modules(source: Path) -> set[str]:
    """Every module a Python file imports, absolute names only (chalicelib imports absolutely)."""
    found = set()
    for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_nothing_the_function_runs_imports_from_scripts():
    # scripts/ is not in the package: an import of it would fail in Lambda only.
    sources = [PROJECT_DIR / "app.py", *sorted((PROJECT_DIR / "chalicelib").rglob("*.py"))]
    imports = {str(source.relative_to(PROJECT_DIR)): imported_modules(source) for source in sources}
    assert "chalicelib.telemetry.metrics" in imports["chalicelib/web/middleware.py"]
    assert {
        name: sorted(module for module in modules if module == "scripts" or module.startswith("scripts."))
        for name, modules in imports.items()
    } == {name: [] for name in imports}
