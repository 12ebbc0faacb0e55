"""The cost model's arithmetic on hand-made inputs, and the README's cost block against the snapshot."""

from __future__ import annotations

import copy
import json
import os
import sys
import threading
from decimal import Decimal

import pytest

from chalicelib.tiers import TIERS
from scripts.measure import cost
from scripts.measure.workload import PREMIUM_MIX
from scripts.stage_config import read_stage_config

MILLION = 1_000_000


def test_a_rule_traces_its_reservoir_each_second_then_its_share_of_the_rest():
    assert cost.traced_share(0.5, reservoir_per_second=1, fixed_rate=0.05) == 1.0
    # 21 a second: 1 from the reservoir, then 5 % of the other 20.
    assert cost.traced_share(21, reservoir_per_second=1, fixed_rate=0.05) == pytest.approx(2 / 21)
    assert cost.traced_share(0.5, reservoir_per_second=0, fixed_rate=0.05) == pytest.approx(0.05)
    assert cost.traced_share(0, reservoir_per_second=1, fixed_rate=0.05) == 0.0


def test_a_steady_token_invokes_the_authorizer_once_per_ttl_at_most():
    # A request every 26 s with a 60 s cache: the call, two answered from the cache, the next call.
    assert cost.authorizer_calls_per_request(1 / 26, 60) == pytest.approx(1 / 3)
    assert cost.authorizer_calls_per_request(100, 60) == pytest.approx(1 / 6001)
    # Slower than the cache lasts: every request invokes it.
    assert cost.authorizer_calls_per_request(1 / 120, 60) == 1.0
    assert cost.authorizer_calls_per_request(100, 0) == 1.0


def test_a_client_keeping_each_token_for_its_lifetime_asks_once_per_lifetime():
    assert cost.tokens_per_client_month(60) == 730
    assert cost.tokens_per_client_month(30) == 1460


def test_an_alarm_is_billed_per_metric_it_reads():
    assert cost.alarm_metric_count({"MetricName": "Errors", "Namespace": "AWS/Lambda"}) == 1
    math_alarm = {
        "Metrics": [
            {"Id": "m0", "MetricStat": {"Metric": {"MetricName": "a"}}},
            {"Id": "m1", "MetricStat": {"Metric": {"MetricName": "b"}}},
            {"Id": "total", "Expression": "m0 + m1"},
        ]
    }
    assert cost.alarm_metric_count(math_alarm) == 2


def test_overlapping_intervals_count_once():
    assert cost.merge_intervals([(5.0, 6.0), (0.0, 2.0), (1.0, 3.0), (3.0, 4.0)]) == [(0.0, 4.0), (5.0, 6.0)]
    assert cost.merge_intervals([]) == []


def test_calls_from_other_threads_while_the_caller_waits_are_one_round():
    caller, workers = 1, (2, 3, 4)
    # A read, three parallel Queries (started in any order), then a write.
    calls = [(0.0, 1.0, caller), (1.2, 1.5, workers[1]), (1.1, 1.9, workers[0]), (1.3, 2.0, workers[2])]
    calls.append((2.1, 3.0, caller))
    assert cost.round_trips(calls, caller) == 3
    assert cost.round_trips([(0.0, 1.0, caller), (1.0, 2.0, caller)], caller) == 2
    assert cost.round_trips([(0.0, 1.0, workers[0]), (1.0, 2.0, workers[1])], caller) == 1
    assert cost.round_trips([], caller) == 0


def test_billed_duration_is_the_functions_own_time_and_dynamodbs_rounds_rounded_up():
    figures = {"in_process_ms": 53.2, "moto_ms": 51.5, "round_trips": 2}
    assert cost.billed_ms(figures) == 12  # 1.7 ms of its own + 2 x 5 ms, rounded up
    assert cost.billed_ms({"in_process_ms": 3.0, "moto_ms": 0.0, "round_trips": 0}) == 3


def test_below_a_full_vcpu_the_functions_own_time_slows_in_proportion():
    figures = {"in_process_ms": 2.0, "moto_ms": 0.0, "round_trips": 1}
    assert cost.cpu_factor(1769) == cost.cpu_factor(3008) == 1.0
    assert cost.cpu_factor(884.5) == pytest.approx(2.0)
    assert cost.billed_ms(figures, 884.5) == 9  # 2 ms twice as slow + 5 ms waiting
    assert cost.billed_ms(figures, 1769) == 7


