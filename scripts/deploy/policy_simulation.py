"""Ask IAM's policy simulator whether the tenant-access role keeps a tenant's session to that tenant's keys.

The smoke test runs this against a deployed stage. For a session tagged TenantID=<tenant> it
asks SimulatePrincipalPolicy, on the role as it is attached in the account, whether a GetItem
and two Queries (orders on the table, catalog on its index) are allowed on the tenant's own
partition keys and denied on another tenant's. The simulator fills the policy's
${aws:PrincipalTag/TenantID} from the context entry of that name, as STS's session tag does for
a real session. The request builders are pure; `run` makes the calls.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.store import keys
from chalicelib.store.tenant_access import TENANT_TAG
from scripts.tenant_access_role import LEADING_KEYS

SIMULATE_PERMISSION = "iam:SimulatePrincipalPolicy"
PRINCIPAL_TAG = f"aws:PrincipalTag/{TENANT_TAG}"
ALLOWED = "allowed"
DENIED = ("implicitDeny", "explicitDeny")
# Any valid id serves: the policy judges a partition key's prefix, not whether the item exists.
PRODUCT_ID = "smoke-check"
SHARD = 0
ROLE_ARN = re.compile(r"^arn:(?P<partition>[\w-]+):iam::(?P<account>\d{12}):role/(?:[\w+=,.@/-]+/)?[\w+=,.@-]+$")


# IAM's documentation lists "DynamoDB FGAC is currently not supported" among the simulator's
# messages: should it ignore the LeadingKeys condition, every case gets the same answer.
UNTOLD_APART = (
    "the simulator gave the own and the other tenant's keys the same answer; its documentation says it "
    "may not support DynamoDB fine-grained access (dynamodb:LeadingKeys), so this check is inconclusive "
    "rather than proof of a wrong policy: read the role's policy (README, How tenancy works)"
)


class SimulationError(Exception):
    """The simulator could not be asked, or could not answer: the message says why and what to do."""


@dataclass(frozen=True)
class Case:
    """One question for the simulator: may a session tagged `tenant` make `action` on `resource` for this key?"""

    name: str
    action: str
    resource: str
    tenant: str
    partition_key: str
    expect_allowed: bool


@dataclass(frozen=True)
class Outcome:
    """The simulator's decision on a case; missing lists context keys the simulator asked for and did not get."""

    case: Case
    decision: str
    missing_context: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """Whether the decision is the one the case expects."""
        return passes(self.case, self.decision)

    def detail(self) -> str:
        """One line: the decision, what was expected if it differs, and what was asked."""
        case = self.case
        expected = "" if self.passed else f" (expected {'allowed' if case.expect_allowed else 'a deny'})"
        missing = f"; the simulator lacked {', '.join(self.missing_context)}" if self.missing_context else ""
        # The resource without "arn:aws:dynamodb:REGION:ACCOUNT:": the table or index is what differs.
        resource = case.resource.split(":", 5)[-1]
        return (
            f"{self.decision}{expected} for {case.action} on {resource}, key {case.partition_key}, "
            f"session {TENANT_TAG}={case.tenant}{missing}"
        )


def role_account(role_arn: str) -> tuple[str, str]:
    """The (partition, account) of a role's ARN; SimulationError if it is not a role's ARN."""
    match = ROLE_ARN.fullmatch(role_arn)
    if not match:
        raise SimulationError(f"{role_arn!r} is not an IAM role's ARN")
    return match["partition"], match["account"]


def table_arn(partition: str, region: str, account: str, table_name: str) -> str:
    """The table's ARN, as bootstrap names it in the role's policy."""
    return f"arn:{partition}:dynamodb:{region}:{account}:table/{table_name}"


def index_arn(table: str, index: str = keys.CATALOG_INDEX) -> str:
    """An index's ARN: what IAM authorizes a Query on the index against."""
    return f"{table}/index/{index}"


