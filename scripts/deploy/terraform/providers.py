"""providers.tf.json: the AWS provider, pinned to the packaged region, tagging every resource."""

from __future__ import annotations

from typing import Any

from scripts.deploy.terraform.blocks import TerraformStage


def providers_document(stage: TerraformStage) -> dict[str, Any]:
    """The AWS provider: the packaged region, and the stage's tags on every resource for cost allocation."""
    # The dashboard names its region, so the stack must be applied in the region it was packaged for.
    return {"provider": {"aws": {"region": stage.deployment.region, "default_tags": {"tags": stage.tags}}}}