def test_the_memory_rule_picks_the_smallest_size_that_computes_no_longer_than_it_waits():
    snapshot = hand_made_snapshot()
    route = snapshot["routes"]["only route"]
    # 1 round of DynamoDB calls (5 ms) and 2 ms of its own: at 768 MB 2 x 2.30 = 4.6 ms, at 512 MB 6.9 ms.
    route.update(in_process_ms=2.0, moto_ms=0.0, round_trips=1)
    assert cost.chosen_memory(snapshot) == 768
    route.update(in_process_ms=1.0)
    assert cost.chosen_memory(snapshot) == 512
    # Computing longer than waiting even on a full vCPU: the largest size compared.
    route.update(in_process_ms=6.0)
    assert cost.chosen_memory(snapshot) == 1769
    table = cost.memory_table(snapshot)
    assert [row[0] for row in table.rows][-1] == "1,769 MB (rule)"
    assert any("(configured)" in row[0] for row in table.rows)


def emf_document(tier: str, tenant: str | None, metrics: list[str]) -> str:
    dimensions = [["tier", "service"]] + ([["service", "tenant_id"]] if tenant else [])
    document = {
        "_aws": {
            "Timestamp": 0,
            "CloudWatchMetrics": [
                {"Namespace": "TenantApi", "Dimensions": dimensions, "Metrics": [{"Name": name} for name in metrics]}
            ],
        },
        "tier": tier,
        "service": "tenant-api-prod",
        **({"tenant_id": tenant} if tenant else {}),
        **{name: [1.0] for name in metrics},
    }
    return json.dumps(document)


def test_each_metric_under_each_dimension_set_of_distinct_values_is_a_series():
    output = "\n".join(
        [
            '{"level":"INFO","message":"request"}',
            emf_document("basic", "a", ["Requests", "Latency"]),
            emf_document("basic", "a", ["Requests", "Latency"]),
            emf_document("basic", "b", ["Requests", "Latency"]),
            emf_document("basic", None, ["OrdersPlaced"]),
            "not json",
        ]
    ).encode()
    series = cost.emf_series(output)
    # Per tenant: 2 metrics x 2 tenants; per tier: Requests, Latency and OrdersPlaced of basic.
    assert len(series) == 7
    counts = cost.series_counts(series)
    assert (counts["per_tenant"], counts["per_tier"], counts["per_stage"]) == (2, 3, 0)
    assert counts["per_tenant_series"] == ["Latency by (service, tenant_id)", "Requests by (service, tenant_id)"]


def test_each_rule_matching_a_line_is_one_billed_match():
    rules = [
        {"Contribution": {"Keys": ["$.tenant_id"], "Filters": []}, "AggregateOn": "Count"},
        {"Contribution": {"Keys": ["$.tenant_id"], "Filters": [{"Match": "$.status", "GreaterThan": 399}]},
         "AggregateOn": "Count"},
    ]  # fmt: skip
    output = [
        b'{"tenant_id": "a", "status": 200}\n{"message": "no tenant"}\n',
        b'{"tenant_id": "a", "status": 404}\nSTART RequestId: 1\n',
    ]
    assert cost.rule_matches(output, rules) == 3
    assert cost.rule_matches(output, []) == 0


def test_what_the_application_writes_is_captured_from_its_file_descriptor(monkeypatch):
    from chalicelib.telemetry import emf
    from chalicelib.telemetry.logs import SERVICE, logger

    # As in Lambda, sys.stdout and the logger write to descriptor 1 (pytest's own capture replaces it).
    monkeypatch.setattr(sys, "stdout", open(1, "w", closefd=False))
    handler = logger.registered_handler
    monkeypatch.setattr(handler, "stream", sys.stdout)
    with cost.StdoutCapture() as capture:
        start = capture.offset()
        os.write(1, b"written to the descriptor\n")
        print("printed")
        # A real EMF document, as an order placed outside a request writes it.
        emf.order_placed("standard", Decimal("12.50"))
        written = capture.read(start)
    lines = written.decode().splitlines()
    assert lines[:2] == ["written to the descriptor", "printed"]
    series = cost.emf_series(written)
    assert {(name, dimensions) for _, name, dimensions in series} == {
        ("OrdersPlaced", (("tier", "standard"), ("service", SERVICE))),
        ("OrderValue", (("tier", "standard"), ("service", SERVICE))),
    }


