"""What IAM asks of an AWS call (action, resource, DynamoDB partition keys), and whether a policy document allows it.

The evaluation covers what this project's policies use: Allow and Deny statements, Action and
Resource with "*" and "?" wildcards, and conditions on `dynamodb:LeadingKeys` with StringLike
or StringEquals, qualified by ForAllValues or ForAnyValue. A policy with anything else is
refused rather than judged, so a new kind of statement cannot pass unexamined.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, Iterable

import botocore.session

from chalicelib.store import schema
from scripts.deploy.operation_recorder import Operation

LEADING_KEYS = "dynamodb:LeadingKeys"
ATTRIBUTES = "dynamodb:Attributes"
# Calls IAM does not authorize: any caller may make them.
UNAUTHORIZED_OPERATIONS = {("sts", "GetCallerIdentity")}
# botocore service names whose IAM prefix differs.
IAM_PREFIXES = {"resourcegroupstaggingapi": "tag"}
# How each part of a DynamoDB transaction or batch is authorized.
TRANSACTION_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}
_NAME_PLACEHOLDER = re.compile(r"#\w+")
_KEY_CONDITION = re.compile(r"^\s*(?P<name>[#\w]+)\s*=\s*(?P<value>:\w+)")


class UnsupportedPolicy(ValueError):
    """The policy uses an element this evaluation does not implement."""


@dataclass(frozen=True)
class Permission:
    """One authorization IAM makes for a call; leading_keys are the DynamoDB partition keys it names, if any."""

    action: str
    resource: str
    leading_keys: tuple[str, ...] | None = None
    # The item attributes a write names (its item's, or its update and condition expressions'), if any.
    attributes: tuple[str, ...] | None = None


# --- what a call needs ---------------------------------------------------------------------


def _table_arn(region: str, account: str, table: str, index: str | None = None) -> str:
    if table.startswith("arn:"):
        return table + (f"/index/{index}" if index else "")
    return f"arn:aws:dynamodb:{region}:{account}:table/{table}" + (f"/index/{index}" if index else "")


@functools.lru_cache(maxsize=None)
def _partition_key_names() -> dict[str | None, str]:
    # The project has one table layout: its partition key and each index's, by index name (None: the table).
    definition = schema.table_definition("any")
    names: dict[str | None, str] = {None: _hash_key(definition["KeySchema"])}
    for index in definition.get("GlobalSecondaryIndexes", []):
        names[index["IndexName"]] = _hash_key(index["KeySchema"])
    return names


def _hash_key(key_schema: list[dict[str, str]]) -> str:
    return next(part["AttributeName"] for part in key_schema if part["KeyType"] == "HASH")


def _partition_value(item: dict[str, Any]) -> str:
    value = item[_partition_key_names()[None]]
    return value["S"] if isinstance(value, dict) else str(value)


def _queried_partition(params: dict[str, Any]) -> str:
    match = _KEY_CONDITION.match(params["KeyConditionExpression"])
    if not match:
        raise ValueError(f"cannot read the partition key of {params['KeyConditionExpression']!r}")
    name = params.get("ExpressionAttributeNames", {}).get(match["name"], match["name"])
    expected = _partition_key_names()[params.get("IndexName")]
    if name != expected:
        raise ValueError(f"the key condition names {name}, not the partition key {expected}")
    value = params["ExpressionAttributeValues"][match["value"]]
    return value["S"] if isinstance(value, dict) else str(value)


# Words of DynamoDB's expression grammar, which are not attribute names.
_EXPRESSION_WORDS = {
    "SET", "REMOVE", "ADD", "DELETE", "AND", "OR", "NOT", "IN", "BETWEEN", "ATTRIBUTE_EXISTS",
    "ATTRIBUTE_NOT_EXISTS", "ATTRIBUTE_TYPE", "BEGINS_WITH", "CONTAINS", "SIZE", "IF_NOT_EXISTS", "LIST_APPEND",
}  # fmt: skip


def _written_attributes(action: dict[str, Any]) -> tuple[str, ...]:
    """Every attribute a write names: its item's, or those its update and condition expressions name.

    The expressions are read as generously as IAM might: a plain name or a #placeholder anywhere
    in them counts, so a Deny on an attribute cannot miss a write that touches it.
    """
    if "Item" in action:
        return tuple(sorted(action["Item"]))
    names = action.get("ExpressionAttributeNames", {})
    found = set(action.get("Key", {}))
    for expression in (action.get("UpdateExpression", ""), action.get("ConditionExpression", "")):
        found.update(names.get(placeholder, placeholder) for placeholder in _NAME_PLACEHOLDER.findall(expression))
        without_values = re.sub(r":\w+|#\w+", " ", expression)
        found.update(
            word
            for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", without_values)
            if word.upper() not in _EXPRESSION_WORDS
        )
    return tuple(sorted(found))


def _dynamodb_permissions(operation: Operation, account: str) -> list[Permission]:
    params, region = operation.params, operation.region
    name = operation.name
    if name in ("TransactWriteItems", "TransactGetItems"):
        found = []
        for entry in params["TransactItems"]:
            ((kind, action),) = entry.items()
            item = action.get("Key") or action["Item"]
            arn = _table_arn(region, account, action["TableName"])
            written = _written_attributes(action) if kind in ("Put", "Update") else None
            found.append(Permission(f"dynamodb:{TRANSACTION_ACTIONS[kind]}", arn, (_partition_value(item),), written))
        return found
    if name == "BatchGetItem":
        return [
            Permission(
                "dynamodb:BatchGetItem",
                _table_arn(region, account, table),
                tuple(_partition_value(key) for key in request["Keys"]),
            )
            for table, request in params["RequestItems"].items()
        ]
    if name == "BatchWriteItem":
        return [
            Permission(
                "dynamodb:BatchWriteItem",
                _table_arn(region, account, table),
                tuple(
                    _partition_value(write.get("PutRequest", {}).get("Item") or write["DeleteRequest"]["Key"])
                    for write in writes
                ),
            )
            for table, writes in params["RequestItems"].items()
        ]
    if "TableName" not in params and "TableArn" not in params and "ResourceArn" not in params:
        return [Permission(f"dynamodb:{name}", "*")]
    table = params.get("TableName") or params.get("TableArn") or params["ResourceArn"]
    arn = _table_arn(region, account, table, params.get("IndexName"))
    if name in ("GetItem", "DeleteItem"):
        return [Permission(f"dynamodb:{name}", arn, (_partition_value(params["Key"]),))]
    if name == "UpdateItem":
        return [Permission(f"dynamodb:{name}", arn, (_partition_value(params["Key"]),), _written_attributes(params))]
    if name == "PutItem":
        return [Permission(f"dynamodb:{name}", arn, (_partition_value(params["Item"]),), _written_attributes(params))]
    if name == "Query" and "KeyConditionExpression" in params:
        return [Permission(f"dynamodb:{name}", arn, (_queried_partition(params),))]
    return [Permission(f"dynamodb:{name}", arn)]


@functools.lru_cache(maxsize=None)
def _service_model(service: str) -> Any:
    return botocore.session.get_session().get_service_model(service)


def _apigateway_permission(operation: Operation) -> Permission:
    # API Gateway's management API is authorized by HTTP method on the resource path it calls.
    model = _service_model("apigateway").operation_model(operation.name)
    path = model.http["requestUri"].split("?", 1)[0]
    for member_name, member in model.input_shape.members.items():
        if member.serialization.get("location") == "uri":
            placeholder = member.serialization.get("name", member_name)
            value = str(operation.params.get(member_name, "*"))
            path = path.replace("{" + placeholder + "}", value).replace("{" + placeholder + "+}", value)
    return Permission(f"apigateway:{model.http['method']}", f"arn:aws:apigateway:{operation.region}::{path}")


def required_permissions(operation: Operation, account: str) -> list[Permission]:
    """The permissions IAM checks for the call; a resource "*" means the call names none that IAM narrows by."""
    if (operation.service, operation.name) in UNAUTHORIZED_OPERATIONS:
        return []
    if operation.service == "dynamodb":
        return _dynamodb_permissions(operation, account)
    if operation.service == "apigateway":
        return [_apigateway_permission(operation)]
    if (operation.service, operation.name) == ("sts", "AssumeRole"):
        # Passing session tags is authorized as an action of its own, on the same role.
        role = operation.params["RoleArn"]
        tagged = [Permission("sts:TagSession", role)] if operation.params.get("Tags") else []
        return [Permission("sts:AssumeRole", role), *tagged]
    prefix = IAM_PREFIXES.get(operation.service, operation.service)
    return [Permission(f"{prefix}:{operation.name}", resource) for resource in named_resources(operation, account)]


def _arn(service: str, region: str, account: str, resource: str) -> str:
    # A parameter may already be an ARN (a secret's id, a topic): then it is the resource.
    _, _, named = resource.partition(":")
    return named if named.startswith("arn:") else f"arn:aws:{service}:{region}:{account}:{resource}"


def named_resources(operation: Operation, account: str) -> list[str]:
    """The ARNs of the resources the call names, for the services whose scripts name theirs (["*"] otherwise)."""
    params = operation.params
    # One call on several alarms, dashboards or Contributor Insights rules is authorized on each.
    if operation.service == "cloudwatch" and "AlarmNames" in params:
        return [_arn("cloudwatch", operation.region, account, f"alarm:{name}") for name in params["AlarmNames"]]
    if operation.service == "cloudwatch" and "DashboardNames" in params:
        return [f"arn:aws:cloudwatch::{account}:dashboard/{name}" for name in params["DashboardNames"]]
    if operation.service == "cloudwatch" and "RuleNames" in params:
        return [_arn("cloudwatch", operation.region, account, f"insight-rule/{name}") for name in params["RuleNames"]]
    return [_named_resource(operation, account)]


def _named_resource(operation: Operation, account: str) -> str:
    params, region, service = operation.params, operation.region, operation.service
    if service == "secretsmanager" and (params.get("SecretId") or params.get("Name")):
        secret = params.get("SecretId") or params["Name"]
        return _arn(service, region, account, f"secret:{secret}")
    if service == "cognito-idp" and "UserPoolId" in params:
        return _arn(service, region, account, f"userpool/{params['UserPoolId']}")
    if service == "logs" and "logGroupName" in params:
        return _arn(service, region, account, f"log-group:{params['logGroupName']}")
    if service == "lambda" and "FunctionName" in params:
        return _arn(service, region, account, f"function:{params['FunctionName']}")
    if service == "iam" and "RoleName" in params:
        return f"arn:aws:iam::{account}:role/{params['RoleName']}"
    if service == "cloudwatch":
        if "DashboardName" in params:
            return f"arn:aws:cloudwatch::{account}:dashboard/{params['DashboardName']}"
        if "AlarmName" in params:
            return _arn(service, region, account, f"alarm:{params['AlarmName']}")
        if "RuleName" in params:
            return _arn(service, region, account, f"insight-rule/{params['RuleName']}")
    if service == "sns":
        if "TopicArn" in params:
            return params["TopicArn"]
        if operation.name == "CreateTopic":
            return _arn(service, region, account, params["Name"])
    if service == "xray":
        rule = params.get("RuleName") or params.get("SamplingRule", {}).get("RuleName")
        if rule:
            return _arn(service, region, account, f"sampling-rule/{rule}")
    return "*"


def leading_key_shape(partition_key: str) -> str:
    """A partition key with its ids replaced by "*": "TENANT#acme#ORDER#03" becomes "TENANT#*#ORDER#*".

    Keys alternate labels and values ("LABEL#value#LABEL#value"); the labels are kept.
    """
    parts = partition_key.split("#")
    return "#".join(part if index % 2 == 0 else "*" for index, part in enumerate(parts))


# --- whether a policy allows it ------------------------------------------------------------

_PRINCIPAL_TAG = re.compile(r"\$\{aws:PrincipalTag/(?P<key>[^},]+)\}")


def with_principal_tags(document: dict[str, Any], tags: dict[str, str]) -> dict[str, Any]:
    """The policy as IAM applies it to a session with these tags: each ${aws:PrincipalTag/KEY} filled in.

    A statement naming a tag the session lacks is dropped, since IAM cannot resolve the variable
    and so never matches that statement.
    """

    def resolve(value: Any) -> Any:
        if isinstance(value, str):
            missing = [m["key"] for m in _PRINCIPAL_TAG.finditer(value) if m["key"] not in tags]
            if missing:
                raise KeyError(missing[0])
            return _PRINCIPAL_TAG.sub(lambda m: tags[m["key"]], value)
        if isinstance(value, list):
            return [resolve(item) for item in value]
        if isinstance(value, dict):
            return {key: resolve(item) for key, item in value.items()}
        return value

    statements = []
    for statement in document["Statement"]:
        try:
            statements.append(resolve(statement))
        except KeyError:
            continue
    return {**document, "Statement": statements}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@functools.lru_cache(maxsize=None)
def _pattern(glob: str) -> re.Pattern[str]:
    # IAM wildcards: "*" any run of characters (":" and "/" included), "?" any one character.
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob), re.DOTALL)


def matches(glob: str, value: str, *, ignore_case: bool = False) -> bool:
    """Whether value matches an IAM wildcard pattern (actions match without regard to case)."""
    if ignore_case:
        return _pattern(glob.lower()).fullmatch(value.lower()) is not None
    return _pattern(glob).fullmatch(value) is not None


def _fits(test: str, patterns: list[str], value: str) -> bool:
    return any(matches(pattern, value) if test == "StringLike" else pattern == value for pattern in patterns)


def _condition_holds(condition: dict[str, Any], permission: Permission) -> bool:
    for operator, tests in condition.items():
        qualifier, _, test = operator.rpartition(":")
        if qualifier not in ("ForAllValues", "ForAnyValue") or test not in ("StringLike", "StringEquals"):
            raise UnsupportedPolicy(f"condition operator {operator!r}")
        for key, expected in tests.items():
            if key not in (LEADING_KEYS, ATTRIBUTES):
                raise UnsupportedPolicy(f"condition key {key!r}")
            values = (permission.leading_keys if key == LEADING_KEYS else permission.attributes) or ()
            patterns = _as_list(expected)
            # As IAM does: ForAllValues holds for a request without the key, ForAnyValue does not.
            if qualifier == "ForAllValues":
                holds = all(_fits(test, patterns, value) for value in values)
            else:
                holds = any(_fits(test, patterns, value) for value in values)
            if not holds:
                return False
    return True


def _statement_applies(statement: dict[str, Any], permission: Permission) -> bool:
    unknown = set(statement) - {"Sid", "Effect", "Action", "Resource", "Condition"}
    if unknown:
        raise UnsupportedPolicy(f"statement elements {sorted(unknown)}")
    if not any(matches(action, permission.action, ignore_case=True) for action in _as_list(statement["Action"])):
        return False
    if not any(matches(resource, permission.resource) for resource in _as_list(statement["Resource"])):
        return False
    return _condition_holds(statement.get("Condition", {}), permission)


def allows(document: dict[str, Any], permission: Permission) -> bool:
    """Whether the policy allows the permission: some Allow statement applies and no Deny does."""
    statements = document["Statement"]
    if any(s["Effect"] == "Deny" and _statement_applies(s, permission) for s in statements):
        return False
    return any(s["Effect"] == "Allow" and _statement_applies(s, permission) for s in statements)


@dataclass(frozen=True)
class Grant:
    """One (action, resource, partition-key pattern) an Allow statement names; the pattern is None without one."""

    action: str
    resource: str
    leading_key: str | None = None


def grants(document: dict[str, Any]) -> set[Grant]:
    """Every combination of action, resource and leading-key pattern the policy's Allow statements name."""
    found: set[Grant] = set()
    for statement in document["Statement"]:
        if statement["Effect"] != "Allow":
            continue
        patterns: list[str | None] = [None]
        for operator, tests in statement.get("Condition", {}).items():
            if not operator.startswith("ForAllValues:") or set(tests) != {LEADING_KEYS}:
                raise UnsupportedPolicy(f"an Allow condition other than ForAllValues on {LEADING_KEYS}: {operator}")
            patterns = list(_as_list(tests[LEADING_KEYS]))
        for action in _as_list(statement["Action"]):
            for resource in _as_list(statement["Resource"]):
                found.update(Grant(action, resource, pattern) for pattern in patterns)
    return found


def needed_grants(permissions: Iterable[Permission]) -> set[Grant]:
    """The grants that cover exactly these permissions, each partition key reduced to its shape."""
    found: set[Grant] = set()
    for permission in permissions:
        if permission.leading_keys is None:
            found.add(Grant(permission.action, permission.resource))
        else:
            found.update(
                Grant(permission.action, permission.resource, leading_key_shape(key)) for key in permission.leading_keys
            )
    return found
