"""The OpenAPI document matches app.app.routes, is valid OpenAPI 3, and describes what the API really answers."""

from __future__ import annotations

import inspect
import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

import app as application
from chalicelib import errors, pagination
from chalicelib.errors import InvalidRequest
from chalicelib.store.orders import OrderRepository
from chalicelib.tiers import TIERS
from chalicelib.web import gateway, validation
from chalicelib.web.openapi import StageAddresses, local_token_url, openapi_document, served_addresses
from tests.support.api import Api, Reply
from tests.support.tenants import ACME, GLOBEX

MISSING_ORDER = "ord_01HZY3M9K8V6T5R4Q3P2N1M0AB"
ONE_LINE = [{"product_id": "prod-001", "quantity": 1}]
# As the local stack and a deployed stage name themselves.
LOCAL = StageAddresses("http://127.0.0.1:8000", "http://127.0.0.1:41234/oauth2/token")
DEPLOYED = StageAddresses(
    "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/api",
    "https://tenant-api-dev-123456789012.auth.us-east-1.amazoncognito.com/oauth2/token",
)


def document() -> dict[str, Any]:
    """The document for the local stage."""
    return openapi_document(LOCAL)


def operations() -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (path, method.upper()): operation
        for path, item in document()["paths"].items()
        for method, operation in item.items()
        if method in ("get", "put", "post", "delete", "patch", "head", "options")
    }


def schema_errors(value: Any, schema: dict[str, Any]) -> list[str]:
    """What is wrong with value under a schema of the document (resolving its $refs)."""
    root = {**schema, "components": document()["components"]}
    return [error.message for error in OAS31Validator(root).iter_errors(value)]


def assert_matches_schema(body: Any, schema: dict[str, Any]) -> None:
    """Validate body against a schema of the document (resolving its $refs)."""
    errors = schema_errors(body, schema)
    assert not errors, (errors, body)


def parameter(operation_id: str, name: str) -> dict[str, Any]:
    """The parameter called name of the operation called operation_id."""
    operation = next(op for op in operations().values() if op["operationId"] == operation_id)
    return next(p for p in operation.get("parameters", []) if p["name"] == name)


def fill_in(template: Any, response_body: Any) -> Any:
    """A link's requestBody with each $response.body#pointer replaced by what it points to in response_body."""
    if isinstance(template, str) and template.startswith("$response.body#"):
        return resolve_pointer(response_body, template.split("#", 1)[1])
    if isinstance(template, dict):
        return {key: fill_in(value, response_body) for key, value in template.items()}
    if isinstance(template, list):
        return [fill_in(value, response_body) for value in template]
    return template


def resolve_pointer(document: Any, pointer: str) -> Any:
    """The value at a JSON pointer (RFC 6901) in document."""
    for token in pointer.lstrip("/").split("/") if pointer else []:
        token = token.replace("~1", "/").replace("~0", "~")
        document = document[int(token)] if isinstance(document, list) else document[token]
    return document


def assert_documented(reply: Reply, path: str, method: str) -> None:
    """The reply's status is documented for the operation, and its body fits that response's schema."""
    operation = operations()[(path, method)]
    response = operation["responses"].get(str(reply.status))
    assert response is not None, f"{method} {path} answers {reply.status}, which is not documented"
    assert_matches_schema(reply.json, response["content"]["application/json"]["schema"])
    for name, header in response.get("headers", {}).items():
        value = reply.header(name)
        assert value is not None or not header.get("required"), f"{method} {path} {reply.status} lacks {name}"
        if value is not None:
            typed = int(value) if header["schema"]["type"] == "integer" else value
            assert_matches_schema(typed, header["schema"])
    if reply.status >= 400:
        code = reply.json["error"]["code"]
        assert re.search(rf"\b{re.escape(code)}\b", response["description"]), (code, response["description"])


@pytest.mark.parametrize("addresses", [LOCAL, DEPLOYED], ids=["local", "deployed"])
def test_the_document_is_valid_openapi_3(addresses: StageAddresses):
    stage_document = openapi_document(addresses)
    assert stage_document["openapi"].startswith("3.")
    validate(stage_document)


def test_the_document_has_exactly_the_apps_routes_and_methods():
    documented = {(path, method) for path, method in operations()}
    routed = {(path, method) for path, methods in application.app.routes.items() for method in methods}
    assert documented == routed