def hand_made_snapshot() -> dict:
    route = {
        "requests": 10,
        "read_units": 2.0,
        "write_units": 1.0,
        "log_bytes": 1000.0,
        "log_events": 2.0,
        "rule_matches": 2.5,
        "in_process_ms": 10.0,
        "moto_ms": 0.0,
        "round_trips": 0,
    }
    return {
        "run": {"stage": "prod", "requests": 10, "seed": 1, "catalog_size": 10},
        "measured_on": "2026-12-01",
        "functions": {
            "api": {"memory_mb": 1024, "architecture": "x86_64"},
            "authorizer": {"memory_mb": 512, "architecture": "arm64"},
        },
        "mix": {"only route": 100},
        "routes": {"only route": route},
        "authorizer": {**route, "read_units": 1.0, "write_units": 0.0, "log_bytes": 0.0, "log_events": 0.0},
        "logs": {"archive_ratio": 0.0},
        "metrics": {"per_tenant": 5, "per_tier": 7, "per_stage": 0, "per_tenant_series": [], "per_tier_series": []},
        "tracing": {
            "reservoir_per_second": 0,
            "fixed_rate": 0.1,
            "traced_share": {population.name: 0.1 for population in cost.populations()},
        },
        "authorizer_cache": {"ttl_seconds": 60, "calls_per_request": {"basic": 0.5, "standard": 0.1, "premium": 0.0}},
        "tokens": {"access_token_minutes": 60, "per_client_month": 730.0},
        "stage_resources": {
            "dashboards": 1,
            "alarms": 6,
            "alarm_metrics": 14,
            "contributor_rules": 3,
            "pagination_secrets": 1,
            "tenant_secrets": True,
        },
        "log_retention_days": 0,
        "cold_start": {"import_ms": 300.0},
    }


def population(name: str) -> cost.Population:
    return {population.name: population for population in cost.populations()}[name]


def test_one_standard_tenant_at_quota_costs_each_line_at_its_price():
    snapshot = hand_made_snapshot()
    costs = cost.monthly_costs(snapshot, population("standard"))
    assert TIERS["standard"].monthly_quota == MILLION
    assert costs["API Gateway"] == pytest.approx(3.50)
    # 2 read units at $0.125 and 1 write unit at $0.625 a million; 100,000 authorizer calls read 1 unit.
    assert costs["DynamoDB"] == pytest.approx(2 * 0.125 + 0.625 + 0.1 * 0.125)
    # 10 ms of its own on a full vCPU is 17.3 ms at 1,024 MB's share, billed 18 ms at 1 GB on x86; the
    # authorizer's 100,000 calls, 34.6 ms at 512 MB's share, billed 35 ms at 0.5 GB on arm64.
    api = 0.20 + MILLION * 0.018 * 1.0 * 0.0000166667
    authorizer = 0.1 * 0.20 + 100_000 * 0.035 * 0.5 * 0.0000133334
    assert costs["Lambda"] == pytest.approx(api + authorizer)
    # 10 % traced, $5 a million traces.
    assert costs["X-Ray"] == pytest.approx(0.50)
    assert costs["Cognito"] == pytest.approx(6.00 + 730 * 2.25 / 1000)
    assert costs["custom metrics"] == pytest.approx(5 * 0.30)
    # 2.5 rule matches a request at $0.02 a million; a rule's monthly fee is the stage's.
    assert costs["Contributor Insights"] == pytest.approx(2.5 * 0.02)
    assert costs["Secrets Manager"] == pytest.approx(0.40)
    assert costs["dashboard, alarms, rules"] == 0.0
    # Nothing kept (retention 0 days): ingestion only, Lambda's own lines included.
    ingested = MILLION * (1000 + cost.PLATFORM_BYTES) + 100_000 * (0 + cost.PLATFORM_BYTES)
    ingested += (MILLION + 100_000) * 0.1 * cost.XRAY_LINE_BYTES
    assert costs["CloudWatch Logs"] == pytest.approx(ingested / 1024**3 * 0.50)


def test_kept_logs_are_billed_compressed_with_metadata_for_the_days_they_are_kept():
    snapshot = hand_made_snapshot()
    snapshot["logs"]["archive_ratio"] = 0.25
    snapshot["log_retention_days"] = 7
    kept = cost.logs_dollars(snapshot, invocations=MILLION, log_bytes=1000, events=2, traced=0)
    ingested = MILLION * (1000 + cost.PLATFORM_BYTES)
    archived = ingested * 0.25 + MILLION * (2 + 3) * 26
    assert kept == pytest.approx(ingested / 1024**3 * 0.50 + archived * 7 / (730 / 24) / 1024**3 * 0.03)


def test_a_stage_adds_its_tiers_series_dashboard_alarms_rules_and_pagination_secret():
    snapshot = hand_made_snapshot()
    stage = population("100 tenants")
    assert stage.tenants == {"basic": 70, "standard": 25, "premium": 5}
    assert stage.requests == 70 * 100_000 + 25 * MILLION + 5 * 10 * MILLION
    costs = cost.monthly_costs(snapshot, stage)
    assert costs["custom metrics"] == pytest.approx((100 * 5 + 3 * 7) * 0.30)
    assert costs["dashboard, alarms, rules"] == pytest.approx(3.00 + 14 * 0.10 + 3 * 0.50)
    assert costs["Contributor Insights"] == pytest.approx(stage.requests * 2.5 * 0.02 / MILLION)
    assert costs["Secrets Manager"] == pytest.approx(101 * 0.40)
    assert costs["Cognito"] == pytest.approx(100 * (6.00 + 730 * 2.25 / 1000))
    snapshot["stage_resources"]["tenant_secrets"] = False
    assert cost.monthly_costs(snapshot, stage)["Secrets Manager"] == pytest.approx(0.40)
    assert population("1,000 tenants").tenants == {"basic": 700, "standard": 250, "premium": 50}


