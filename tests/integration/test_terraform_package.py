"""The Terraform package of a stage: chalice package plus the project's files, wired and in sync with chalicelib."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chalicelib.store import keys
from chalicelib.store.dynamodb import dynamodb_client, table_name
from chalicelib.store.registry import ACTIVE, TenantRecord, TenantRegistry
from chalicelib.store.schema import TTL_ATTRIBUTE
from chalicelib.tenancy import SCOPES
from chalicelib.tiers import TIERS
from chalicelib.web.gateway import gateway_responses
from scripts import monitoring, provision, tenant_access_role
from scripts.deploy import post_deploy
from scripts.deploy.terraform import package as package_terraform
from scripts.deploy.terraform.blocks import CHECKOV_SKIPS, LOG_RETENTION_DAYS
from scripts.deploy.terraform.identity import identity_document
from scripts.deploy.terraform.package import apply_overrides
from scripts.deploy.terraform.pagination_secret import secrets_document
from scripts.deploy.terraform.table import table_document
from scripts.stage_config import read_stage_config

STAGE = "dev"
REGION = "us-east-1"
PROJECT_DIR = Path(__file__).resolve().parents[2]
# Chalice names each function's role after the function when the stage brings its own policy files.
HANDLER_ROLE = "api_handler_role"
AUTHORIZER_ROLE = "tenant_authorizer_role"
TENANT_ACCESS = "tenant_access"
TENANT_ACCESS_ARN = "${aws_iam_role.tenant_access.arn}"
TABLE_ARN = "${aws_dynamodb_table.tenant_table.arn}"
OWN_FILES = {
    "providers.tf.json",
    "variables.tf.json",
    "table.tf.json",
    "identity.tf.json",
    "usage_plans.tf.json",
    "api.tf.json",
    "secrets.tf.json",
    "tenant_access.tf.json",
    "monitoring.tf.json",
    "outputs.tf.json",
    "chalice_override.tf.json",
}
# A resource address inside an interpolation: type.name, data.type.name, local.x or var.x.
REFERENCE = re.compile(
    r"\b(data\.[a-z0-9_]+\.[a-z0-9_]+|local\.[a-z0-9_]+|var\.[a-z0-9_]+|(?:aws|random)_[a-z0-9_]+\.[a-z0-9_]+)"
)


@dataclass(frozen=True)
class Package:
    """A packaged stage: its folder, its files as written, and the configuration Terraform would see."""

    out: Path
    files: dict[str, dict[str, Any]]

    @property
    def effective(self) -> dict[str, dict[str, Any]]:
        return apply_overrides(self.files)

    def resources(self, resource_type: str, effective: bool = True) -> dict[str, dict[str, Any]]:
        """Every resource of a type across files, with the override applied or as the other files declare it."""
        found: dict[str, dict[str, Any]] = {}
        declared = {name: document for name, document in self.files.items() if not name.endswith("_override.tf.json")}
        for document in (self.effective if effective else declared).values():
            found.update(document.get("resource", {}).get(resource_type, {}))
        return found

    def block(self, block_type: str) -> dict[str, Any]:
        """Every block of a top-level type (output, variable, locals), across the effective files."""
        found: dict[str, Any] = {}
        for document in self.effective.values():
            found.update(document.get(block_type, {}))
        return found


@pytest.fixture(scope="session")
def package(tmp_path_factory: pytest.TempPathFactory) -> Package:
    """The dev stage packaged once for the session (chalice package takes seconds)."""
    out = tmp_path_factory.mktemp("terraform") / f"terraform-{STAGE}"
    assert package_terraform.main(["--stage", STAGE, "--out", str(out), "--region", REGION]) == 0
    files = {path.name: json.loads(path.read_text()) for path in sorted(out.glob("*.tf.json"))}
    return Package(out, files)


@pytest.fixture(scope="session")
def deployment() -> monitoring.Deployment:
    config = read_stage_config(STAGE)
    return monitoring.Deployment(config.app_name, STAGE, REGION, config.table_name, api_stage=config.api_gateway_stage)


def unescaped(text: str) -> str:
    """A Terraform string literal as Terraform reads it."""
    return text.replace("$${", "${").replace("%%{", "%{")


def statements(policy: str) -> list[dict[str, Any]]:
    return json.loads(policy)["Statement"]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- the files ---------------------------------------------------------------------------


def test_the_folder_holds_chalice_output_and_every_project_file(package: Package) -> None:
    names = {path.name for path in package.out.iterdir()}
    assert {"chalice.tf.json", "deployment.zip", *OWN_FILES} <= names
    manifest = json.loads((package.out / package_terraform.MANIFEST).read_text())
    assert set(manifest["files"]) == names - {package_terraform.MANIFEST}


def test_every_emitted_file_is_json(package: Package) -> None:
    for path in package.out.glob("*.json*"):
        json.loads(path.read_text())


def strings(value: Any) -> list[str]:
    """Every string inside a JSON value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [text for item in value for text in strings(item)]
    if isinstance(value, dict):
        return [text for item in value.values() for text in strings(item)]
    return []


