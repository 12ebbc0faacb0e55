"""DynamoDB capacity of the data model: units per route, and the busiest partition keys at each tier's rate.

Runs fixed request mixes through the application in-process (the Lambda events API Gateway sends once
the authorizer has answered; DynamoDB served by moto), records every DynamoDB call with images of the
items it writes, prices each call with DynamoDB's capacity rules (scripts.measure.dynamodb_units) and scales
the run to each tier's rate and burst. Nothing in the data path is cached, so every figure is what a
container that has just started sees. A partition key serves at most 3,000 RCU and 1,000 WCU a
second; headroom is how many times the measured load fits under that on the busiest key.
"""

from __future__ import annotations

import argparse
import os
import sys

from scripts.measure.workload import (
    LINES_PER_ORDER,
    PARTITION_READ_LIMIT,
    PARTITION_WRITE_LIMIT,
    PREMIUM_MIX,
    TENANT,
    Bench,
    Run,
    local_environment,
    run_mix,
    utilisation,
)

# What a new on-demand table, and each new index, serves at once before it has scaled: it then
# doubles its previous peak within 30 minutes (DynamoDB developer guide, on-demand capacity
# mode, "Initial throughput and scaling properties"; warm throughput raises it in advance).
NEW_TABLE_READS = 12000.0
NEW_TABLE_WRITES = 4000.0
GOALS = (
    ("premium mix at 1,000 rps", "mix", "rate", 2.0),
    ("premium mix at the 2,000 burst", "mix", "burst", 1.0),
    ("orders only, 1,000 a second", "orders", "rate", 2.0),
)


def run_orders_only(bench: Bench, orders: int) -> Run:
    """Orders of three lines spread evenly over the whole catalog (order i takes the next three products)."""
    run = Run("orders only")
    count = len(bench.product_ids)
    for number in range(orders):
        lines = [bench.product_ids[(number * LINES_PER_ORDER + line) % count] for line in range(LINES_PER_ORDER)]
        bench.measure(run, "place order", lambda lines=lines: bench.place_order(lines))
    return run


def run_best_seller(bench: Bench, orders: int) -> Run:
    """One-line orders of one product."""
    run = Run("best seller")
    product_id = bench.product_ids[0]
    for _ in range(orders):
        bench.measure(run, "place order", lambda: bench.place_order([product_id]))
    return run


def registry_lookup(bench: Bench) -> Run:
    """What the authorizer reads from the registry on a cold cache (once per token per 60 s behind API Gateway)."""
    from chalicelib.store.registry import ACTIVE, TenantRecord, TenantRegistry

    registry = TenantRegistry()
    registry.put(TenantRecord(TENANT, "premium", ACTIVE, "capacityclient01", "key-id", "key-value", "Capacity"))
    run = Run("authorizer registry lookup")
    bench.measure(run, "authorizer lookup", lambda: registry.find_by_client_id("capacityclient01"))
    return run


# --- the report ----------------------------------------------------------------------------


def describe_partition(where: tuple[str, str | None, str]) -> str:
    """A partition key as the report shows it: the key, and the index it belongs to if any."""
    _, index, partition = where
    return f"{partition} ({index} index)" if index else partition


def route_table(run: Run) -> list[str]:
    """Calls and units per request of each route."""
    lines = [f"  {'route':<18} {'requests':>8}  {'calls per request':<44} {'RCU/req':>8} {'WCU/req':>8}"]
    order = list(PREMIUM_MIX)
    for name, figures in sorted(
        run.routes.items(), key=lambda entry: order.index(entry[0]) if entry[0] in order else 99
    ):
        calls = ", ".join(
            f"{count / figures.requests:g} {operation}" for operation, count in sorted(figures.calls.items())
        )
        lines.append(
            f"  {name:<18} {figures.requests:>8}  {calls:<44} "
            f"{figures.read_units / figures.requests:>8.2f} {figures.write_units / figures.requests:>8.2f}"
        )
    return lines


def busiest_table(run: Run, rate: float, top: int) -> list[str]:
    """The busiest partition keys at rate."""
    lines = [f"  busiest partition keys at {rate:,.0f} requests a second:"]
    for where, read_units, write_units in run.load(rate)[:top]:
        headroom = 1 / utilisation(read_units, write_units)
        lines.append(
            f"    {describe_partition(where):<60} {read_units:>8.1f} RCU/s {write_units:>8.1f} WCU/s {headroom:>7.1f}x"
        )
    return lines


def tier_table(run: Run) -> list[str]:
    """Headroom on the busiest partition key at each tier's rate and burst."""
    from chalicelib.tiers import TIERS

    lines = [
        f"  {'tier':<9} {'':<6} {'req/s':>6}  {'busiest partition key':<60} {'RCU/s':>8} {'WCU/s':>8} {'headroom':>9}"
    ]
    for tier in TIERS.values():
        for label, rate in (("rate", tier.rate_per_second), ("burst", tier.burst)):
            where, read_units, write_units = run.load(rate)[0]
            lines.append(
                f"  {tier.name:<9} {label:<6} {rate:>6,}  {describe_partition(where):<60} "
                f"{read_units:>8.1f} {write_units:>8.1f} {1 / utilisation(read_units, write_units):>8.1f}x"
            )
    return lines


