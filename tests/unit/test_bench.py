"""scripts.measure.bench's reports, snippets and bare app, checked without moto or a fresh interpreter."""

from __future__ import annotations

import inspect
import json
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any, Callable

import botocore.session
import pytest
from aws_xray_sdk.core.models.trace_header import TraceHeader
from botocore.client import BaseClient
from botocore.endpoint import Endpoint

import app as application
from chalicelib.models import Product, money
from chalicelib.store import dynamodb, keys
from chalicelib.store.catalog import CatalogRepository
from chalicelib.web import validation
from scripts.measure import bench

# Two runs' figures as the tenant-credential snippet prints them (seconds, and AssumeRole calls).
FIGURES = {
    "first_a": 0.120,
    "first_a_calls": 1,
    "first_b": 0.015,
    "first_b_calls": 1,
    "warm": 0.0036,
    "warm_own": 0.0030,
    "warm_calls": 0,
    "lookup": 0.3e-6,
    "own_lookup": 0.03e-6,
    "credentials": 8e-6,
    "own_credentials": 0.25e-6,
    "assume_alone": 0.004,
}


def sample(**changes: Any) -> dict[str, float]:
    """One run's figures, some changed."""
    return {**FIGURES, **changes}


def test_the_lambda_like_environment_names_the_tenant_access_role() -> None:
    environment = bench.lambda_like_environment("http://127.0.0.1:5000")
    assert environment["TENANT_ACCESS_ROLE_ARN"] == bench.TENANT_ACCESS_ROLE_ARN
    # moto files calls made with assumed credentials under the role's account: the table's.
    assert bench.TENANT_ACCESS_ROLE_ARN.split(":")[4] == "123456789012"


def test_the_snippets_are_python() -> None:
    compile(bench.tenant_credentials_snippet(requests=3), "<tenant credentials>", "exec")
    compile(bench.BARE, "<bare>", "exec")
    compile(bench.OURS, "<ours>", "exec")


def test_the_bare_app_reads_the_item_at_the_key_this_app_reads() -> None:
    for value in keys.product_key("tenant-a", bench.PRODUCT_ID).values():
        assert repr(value) in bench.BARE


def test_expected_assume_role_calls_print_as_plain_counts() -> None:
    rows = bench.tenant_lines([sample(), sample()])
    counted = [text for text in rows if "AssumeRole calls" in text]
    assert [text.rsplit("AssumeRole calls ", 1)[1] for text in counted] == ["1", "1", "0"]


def test_unexpected_assume_role_calls_are_flagged_with_their_spread() -> None:
    assert bench.calls([sample(first_b_calls=2), sample()], "first_b_calls") == "1..2 (expected 1)"
    assert bench.calls([sample(warm_calls=3)], "warm_calls") == "3 (expected 0)"
    assert bench.calls([sample(first_a_calls=0)], "first_a_calls") == "0 (expected 1)"


def test_figures_are_medians_over_runs_and_ratios_to_the_warm_baseline() -> None:
    rows = bench.tenant_lines([sample(warm=0.0035), sample(warm=0.0036), sample(warm=0.0100)])
    warm = next(text for text in rows if "warm request, tenant client" in text)
    assert "3.60 ms" in warm
    assert "1.20x warm baseline, +600 us" in warm
    first_a = next(text for text in rows if "tenant A first request" in text)
    assert "120.00 ms" in first_a and "40.0x warm baseline" in first_a


def test_the_figures_line_up_in_one_column() -> None:
    width = len(bench.row("label", "1.00 ms"))
    for text in bench.tenant_lines([sample()]):
        assert text[:width].endswith((" ms", " us")), text


# --- the warm-route comparison: this app against a bare Chalice app making the same calls ---

AUTHORIZER = {"tenant_id": "tenant-a", "tier": "basic", "scopes": "tenant-api/catalog.read", "principalId": "tenant-a"}


class StubDynamoDB:
    """A DynamoDB client answering from a list of items, recording every call's parameters."""

    def __init__(self, items: list[dict[str, Any]]):
        self.items = items
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def get_item(self, **params: Any) -> dict[str, Any]:
        """The item at the key, if any."""
        self.calls.append(("GetItem", params))
        found = [item for item in self.items if all(item[name] == value for name, value in params["Key"].items())]
        return {"Item": found[0]} if found else {}

    def query(self, **params: Any) -> dict[str, Any]:
        """The partition's first items of the catalog index, in sort key order."""
        self.calls.append(("Query", params))
        partition = params["ExpressionAttributeValues"][":pk"]
        items = [item for item in self.items if item[keys.CATALOG_INDEX_PK] == partition]
        items.sort(key=lambda item: item[keys.CATALOG_INDEX_SK]["S"])
        return {"Items": items[: params["Limit"]]}

    def put_item(self, **params: Any) -> dict[str, Any]:
        """Record the item."""
        self.calls.append(("PutItem", params))
        return {}

    def ordered_calls(self) -> list[str]:
        """The calls, in an order that does not depend on which parallel Query ran first."""
        return sorted(json.dumps(call, sort_keys=True) for call in self.calls)