def test_every_reference_names_something_declared(package: Package) -> None:
    """What `terraform validate` would catch first: a reference to a resource, local or variable nobody declares."""
    declared: set[str] = set()
    for document in package.effective.values():
        for resource_type, resources in document.get("resource", {}).items():
            declared |= {f"{resource_type}.{name}" for name in resources}
        for data_type, sources in document.get("data", {}).items():
            declared |= {f"data.{data_type}.{name}" for name in sources}
        declared |= {f"local.{name}" for name in document.get("locals", {})}
        declared |= {f"var.{name}" for name in document.get("variable", {})}
    referenced: set[str] = set()
    for text in strings(list(package.effective.values())):
        if "${" in text.replace("$${", ""):
            referenced |= set(REFERENCE.findall(text))
    for document in package.effective.values():
        for resources in document.get("resource", {}).values():
            for resource in resources.values():
                referenced |= set(resource.get("depends_on", []))
    assert len(referenced) > 20
    assert referenced <= declared, sorted(referenced - declared)


# --- Chalice's blocks, overridden ----------------------------------------------------------


def test_the_override_lifts_chalices_pins(package: Package) -> None:
    chalice = package.files["chalice.tf.json"]["terraform"]
    assert "< 1.4.0" in chalice["required_version"] and "< 5" in chalice["required_providers"]["aws"]["version"]
    terraform = package.effective["chalice.tf.json"]["terraform"]
    assert terraform["required_version"] == ">= 1.5"
    providers = terraform["required_providers"]
    assert providers["aws"] == {"source": "hashicorp/aws", "version": ">= 5.99.1, < 6.0"}
    assert providers["random"]["source"] == "hashicorp/random"
    assert providers["null"]["version"] == ">= 3.0, < 4"


def api_body(package: Package) -> dict[str, Any]:
    """The REST API's body (local.chalice_api_swagger) as API Gateway imports it once Terraform has read it."""
    assert package.resources("aws_api_gateway_rest_api")["rest_api"]["body"] == "${local.chalice_api_swagger}"
    return json.loads(unescaped(package.block("locals")["chalice_api_swagger"]))


def test_the_api_takes_api_keys_from_the_authorizer(package: Package) -> None:
    assert (
        package.files["chalice.tf.json"]["resource"]["aws_api_gateway_rest_api"]["rest_api"].get("api_key_source")
        is None
    )
    assert package.resources("aws_api_gateway_rest_api")["rest_api"]["api_key_source"] == "AUTHORIZER"
    # The body says so too, so a re-import of the body never falls back to HEADER.
    assert api_body(package)["x-amazon-apigateway-api-key-source"] == "AUTHORIZER"


def test_the_body_is_chalices_definition_plus_the_gateway_responses(package: Package) -> None:
    chalice = json.loads(package.files["chalice.tf.json"]["locals"]["chalice_api_swagger"])
    body = api_body(package)
    added = {"x-amazon-apigateway-api-key-source", "x-amazon-apigateway-gateway-responses"}
    assert {name: value for name, value in body.items() if name not in added} == chalice
    # Chalice's interpolations of the functions' ARNs stay Terraform expressions.
    raw = package.block("locals")["chalice_api_swagger"]
    assert "${aws_lambda_function.api_handler.invoke_arn}" in raw
    assert "${aws_lambda_function.tenant_authorizer.invoke_arn}" in raw


