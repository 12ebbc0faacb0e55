"""The layering of chalicelib, read from its import statements: the id shapes sit below the store and the web edge."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "chalicelib"
MODULES = {path.stem for path in PACKAGE.glob("*.py")} - {"__init__"}


def imports_in(source: str) -> set[str]:
    """The chalicelib modules a source imports anywhere, imports deferred into functions included."""
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[1] for alias in node.names if alias.name.startswith("chalicelib."))
        elif isinstance(node, ast.ImportFrom):
            # A relative import would slip past the checks below, so none is allowed.
            assert node.level == 0, f"relative import of {node.module!r}"
            if node.module == "chalicelib":
                imported.update(alias.name for alias in node.names if alias.name in MODULES)
            elif node.module and node.module.startswith("chalicelib."):
                imported.add(node.module.split(".")[1])
    return imported


def project_imports(module: str) -> set[str]:
    """The chalicelib modules the chalicelib module of that name imports."""
    return imports_in((PACKAGE / f"{module}.py").read_text())


def test_the_reader_sees_every_form_of_project_import():
    source = """
import json
import chalicelib.errors
from chalice.app import Request
from chalicelib import keys, repository
from chalicelib.ids import ORDER_ID

def deferred():
    from chalicelib.config import get_settings
"""
    assert imports_in(source) == {"errors", "keys", "repository", "ids", "config"}
    with pytest.raises(AssertionError, match="relative import"):
        imports_in("from .keys import ORDER_ID")


def test_no_module_of_the_package_imports_relatively():
    for module in sorted(MODULES):
        project_imports(module)


def test_ids_import_nothing_of_the_project_but_its_settings():
    assert project_imports("ids") <= {"config"}


@pytest.mark.parametrize("module", ["validation", "openapi"])
def test_the_web_edge_takes_id_shapes_from_ids_not_from_the_store(module):
    imported = project_imports(module)
    assert "ids" in imported
    assert imported.isdisjoint({"keys", "repository"})


def test_keys_take_the_id_shapes_from_ids():
    assert "ids" in project_imports("keys")


def test_config_imports_nothing_of_the_project():
    assert project_imports("config") == set()
