"""Every snippet `make bench` runs in a fresh interpreter runs there, against moto, with the fewest requests."""

from __future__ import annotations

import argparse

from scripts.measure import bench


def test_every_benchmark_snippet_runs_and_reports_each_route():
    server, url = bench.start_dynamodb()
    try:
        args = argparse.Namespace(runs=1, warm_requests=2, route_runs=1, route_requests=[2, 1], tracing_only=False)
        measured = bench.measure(args, bench.lambda_like_environment(url))
    finally:
        server.stop()
    report = "\n".join(bench.report(measured))
    for route in bench.ROUTES:
        assert f"  {route}" in report, route
    assert "tenant A first request, fresh container" in report