def test_the_stage_is_an_explicit_resource_with_tracing(package: Package, deployment: monitoring.Deployment) -> None:
    stage = package.resources("aws_api_gateway_stage")["rest_api"]
    assert stage["xray_tracing_enabled"] is True
    assert stage["stage_name"] == deployment.api_stage
    assert stage["rest_api_id"] == "${aws_api_gateway_rest_api.rest_api.id}"
    assert stage["deployment_id"] == "${aws_api_gateway_deployment.rest_api.id}"
    assert stage["access_log_settings"]["destination_arn"] == "${aws_cloudwatch_log_group.api_access.arn}"
    # The deployment no longer creates a stage of the same name beside it.
    deployment_block = package.resources("aws_api_gateway_deployment")["rest_api"]
    assert "stage_name" not in deployment_block
    assert deployment_block["triggers"]["swagger"] == "${md5(local.chalice_api_swagger)}"
    assert package.block("output")["EndpointURL"]["value"] == "${aws_api_gateway_stage.rest_api.invoke_url}"


def test_the_functions_environment_reaches_the_table_secret_and_pool(package: Package) -> None:
    chalice_functions = package.resources("aws_lambda_function", effective=False)
    for name, function in package.resources("aws_lambda_function").items():
        variables = function["environment"]["variables"]
        assert variables["TABLE_NAME"] == "${aws_dynamodb_table.tenant_table.name}"
        assert variables["PAGINATION_SECRET_ARN"] == "${aws_secretsmanager_secret.pagination.arn}"
        assert variables["TOKEN_ISSUER"] == "https://${aws_cognito_user_pool.tenants.endpoint}"
        assert variables["TOKEN_URL"] == (
            "https://${aws_cognito_user_pool_domain.tenants.domain}.auth.${data.aws_region.chalice.name}"
            ".amazoncognito.com/oauth2/token"
        )
        assert variables["TENANT_ACCESS_ROLE_ARN"] == TENANT_ACCESS_ARN
        # Everything else the stage sets is kept.
        original = chalice_functions[name]["environment"]["variables"]
        filled = {"TABLE_NAME", "PAGINATION_SECRET_ARN", "TOKEN_ISSUER", "TOKEN_URL", "TENANT_ACCESS_ROLE_ARN"}
        assert {k: v for k, v in variables.items() if k not in filled} == {
            k: v for k, v in original.items() if k not in filled
        }
        assert function["tracing_config"] == {"mode": "Active"}
    # Requests reach the functions only through the stage: it waits for their log groups and secret.
    depends = package.resources("aws_api_gateway_stage")["rest_api"]["depends_on"]
    assert {f"aws_cloudwatch_log_group.{name}" for name in package.resources("aws_lambda_function")} <= set(depends)
    assert "aws_secretsmanager_secret_version.pagination" in depends


def test_iam_resources_are_narrow_except_x_ray(package: Package) -> None:
    """X-Ray has no resource-level permissions: its "*" is the only one."""
    for which in (package.resources("aws_iam_role_policy", effective=False), package.resources("aws_iam_role_policy")):
        for policy in which.values():
            for statement in statements(policy["policy"]):
                if "*" in as_list(statement["Resource"]):
                    assert all(action.startswith("xray:") for action in as_list(statement["Action"])), statement
    # As deployed, every ARN names this stack's own table, secret, role, region and account.
    for name, policy in package.resources("aws_iam_role_policy").items():
        resources = [
            resource for statement in statements(policy["policy"]) for resource in as_list(statement["Resource"])
        ]
        # Only the API handler reads the pagination key, and only it may assume the tenant-access role.
        assert ("${aws_secretsmanager_secret.pagination.arn}" in resources) == (name == HANDLER_ROLE), name
        assert (TENANT_ACCESS_ARN in resources) == (name == HANDLER_ROLE), name
        # The function's own role reaches no tenant data: the table only through the tenant-access role.
        assert (TABLE_ARN in resources) == (name != HANDLER_ROLE), name
        for resource in resources:
            assert resource == "*" or resource.startswith("${") or ":*:*:" not in resource, resource
            assert resource == "*" or "${" in resource, resource


