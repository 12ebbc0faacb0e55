"""The Contributor Insights rule semantics used to check the rules and price them, on hand-made events."""

from __future__ import annotations

import pytest

from scripts.measure import contributor_insights

EVENT = {"message": "request", "tenant_id": "acme", "status": 404, "latency_ms": 2.5, "detail": {"c": [7, "x"]}}


def rule(*filters: dict, keys: tuple[str, ...] = ("$.tenant_id",), value_of: str | None = None) -> dict:
    contribution = {"Keys": list(keys), "Filters": list(filters)}
    if value_of:
        contribution["ValueOf"] = value_of
    return {"Contribution": contribution, "AggregateOn": "Sum" if value_of else "Count"}


@pytest.mark.parametrize(
    ("condition", "matches"),
    [
        ({"Match": "$.message", "In": ["request", "other"]}, True),
        ({"Match": "$.message", "In": ["order placed"]}, False),
        ({"Match": "$.message", "NotIn": ["request"]}, False),
        ({"Match": "$.missing", "NotIn": ["request"]}, True),
        ({"Match": "$.tenant_id", "StartsWith": ["ac", "zz"]}, True),
        ({"Match": "$.status", "In": ["404"]}, True),
        ({"Match": "$.status", "GreaterThan": 399}, True),
        ({"Match": "$.status", "GreaterThan": 404}, False),
        ({"Match": "$.status", "LessThan": 500}, True),
        ({"Match": "$.status", "EqualTo": 404}, True),
        ({"Match": "$.status", "NotEqualTo": 404}, False),
        ({"Match": "$.tenant_id", "GreaterThan": 1}, False),
        ({"Match": "$.tenant_id", "IsPresent": True}, True),
        ({"Match": "$.missing", "IsPresent": True}, False),
        ({"Match": "$.missing", "IsPresent": False}, True),
        ({"Match": "$.detail", "IsPresent": True}, False),  # only leaf values count as present
        ({"Match": "$.detail.c[0]", "EqualTo": 7}, True),
        ({"Match": "$.detail.c[5]", "IsPresent": True}, False),
    ],
)
def test_each_filter_operator(condition, matches):
    assert (contributor_insights.contributor(rule(condition), EVENT) is not None) is matches


def test_filters_are_anded_and_keys_make_the_contributor():
    both = rule({"Match": "$.message", "In": ["request"]}, {"Match": "$.status", "GreaterThan": 399},
                keys=("$.tenant_id", "$.status"))  # fmt: skip
    assert contributor_insights.contributor(both, EVENT) == ("acme", "404")
    assert contributor_insights.contributor(both, {**EVENT, "status": 200}) is None


def test_an_event_without_a_key_or_a_number_to_sum_counts_for_nobody():
    assert contributor_insights.contributor(rule(), {"message": "request"}) is None
    summed = rule(value_of="$.latency_ms")
    assert contributor_insights.contributor(summed, {**EVENT, "latency_ms": "slow"}) is None


def test_a_report_counts_or_sums_per_contributor():
    events = [EVENT, {**EVENT, "latency_ms": 1.5}, {**EVENT, "tenant_id": "globex"}, {"message": "other"}]
    assert contributor_insights.report(rule(), events) == {("acme",): 2, ("globex",): 1}
    assert contributor_insights.report(rule(value_of="$.latency_ms"), events) == {("acme",): 4.0, ("globex",): 2.5}


@pytest.mark.parametrize(
    "definition",
    [
        rule(*[{"Match": "$.status", "GreaterThan": 0}] * 5),
        rule(keys=()),
        rule({"Match": "$.message", "In": [str(n) for n in range(11)]}),
        rule({"Match": "$.status", "Above": 1}),
        rule({"Match": "status", "EqualTo": 1}),
    ],
    ids=["five filters", "no key", "eleven values", "unknown operator", "not a path"],
)
def test_a_rule_outside_the_documented_syntax_is_refused_whatever_the_event(definition):
    for event in (EVENT, {}):
        with pytest.raises(ValueError):
            contributor_insights.contributor(definition, event)
