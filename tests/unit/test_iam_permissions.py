"""What an AWS call asks of IAM, and the policy evaluation the function and operator policy tests rely on."""

from __future__ import annotations

import json

import pytest

from scripts.deploy.iam_permissions import (
    Grant,
    Permission,
    UnsupportedPolicy,
    allows,
    grants,
    leading_key_shape,
    matches,
    needed_grants,
    required_permissions,
)
from scripts.deploy.operation_recorder import Operation
from scripts.deploy.stage_policy import narrow_policy
from tests.support.project import PROJECT_DIR

ACCOUNT = "123456789012"
TABLE = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/t"


def operation(service: str, name: str, **params: object) -> Operation:
    return Operation(service, name, dict(params), "us-east-1")


def key(pk: str, sk: str = "X") -> dict[str, dict[str, str]]:
    return {"PK": {"S": pk}, "SK": {"S": sk}}


@pytest.mark.parametrize(
    "partition, shape",
    [
        ("TENANT#acme#ORDER#03", "TENANT#*#ORDER#*"),
        ("TENANT#acme", "TENANT#*"),
        ("CLIENT#abc", "CLIENT#*"),
        ("TENANT#acme#IDEMPOTENCY#" + "0" * 64, "TENANT#*#IDEMPOTENCY#*"),
    ],
)
def test_a_partition_key_keeps_its_labels_and_loses_its_ids(partition: str, shape: str) -> None:
    assert leading_key_shape(partition) == shape


def test_a_transaction_needs_each_parts_own_action_on_each_partition() -> None:
    call = operation(
        "dynamodb",
        "TransactWriteItems",
        TransactItems=[
            {
                "Update": {
                    "TableName": "t",
                    "Key": key("TENANT#a#PRODUCT#p"),
                    "UpdateExpression": "SET #s = #s - :q",
                    "ConditionExpression": "attribute_exists(PK) AND price = :price",
                    "ExpressionAttributeNames": {"#s": "stock"},
                }
            },
            {"Put": {"TableName": "t", "Item": {**key("TENANT#a#ORDER#01"), "total": {"N": "1"}}}},
            {"ConditionCheck": {"TableName": "t", "Key": key("TENANT#a")}},
        ],
    )
    # A write also names the attributes it touches (dynamodb:Attributes), read generously.
    assert required_permissions(call, ACCOUNT) == [
        Permission("dynamodb:UpdateItem", TABLE, ("TENANT#a#PRODUCT#p",), ("PK", "SK", "price", "stock")),
        Permission("dynamodb:PutItem", TABLE, ("TENANT#a#ORDER#01",), ("PK", "SK", "total")),
        Permission("dynamodb:ConditionCheckItem", TABLE, ("TENANT#a",)),
    ]


def test_a_deny_on_attributes_applies_to_a_write_naming_any_of_them() -> None:
    policy = {
        "Statement": [
            {"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": TABLE},
            {
                "Effect": "Deny",
                "Action": "dynamodb:PutItem",
                "Resource": TABLE,
                "Condition": {"ForAnyValue:StringEquals": {"dynamodb:Attributes": ["CatalogPK"]}},
            },
        ]
    }
    assert allows(policy, Permission("dynamodb:PutItem", TABLE, ("TENANT#a#ORDER#01",), ("PK", "SK")))
    assert not allows(policy, Permission("dynamodb:PutItem", TABLE, ("TENANT#a#ORDER#01",), ("PK", "CatalogPK")))


def test_an_index_query_is_authorized_on_the_index_with_the_index_partition() -> None:
    call = operation(
        "dynamodb",
        "Query",
        TableName="t",
        IndexName="catalog",
        KeyConditionExpression="#pk = :pk AND #sk > :after",
        ExpressionAttributeNames={"#pk": "CatalogPK", "#sk": "CatalogSK"},
        ExpressionAttributeValues={":pk": {"S": "TENANT#a#CATALOG#03"}, ":after": {"S": "PRODUCT#x"}},
    )
    assert required_permissions(call, ACCOUNT) == [
        Permission("dynamodb:Query", f"{TABLE}/index/catalog", ("TENANT#a#CATALOG#03",))
    ]


def test_a_batch_read_names_every_partition_it_reads() -> None:
    call = operation("dynamodb", "BatchGetItem", RequestItems={"t": {"Keys": [key("A#1"), key("B#2")]}})
    assert required_permissions(call, ACCOUNT) == [Permission("dynamodb:BatchGetItem", TABLE, ("A#1", "B#2"))]


def test_api_gateway_is_authorized_by_method_on_the_path() -> None:
    call = operation("apigateway", "UpdateRestApi", restApiId="abc123", patchOperations=[])
    assert required_permissions(call, ACCOUNT) == [
        Permission("apigateway:PATCH", "arn:aws:apigateway:us-east-1::/restapis/abc123")
    ]


