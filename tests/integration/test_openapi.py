"""The OpenAPI document matches app.app.routes, is valid OpenAPI 3, and describes what the API really answers."""

from __future__ import annotations

import json
import re
from typing import Any

from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

import app as application
from chalicelib.openapi import openapi_document
from tests.conftest import ACME, Api, Reply

MISSING_ORDER = "ord_01HZY3M9K8V6T5R4Q3P2N1M0AB"
ONE_LINE = [{"product_id": "prod-001", "quantity": 1}]


def operations() -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (path, method.upper()): operation
        for path, item in openapi_document()["paths"].items()
        for method, operation in item.items()
        if method in ("get", "put", "post", "delete", "patch", "head", "options")
    }


def assert_matches_schema(body: Any, schema: dict[str, Any]) -> None:
    """Validate body against a schema of the document (resolving its $refs)."""
    root = {**schema, "components": openapi_document()["components"]}
    errors = [error.message for error in OAS31Validator(root).iter_errors(body)]
    assert not errors, (errors, body)


def assert_documented(reply: Reply, path: str, method: str) -> None:
    """The reply's status is documented for the operation, and its body fits that response's schema."""
    operation = operations()[(path, method)]
    response = operation["responses"].get(str(reply.status))
    assert response is not None, f"{method} {path} answers {reply.status}, which is not documented"
    assert_matches_schema(reply.json, response["content"]["application/json"]["schema"])
    if reply.status >= 400:
        code = reply.json["error"]["code"]
        assert re.search(rf"\b{re.escape(code)}\b", response["description"]), (code, response["description"])


def test_the_document_is_valid_openapi_3():
    document = openapi_document()
    assert document["openapi"].startswith("3.")
    validate(document)


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
    defined = set(
        openapi_document()["components"]["securitySchemes"]["cognito"]["flows"]["clientCredentials"]["scopes"]
    )
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
            for scope in openapi_document()["components"]["securitySchemes"]["cognito"]["flows"]["clientCredentials"][
                "scopes"
            ]
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


def test_the_openapi_route_serves_the_document(api: Api):
    assert api.get("/openapi.json", tenant=None).json == json.loads(json.dumps(openapi_document()))


def test_the_documented_request_body_agrees_with_validation():
    schema = {"$ref": "#/components/schemas/OrderRequest"}
    assert_matches_schema({"items": ONE_LINE}, schema)
    root = {**schema, "components": openapi_document()["components"]}
    for bad in (
        {"items": []},
        {"items": [{"product_id": "prod-001", "quantity": 1, "price": "1"}]},
        {"items": ONE_LINE, "x": 1},
        {"items": [{"product_id": "prod-001", "quantity": 1001}]},
    ):
        assert list(OAS31Validator(root).iter_errors(bad)), bad
