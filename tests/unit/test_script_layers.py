"""The layering of scripts/, read from its import statements: a shared base, then jobs that import only what is below them.

The base (the modules at the top of scripts/) imports no job; the tenant control plane imports only
the base; the local stack and the deploy tools import the base and the control plane, not each
other; the benchmarks and the API reference may use any of those. No module imports a command
(a module run with `python -m`), so that each command can change without breaking another, and
no import cycle remains.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
MODULES = {
    ".".join(path.relative_to(SCRIPTS).with_suffix("").parts).removesuffix(".__init__").removesuffix("__init__"): path
    for path in SCRIPTS.rglob("*.py")
}
MODULES.pop("", None)
# What each job may import besides itself.
MAY_IMPORT = {
    "base": set(),
    "tenants": {"base"},
    "local": {"base", "tenants"},
    "deploy": {"base", "tenants"},
    "measure": {"base", "tenants", "local", "deploy"},
    "docs": {"base"},
}


def job_of(module: str) -> str:
    """The job a module belongs to: its package under scripts/, or "base" for the modules at the top."""
    parts = module.split(".")
    return parts[0] if len(parts) > 1 or (SCRIPTS / parts[0]).is_dir() else "base"


def imports_of(module: str) -> set[str]:
    """The scripts modules a module imports anywhere, deferred imports included."""
    imported: set[str] = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Import):
            imported.update(
                alias.name.removeprefix("scripts.") for alias in node.names if alias.name.startswith("scripts.")
            )
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "scripts":
            assert node.level == 0, f"relative import in {module}"
            package = node.module.removeprefix("scripts").removeprefix(".")
            for alias in node.names:
                submodule = f"{package}.{alias.name}" if package else alias.name
                imported.add(submodule if submodule in MODULES else package)
    return imported - {"", module}


def is_command(module: str) -> bool:
    """Whether a module is run as a command: `python -m scripts.<module>`, or through its package's __main__."""
    if 'if __name__ == "__main__":' in MODULES[module].read_text():
        return True
    entry = f"{module.rpartition('.')[0]}.__main__"
    return entry in MODULES and module in imports_of(entry)


def test_every_job_is_known():
    assert {job_of(module) for module in MODULES} <= set(MAY_IMPORT)


def test_the_reader_sees_modules_of_packages():
    assert job_of("stage_config") == "base"
    assert job_of("local.stack") == "local"
    assert job_of("deploy.terraform.files") == "deploy"
    assert "stack_file" in imports_of("local.stack")
    assert "tenants.lifecycle" in imports_of("local.stack")
    assert is_command("tenants.cli") and is_command("local.stack") and not is_command("tenants.lifecycle")


@pytest.mark.parametrize("module", sorted(MODULES))
def test_a_module_imports_only_its_job_and_those_its_job_may_use(module):
    allowed = MAY_IMPORT[job_of(module)] | {job_of(module)}
    foreign = sorted(imported for imported in imports_of(module) if job_of(imported) not in allowed)
    assert not foreign, f"scripts.{module} ({job_of(module)}) imports {foreign}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_command(module):
    # A package's __main__ is its command's entry point: it runs the command it names.
    if module.endswith("__main__"):
        return
    commands = sorted(imported for imported in imports_of(module) if is_command(imported))
    assert not commands, f"scripts.{module} imports the commands {commands}"


def test_no_import_cycle():
    graph = {module: {imported for imported in imports_of(module) if imported in MODULES} for module in MODULES}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        # graphlib lists each module before the ones importing it; the message reads in import order.
        pytest.fail(f"import cycle: {' -> '.join(reversed(error.args[1]))}")