def test_each_function_has_its_own_role_with_its_own_policy_file(package: Package) -> None:
    """The handler's and the authorizer's roles carry their own policy files, only the ARNs pinned to the stack."""
    functions = package.resources("aws_lambda_function")
    chalices = package.files["chalice.tf.json"]["resource"]["aws_iam_role_policy"]
    policies = {name: policy for name, policy in package.resources("aws_iam_role_policy").items() if name in chalices}
    assert {name: function["role"] for name, function in functions.items()} == {
        "api_handler": f"${{aws_iam_role.{HANDLER_ROLE}.arn}}",
        "tenant_authorizer": f"${{aws_iam_role.{AUTHORIZER_ROLE}.arn}}",
    }
    files = {HANDLER_ROLE: f"policy-{STAGE}.json", AUTHORIZER_ROLE: f"policy-{STAGE}-authorizer.json"}
    assert set(policies) == set(files)
    for role, file_name in files.items():
        written = json.loads((PROJECT_DIR / ".chalice" / file_name).read_text())["Statement"]
        deployed = statements(policies[role]["policy"])
        without_resources = [{k: v for k, v in statement.items() if k != "Resource"} for statement in deployed]
        assert without_resources == [{k: v for k, v in s.items() if k != "Resource"} for s in written]
        resources = {resource for statement in deployed for resource in as_list(statement["Resource"])}
        assert not any(resource.endswith("/index/*") for resource in resources)


# --- the tenant-access role ----------------------------------------------------------------


def test_the_tenant_access_role_is_made_here_and_trusts_the_api_handlers_role(package: Package) -> None:
    role = package.resources("aws_iam_role")[TENANT_ACCESS]
    assert TENANT_ACCESS in package.files["tenant_access.tf.json"]["resource"]["aws_iam_role"]
    prefix = read_stage_config(STAGE).resource_prefix
    assert role["name"] == tenant_access_role.role_name(prefix)
    assert role["description"] == tenant_access_role.DESCRIPTION
    assert role["max_session_duration"] == tenant_access_role.MAX_SESSION_SECONDS
    # The condition names the API function's role exactly as the function runs with it.
    handler_role = package.resources("aws_lambda_function")["api_handler"]["role"]
    assert handler_role == f"${{aws_iam_role.{HANDLER_ROLE}.arn}}"
    account_root = (
        "arn:${data.aws_partition.chalice.partition}:iam::${data.aws_caller_identity.chalice.account_id}:root"
    )
    assert json.loads(unescaped(role["assume_role_policy"])) == tenant_access_role.trust_policy(
        account_root, handler_role
    )


def test_the_tenant_access_policy_is_the_one_definition_on_this_stacks_table(package: Package) -> None:
    policy = package.resources("aws_iam_role_policy")[TENANT_ACCESS]
    assert policy["name"] == tenant_access_role.POLICY_NAME
    assert policy["role"] == "${aws_iam_role.tenant_access.id}"
    # IAM, not Terraform, fills in the session's tenant; the table's ARN is Terraform's.
    assert "$${aws:PrincipalTag/TenantID}" in policy["policy"]
    assert "${aws:" not in policy["policy"].replace("$${", "")
    table_arn = "arn:aws:dynamodb:us-east-1:111122223333:table/tenant-api-dev"
    as_iam_reads_it = unescaped(policy["policy"].replace(TABLE_ARN, table_arn))
    assert json.loads(as_iam_reads_it) == tenant_access_role.access_policy(table_arn)
    resources = {statement["Resource"] for statement in statements(policy["policy"])}
    assert resources == {TABLE_ARN, f"{TABLE_ARN}/index/{keys.CATALOG_INDEX}"}


def test_the_api_handler_may_assume_only_this_stacks_tenant_access_role(package: Package) -> None:
    policy = package.resources("aws_iam_role_policy")[HANDLER_ROLE]
    granted = {
        action: as_list(statement["Resource"])
        for statement in statements(policy["policy"])
        for action in as_list(statement["Action"])
        if action.startswith("sts:")
    }
    assert granted == {"sts:AssumeRole": [TENANT_ACCESS_ARN], "sts:TagSession": [TENANT_ACCESS_ARN]}
    actions = [action for statement in statements(policy["policy"]) for action in as_list(statement["Action"])]
    assert not any(action.startswith("dynamodb:") for action in actions)