def catalog_items() -> list[dict[str, Any]]:
    """Tenant A's catalog as the bench seeds it, and tenant B's product."""
    items = [bench.product_item("tenant-a", pid, name, price) for pid, (name, price) in bench.CATALOG.items()]
    return items + [bench.product_item("tenant-b", bench.PRODUCT_ID, "Other", "1.99")]


def lambda_event() -> Callable[..., dict[str, Any]]:
    """The snippets' API Gateway event builder."""
    namespace: dict[str, Any] = {}
    exec(bench.EVENT, namespace)
    return lambda route: namespace["event"](*bench.ROUTES[route], AUTHORIZER)


def bare_body(stub: StubDynamoDB, route: str, limit: int = validation.DEFAULT_LIMIT) -> dict[str, Any]:
    """The bare app's answer to a route, served from the stub."""
    namespace: dict[str, Any] = {}
    exec(bench.EVENT, namespace)
    with ThreadPoolExecutor(max_workers=4) as pool:
        bare = bench.bare_app(stub, dynamodb.table_name(), pool, limit=limit)
        response = bare(lambda_event()(route), namespace["CONTEXT"])
    assert response["statusCode"] == 200, response
    return json.loads(response["body"])


def test_the_warm_route_snippet_is_python() -> None:
    compile(bench.routes_snippet({"get product": 2, "list catalog": 1}, warm_up=1), "<warm routes>", "exec")


def test_the_compared_routes_are_this_apps_catalog_routes() -> None:
    for resource, path, params in bench.ROUTES.values():
        assert "GET" in application.app.routes[resource]
        assert path.startswith("/catalog")
        assert params is None or bench.PRODUCT_ID in path


def test_the_trace_header_is_one_xray_reads_as_a_new_trace_sampled_or_not() -> None:
    unsampled = TraceHeader.from_header_str(bench.trace_header(7, sampled=False))
    sampled = TraceHeader.from_header_str(bench.trace_header(8, sampled=True))
    # Root and parent both set: Lambda's X-Ray context makes a real facade segment, not a dummy.
    assert unsampled.root and unsampled.parent and unsampled.sampled == 0
    assert sampled.sampled == 1 and sampled.root != unsampled.root


def test_the_seeded_items_are_what_the_repository_writes() -> None:
    stub = StubDynamoDB([])
    for product_id, (name, price) in bench.CATALOG.items():
        product = Product(product_id=product_id, name=name, price=Decimal(price), currency="USD", stock=5)
        CatalogRepository("tenant-a", stub).put(product)
    table = dynamodb.table_name()
    expected = [
        ("PutItem", {"TableName": table, "Item": bench.product_item("tenant-a", pid, name, price)})
        for pid, (name, price) in bench.CATALOG.items()
    ]
    assert stub.calls == expected


def test_prices_render_alike_in_both_apps() -> None:
    # The bare app renders str(Decimal), this app money(): the seeded prices are the same in both.
    for _, price in bench.CATALOG.values():
        assert money(Decimal(price)) == str(Decimal(price)) == price


def test_the_bare_app_reads_a_product_with_the_repositorys_call_and_renders_it_alike() -> None:
    ours, bare = StubDynamoDB(catalog_items()), StubDynamoDB(catalog_items())
    product = CatalogRepository("tenant-a", ours).get(bench.PRODUCT_ID)
    body = bare_body(bare, "get product")
    assert bare.ordered_calls() == ours.ordered_calls() and len(bare.calls) == 1
    assert product is not None
    assert body == {**product.to_json(), "tenant_id": "tenant-a", "request_id": "bench"}


@pytest.mark.parametrize("limit", [validation.DEFAULT_LIMIT, 5])
def test_the_bare_app_lists_with_the_repositorys_parallel_queries_and_renders_alike(limit: int) -> None:
    ours, bare = StubDynamoDB(catalog_items()), StubDynamoDB(catalog_items())
    products, last = CatalogRepository("tenant-a", ours).list(limit)
    body = bare_body(bare, "list catalog", limit=limit)
    assert bare.ordered_calls() == ours.ordered_calls()
    assert len(bare.calls) == keys.CATALOG_SHARDS
    assert body["items"] == [product.to_json() for product in products]
    # The bare app resumes after the plain sort key this app signs into its token.
    assert body["next_token"] == last
    assert (last is None) == (limit >= len(bench.CATALOG))