def test_protected_routes_and_only_those_declare_security():
    for path, methods in application.app.routes.items():
        for method, entry in methods.items():
            operation = operations()[(path, method)]
            if entry.authorizer is None:
                assert operation["security"] == [], (path, method)
            else:
                assert entry.api_key_required, (path, method)
                assert len(operation["security"]) == 1 and list(operation["security"][0]) == ["cognito"], (path, method)
                for status in ("401", "403", "429", "503"):
                    assert status in operation["responses"], (path, method, status)
                for status in ("429", "503"):
                    assert "Retry-After" in operation["responses"][status]["headers"], (path, method, status)


def test_path_parameters_match_the_route_arguments():
    for path, methods in application.app.routes.items():
        for method, entry in methods.items():
            declared = {p["name"] for p in operations()[(path, method)].get("parameters", []) if p["in"] == "path"}
            assert declared == set(entry.view_args), (path, method)


def test_every_documented_scope_is_defined():
    defined = set(document()["components"]["securitySchemes"]["cognito"]["flows"]["clientCredentials"]["scopes"])
    used = {
        scope
        for operation in operations().values()
        for requirement in operation["security"]
        for scope in requirement["cognito"]
    }
    assert used == defined


def test_the_documented_scope_is_the_one_the_route_needs(api: Api):
    for (path, method), operation in operations().items():
        if not operation["security"]:
            continue
        scopes = operation["security"][0]["cognito"]
        concrete = path.replace("{product_id}", "prod-001").replace("{order_id}", MISSING_ORDER)
        body = json.dumps({"items": ONE_LINE}) if method == "POST" else ""
        granted = api.request(
            method, concrete, ACME, scopes=scopes, headers={"Content-Type": "application/json"}, body=body
        )
        assert granted.status in (200, 201, 404), (path, method, granted.body)
        others = [
            scope
            for scope in document()["components"]["securitySchemes"]["cognito"]["flows"]["clientCredentials"]["scopes"]
            if scope not in scopes
        ]
        refused = api.request(
            method, concrete, ACME, scopes=others, headers={"Content-Type": "application/json"}, body=body
        )
        assert refused.status == 403, (path, method)


def test_real_answers_match_the_documented_responses(api: Api):
    placed = api.post_order(ONE_LINE, ACME)
    assert_documented(placed, "/orders", "POST")
    order_id = placed.json["order_id"]
    api.post_order(ONE_LINE, ACME)
    cases = [
        (api.get("/health", tenant=None), "/health", "GET"),
        (api.get("/catalog?limit=2", ACME), "/catalog", "GET"),
        (api.get("/catalog/prod-001", ACME), "/catalog/{product_id}", "GET"),
        (api.get("/orders?limit=1", ACME), "/orders", "GET"),
        (api.get(f"/orders/{order_id}", ACME), "/orders/{order_id}", "GET"),
        (api.get("/catalog?limit=0", ACME), "/catalog", "GET"),
        (api.get("/catalog?next_token=x.y", ACME), "/catalog", "GET"),
        (api.get("/orders?next_token=x.y", ACME), "/orders", "GET"),
        (api.get("/catalog/BAD", ACME), "/catalog/{product_id}", "GET"),
        (api.get("/catalog/prod-999", ACME), "/catalog/{product_id}", "GET"),
        (api.get(f"/orders/{MISSING_ORDER}", ACME), "/orders/{order_id}", "GET"),
        (api.get("/orders/bad", ACME), "/orders/{order_id}", "GET"),
        (api.get("/catalog", token="not-a-token"), "/catalog", "GET"),
        (api.get("/orders", ACME, scopes=[]), "/orders", "GET"),
        (api.post_order([{"product_id": "prod-001", "quantity": 999}], ACME), "/orders", "POST"),
        (api.post_order([{"product_id": "prod-001", "quantity": 0}], ACME), "/orders", "POST"),
        (api.post_order([{"product_id": "prod-404", "quantity": 1}], ACME), "/orders", "POST"),
        (api.request("POST", "/orders", ACME, headers={"Content-Type": "text/plain"}, body="x"), "/orders", "POST"),
        (
            api.request("POST", "/orders", ACME, headers={"Content-Type": "application/json"}, body=" " * 17000),
            "/orders",
            "POST",
        ),
        (
            api.request("POST", "/orders", ACME, headers={"Content-Type": "application/json"}, body="{"),
            "/orders",
            "POST",
        ),
        (api.post_order(ONE_LINE, ACME, idempotency_key="k1"), "/orders", "POST"),
        (api.post_order([{"product_id": "prod-002", "quantity": 1}], ACME, idempotency_key="k1"), "/orders", "POST"),
    ]
    for reply, path, method in cases:
        assert_documented(reply, path, method)
    assert [reply.status for reply, _, _ in cases] == [
        200,
        200,
        200,
        200,
        200,
        400,
        400,
        400,
        400,
        404,
        404,
        400,
        401,
        403,
        409,
        422,
        422,
        415,
        413,
        400,
        201,
        422,
    ]


