"""The Terraform JSON files that complete `chalice package --pkg-format terraform` for a stage.

Chalice's chalice.tf.json holds the functions, their roles and the REST API. Terraform merges
every *.tf.json of a folder, so each module beside this one renders one file to sit beside it
(providers, variables, table, identity, usage plans, API stage, secret, the tenant-access role,
monitoring, outputs) and chalice_override renders the file that adjusts Chalice's own blocks.
Everything is rendered from chalicelib's definitions, so a tier, a threshold or a key shape
changes in one place only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from scripts.deploy.terraform.api import api_document
from scripts.deploy.terraform.blocks import TerraformStage
from scripts.deploy.terraform.chalice_override import override_document
from scripts.deploy.terraform.identity import identity_document
from scripts.deploy.terraform.monitoring import monitoring_document
from scripts.deploy.terraform.outputs import outputs_document
from scripts.deploy.terraform.pagination_secret import secrets_document
from scripts.deploy.terraform.providers import providers_document
from scripts.deploy.terraform.table import table_document
from scripts.deploy.terraform.tenant_access import tenant_access_document
from scripts.deploy.terraform.usage_plans import usage_plans_document
from scripts.deploy.terraform.variables import variables_document


def packaged_functions(chalice: dict[str, Any]) -> dict[str, str]:
    """Chalice's Lambda resource names and the function names they deploy."""
    return {name: function["function_name"] for name, function in chalice["resource"]["aws_lambda_function"].items()}


def terraform_files(stage: TerraformStage, chalice: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every file to write beside chalice.tf.json, by file name."""
    return {
        "providers.tf.json": providers_document(stage),
        "variables.tf.json": variables_document(stage),
        "table.tf.json": table_document(stage),
        "identity.tf.json": identity_document(stage),
        "usage_plans.tf.json": usage_plans_document(stage),
        "api.tf.json": api_document(stage, packaged_functions(chalice)),
        "secrets.tf.json": secrets_document(stage),
        "tenant_access.tf.json": tenant_access_document(stage, chalice),
        "monitoring.tf.json": monitoring_document(stage, packaged_functions(chalice)),
        "outputs.tf.json": outputs_document(),
        "chalice_override.tf.json": override_document(stage, chalice),
    }


def resource_addresses(documents: Iterable[dict[str, Any]]) -> set[str]:
    """Every "type.name" the documents declare."""
    return {
        f"{resource_type}.{name}"
        for document in documents
        for resource_type, resources in document.get("resource", {}).items()
        for name in resources
    }