def test_the_bare_app_lists_a_page_of_this_apps_default_size() -> None:
    assert inspect.signature(bench.bare_app).parameters["limit"].default == validation.DEFAULT_LIMIT


def test_the_catalog_query_is_the_repositorys_first_page_query() -> None:
    stub = StubDynamoDB(catalog_items())
    CatalogRepository("tenant-a", stub).list(validation.DEFAULT_LIMIT)
    table = dynamodb.table_name()
    expected = [
        ("Query", bench.catalog_query(table, partition, validation.DEFAULT_LIMIT))
        for partition in keys.catalog_partitions("tenant-a")
    ]
    assert stub.ordered_calls() == sorted(json.dumps(call, sort_keys=True) for call in expected)


def test_without_xray_gives_one_client_back_botocores_methods() -> None:
    session = botocore.session.get_session()
    client = session.create_client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
    )
    other = session.create_client("dynamodb", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")

    def make_api_call(self: Any, operation_name: str, api_params: dict[str, Any]) -> dict[str, Any]:
        return {"operation": operation_name}

    def prepare_request(self: Any, request: Any) -> str:
        return "prepared"

    assert bench.without_xray(client, make_api_call, prepare_request) is client
    assert client.describe_limits() == {"operation": "DescribeLimits"}
    assert client._endpoint.prepare_request(None) == "prepared"
    # Other clients keep what their classes inherit (X-Ray's patch, where it applies).
    assert isinstance(client, BaseClient) and "_make_api_call" not in vars(type(other))
    assert type(other._endpoint) is Endpoint and type(client._endpoint) is not Endpoint


def test_comparable_bodies_keep_only_whether_there_is_a_next_page() -> None:
    assert bench.comparable_body('{"items": [], "next_token": "abc"}') == {"items": [], "next_token": True}
    assert bench.comparable_body('{"items": [], "next_token": null}') == {"items": [], "next_token": False}
    assert bench.comparable_body('{"product_id": "prod-001"}') == {"product_id": "prod-001"}


def test_the_goal_is_judged_on_the_difference_and_flagged_when_runs_straddle_it() -> None:
    assert bench.verdict(80, [70, 80, 90]) == "goal ≤ 100 µs: met"
    assert bench.verdict(360, [340, 360, 380]) == "goal ≤ 100 µs: NOT MET"
    assert bench.verdict(95, [60, 95, 140]) == "goal ≤ 100 µs: met (runs on both sides: within the noise)"
    assert bench.verdict(100, [100, 100]) == "goal ≤ 100 µs: met"


def route_sample(ours_wall: float, bare_wall: float, ours_cpu: float, bare_cpu: float) -> dict[str, dict[str, float]]:
    """One run's figures for both routes, in ms."""
    figures = {
        "ours_wall": ours_wall / 1000,
        "bare_wall": bare_wall / 1000,
        "ours_cpu": ours_cpu / 1000,
        "bare_cpu": bare_cpu / 1000,
    }
    return {route: figures for route in bench.ROUTES}


def test_route_rows_give_medians_over_runs_the_difference_ratio_spread_and_cpu() -> None:
    runs = [route_sample(4.4, 3.9, 2.0, 1.5), route_sample(4.6, 4.0, 2.1, 1.5), route_sample(9.0, 4.1, 2.2, 1.5)]
    rows = bench.route_lines(runs)
    assert len(rows) == 2 * len(bench.ROUTES)
    first, second = rows[0], rows[1]
    assert first.split()[:2] == ["get", "product"]
    assert "this app   4.60 ms" in first and "bare   4.00 ms" in first
    # The median of each run's difference (500, 600, 4900 us), not the difference of the medians.
    assert "difference  +600 us (1.15x)" in first
    assert first.endswith("goal ≤ 100 µs: NOT MET")
    assert "runs +500 +600 +4900 us (spread 4400 us)" in second
    assert "CPU only, without moto's time: +600 us (runs +500 +600 +700)" in second


def test_a_difference_within_the_goal_is_met() -> None:
    rows = bench.route_lines([route_sample(4.05, 4.0, 1.55, 1.5)] * 3)
    assert rows[0].endswith("goal ≤ 100 µs: met") and "+50 us" in rows[0]