def test_the_openapi_route_serves_the_document_for_the_address_called(api: Api):
    reply = api.get("/openapi.json", tenant=None, headers={"Host": "127.0.0.1:8000"})
    # The local token endpoint is served beside the issuer, as the local stack's is.
    served = StageAddresses("http://127.0.0.1:8000", local_token_url(api.issuer.issuer))
    assert reply.json == json.loads(json.dumps(openapi_document(served)))
    assert reply.json["servers"] == [{"url": "http://127.0.0.1:8000", "description": "This stage's API."}]
    assert_documented(reply, "/openapi.json", "GET")


def test_the_documented_request_body_agrees_with_validation():
    schema = {"$ref": "#/components/schemas/OrderRequest"}
    assert_matches_schema({"items": ONE_LINE}, schema)
    root = {**schema, "components": document()["components"]}
    for bad in (
        {"items": []},
        {"items": [{"product_id": "prod-001", "quantity": 1, "price": "1"}]},
        {"items": ONE_LINE, "x": 1},
        {"items": [{"product_id": "prod-001", "quantity": 1001}]},
    ):
        assert list(OAS31Validator(root).iter_errors(bad)), bad


def test_every_operation_has_an_example_and_every_example_fits_its_schema():
    for (path, method), operation in operations().items():
        examples = []
        for item in operation.get("parameters", []):
            if "example" in item:
                examples.append((item["example"], item["schema"]))
        for media in operation.get("requestBody", {}).get("content", {}).values():
            examples.append((media["example"], media["schema"]))
        for status, response in operation["responses"].items():
            for media in response.get("content", {}).values():
                assert ("example" in media) != ("examples" in media), (path, method, status)
                if "example" in media:
                    examples.append((media["example"], media["schema"]))
                for named in media.get("examples", {}).values():
                    examples.append((named["value"], media["schema"]))
            for header in response.get("headers", {}).values():
                if "example" in header:
                    examples.append((header["example"], header["schema"]))
        assert examples, (path, method)
        for example, schema in examples:
            assert_matches_schema(example, schema)


def test_every_parameter_of_an_operation_with_inputs_has_an_example_but_the_opaque_token():
    for (path, method), operation in operations().items():
        for item in operation.get("parameters", []):
            assert ("example" in item) == (item["name"] != "next_token"), (path, method, item["name"])


def test_real_pagination_tokens_fit_the_documented_format():
    token_parameter = parameter("listProducts", "next_token")["schema"]
    longest_product = "PRODUCT#" + "p" * 63
    for sort_key in ("PRODUCT#prod-001", longest_product, "ORDER#ord_01JDQ8Z5N3W6Y2K4M7P9R1T3V5"):
        for tenant_id in ("a", "t" * 48):
            token = pagination.encode_token(b"secret", tenant_id, "catalog", sort_key, now=4_102_444_800)
            assert_matches_schema(token, token_parameter)
            assert_matches_schema(token, {"$ref": "#/components/schemas/PaginationToken"})
            assert len(token) <= validation.MAX_PAGINATION_TOKEN_LENGTH
    assert_matches_schema("", token_parameter)
    payload, signature = token.split(".")
    for altered in (
        payload,
        f"{payload}.{signature[:-1]}",
        f"{payload}.{signature}A",
        f"{token}.x",
        f"{payload}+.{signature}",
    ):
        assert schema_errors(altered, token_parameter), altered