def test_the_pagination_secret_is_generated_and_readable_by_the_functions(package: Package) -> None:
    secret = package.resources("aws_secretsmanager_secret")["pagination"]
    version = package.resources("aws_secretsmanager_secret_version")["pagination"]
    assert version["secret_id"] == "${aws_secretsmanager_secret.pagination.id}"
    assert version["secret_string"] == "${random_password.pagination.result}"
    assert package.resources("random_password")["pagination"]["length"] >= 32
    assert secret["name"] == f"{read_stage_config(STAGE).resource_prefix}/pagination"
    # The API handler's role may read exactly this secret; the authorizer's no secret at all.
    for name, policy in package.resources("aws_iam_role_policy").items():
        granted = [
            s["Resource"]
            for s in statements(policy["policy"])
            if any(action.startswith("secretsmanager:") for action in as_list(s["Action"]))
        ]
        assert granted == (["${aws_secretsmanager_secret.pagination.arn}"] if name == HANDLER_ROLE else []), name


# --- table and registry --------------------------------------------------------------------


def test_the_table_follows_the_schema(package: Package, deployment: monitoring.Deployment) -> None:
    table = package.resources("aws_dynamodb_table")["tenant_table"]
    assert table["name"] == deployment.table_name
    assert (table["hash_key"], table["range_key"]) == ("PK", "SK")
    assert table["attribute"] == [
        {"name": name, "type": "S"} for name in ("PK", "SK", keys.CATALOG_INDEX_PK, keys.CATALOG_INDEX_SK)
    ]
    assert table["global_secondary_index"] == [
        {
            "name": "catalog",
            "hash_key": "CatalogPK",
            "range_key": "CatalogSK",
            "projection_type": "INCLUDE",
            "non_key_attributes": ["product_id", "name", "description", "price", "currency", "stock"],
        }
    ]
    assert table["billing_mode"] == "PAY_PER_REQUEST"
    assert table["server_side_encryption"] == {"enabled": True}
    assert table["point_in_time_recovery"] == {"enabled": True}
    assert table["ttl"] == {"attribute_name": TTL_ATTRIBUTE, "enabled": True}
    assert table["deletion_protection_enabled"] is False


def test_prod_is_protected_from_deletion() -> None:
    stage = package_terraform.terraform_stage(read_stage_config("prod"), REGION)
    assert stage.protected
    table = table_document(stage)["resource"]["aws_dynamodb_table"]["tenant_table"]
    assert table["deletion_protection_enabled"] is True
    pool = identity_document(stage)["resource"]["aws_cognito_user_pool"]["tenants"]
    assert pool["deletion_protection"] == "ACTIVE"
    # The pagination key is not worth a recovery window that would block re-applying after a destroy.
    secret = secrets_document(stage)["resource"]["aws_secretsmanager_secret"]["pagination"]
    assert secret["recovery_window_in_days"] == 0


def evaluate(template: str, values: dict[str, str]) -> dict[str, Any]:
    """A registry item template with its Terraform expressions replaced by values."""
    text = re.sub(r"\$\{jsonencode\(([^)]*)\)\}", lambda m: json.dumps(values[m[1]]), template)
    text = re.sub(r"\$\{([^}]*)\}", lambda m: values[m[1]], text)
    return json.loads(text)


def test_registry_items_are_what_the_registry_reads(package: Package, aws: None) -> None:
    from chalicelib.store import schema

    items = package.resources("aws_dynamodb_table_item")
    for item in items.values():
        assert item["for_each"] == "${var.tenants}"
        assert item["table_name"] == "${aws_dynamodb_table.tenant_table.name}"
    values = {
        "each.key": "acme",
        "each.value.tier": "standard",
        "each.value.status": ACTIVE,
        "each.value.display_name": 'Acme "Rockets"',
        "aws_cognito_user_pool_client.tenant[each.key].id": "client0acme",
        "aws_api_gateway_api_key.tenant[each.key].id": "key-id",
        "aws_api_gateway_api_key.tenant[each.key].value": "key-value",
    }
    meta = evaluate(items["tenant_meta"]["item"], values)
    lookup = evaluate(items["tenant_client"]["item"], values)
    assert {meta["PK"]["S"], meta["SK"]["S"]} == set(keys.tenant_meta_key("acme").values())
    assert {lookup["PK"]["S"], lookup["SK"]["S"]} == set(keys.client_lookup_key("client0acme").values())
    client = dynamodb_client()
    client.create_table(**schema.table_definition(table_name()))
    client.put_item(TableName=table_name(), Item=meta)
    client.put_item(TableName=table_name(), Item=lookup)
    expected = TenantRecord("acme", "standard", ACTIVE, "client0acme", "key-id", "key-value", 'Acme "Rockets"')
    assert TenantRegistry().find_by_client_id("client0acme") == expected