def test_named_resources_and_calls_iam_does_not_authorize() -> None:
    secret = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:app-dev/pagination-AbCdEf"
    assert required_permissions(operation("secretsmanager", "GetSecretValue", SecretId=secret), ACCOUNT) == [
        Permission("secretsmanager:GetSecretValue", secret)
    ]
    assert required_permissions(operation("cloudwatch", "DescribeAlarms", AlarmNames=["a", "b"]), ACCOUNT) == [
        Permission("cloudwatch:DescribeAlarms", f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:a"),
        Permission("cloudwatch:DescribeAlarms", f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:b"),
    ]
    assert required_permissions(operation("cognito-idp", "ListUserPools", MaxResults=60), ACCOUNT) == [
        Permission("cognito-idp:ListUserPools", "*")
    ]
    assert required_permissions(operation("sts", "GetCallerIdentity"), ACCOUNT) == []


def test_contributor_insights_rules_are_authorized_on_each_rule_and_listed_on_any() -> None:
    rule = f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:insight-rule"
    put = operation("cloudwatch", "PutInsightRule", RuleName="app-dev-errors", RuleState="ENABLED", RuleDefinition="{}")
    assert required_permissions(put, ACCOUNT) == [Permission("cloudwatch:PutInsightRule", f"{rule}/app-dev-errors")]
    delete = operation("cloudwatch", "DeleteInsightRules", RuleNames=["app-dev-a", "app-dev-b"])
    assert required_permissions(delete, ACCOUNT) == [
        Permission("cloudwatch:DeleteInsightRules", f"{rule}/app-dev-a"),
        Permission("cloudwatch:DeleteInsightRules", f"{rule}/app-dev-b"),
    ]
    # IAM authorizes DescribeInsightRules on "*" only.
    assert required_permissions(operation("cloudwatch", "DescribeInsightRules"), ACCOUNT) == [
        Permission("cloudwatch:DescribeInsightRules", "*")
    ]


def test_wildcards_match_as_iam_matches_them() -> None:
    assert matches(
        "arn:aws:logs:*:*:log-group:/aws/lambda/app-dev:*", "arn:aws:logs:r:1:log-group:/aws/lambda/app-dev:x"
    )
    assert not matches(
        "arn:aws:logs:*:*:log-group:/aws/lambda/app-dev:*", "arn:aws:logs:r:1:log-group:/aws/lambda/app-dev-x"
    )
    assert matches("TENANT#*", "TENANT#a#ORDER#1")  # "*" crosses "#": why the authorizer has a Deny
    assert matches("t?p", "tip") and not matches("t?p", "trip")
    assert matches("DynamoDB:getitem", "dynamodb:GetItem", ignore_case=True)


LEADING = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["CLIENT#*", "TENANT#*"]}}
POLICY = {
    "Statement": [
        {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": TABLE, "Condition": LEADING},
        {
            "Effect": "Deny",
            "Action": "dynamodb:*",
            "Resource": TABLE,
            "Condition": {"ForAnyValue:StringLike": {"dynamodb:LeadingKeys": ["*#*#*"]}},
        },
    ]
}


def test_allow_needs_every_partition_to_fit_and_deny_wins() -> None:
    assert allows(POLICY, Permission("dynamodb:GetItem", TABLE, ("CLIENT#c",)))
    assert allows(POLICY, Permission("dynamodb:GetItem", TABLE, ("TENANT#a",)))
    assert not allows(POLICY, Permission("dynamodb:GetItem", TABLE, ("TENANT#a#PRODUCT#p",)))
    assert not allows(POLICY, Permission("dynamodb:GetItem", TABLE, ("TENANT#a", "OTHER#x")))
    assert not allows(POLICY, Permission("dynamodb:PutItem", TABLE, ("TENANT#a",)))
    assert not allows(POLICY, Permission("dynamodb:GetItem", TABLE + "2", ("TENANT#a",)))
    # ForAllValues holds when the request names no partition (a Scan): only the action narrows it.
    assert allows(POLICY, Permission("dynamodb:GetItem", TABLE))


def test_grants_expand_actions_resources_and_partition_patterns() -> None:
    assert grants(POLICY) == {
        Grant("dynamodb:GetItem", TABLE, "CLIENT#*"),
        Grant("dynamodb:GetItem", TABLE, "TENANT#*"),
    }
    needed = needed_grants([Permission("dynamodb:GetItem", TABLE, ("TENANT#a", "CLIENT#c")), Permission("x:Y", "*")])
    assert needed == {
        Grant("dynamodb:GetItem", TABLE, "TENANT#*"),
        Grant("dynamodb:GetItem", TABLE, "CLIENT#*"),
        Grant("x:Y", "*"),
    }


@pytest.mark.parametrize(
    "statement",
    [
        {
            "Effect": "Allow",
            "Action": "a:B",
            "Resource": "*",
            "Condition": {"StringLike": {"dynamodb:LeadingKeys": "x"}},
        },
        {"Effect": "Allow", "Action": "a:B", "Resource": "*", "Condition": {"ForAllValues:StringLike": {"aws:x": "y"}}},
        {"Effect": "Allow", "NotAction": "a:B", "Resource": "*"},
    ],
)
def test_a_policy_element_the_evaluation_does_not_know_is_refused(statement: dict[str, object]) -> None:
    with pytest.raises(UnsupportedPolicy):
        allows({"Statement": [statement]}, Permission("a:B", "*"))


def test_the_authorizers_policy_is_narrowed_with_its_conditions_and_deny_kept() -> None:
    authorizer = json.loads((PROJECT_DIR / ".chalice" / "policy-dev-authorizer.json").read_text())
    narrowed = narrow_policy(authorizer, region="eu-west-1", account=ACCOUNT, pagination_secret_arn="unused")
    for before, after in zip(authorizer["Statement"], narrowed["Statement"]):
        assert {k: v for k, v in before.items() if k != "Resource"} == {
            k: v for k, v in after.items() if k != "Resource"
        }
        for resource in after["Resource"] if isinstance(after["Resource"], list) else [after["Resource"]]:
            assert resource == "*" or f":eu-west-1:{ACCOUNT}:" in resource
