"""The layering of chalicelib, read from its import statements: each layer imports only those below it, and no cycle.

From the bottom: the foundation (settings, errors, ids, models, tiers), telemetry, the invocation's
deadline, the store, the use cases (tenancy, pagination, services), the web edge, and the process
cache reset that knows them all.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "chalicelib"
# Every module by its name under chalicelib ("store.keys"); packages by their __init__.
MODULES = {
    ".".join(path.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__").removesuffix("__init__")
    for path in PACKAGE.rglob("*.py")
} - {""}
LAYERS = (
    {"config", "errors", "ids", "models", "tiers"},
    {"telemetry", "telemetry.*"},
    {"deadline"},
    {"store", "store.*"},
    {"tenancy", "pagination", "services", "tenant_repositories"},
    {"web", "web.*"},
    {"process_caches"},
)


def layer_of(module: str) -> int:
    """The index in LAYERS of the layer a module belongs to."""
    for index, layer in enumerate(LAYERS):
        if module in layer or f"{module.split('.')[0]}.*" in layer:
            return index
    raise AssertionError(f"chalicelib.{module} is in no layer: add it to LAYERS")


def imports_in(source: str) -> set[str]:
    """The chalicelib modules a source imports anywhere, imports deferred into functions included."""
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(
                alias.name.removeprefix("chalicelib.") for alias in node.names if alias.name.startswith("chalicelib.")
            )
        elif isinstance(node, ast.ImportFrom):
            # A relative import would slip past the checks below, so none is allowed.
            assert node.level == 0, f"relative import of {node.module!r}"
            if node.module is None or not (node.module == "chalicelib" or node.module.startswith("chalicelib.")):
                continue
            package = node.module.removeprefix("chalicelib").removeprefix(".")
            for alias in node.names:
                # `from chalicelib.store import keys` imports a module; `from chalicelib.ids import ORDER_ID` a name.
                submodule = f"{package}.{alias.name}" if package else alias.name
                imported.add(submodule if submodule in MODULES else package)
    return imported - {""}


def project_imports(module: str) -> set[str]:
    """The chalicelib modules the chalicelib module of that name imports."""
    path = PACKAGE.joinpath(*module.split("."))
    source = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    return imports_in(source.read_text())


def test_the_reader_sees_every_form_of_project_import():
    source = """
import json
import chalicelib.errors
from chalice.app import Request
from chalicelib.store import keys, catalog
from chalicelib.ids import ORDER_ID

def deferred():
    from chalicelib.config import get_settings
"""
    assert imports_in(source) == {"errors", "store.keys", "store.catalog", "ids", "config"}
    with pytest.raises(AssertionError, match="relative import"):
        imports_in("from .keys import ORDER_ID")


def test_every_module_is_in_a_layer():
    for module in MODULES:
        layer_of(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_a_module_imports_only_its_own_layer_and_those_below(module):
    above = {imported for imported in project_imports(module) if layer_of(imported) > layer_of(module)}
    assert not above, f"chalicelib.{module} imports {sorted(above)} of a higher layer"


def test_no_import_cycle():
    graph = {module: project_imports(module) - {module} for module in MODULES}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        # graphlib lists each module before the ones importing it; the message reads in import order.
        pytest.fail(f"import cycle: {' -> '.join(reversed(error.args[1]))}")


def test_config_imports_nothing_of_the_project():
    assert project_imports("config") == set()


def test_ids_import_nothing_of_the_project_but_its_settings():
    assert project_imports("ids") <= {"config"}


@pytest.mark.parametrize("module", ["web.validation", "web.openapi"])
def test_the_web_edge_takes_id_shapes_from_ids_not_from_the_store(module):
    imported = project_imports(module)
    assert "ids" in imported
    assert not any(name.startswith("store") for name in imported)


def test_keys_take_the_id_shapes_from_ids():
    assert "ids" in project_imports("store.keys")