def test_tenants_variable_checks_ids_tiers_and_statuses(package: Package) -> None:
    variable = package.block("variable")["tenants"]
    conditions = " ".join(rule["condition"] for rule in variable["validation"])
    assert keys.TENANT_ID.pattern in conditions
    assert all(tier in conditions for tier in TIERS)
    assert f'optional(string, "{ACTIVE}")' in variable["type"]


# --- identity ------------------------------------------------------------------------------


def test_the_resource_server_has_the_api_scopes(package: Package) -> None:
    server = package.resources("aws_cognito_resource_server")["tenant_api"]
    assert server["identifier"] == read_stage_config(STAGE).resource_server_id
    assert server["user_pool_id"] == "${aws_cognito_user_pool.tenants.id}"
    assert [scope["scope_name"] for scope in server["scope"]] == list(SCOPES)


def test_tenant_app_clients_use_client_credentials_only(package: Package) -> None:
    client = package.resources("aws_cognito_user_pool_client")["tenant"]
    assert client["for_each"] == "${var.tenants}"
    assert client["user_pool_id"] == "${aws_cognito_user_pool.tenants.id}"
    assert client["allowed_oauth_scopes"] == "${aws_cognito_resource_server.tenant_api.scope_identifiers}"
    assert client["allowed_oauth_flows"] == [provision.CLIENT_CREDENTIALS]
    assert client["allowed_oauth_flows_user_pool_client"] is True
    assert client["generate_secret"] is True
    assert client["access_token_validity"] == provision.ACCESS_TOKEN_MINUTES


def test_the_token_endpoint_is_the_pool_domain(package: Package) -> None:
    domain = package.resources("aws_cognito_user_pool_domain")["tenants"]
    assert domain["user_pool_id"] == "${aws_cognito_user_pool.tenants.id}"
    token_url = package.block("output")["token_url"]["value"]
    assert token_url.startswith("https://${aws_cognito_user_pool_domain.tenants.domain}.auth.")
    assert token_url.endswith("/oauth2/token")


# --- usage plans ---------------------------------------------------------------------------


def test_one_usage_plan_per_tier_with_the_tier_limits(package: Package) -> None:
    plans = package.resources("aws_api_gateway_usage_plan")
    assert set(plans) == set(TIERS)
    prefix = read_stage_config(STAGE).resource_prefix
    for name, tier in TIERS.items():
        plan = plans[name]
        assert plan["name"] == provision.usage_plan_name(prefix, tier)
        assert plan["throttle_settings"] == {"rate_limit": tier.rate_per_second, "burst_limit": tier.burst}
        assert plan["quota_settings"] == {"limit": tier.monthly_quota, "period": "MONTH"}
        assert plan["api_stages"] == [
            {
                "api_id": "${aws_api_gateway_rest_api.rest_api.id}",
                "stage": "${aws_api_gateway_stage.rest_api.stage_name}",
            }
        ]


def test_each_tenant_key_is_in_its_tier_plan(package: Package) -> None:
    key = package.resources("aws_api_gateway_api_key")["tenant"]
    assert key["for_each"] == "${var.tenants}"
    plan_key = package.resources("aws_api_gateway_usage_plan_key")["tenant"]
    assert plan_key["for_each"] == "${var.tenants}"
    assert plan_key["key_id"] == "${aws_api_gateway_api_key.tenant[each.key].id}"
    assert plan_key["key_type"] == "API_KEY"
    assert plan_key["usage_plan_id"] == "${local.usage_plan_ids[each.value.tier]}"
    assert package.block("locals")["usage_plan_ids"] == {
        tier: f"${{aws_api_gateway_usage_plan.{tier}.id}}" for tier in TIERS
    }


