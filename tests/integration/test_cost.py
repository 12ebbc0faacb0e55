"""`make cost` measured again: its deterministic inputs must equal the committed snapshot's.

The measurement runs in a process of its own, as `make cost` does: the application reads its
service name and log level from the environment at import, which this test process has already
set otherwise. Durations move from run to run and are not compared; log bytes move by a few digits
(latencies) and are compared within a few percent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from scripts.measure import cost

LOG_BYTES_TOLERANCE = 0.03
ARCHIVE_RATIO_TOLERANCE = 0.10
# What must come out the same on every run: units, lines, rounds of calls, and the project's definitions.
EXACT_ROUTE_FIELDS = ("requests", "read_units", "write_units", "log_events", "rule_matches", "round_trips")
EXACT_SECTIONS = (
    "run",
    "functions",
    "mix",
    "metrics",
    "tracing",
    "authorizer_cache",
    "tokens",
    "stage_resources",
    "log_retention_days",
)


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A new measurement with the snapshot's settings, written with --write to copies of the files."""
    committed = cost.load_snapshot()
    folder = tmp_path_factory.mktemp("cost")
    readme = folder / "README.md"
    readme.write_text(cost.README.read_text())
    snapshot = folder / "measured.json"
    run = committed["run"]
    command = [
        sys.executable,
        "-m",
        "scripts.measure.cost",
        "--write",
        "--snapshot",
        str(snapshot),
        "--readme",
        str(readme),
    ]
    command += ["--stage", run["stage"], "--requests", str(run["requests"]), "--seed", str(run["seed"])]
    command += ["--catalog-size", str(run["catalog_size"])]
    # Nothing of this process's environment (the tests' settings) may reach the measurement.
    environment = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
    finished = subprocess.run(
        command, cwd=cost.PROJECT_DIR, env=environment, capture_output=True, text=True, timeout=600
    )
    assert finished.returncode == 0, finished.stderr[-4000:]
    return {
        "committed": committed,
        "fresh": json.loads(snapshot.read_text()),
        "readme": readme.read_text(),
        "printed": finished.stdout,
    }


def test_units_lines_and_rounds_of_each_route_equal_the_snapshot(measured):
    committed, fresh = measured["committed"], measured["fresh"]
    assert list(fresh["routes"]) == list(committed["routes"])
    for name in [*committed["routes"], "authorizer"]:
        old = committed["authorizer"] if name == "authorizer" else committed["routes"][name]
        new = fresh["authorizer"] if name == "authorizer" else fresh["routes"][name]
        for key in EXACT_ROUTE_FIELDS:
            assert new[key] == old[key], f"{name} {key}: measured {new[key]}, snapshot {old[key]}: run `make cost`"


def test_log_bytes_are_within_a_few_percent_of_the_snapshot(measured):
    committed, fresh = measured["committed"], measured["fresh"]
    for name in [*committed["routes"], "authorizer"]:
        old = committed["authorizer"] if name == "authorizer" else committed["routes"][name]
        new = fresh["authorizer"] if name == "authorizer" else fresh["routes"][name]
        assert new["log_bytes"] == pytest.approx(old["log_bytes"], rel=LOG_BYTES_TOLERANCE, abs=1.0), name
    archive = pytest.approx(committed["logs"]["archive_ratio"], rel=ARCHIVE_RATIO_TOLERANCE)
    assert fresh["logs"]["archive_ratio"] == archive


def test_metric_series_tokens_tracing_and_stage_resources_equal_the_snapshot(measured):
    committed, fresh = measured["committed"], measured["fresh"]
    for section in EXACT_SECTIONS:
        assert fresh[section] == committed[section], f"{section} differs from the snapshot: run `make cost`"


def test_the_measurement_saw_every_route_write_one_line_of_access_fields_and_metrics(measured):
    fresh = measured["fresh"]
    # One line per request, access fields and metrics (an order's included), which two rules count
    # (requests and time) and the errors rule does not, since every request of the mix succeeds.
    for name, figures in fresh["routes"].items():
        assert figures["log_events"] == 1, name
        assert figures["rule_matches"] == 2, name
        assert figures["log_bytes"] > 500, name
        assert figures["in_process_ms"] >= figures["moto_ms"] > 0, name
    assert fresh["authorizer"]["rule_matches"] == 0
    # Metrics per tier only: tenants are ranked by the rules.
    assert fresh["metrics"]["per_tenant"] == 0 and fresh["metrics"]["per_tier"] == 7
    assert fresh["stage_resources"]["contributor_rules"] == 3
    assert fresh["cold_start"]["import_ms"] > 0


def test_write_rendered_the_readme_block_from_the_new_measurement_and_nothing_else(measured):
    readme, fresh = measured["readme"], measured["fresh"]
    assert cost.readme_cost_block(readme) == cost.readme_block(fresh)
    original = cost.README.read_text()
    assert readme.replace(cost.readme_cost_block(readme), "") == original.replace(cost.readme_cost_block(original), "")
    assert "Goals and drivers:" in measured["printed"]