def test_the_goals_are_met_only_at_or_under_their_figures():
    snapshot = hand_made_snapshot()
    [variable, stage] = cost.goal_lines(snapshot)
    standard = population("standard")
    expected = cost.per_million(cost.monthly_costs(snapshot, standard), standard, cost.VARIABLE_LINES)
    assert variable[1] == pytest.approx(expected)
    assert variable[3] is (expected <= 5.0)
    cheap = copy.deepcopy(snapshot)
    # With nothing but API Gateway's $3.50 left, the variable goal is met.
    cheap["routes"]["only route"].update(
        read_units=0.0, write_units=0.0, log_bytes=0.0, in_process_ms=0.0, rule_matches=0.0
    )
    cheap["tracing"]["traced_share"] = {name: 0.0 for name in cheap["tracing"]["traced_share"]}
    assert cost.goal_lines(cheap)[0][3] is True
    assert stage[0].startswith("100-tenant stage")


def test_only_the_cost_block_of_the_readme_is_replaced():
    readme = f"before\n{cost.README_BEGIN}\nold figures\n{cost.README_END}\nafter\n"
    block = f"{cost.README_BEGIN}\nnew figures\n{cost.README_END}"
    assert cost.readme_with_block(readme, block) == f"before\n{block}\nafter\n"
    assert cost.readme_cost_block(readme) == f"{cost.README_BEGIN}\nold figures\n{cost.README_END}"
    with pytest.raises(ValueError):
        cost.readme_with_block("no markers here", block)


def test_the_readme_shows_what_the_snapshot_renders():
    snapshot = cost.load_snapshot()
    assert cost.readme_cost_block(cost.README.read_text()) == cost.readme_block(snapshot), (
        "README's cost block is stale: run `make cost`"
    )


def test_the_snapshot_agrees_with_the_projects_definitions():
    snapshot = cost.load_snapshot()
    config = read_stage_config(snapshot["run"]["stage"])
    derived = cost.derived_inputs(config)
    stale = "cost/measured.json is stale: run `make cost`"
    for key, value in derived.items():
        assert snapshot[key] == value, f"{key}: {stale}"
    functions = cost.stage_functions(config)
    assert snapshot["functions"] == {
        name: {"memory_mb": setting.memory_mb, "architecture": setting.architecture}
        for name, setting in functions.items()
    }, stale
    assert snapshot["mix"] == PREMIUM_MIX, stale


def test_the_capture_is_undone_even_when_the_run_fails():
    before = os.fstat(1)
    with pytest.raises(RuntimeError):
        with cost.StdoutCapture():
            raise RuntimeError("the run failed")
    after = os.fstat(1)
    assert (before.st_dev, before.st_ino) == (after.st_dev, after.st_ino)


def test_the_moto_clock_records_calls_with_their_thread():
    import boto3
    from moto import mock_aws

    with mock_aws(), cost.MotoClock() as clock:
        client = boto3.client("sts", region_name="us-east-1")
        client.get_caller_identity()
        other = threading.Thread(target=client.get_caller_identity)
        other.start()
        other.join()
        calls = clock.take()
    assert [thread for _, _, thread in calls] == [threading.get_ident(), other.ident]
    assert all(end >= start for start, end, _ in calls)
    assert cost.round_trips(calls, threading.get_ident()) == 2


def test_write_from_the_snapshot_renders_the_readme_and_leaves_the_snapshot_alone(tmp_path, capsys):
    snapshot_file = tmp_path / "measured.json"
    snapshot_file.write_text(cost.SNAPSHOT.read_text())
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n{cost.README_BEGIN}\nstale\n{cost.README_END}\n\n## Next\n")
    assert cost.main(["--from-snapshot", "--write", "--snapshot", str(snapshot_file), "--readme", str(readme)]) == 0
    block = cost.readme_block(cost.load_snapshot(snapshot_file))
    assert readme.read_text() == f"# Title\n\n{block}\n\n## Next\n"
    assert snapshot_file.read_text() == cost.SNAPSHOT.read_text()


def test_the_report_from_the_snapshot_names_every_line_and_goal(capsys):
    assert cost.main(["--from-snapshot"]) == 0
    printed = capsys.readouterr().out
    for line in cost.LINES:
        assert f"\n  {line} " in printed
    for label, _ in cost.GOALS:
        assert label in printed