def cases(table: str, tenant: str, other_tenant: str) -> list[Case]:
    """Each call the API makes on the tenant's own keys (allowed), then on the other tenant's (denied)."""
    if tenant == other_tenant:
        raise ValueError(f"the other tenant must differ from the tenant, both are {tenant!r}")
    found = []
    for whose, owner, expect_allowed in (("own", tenant, True), ("other tenant's", other_tenant, False)):
        found += [
            Case(
                f"GetItem {whose} product",
                "dynamodb:GetItem",
                table,
                tenant,
                keys.product_key(owner, PRODUCT_ID)["PK"],
                expect_allowed,
            ),
            Case(
                f"Query {whose} catalog",
                "dynamodb:Query",
                index_arn(table),
                tenant,
                keys.catalog_partition(owner, SHARD),
                expect_allowed,
            ),
            Case(
                f"Query {whose} orders",
                "dynamodb:Query",
                table,
                tenant,
                keys.order_partition(owner, SHARD),
                expect_allowed,
            ),
        ]
    return found


def context_entries(tenant: str, partition_key: str) -> list[dict[str, Any]]:
    """The session's tenant tag and the call's partition key, as the simulator takes them."""
    return [
        {"ContextKeyName": PRINCIPAL_TAG, "ContextKeyValues": [tenant], "ContextKeyType": "string"},
        # A list, as DynamoDB gives it: a call may name several partition keys.
        {"ContextKeyName": LEADING_KEYS, "ContextKeyValues": [partition_key], "ContextKeyType": "stringList"},
    ]


def simulation_request(role_arn: str, case: Case) -> dict[str, Any]:
    """The SimulatePrincipalPolicy parameters for one case, on the role's policies as attached."""
    return {
        "PolicySourceArn": role_arn,
        "ActionNames": [case.action],
        "ResourceArns": [case.resource],
        "ContextEntries": context_entries(case.tenant, case.partition_key),
    }


def passes(case: Case, decision: str) -> bool:
    """Whether a decision is the expected one: "allowed" for an allow case, either deny for a deny case."""
    return decision == ALLOWED if case.expect_allowed else decision in DENIED


def evaluation_results(iam: Any, request: dict[str, Any]) -> list[dict[str, Any]]:
    """Every evaluation result of a simulation, across pages."""
    results: list[dict[str, Any]] = []
    marker: dict[str, str] = {}
    while True:
        page = iam.simulate_principal_policy(**request, **marker)
        results += page.get("EvaluationResults", [])
        if not page.get("IsTruncated"):
            return results
        marker = {"Marker": page["Marker"]}


def decide(case: Case, results: list[dict[str, Any]]) -> Outcome:
    """The case's outcome from the simulator's results for it: every one must decide as expected."""
    if not results:
        return Outcome(case, "no result")
    decisions = [result.get("EvalDecision", "no decision") for result in results]
    # With one action and one resource there is one result; were there more, the first unexpected one tells.
    decision = next((d for d in decisions if not passes(case, d)), decisions[0])
    missing = tuple(dict.fromkeys(key for result in results for key in result.get("MissingContextValues", [])))
    return Outcome(case, decision, missing)


def _error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def run(iam: Any, role_arn: str, asked: list[Case]) -> list[Outcome]:
    """Ask the simulator each case in turn; SimulationError, saying why, if it cannot answer."""
    outcomes = []
    for case in asked:
        try:
            results = evaluation_results(iam, simulation_request(role_arn, case))
        except ClientError as error:
            code = _error_code(error)
            if code in ("AccessDenied", "AccessDeniedException"):
                raise SimulationError(
                    f"AccessDenied: the operator's credentials need {SIMULATE_PERMISSION} on {role_arn}"
                ) from None
            if code == "NoSuchEntity":
                raise SimulationError(f"no role {role_arn} in the account; has bootstrap run for the stage?") from None
            raise SimulationError(f"IAM's policy simulator refused: {error}") from None
        except BotoCoreError as error:
            raise SimulationError(f"IAM's policy simulator could not be reached: {error}") from None
        outcomes.append(decide(case, results))
    return outcomes
