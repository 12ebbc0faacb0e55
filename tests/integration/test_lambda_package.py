"""The functions run on arm64 (Graviton, 20 % less per GB-second than x86): the package carries arm64 code only.

`lambda_architecture` in .chalice/config.json makes Chalice fetch the aarch64 wheels of every
compiled dependency (cryptography for RS256, cffi); a wheel built for the machine running the
packager would load on x86 only. This reads every shared object in the package's zip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import PROJECT_DIR

ELF_MAGIC = b"\x7fELF"
# e_machine in an ELF header: what the code was compiled for.
AARCH64, X86_64 = 183, 62


def package(out: Path, *options: str) -> Path:
    """`chalice package` of the dev stage into out; the folder."""
    chalice = Path(sys.executable).parent / "chalice"
    packaged = subprocess.run(
        [str(chalice), "package", "--stage", "dev", *options, str(out)],
        cwd=PROJECT_DIR,
        env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"},
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
