"""The API in-process on moto, driven as a premium tenant drives it: the workload capacity and cost measure.

Bench serves each request through Lambda's entry point and records, per route, the DynamoDB
units and partition keys of every call (scripts.measure.call_recorder); run_mix sends the
premium mix in a seeded order.
"""

from __future__ import annotations

import json
import random
import types
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Iterator

from chalicelib.config import DEFAULT_RESOURCE_SERVER
from chalicelib.tenancy import SCOPES as SCOPE_NAMES

TABLE = "capacity-table"
TENANT = "capacity-premium"
# Every scope, as the authorizer's context carries them: space-separated.
SCOPES = " ".join(f"{DEFAULT_RESOURCE_SERVER}/{scope}" for scope in SCOPE_NAMES)
PARTITION_READ_LIMIT = 3000.0
PARTITION_WRITE_LIMIT = 1000.0
# Large enough that no order of a run is refused for stock: the run measures placed orders.
STOCK = 1_000_000_000
LINES_PER_ORDER = 3
# The realistic premium mix of the capacity goal: route name -> share of requests (percent).
PREMIUM_MIX = {"get product": 40, "list catalog": 30, "list orders": 5, "get order": 5, "place order": 20}
LAMBDA_CONTEXT = types.SimpleNamespace(
    aws_request_id="capacity",
    function_name="capacity",
    memory_limit_in_mb=512,
    invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:capacity",
    get_remaining_time_in_millis=lambda: 10000,
)


def local_environment() -> dict[str, str]:
    """The settings the application reads, for an in-process run against moto (no tracing, logs or metrics)."""
    return {
        "AWS_ACCESS_KEY_ID": "capacity",
        "AWS_SECRET_ACCESS_KEY": "capacity",
        "AWS_SESSION_TOKEN": "capacity",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "TABLE_NAME": TABLE,
        "TENANT_ACCESS_ROLE_ARN": "arn:aws:iam::123456789012:role/capacity-tenant-access",
        "TOKEN_ISSUER": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_capacity",
        "PAGINATION_SECRET": "capacity-secret-" + "x" * 40,
        "RESOURCE_SERVER_ID": DEFAULT_RESOURCE_SERVER,
        "RATE_LIMITER": "usage-plan",
        "TRACING": "off",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
    }


def api_event(method: str, resource: str, path: str, params: dict[str, str] | None = None, **options: Any) -> dict:
    """The proxy event API Gateway sends the function once the authorizer has allowed the request."""
    headers = {"content-type": "application/json", **options.get("headers", {})}
    query = options.get("query")
    body = options.get("body")
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {name: [value] for name, value in query.items()} if query else None,
        "pathParameters": params,
        "stageVariables": None,
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "requestId": str(uuid.uuid4()),
            "stage": "api",
            "path": path,
            "authorizer": {"tenant_id": TENANT, "tier": "premium", "scopes": SCOPES, "principalId": TENANT},
        },
    }


@dataclass
class RouteFigures:
    """What one route's requests cost over a run."""

    requests: int = 0
    calls: Counter = field(default_factory=Counter)
    read_units: float = 0.0
    write_units: float = 0.0


@dataclass
class Run:
    """One mix's measurements: per route, and per partition key summed over every request."""

    name: str
    requests: int = 0
    routes: dict[str, RouteFigures] = field(default_factory=dict)
    partitions: dict[tuple[str, str | None, str], list[float]] = field(
        default_factory=lambda: defaultdict(lambda: [0.0, 0.0])
    )

    def load(self, rate: float) -> list[tuple[tuple[str, str | None, str], float, float]]:
        """Every partition key's RCU/s and WCU/s with requests arriving at rate, busiest first."""
        per_second = rate / self.requests
        rows = [(where, units[0] * per_second, units[1] * per_second) for where, units in self.partitions.items()]
        return sorted(rows, key=lambda row: utilisation(row[1], row[2]), reverse=True)

    def headroom(self, rate: float) -> float:
        """How many times the load at rate fits on the busiest partition key."""
        busiest = self.load(rate)[0]
        return 1 / utilisation(busiest[1], busiest[2])

    def totals(self, rate: float) -> dict[tuple[str, str | None], tuple[float, float]]:
        """RCU/s and WCU/s of the table and of each index as a whole, with requests arriving at rate."""
        sums: dict[tuple[str, str | None], list[float]] = defaultdict(lambda: [0.0, 0.0])
        for (table, index, _), read_units, write_units in self.load(rate):
            sums[(table, index)][0] += read_units
            sums[(table, index)][1] += write_units
        return {where: (units[0], units[1]) for where, units in sums.items()}

    def with_index_writes_doubled(self) -> Run:
        """The run as it would price if DynamoDB charged an index write inside a transaction twice.

        Every index write of the measured requests comes from an order's transaction (products
        are written before the run), so doubling them all is exactly that case.
        """
        doubled = Run(f"{self.name}, index writes doubled", requests=self.requests, routes=self.routes)
        for where, (read_units, write_units) in self.partitions.items():
            doubled.partitions[where] = [read_units, write_units * 2 if where[1] else write_units]
        return doubled


