"""The CloudWatch embedded-metric-format members of a request's log line: per-tier metrics at no API cost.

Each request writes one line: its access fields and, in the same object, an EMF document
(Powertools Metrics), which CloudWatch turns into metrics. EMF allows members beyond the metrics,
so one line carries both and Logs bills one event, not two or three. The metrics are Requests,
ClientErrors, ServerErrors, Throttled and Latency, and for a newly placed order OrdersPlaced and
OrderValue, all under the dimensions (service, tier). Every distinct dimension value is a
separately billed custom metric, so there is no tenant dimension: per-tenant requests, errors
and time come from Contributor Insights rules over these same lines
(scripts.monitoring.contributor_rules), whose price does not grow with the tenants.
The line is written at INFO: a log level above it would drop the metrics with the access line.
"""

from __future__ import annotations

import functools
import time
from contextvars import ContextVar
from decimal import Decimal
from typing import Any

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from chalicelib.telemetry.logs import SERVICE, logger
from chalicelib.telemetry.metrics import (
    CLIENT_ERRORS,
    LATENCY,
    METRICS_NAMESPACE,
    ORDER_VALUE,
    ORDERS_PLACED,
    REQUESTS,
    SERVER_ERRORS,
    THROTTLED,
    TIER_DIMENSION,
)

# The order a request placed, if any, so its figures join the request's one line.
placed_order: ContextVar[dict[str, Any] | None] = ContextVar("placed_order", default=None)
METRIC_UNITS = {
    REQUESTS: MetricUnit.Count,
    CLIENT_ERRORS: MetricUnit.Count,
    SERVER_ERRORS: MetricUnit.Count,
    THROTTLED: MetricUnit.Count,
    LATENCY: MetricUnit.Milliseconds,
    ORDERS_PLACED: MetricUnit.Count,
    ORDER_VALUE: MetricUnit.NoUnit,
}


@functools.lru_cache(maxsize=64)
def _metrics_template(tier: str, names: tuple[str, ...]) -> dict[str, Any]:
    """Powertools' EMF document for these metrics under (service, tier), made once per tier and set of metrics."""
    document = EphemeralMetrics(namespace=METRICS_NAMESPACE, service=SERVICE)
    document.add_dimension(TIER_DIMENSION, tier)
    for name in names:
        document.add_metric(name, METRIC_UNITS[name], 0)
    return dict(document.serialize_metric_set())


def _metrics_document(tier: str, figures: dict[str, float]) -> dict[str, Any]:
    """The EMF members of figures under the dimensions (service, tier); empty when metrics are disabled.

    Powertools builds and validates the document's shape once per tier; each request only puts in
    its timestamp and values (building it whole took a tenth of the request's own time).
    """
    if is_metrics_disabled():
        return {}
    template = _metrics_template(tier, tuple(figures))
    document = {**template, "_aws": {**template["_aws"], "Timestamp": int(time.time() * 1000)}}
    document.update((name, [float(value)]) for name, value in figures.items())
    return document


def _order_figures(total: Decimal) -> dict[str, float]:
    return {ORDERS_PLACED: 1, ORDER_VALUE: float(total)}


def request_metrics(tenant: dict[str, str], status: int, latency_ms: float) -> dict[str, Any]:
    """The EMF members of a request's line: its tier's figures, and those of the order it placed; none off tenant traffic."""
    if "tenant_id" not in tenant or "tier" not in tenant:
        # Unauthenticated routes (health, the OpenAPI document) are not tenant traffic.
        return {}
    figures: dict[str, float] = {
        REQUESTS: 1,
        CLIENT_ERRORS: int(400 <= status < 500),
        SERVER_ERRORS: int(status >= 500),
        THROTTLED: int(status == 429),
        LATENCY: round(latency_ms, 3),
    }
    order = placed_order.get()
    if order:
        figures |= _order_figures(order["total"])
    return _metrics_document(tenant["tier"], figures)


def order_placed(tier: str, total: Decimal) -> None:
    """Count a newly placed order and its value under its tier (not for idempotent replays).

    Inside a request the figures join its one line; elsewhere they are a line of their own.
    """
    order = placed_order.get()
    if order is not None:
        # The request's line carries it, under the request's tier.
        order["total"] = total
        return
    logger.info("order placed", extra=_metrics_document(tier, _order_figures(total)))