def test_the_idempotency_key_pattern_is_the_rule_the_api_applies():
    schema = parameter("placeOrder", "Idempotency-Key")["schema"]
    for key in ("k", "~" * validation.MAX_IDEMPOTENCY_KEY_LENGTH, "order-2026-12-02-0001", "a!b#c"):
        assert not schema_errors(key, schema)
        assert validation.check_idempotency_key(key) == key
    for key in ("", "a b", "tab\there", "é", "x" * (validation.MAX_IDEMPOTENCY_KEY_LENGTH + 1)):
        assert schema_errors(key, schema), key
        with pytest.raises(InvalidRequest):
            validation.check_idempotency_key(key)


@given(st.text(max_size=140))
def test_any_idempotency_key_is_accepted_exactly_when_the_document_allows_it(key: str):
    schema = parameter("placeOrder", "Idempotency-Key")["schema"]
    try:
        validation.check_idempotency_key(key)
        accepted = True
    except InvalidRequest:
        accepted = False
    assert accepted == (not schema_errors(key, schema))


def test_links_lead_from_an_answer_to_valid_input_of_their_target():
    by_id = {operation["operationId"]: operation for operation in operations().values()}
    followed = 0
    for operation in by_id.values():
        for response in operation["responses"].values():
            for name, link in response.get("links", {}).items():
                target = by_id[link["operationId"]]
                example = response["content"]["application/json"]["example"]
                for parameter_name, expression in link.get("parameters", {}).items():
                    declared = next(p for p in target["parameters"] if p["name"] == parameter_name)
                    assert expression.startswith("$response.body#"), (name, expression)
                    assert_matches_schema(resolve_pointer(example, expression.split("#", 1)[1]), declared["schema"])
                    followed += 1
                if "requestBody" in link:
                    body = fill_in(link["requestBody"], example)
                    assert_matches_schema(body, target["requestBody"]["content"]["application/json"]["schema"])
                    followed += 1
    assert followed >= 7


def test_well_formed_tokens_the_api_did_not_issue_are_documented_400s(api: Api):
    own_catalog = api.get("/catalog?limit=1", ACME).json["next_token"]
    others_catalog = api.get("/catalog?limit=1", GLOBEX).json["next_token"]
    api.post_order(ONE_LINE, ACME)
    api.post_order(ONE_LINE, ACME)
    own_orders = api.get("/orders?limit=1", ACME).json["next_token"]
    payload, signature = own_catalog.split(".")
    forged = f"{payload}.{'A' * len(signature)}"
    token_schema = parameter("listProducts", "next_token")["schema"]
    cases = [
        ("/catalog", others_catalog),  # another tenant's
        ("/orders", own_catalog),  # another list's
        ("/catalog", own_orders),
        ("/catalog", forged),  # not signed by the API
    ]
    for path, token in cases:
        assert not schema_errors(token, token_schema), token
        reply = api.get(f"{path}?next_token={token}", ACME)
        assert (reply.status, reply.json["error"]["code"]) == (400, "invalid_pagination_token"), (path, token)
        assert_documented(reply, path, "GET")
    # Empty is documented as the first page.
    assert api.get("/catalog?next_token=", ACME).json["items"] == api.get("/catalog", ACME).json["items"]


def test_refusals_of_malformed_requests_to_place_an_order_are_documented(api: Api):
    json_headers = {"Content-Type": "application/json"}
    repeated_key = '{"items": [{"product_id": "prod-001", "quantity": 1}], "items": []}'
    replies = [
        api.request("POST", "/orders", ACME, headers=json_headers, body=repeated_key),
        api.post_order(ONE_LINE, ACME, idempotency_key="has space"),
        api.post_order([{"product_id": "prod-001", "quantity": 1}, {"product_id": "prod-001", "quantity": 2}], ACME),
    ]
    assert [reply.status for reply in replies] == [400, 400, 422]
    for reply in replies:
        assert_documented(reply, "/orders", "POST")


def test_an_integral_quantity_written_as_a_decimal_is_accepted_as_the_schema_says(api: Api):
    # JSON Schema's "integer", the documented type of quantity, is any number with no fractional part.
    schema = {"$ref": "#/components/schemas/OrderRequest"}
    body = {"items": [{"product_id": "prod-001", "quantity": 2.0}]}
    assert not schema_errors(body, schema)
    reply = api.request("POST", "/orders", ACME, headers={"Content-Type": "application/json"}, body=json.dumps(body))
    assert reply.status == 201, reply.body
    assert reply.json["items"][0]["quantity"] == 2
    assert_documented(reply, "/orders", "POST")


