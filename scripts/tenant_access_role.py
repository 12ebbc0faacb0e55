"""The tenant-access role, defined once: its name, trust and policy, as bootstrap, the local stack and Terraform make it.

The API function assumes it for one tenant at a time with the session tag TenantID (see
chalicelib.store.tenant_access). Its one policy names the tenant through that tag, so a single
document serves every tenant and a session reaches only partition keys under its tenant's
prefix, on the table and on the catalog index. It allows exactly what the API's routes do and
nothing an operator does (no product writes, no deletes, no scans).
"""

from __future__ import annotations

from typing import Any

from chalicelib.store import keys
from chalicelib.store.tenant_access import SESSION_SECONDS, TENANT_TAG

POLICY_VERSION = "2012-10-17"
POLICY_NAME = "tenant-items"
# Every partition key a session may name starts here; IAM fills in the session's tag.
TENANT_KEY_PREFIX = f"TENANT#${{aws:PrincipalTag/{TENANT_TAG}}}#"
LEADING_KEYS = "dynamodb:LeadingKeys"
ATTRIBUTES = "dynamodb:Attributes"
# The catalog index's key attributes: an item that set them would be listed in whichever
# tenant's catalog partition they named, whatever its own partition key.
INDEX_KEY_ATTRIBUTES = (keys.CATALOG_INDEX_PK, keys.CATALOG_INDEX_SK)

# (Sid, action, on the catalog index rather than the table, the key spaces after the tenant prefix)
STATEMENTS: tuple[tuple[str, str, bool, tuple[str, ...]], ...] = (
    ("ReadTenantItems", "dynamodb:GetItem", False, ("PRODUCT#*", "ORDER#*", "IDEMPOTENCY#*")),
    ("ReadOrderInputs", "dynamodb:BatchGetItem", False, ("PRODUCT#*", "IDEMPOTENCY#*")),
    ("ListOrders", "dynamodb:Query", False, ("ORDER#*",)),
    ("ListCatalog", "dynamodb:Query", True, ("CATALOG#*",)),
    ("TakeStock", "dynamodb:UpdateItem", False, ("PRODUCT#*",)),
    ("RecordOrders", "dynamodb:PutItem", False, ("ORDER#*", "IDEMPOTENCY#*")),
)


def role_name(resource_prefix: str) -> str:
    """The role's name in a stage whose resources are named "{app}-{stage}"."""
    return f"{resource_prefix}-tenant-access"


def handler_role_name(resource_prefix: str) -> str:
    """The name Chalice gives the API function's role when the function has its own policy file."""
    return f"{resource_prefix}-api_handler"


def access_policy(table_arn: str) -> dict[str, Any]:
    """The role's policy: the API's calls on the table and its catalog index, under the session's tenant prefix only.

    ForAllValues holds only when every partition key a call names fits; each action allowed
    here always names its keys (no Scan), so there is no call without keys for it to let by.
    Writes may not name the catalog index's key attributes: only the operator lists a product.
    """
    statements = []
    for sid, action, on_index, key_spaces in STATEMENTS:
        statements.append(
            {
                "Sid": sid,
                "Effect": "Allow",
                "Action": action,
                "Resource": f"{table_arn}/index/{keys.CATALOG_INDEX}" if on_index else table_arn,
                "Condition": {
                    "ForAllValues:StringLike": {LEADING_KEYS: [TENANT_KEY_PREFIX + space for space in key_spaces]}
                },
            }
        )
    statements.append(
        {
            # LeadingKeys pins the item a write lands on, not the attributes it sets: without this,
            # a session could write its own item with another tenant's catalog index key.
            "Sid": "NoIndexKeysWritten",
            "Effect": "Deny",
            "Action": ["dynamodb:PutItem", "dynamodb:UpdateItem"],
            "Resource": table_arn,
            "Condition": {"ForAnyValue:StringEquals": {ATTRIBUTES: list(INDEX_KEY_ATTRIBUTES)}},
        }
    )
    return {"Version": POLICY_VERSION, "Statement": statements}


def trust_policy(account_root_arn: str, handler_role_arn: str) -> dict[str, Any]:
    """Who may assume the role: the API function's role only, and only with the tenant tag and no other.

    The account is the principal and the function's role a condition, so the role can be made
    before the function's (bootstrap runs before the first deploy) and survives its replacement.
    """
    principal = {"AWS": account_root_arn}
    from_the_api = {"ArnEquals": {"aws:PrincipalArn": handler_role_arn}}
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "ApiFunctionAssumes",
                "Effect": "Allow",
                "Principal": principal,
                "Action": "sts:AssumeRole",
                # A session without the tag is let in, but its policy names ${aws:PrincipalTag/TenantID},
                # which IAM cannot fill in for it: such a session reaches no item at all.
                "Condition": from_the_api,
            },
            {
                "Sid": "ApiFunctionTagsTheTenantOnly",
                "Effect": "Allow",
                "Principal": principal,
                "Action": "sts:TagSession",
                "Condition": {
                    **from_the_api,
                    "StringLike": {f"aws:RequestTag/{TENANT_TAG}": "?*"},
                    "ForAllValues:StringEquals": {"aws:TagKeys": [TENANT_TAG]},
                },
            },
        ],
    }


def role_arn(partition: str, account: str, resource_prefix: str) -> str:
    """The role's ARN in an account."""
    return f"arn:{partition}:iam::{account}:role/{role_name(resource_prefix)}"


def account_root_arn(partition: str, account: str) -> str:
    """The account as a principal."""
    return f"arn:{partition}:iam::{account}:root"


def handler_role_arn(partition: str, account: str, resource_prefix: str) -> str:
    """The API function's role's ARN in an account."""
    return f"arn:{partition}:iam::{account}:role/{handler_role_name(resource_prefix)}"


# The role's sessions last what the API asks for; the role allows no longer.
MAX_SESSION_SECONDS = SESSION_SECONDS
DESCRIPTION = "Assumed by the API function for one tenant (session tag TenantID): that tenant's items only."