def utilisation(read_units: float, write_units: float) -> float:
    """The share of one partition key's capacity that a load takes (its larger side)."""
    return max(read_units / PARTITION_READ_LIMIT, write_units / PARTITION_WRITE_LIMIT)


class Bench:
    """The application, moto and the call recorder, set up for one tenant's catalog."""

    def __init__(self, catalog_size: int, seed: int):
        import boto3

        import app as application
        from chalicelib.models import Product
        from chalicelib.process_caches import reset_process_caches
        from chalicelib.store import dynamodb, schema, tenant_access
        from chalicelib.store.catalog import CatalogRepository
        from scripts.measure.call_recorder import CallRecorder
        from scripts.measure.dynamodb_units import TableShape

        self.app = application.app
        self.random = random.Random(seed)
        reset_process_caches()
        client = dynamodb.dynamodb_client()
        client.create_table(**schema.table_definition(TABLE))
        self.product_ids = [f"prod-{number:04d}" for number in range(1, catalog_size + 1)]
        # Seeded as an operator would; the requests below run with the tenant's own credentials.
        catalog = CatalogRepository(TENANT, client)
        for number, product_id in enumerate(self.product_ids, start=1):
            name = f"Trail product {number}"
            description = "Built for long days outside; tested by the team on real trails."
            catalog.put(Product(product_id, name, Decimal("19.99") + number, "USD", STOCK, description))
        image_client = boto3.client("dynamodb", region_name="us-east-1")
        shapes = {TABLE: TableShape.from_definition(schema.table_definition(TABLE))}
        self.recorder = CallRecorder(tenant_access.tenant_dynamodb(TENANT), image_client, shapes)
        # The authorizer reads the registry with the function's own client, not the tenant's.
        self.registry_recorder = CallRecorder(client, image_client, shapes)
        self.shapes = shapes
        self.order_ids: list[str] = []

    def context(self) -> Any:
        """The Lambda context the function is invoked with."""
        return LAMBDA_CONTEXT

    def request(self, event: dict[str, Any]) -> dict[str, Any]:
        """Invoke the function as API Gateway would; fail loudly on anything but a success."""
        response = self.app(event, self.context())
        if response["statusCode"] >= 300:
            raise RuntimeError(
                f"{event['httpMethod']} {event['path']} answered {response['statusCode']}: {response['body']}"
            )
        return json.loads(response["body"])

    def place_order(self, product_ids: list[str], quantity: int = 1) -> dict[str, Any]:
        """POST /orders with a fresh Idempotency-Key."""
        body = {"items": [{"product_id": product_id, "quantity": quantity} for product_id in product_ids]}
        headers = {"idempotency-key": str(uuid.UUID(int=self.random.getrandbits(128)))}
        order = self.request(api_event("POST", "/orders", "/orders", body=body, headers=headers))
        self.order_ids.append(order["order_id"])
        return order

    def route(self, name: str) -> Callable[[], object]:
        """A request of the named route, with its arguments drawn for this run."""
        if name == "get product":
            product_id = self.random.choice(self.product_ids)
            return lambda: self.request(
                api_event("GET", "/catalog/{product_id}", f"/catalog/{product_id}", {"product_id": product_id})
            )
        if name == "list catalog":
            return lambda: self.request(api_event("GET", "/catalog", "/catalog"))
        if name == "list orders":
            return lambda: self.request(api_event("GET", "/orders", "/orders"))
        if name == "get order":
            order_id = self.random.choice(self.order_ids)
            return lambda: self.request(
                api_event("GET", "/orders/{order_id}", f"/orders/{order_id}", {"order_id": order_id})
            )
        if name == "place order":
            lines = self.random.sample(self.product_ids, LINES_PER_ORDER)
            return lambda: self.place_order(lines)
        raise ValueError(f"unknown route {name!r}")

    def measure(self, run: Run, route: str, call: Callable[[], object]) -> None:
        """Make one request with the recorder on, and price every DynamoDB call it made."""
        from scripts.measure.dynamodb_units import consumption

        recorders = (self.recorder, self.registry_recorder)
        for recorder in recorders:
            recorder.clear()
            recorder.start()
        try:
            call()
        finally:
            for recorder in recorders:
                recorder.stop()
        figures = run.routes.setdefault(route, RouteFigures())
        figures.requests += 1
        run.requests += 1
        for recorded in [call for recorder in recorders for call in recorder.calls]:
            figures.calls[recorded.operation] += 1
            for used in consumption(recorded, self.shapes):
                figures.read_units += used.read_units
                figures.write_units += used.write_units
                totals = run.partitions[(used.table, used.index, used.partition)]
                totals[0] += used.read_units
                totals[1] += used.write_units


def mix_schedule(requests: int, rng: random.Random) -> Iterator[str]:
    """Route names in the premium mix's proportions, shuffled."""
    names = [name for name, share in PREMIUM_MIX.items() for _ in range(round(requests * share / 100))]
    rng.shuffle(names)
    yield from names


def run_mix(bench: Bench, requests: int) -> Run:
    """The premium mix; a few orders exist first so that there is something to read back."""
    for _ in range(20):
        bench.place_order(bench.random.sample(bench.product_ids, LINES_PER_ORDER))
    run = Run("premium mix")
    for name in mix_schedule(requests, bench.random):
        bench.measure(run, name, bench.route(name))
    return run
