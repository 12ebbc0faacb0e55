"""scripts.bench's tenant-credential report and snippets, checked without moto or a fresh interpreter."""

from __future__ import annotations

from typing import Any

from chalicelib import keys
from scripts import bench

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