def test_gateway_responses_are_in_the_body_not_beside_it(package: Package) -> None:
    # The body is imported in overwrite mode: responses managed beside it would vanish on its next change.
    assert package.resources("aws_api_gateway_gateway_response") == {}
    assert api_body(package)["x-amazon-apigateway-gateway-responses"] == gateway_responses()
    # A change to them changes the body, which deploys anew.
    triggers = package.resources("aws_api_gateway_deployment")["rest_api"]["triggers"]
    assert triggers["swagger"] == "${md5(local.chalice_api_swagger)}"


# --- monitoring ----------------------------------------------------------------------------


def test_the_dashboard_is_scripts_monitoring(package: Package, deployment: monitoring.Deployment) -> None:
    dashboard = package.resources("aws_cloudwatch_dashboard")["main"]
    assert dashboard["dashboard_name"] == monitoring.dashboard_name(deployment)
    assert unescaped(dashboard["dashboard_body"]) == monitoring.dashboard_json(deployment)


def test_alarms_are_scripts_monitoring_and_notify_the_topic(
    package: Package, deployment: monitoring.Deployment
) -> None:
    topic = "${aws_sns_topic.alarms.arn}"
    alarms = {alarm["alarm_name"]: alarm for alarm in package.resources("aws_cloudwatch_metric_alarm").values()}
    definitions = monitoring.alarm_definitions(deployment, topic)
    assert set(alarms) == {definition["AlarmName"] for definition in definitions}
    for definition in definitions:
        alarm = alarms[definition["AlarmName"]]
        assert alarm["alarm_actions"] == [topic] and alarm["ok_actions"] == [topic]
        assert alarm["threshold"] == definition["Threshold"]
        assert alarm["comparison_operator"] == definition["ComparisonOperator"]
        assert alarm["evaluation_periods"] == definition["EvaluationPeriods"]
        assert unescaped(alarm["alarm_description"]) == definition["AlarmDescription"]
        if "Metrics" in definition:
            queries = alarm["metric_query"]
            assert [query["id"] for query in queries] == [metric["Id"] for metric in definition["Metrics"]]
            expressions = {
                metric["Id"]: metric["Expression"] for metric in definition["Metrics"] if "Expression" in metric
            }
            assert {q["id"]: unescaped(q["expression"]) for q in queries if "expression" in q} == expressions
        else:
            assert alarm["metric_name"] == definition["MetricName"]
            assert alarm["dimensions"] == {d["Name"]: d["Value"] for d in definition["Dimensions"]}


def test_contributor_insights_rules_are_the_ones_post_deploy_puts(package: Package, aws: None) -> None:
    rules = package.resources("aws_cloudwatch_contributor_insight_rule")
    # What post-deploy puts for the same stage, read back from (moto's) CloudWatch.
    cloudwatch = post_deploy.AwsClients.create(REGION).cloudwatch
    report = post_deploy.Report(write=lambda line: None)
    post_deploy.ensure_insight_rules(cloudwatch, report, post_deploy.deployment_of(read_stage_config(STAGE), REGION))
    put = {rule["Name"]: rule for rule in cloudwatch.describe_insight_rules()["InsightRules"]}
    assert len(put) == 3
    assert {rule["rule_name"] for rule in rules.values()} == set(put)
    for name, rule in rules.items():
        assert name == rule["rule_name"].removeprefix("tenant-api-dev-").replace("-", "_")
        assert rule["rule_state"] == put[rule["rule_name"]]["State"] == "ENABLED"
        assert unescaped(rule["rule_definition"]) == put[rule["rule_name"]]["Definition"]


def test_contributor_insights_rules_are_made_after_the_log_group_they_read(
    package: Package, deployment: monitoring.Deployment
) -> None:
    groups = package.resources("aws_cloudwatch_log_group")
    for rule in package.resources("aws_cloudwatch_contributor_insight_rule").values():
        (dependency,) = rule["depends_on"]
        resource_type, _, group = dependency.partition(".")
        assert resource_type == "aws_cloudwatch_log_group"
        read = json.loads(unescaped(rule["rule_definition"]))["LogGroupNames"]
        assert read == [groups[group]["name"]] == [deployment.log_group(deployment.api_function)]


def test_alarm_email_subscription_is_optional(package: Package) -> None:
    subscription = package.resources("aws_sns_topic_subscription")["alarm_email"]
    assert subscription["topic_arn"] == "${aws_sns_topic.alarms.arn}"
    assert "var.alarm_email" in subscription["count"]
    assert package.block("variable")["alarm_email"]["default"] == ""