def best_seller_lines(run: Run, product_id: str) -> list[str]:
    """What one product's item can take, from the units one one-line order puts on it."""
    # The product's own partition key is the table key that the orders write most.
    table_keys = [(where, units) for where, units in run.partitions.items() if where[1] is None]
    _, units = max(table_keys, key=lambda entry: entry[1][1])
    reads, writes = (total / run.requests for total in units)
    ceiling = 1 / utilisation(reads, writes)
    lines = [
        f"  each one-line order of {product_id}: {reads:g} RCU and {writes:g} WCU on the product's partition key",
        f"  one item takes at most {PARTITION_WRITE_LIMIT:,.0f} WCU a second: {ceiling:,.0f} one-line orders a second of one product",
    ]
    lines.extend(busiest_table(run, ceiling, 3)[1:])
    return lines


def whole_table_lines(runs: dict[str, Run], rate: float, burst: float) -> list[str]:
    """The table's and each index's total load, for sizing warm throughput and the table's quota."""
    lines = []
    for name, run in runs.items():
        for pace, requests_per_second in (("rate", rate), ("burst", burst)):
            for (_, index), (read_units, write_units) in sorted(
                run.totals(requests_per_second).items(), key=lambda entry: entry[0][1] or ""
            ):
                part = f"{index} index" if index else "table"
                lines.append(
                    f"  {name:<12} {pace:<6} {requests_per_second:>6,.0f} req/s  {part:<14} "
                    f"{read_units:>9,.0f} RCU/s {write_units:>9,.0f} WCU/s"
                )
    return lines


def report(catalog_size: int, mix: Run, orders: Run, best: Run, lookup: Run, top: int) -> tuple[list[str], bool]:
    """The printed report, and whether every goal is met."""
    from chalicelib.tiers import TIERS

    premium = TIERS["premium"]
    lines = [
        "DynamoDB capacity of the data model: every call of the run priced with DynamoDB's rules "
        "(transactions twice, index writes once), scaled to each rate; no cache in the data path.",
        f"Catalog: {catalog_size} products. One partition key serves {PARTITION_READ_LIMIT:,.0f} RCU and "
        f"{PARTITION_WRITE_LIMIT:,.0f} WCU a second.",
        "",
        f"premium mix ({mix.requests} requests: "
        + ", ".join(f"{share}% {name}" for name, share in PREMIUM_MIX.items())
        + f"; orders of {LINES_PER_ORDER} lines with an Idempotency-Key)",
        *route_table(mix),
        *busiest_table(mix, premium.rate_per_second, top),
        *tier_table(mix),
        "",
        f"orders only ({orders.requests} orders of {LINES_PER_ORDER} lines, spread evenly over the catalog)",
        *route_table(orders),
        *busiest_table(orders, premium.rate_per_second, top),
        "",
        f"best seller ({best.requests} one-line orders of one product)",
        *best_seller_lines(best, "prod-0001"),
        "",
        "authorizer, cold registry cache (API Gateway caches its answer per token for 60 s)",
        *route_table(lookup),
        "",
        f"table and index as a whole at premium's rate and burst (a new on-demand table or index serves "
        f"{NEW_TABLE_READS:,.0f} RCU/s and {NEW_TABLE_WRITES:,.0f} WCU/s at once, then doubles its peak within 30 minutes):",
        *whole_table_lines({"premium mix": mix, "orders only": orders}, premium.rate_per_second, premium.burst),
        "",
        "goals (headroom on the busiest partition key of the table and of every index):",
    ]
    runs = {"mix": mix, "orders": orders}
    met = True
    for label, which, pace, goal in GOALS:
        rate = premium.rate_per_second if pace == "rate" else premium.burst
        headroom = runs[which].headroom(rate)
        ok = headroom >= goal
        met = met and ok
        lines.append(f"  {label:<34} {headroom:>6.2f}x   goal {goal:.1f}x   {'met' if ok else 'NOT MET'}")
    lines.append(
        "  the same if an index write inside a transaction cost twice (priced once above, as a conformance suite "
        "measured on DynamoDB; AWS does not document it):"
    )
    doubled = {which: run.with_index_writes_doubled() for which, run in runs.items()}
    for label, which, pace, _ in GOALS:
        rate = premium.rate_per_second if pace == "rate" else premium.burst
        lines.append(f"    {label:<32} {doubled[which].headroom(rate):>6.2f}x")
    return lines, met


def measure_all(catalog_size: int, requests: int, orders: int, seed: int) -> tuple[list[str], bool]:
    """Run every case, each on a table of its own, and build the report."""
    from moto import mock_aws

    runs = []
    cases = (
        lambda bench: run_mix(bench, requests),
        lambda bench: run_orders_only(bench, orders),
        lambda bench: run_best_seller(bench, max(20, orders // 10)),
        registry_lookup,
    )
    for case in cases:
        # A table per case keeps each small: moto copies a whole table on every transaction.
        with mock_aws():
            runs.append(case(Bench(catalog_size, seed)))
    mix, orders_run, best, lookup = runs
    return report(catalog_size, mix, orders_run, best, lookup, top=5)


def main(argv: list[str] | None = None) -> int:
    """Print the report; exit 1 if a goal is not met."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="requests of the premium mix (default 2000)")
    parser.add_argument("--orders", type=int, default=600, help="orders of the orders-only case (default 600)")
    parser.add_argument("--catalog-size", type=int, default=100, help="products in the tenant's catalog (default 100)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the random choices, for repeatable runs")
    args = parser.parse_args(argv)
    os.environ.update(local_environment())
    lines, met = measure_all(args.catalog_size, args.requests, args.orders, args.seed)
    print("\n".join(lines))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
