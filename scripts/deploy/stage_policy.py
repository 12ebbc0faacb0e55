"""Narrow a stage's IAM policy files from wildcard regions and accounts to the real ones bootstrap found."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

# The statement of the API handler's policy file that lets it read the pagination key.
PAGINATION_SECRET_SID = "PaginationSecret"


def _narrow_arn(arn: str, region: str, account: str) -> str:
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return arn
    # Services without regions or accounts in their ARNs (S3, IAM) have them empty, not "*": kept.
    if parts[3] == "*":
        parts[3] = region
    if parts[4] == "*":
        parts[4] = account
    return ":".join(parts)


def _narrow_resources(resources: Any, region: str, account: str) -> Any:
    if isinstance(resources, str):
        return _narrow_arn(resources, region, account)
    return [_narrow_arn(resource, region, account) for resource in resources]


def narrow_policy(document: dict[str, Any], *, region: str, account: str, pagination_secret_arn: str) -> dict[str, Any]:
    """The policy with every "*" region and account in its ARNs filled in, and the pagination secret's exact ARN.

    Resource "*" (X-Ray has no resource-level permissions) is left as it is.
    """
    statements = []
    for statement in document.get("Statement", []):
        statement = dict(statement)
        if statement.get("Sid") == PAGINATION_SECRET_SID:
            statement["Resource"] = pagination_secret_arn
        elif "Resource" in statement:
            statement["Resource"] = _narrow_resources(statement["Resource"], region, account)
        statements.append(statement)
    return {**document, "Statement": statements}


def update_policy_file(
    path: Path, *, region: str, account: str, pagination_secret_arn: str, write: bool = True
) -> bool:
    """Narrow the policy file in place (atomically); True if it changed or, with write=False, would."""
    document = json.loads(path.read_text())
    narrowed = narrow_policy(document, region=region, account=account, pagination_secret_arn=pagination_secret_arn)
    if narrowed == document:
        return False
    if write:
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(narrowed, indent=2) + "\n")
        os.replace(temporary, path)
    return True