# --- the stage's addresses ------------------------------------------------------------------


@pytest.mark.parametrize("addresses", [LOCAL, DEPLOYED], ids=["local", "deployed"])
def test_the_document_names_the_stages_api_and_token_endpoint(addresses: StageAddresses):
    stage_document = openapi_document(addresses)
    assert [server["url"] for server in stage_document["servers"]] == [addresses.api_url]
    flow = stage_document["components"]["securitySchemes"]["cognito"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == addresses.token_url
    assert f"`{addresses.token_url}`" in stage_document["info"]["description"]


@pytest.mark.parametrize(
    ("api_url", "token_url"),
    [
        ("api", LOCAL.token_url),
        ("http://127.0.0.1:8000/", LOCAL.token_url),
        ("ftp://127.0.0.1:8000", LOCAL.token_url),
        ("http://127.0.0.1:8000?x=1", LOCAL.token_url),
        (LOCAL.api_url, "/oauth2/token"),
        (LOCAL.api_url, ""),
    ],
)
def test_addresses_must_be_absolute_http_urls(api_url: str, token_url: str):
    with pytest.raises(ValueError):
        StageAddresses(api_url, token_url)


def test_without_a_host_header_the_served_server_is_where_the_document_was_served(api: Api):
    for headers in ({}, {"Host": 'evil.example"><script>'}, {"Host": "a b"}):
        reply = api.get("/openapi.json", tenant=None, headers=headers)
        assert reply.status == 200, headers
        assert reply.json["servers"][0]["url"] == "/", headers


def test_behind_api_gateway_the_server_is_the_url_the_client_called(env):
    env.set(AWS_LAMBDA_FUNCTION_NAME="tenant-api-dev", TOKEN_URL=DEPLOYED.token_url)
    domain = "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"
    cases = [
        ({"path": "/api/openapi.json"}, f"https://{domain}/api"),  # the stage, on execute-api
        ({"path": "/v1/openapi.json"}, f"https://{domain}/v1"),  # a base path mapping on a custom domain
        ({"path": "/openapi.json"}, f"https://{domain}"),  # a custom domain's root
    ]
    for context, api_url in cases:
        full = {**context, "domainName": domain, "resourcePath": "/openapi.json"}
        # API Gateway's domain wins over whatever Host the client sent.
        assert served_addresses(full, {"host": "evil.example"}) == StageAddresses(api_url, DEPLOYED.token_url)


def test_the_published_scopes_are_the_stages_resource_servers(api: Api, env):
    # A stage whose resource server is not the default names its own scopes, which its tokens carry.
    env.set(RESOURCE_SERVER_ID="acme-api")
    served = api.get("/openapi.json", tenant=None).json
    flow = served["components"]["securitySchemes"]["cognito"]["flows"]["clientCredentials"]
    assert sorted(flow["scopes"]) == ["acme-api/catalog.read", "acme-api/orders.read", "acme-api/orders.write"]
    required = {
        scope
        for path in served["paths"].values()
        for operation in path.values()
        for requirement in operation.get("security", [])
        for scope in requirement.get("cognito", [])
    }
    assert required == set(flow["scopes"])


def test_a_deployed_stage_without_its_token_url_answers_a_documented_503(api: Api, env):
    env.set(AWS_LAMBDA_FUNCTION_NAME="tenant-api-dev", TOKEN_URL=None)
    reply = api.get("/openapi.json", tenant=None)
    assert (reply.status, reply.json["error"]["code"]) == (503, "service_unavailable")
    assert_documented(reply, "/openapi.json", "GET")


# --- what a tenant developer reads ----------------------------------------------------------


def test_the_error_code_enum_is_every_code_the_api_and_the_gateway_answer():
    enum = document()["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"]
    api_codes = {
        error_type.code
        for _, error_type in inspect.getmembers(errors, inspect.isclass)
        if issubclass(error_type, errors.ApiError)
    }
    responses = gateway.gateway_responses()
    gateway_codes = set()
    for response_type in responses:
        _, _, body = gateway.render(responses, response_type, "rid", default_status=400)
        gateway_codes.add(json.loads(body)["error"]["code"])
    assert len(enum) == len(set(enum))
    assert set(enum) == api_codes | gateway_codes
    assert {"quota_exceeded", "bad_request"} <= gateway_codes - api_codes  # the gateway's own are there too
    listed = document()["info"]["description"].split("# Errors", 1)[1]
    assert all(f"`{code}`" in listed for code in enum)


def test_every_answer_with_a_documented_status_names_its_code_in_that_response():
    # Each error response lists its codes; each is one of the enum's.
    enum = set(document()["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"])
    for (path, method), operation in operations().items():
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            named = set(re.findall(r"^- `([a-z_]+)`", response["description"], flags=re.MULTILINE))
            assert named and named <= enum, (path, method, status, named)
            media = response["content"]["application/json"]
            shown = {e["value"]["error"]["code"] for e in media.get("examples", {}).values()} or {
                media["example"]["error"]["code"]
            }
            assert shown == named, (path, method, status)


def test_every_tier_limit_is_described_and_repeated_on_every_429():
    description = document()["info"]["description"]
    for tier in TIERS.values():
        row = f"| {tier.name} | {tier.rate_per_second:,g} | {tier.burst:,} | {tier.monthly_quota:,} |"
        assert row in description, row
    for (path, method), operation in operations().items():
        if not operation["security"]:
            continue
        too_many = operation["responses"]["429"]["description"]
        for tier in TIERS.values():
            assert (
                f"{tier.name}: {tier.rate_per_second:,g}/s, burst {tier.burst:,}, {tier.monthly_quota:,} a month"
                in too_many
            ), (path, method)
        assert "`quota_exceeded`" in too_many and "`too_many_requests`" in too_many


def test_retry_after_is_on_every_429_and_503_and_explained():
    assert "# Retries and Retry-After" in document()["info"]["description"]
    for (path, method), operation in operations().items():
        for status in ("429", "503"):
            response = operation["responses"].get(status)
            if response is None:
                continue
            header = response["headers"]["Retry-After"]
            assert header["schema"] == {"type": "integer", "minimum": 1}, (path, method, status)
            assert "Retries and Retry-After" in header["description"]
        # A quota answer carries none, so the header is promised on 503 only.
        if "503" in operation["responses"]:
            assert operation["responses"]["503"]["headers"]["Retry-After"]["required"] is True


def test_idempotency_key_says_what_it_guarantees_how_long_and_what_a_reused_key_gets():
    hours = f"{OrderRepository.IDEMPOTENCY_TTL_SECONDS // 3600} hours"
    key = parameter("placeOrder", "Idempotency-Key")["description"]
    section = document()["info"]["description"].split("# Idempotent orders", 1)[1].split("\n# ", 1)[0]
    for text in (key, section):
        assert hours in text and "idempotency_key_reused" in text
    assert "Idempotent-Replayed: true" in section and "any order" in section
    reused = operations()[("/orders", "POST")]["responses"]["422"]["description"]
    assert (
        f"`idempotency_key_reused`: The Idempotency-Key placed an order with a different body in the last {hours}"
        in reused
    )


def test_every_operation_has_one_declared_tag_and_every_tag_a_description():
    tags = document()["tags"]
    declared = [tag["name"] for tag in tags]
    assert declared == ["catalog", "orders", "health", "openapi"]
    assert all(tag["description"] and tag["x-displayName"] for tag in tags)
    used = [operation["tags"] for operation in operations().values()]
    assert all(len(names) == 1 and names[0] in declared for names in used)
    assert {names[0] for names in used} == set(declared)
    # Each path's operations sit under the tag of its first segment (/openapi.json under openapi).
    for (path, _), operation in operations().items():
        assert path.strip("/").split("/")[0].removesuffix(".json") == operation["tags"][0], path


def test_operation_ids_and_summaries_read_well():
    ids = [operation["operationId"] for operation in operations().values()]
    assert len(ids) == len(set(ids))
    for (path, method), operation in operations().items():
        assert re.fullmatch(r"(get|list|place)[A-Z][A-Za-z]+", operation["operationId"]), (path, method)
        summary = operation["summary"]
        assert summary[0].isupper() and not summary.endswith(".") and len(summary) <= 30, summary
        assert operation["description"].endswith("."), (path, method)