def test_every_function_has_a_log_group_with_retention(package: Package, deployment: monitoring.Deployment) -> None:
    groups = package.resources("aws_cloudwatch_log_group")
    functions = {function["function_name"] for function in package.resources("aws_lambda_function").values()}
    assert functions == set(deployment.function_names)
    names = {group["name"] for group in groups.values()}
    assert {deployment.log_group(name) for name in deployment.function_names} <= names
    assert all(group["retention_in_days"] == LOG_RETENTION_DAYS for group in groups.values())


def test_x_ray_sampling_rule(package: Package) -> None:
    rule = package.resources("aws_xray_sampling_rule")["main"]
    assert len(rule["rule_name"]) <= 32
    assert (rule["fixed_rate"], rule["reservoir_size"]) == (0.05, 0)
    # The same rule post-deploy creates: it matches the API stage, found by the stack's API id.
    assert rule["service_type"] == "AWS::ApiGateway::Stage"
    assert "${aws_api_gateway_rest_api.rest_api.id}" in rule["resource_arn"]
    assert rule["resource_arn"].endswith("/stages/api")


def test_saved_queries_are_the_monitoring_definitions(package: Package, deployment: monitoring.Deployment) -> None:
    queries = package.resources("aws_cloudwatch_query_definition")
    expected = {query["name"]: query for query in monitoring.saved_queries(deployment)}
    assert {query["name"] for query in queries.values()} == set(expected)
    for query in queries.values():
        assert unescaped(query["query_string"]) == expected[query["name"]]["queryString"]
        assert query["log_group_names"] == [deployment.log_group(name) for name in deployment.function_names]


def test_every_resource_carries_the_cost_allocation_tags(package: Package) -> None:
    provider = package.files["providers.tf.json"]["provider"]["aws"]
    assert provider["default_tags"]["tags"] == read_stage_config(STAGE).settings["tags"]
    assert provider["region"] == REGION


def test_outputs_name_what_a_deployer_needs(package: Package) -> None:
    outputs = package.block("output")
    assert outputs["api_url"]["value"] == "${aws_api_gateway_stage.rest_api.invoke_url}"
    assert outputs["table_name"]["value"] == "${aws_dynamodb_table.tenant_table.name}"
    assert outputs["user_pool_id"]["value"] == "${aws_cognito_user_pool.tenants.id}"
    assert "aws_cognito_user_pool_client.tenant" in outputs["tenant_client_ids"]["value"]
    assert outputs["tenant_client_secrets"]["sensitive"] is True
    assert not outputs["tenant_client_ids"].get("sensitive")


# --- the command ---------------------------------------------------------------------------


def test_a_rerun_replaces_only_what_it_wrote(package: Package, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "terraform.tfvars.json").write_text('{"tenants": {}}')
    (out / "old.tf.json").write_text("{}")
    (out / package_terraform.MANIFEST).write_text(json.dumps({"files": ["old.tf.json"]}))
    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / "chalice.tf.json").write_text("{}")
    assert package_terraform.replace_output(staging, out) == ["chalice.tf.json"]
    assert sorted(path.name for path in out.iterdir()) == sorted(
        ["chalice.tf.json", "terraform.tfvars.json", package_terraform.MANIFEST]
    )


@pytest.mark.parametrize("stage", ["local", "no-such-stage"])
def test_stages_that_cannot_be_packaged_fail(stage: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert package_terraform.main(["--stage", stage, "--out", str(tmp_path / "out")]) == 1
    assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_help_describes_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        package_terraform.main(["--help"])
    assert exit_info.value.code == 0
    assert "--stage" in capsys.readouterr().out


# --- checkov -------------------------------------------------------------------------------


@pytest.mark.skipif(package_terraform.checkov_command() is None, reason="checkov is not installed (make checkov)")
def test_checkov_leaves_no_failed_check_unexplained(package: Package) -> None:
    report = package_terraform.run_checkov(package.out)
    assert report.parsing_errors == []
    assert report.unexplained == []
    assert report.passed > 0
    # Every reason is still needed: a check that now passes loses its skip.
    assert {finding.check_id for finding in report.explained} == set(CHECKOV_SKIPS)
