"""The AWS operations `chalice deploy` makes for this project's stage, read from the installed Chalice's own source.

Chalice builds a graph of the stage's resources (functions, roles, the REST API, ...), plans an
API call per resource (chalice/deploy/planner.py: PlanStage._plan_<type>, RemoteState's
existence checks) and sweeps what a deploy no longer has (chalice/deploy/sweeper.py). Each
planned call is a method of TypedAWSClient (chalice/awsclient.py); reading those methods'
bodies gives the boto3 operations. Reading the source rather than keeping a list means a
Chalice upgrade that calls something new changes the operator policy without anyone noticing
it first.
"""

from __future__ import annotations

import ast
import functools
import inspect
from pathlib import Path
from typing import Iterable

import botocore.session
from botocore import xform_name

# The sweeper names its deletions after the deployed-values type, not the resource class.
SWEEPER_NAMES = {
    "lambdafunction": "lambda_function",
    "managediamrole": "iam_role",
    "restapi": "rest_api",
    "loggroup": "log_group",
    "lambdalayer": "lambda_layer",
    "websocketapi": "websocket_api",
    "domainname": "domain_name",
    "apimapping": "api_mapping",
}


def _module_tree(module: object) -> ast.Module:
    return ast.parse(Path(inspect.getfile(module)).read_text())  # type: ignore[arg-type]


def _class(tree: ast.Module, name: str) -> ast.ClassDef:
    return next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == name)


def _methods(cls: ast.ClassDef) -> dict[str, ast.FunctionDef]:
    return {node.name: node for node in cls.body if isinstance(node, ast.FunctionDef)}


def _planned_methods(function: ast.FunctionDef) -> set[str]:
    """TypedAWSClient methods a planner or sweeper method schedules (APICall(method_name='...'))."""
    return {
        keyword.value.value
        for node in ast.walk(function)
        if isinstance(node, ast.Call)
        for keyword in node.keywords
        if keyword.arg == "method_name" and isinstance(keyword.value, ast.Constant)
    }


def _client_attributes(function: ast.FunctionDef) -> set[str]:
    """Methods called as self._client.NAME (RemoteState's reads)."""
    return {
        node.attr
        for node in ast.walk(function)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "_client"
        and isinstance(node.value.value, ast.Name)
        and node.value.value.id == "self"
    }


def resource_types(project_dir: Path, stage: str) -> set[str]:
    """The lower-cased Chalice resource classes the stage deploys (lambdafunction, managediamrole, restapi, ...)."""
    from chalice.cli.factory import CLIFactory
    from chalice.deploy.appgraph import ApplicationGraphBuilder, DependencyBuilder

    config = CLIFactory(str(project_dir)).create_config_obj(chalice_stage_name=stage)
    application = ApplicationGraphBuilder().build(config, stage)
    return {type(resource).__name__.lower() for resource in DependencyBuilder().build_dependencies(application)}


def client_methods(types: Iterable[str]) -> set[str]:
    """The TypedAWSClient methods that deploying (and sweeping) resources of these types may call."""
    from chalice.deploy import planner, sweeper

    planner_tree = _module_tree(planner)
    plan = _methods(_class(planner_tree, "PlanStage"))
    remote = _methods(_class(planner_tree, "RemoteState"))
    sweep = _methods(_class(_module_tree(sweeper), "ResourceSweeper"))
    found = _client_attributes(remote["_dynamically_lookup_values"])
    for resource_type in types:
        if f"_plan_{resource_type}" in plan:
            found |= _planned_methods(plan[f"_plan_{resource_type}"])
        if f"_resource_exists_{resource_type}" in remote:
            found |= _client_attributes(remote[f"_resource_exists_{resource_type}"])
        deletion = f"_delete_{SWEEPER_NAMES.get(resource_type, resource_type)}"
        if deletion in sweep:
            found |= _planned_methods(sweep[deletion])
    return found


@functools.lru_cache(maxsize=None)
def _operation_names(service: str) -> dict[str, str]:
    model = botocore.session.get_session().get_service_model(service)
    return {xform_name(name): name for name in model.operation_names}


def _waiter_name(model: object, waiter: str) -> str:
    names = {xform_name(name): name for name in model.waiter_names}  # type: ignore[attr-defined]
    return names[waiter]


class _Reader(ast.NodeVisitor):
    """Collects one TypedAWSClient method's boto3 operations and the other methods of the class it calls."""

    def __init__(self) -> None:
        self.clients: dict[str, str] = {}
        self.operations: set[tuple[str, str]] = set()
        self.calls: set[str] = set()

    @staticmethod
    def _service_of(node: ast.AST) -> str | None:
        # self._client('lambda')
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "_client"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            return str(node.args[0].value)
        return None

    def visit_Assign(self, node: ast.Assign) -> None:
        service = self._service_of(node.value)
        if service:
            for target in node.targets:
                if isinstance(target, ast.Name):
                    self.clients[target.id] = service
        self.generic_visit(node)

    def _client_service(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            return self.clients.get(node.id)
        return self._service_of(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        service = self._client_service(node.value)
        if service and node.attr in _operation_names(service):
            self.operations.add((service, _operation_names(service)[node.attr]))
        elif isinstance(node.value, ast.Name) and node.value.id == "self":
            self.calls.add(node.attr)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        # client.get_paginator('list_x') and client.get_waiter('function_active')
        if isinstance(node.func, ast.Attribute) and node.args and isinstance(node.args[0], ast.Constant):
            service = self._client_service(node.func.value)
            name = str(node.args[0].value)
            if service and node.func.attr == "get_paginator":
                self.operations.add((service, _operation_names(service)[name]))
            elif service and node.func.attr == "get_waiter":
                model = botocore.session.get_session().get_waiter_model(service)
                self.operations.add((service, model.get_waiter(_waiter_name(model, name)).operation))
        self.generic_visit(node)


def operations_of(methods: Iterable[str]) -> set[tuple[str, str]]:
    """The (botocore service, operation) pairs the TypedAWSClient methods call, following calls between them."""
    from chalice import awsclient

    available = _methods(_class(_module_tree(awsclient), "TypedAWSClient"))
    pending = list(methods)
    unknown = [name for name in pending if name not in available]
    if unknown:
        raise ValueError(f"TypedAWSClient has no method {', '.join(sorted(unknown))}")
    seen: set[str] = set()
    operations: set[tuple[str, str]] = set()
    while pending:
        name = pending.pop()
        if name in seen or name not in available:
            continue
        seen.add(name)
        reader = _Reader()
        reader.visit(available[name])
        operations |= reader.operations
        pending.extend(reader.calls - seen)
    return operations


def deploy_operations(project_dir: Path, stage: str) -> set[tuple[str, str]]:
    """Every AWS operation `chalice deploy --stage STAGE` of the project may make, first deploy or later ones."""
    return operations_of(client_methods(resource_types(project_dir, stage)))
