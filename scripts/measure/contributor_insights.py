"""Which JSON log events a Contributor Insights rule counts, and for which contributor, as CloudWatch documents it.

CloudWatch evaluates rules only in AWS and moto does not evaluate them at all, so the tests (that
the rules see the lines the API writes) and `make cost` (how many events each rule matches, which
is billed) apply the documented semantics here: "Contributor Insights rule syntax" in the
CloudWatch User Guide. Filters are ANDed; In, NotIn and StartsWith take up to 10 strings, ORed;
GreaterThan, LessThan, EqualTo and NotEqualTo one number; IsPresent true or false, on leaf values.
Where the guide is silent this assumes: a missing field matches NotIn and no other operator, In
compares a number by its text, and a comparison reads a numeric string as its number. The rules
here do not depend on those cases: they match strings present on every access line and a number.
"""

from __future__ import annotations

import re
from typing import Any

_MISSING = object()
_STEP = re.compile(r"\.([A-Za-z0-9_@-]+)|\[(\d+)\]")


def value_at(event: dict[str, Any], path: str) -> Any:
    """The value at a rule's JSON property path ($.a.b, $.list[0]) in event, or a sentinel when absent."""
    if not path.startswith("$"):
        raise ValueError(f"not a JSON property path: {path!r}")
    value: Any = event
    position = 1
    while position < len(path):
        step = _STEP.match(path, position)
        if step is None:
            raise ValueError(f"not a JSON property path: {path!r}")
        name, index = step.groups()
        if name is not None:
            value = value.get(name, _MISSING) if isinstance(value, dict) else _MISSING
        else:
            value = value[int(index)] if isinstance(value, list) and int(index) < len(value) else _MISSING
        if value is _MISSING:
            return _MISSING
        position = step.end()
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value) if isinstance(value, str) else None
    except ValueError:
        return None


_OPERATORS = ("In", "NotIn", "StartsWith", "GreaterThan", "LessThan", "EqualTo", "NotEqualTo", "IsPresent")


def _operator(condition: dict[str, Any]) -> str:
    """The filter's one operator, checked against the syntax whatever the event."""
    [operator] = [name for name in condition if name != "Match"]
    if operator not in _OPERATORS:
        raise ValueError(f"unknown filter operator {operator!r}")
    if operator in ("In", "NotIn", "StartsWith") and len(condition[operator]) > 10:
        raise ValueError(f"{operator} takes at most 10 values")
    value_at({}, condition["Match"])
    return operator


def _passes(event: dict[str, Any], condition: dict[str, Any], operator: str) -> bool:
    value = value_at(event, condition["Match"])
    operand = condition[operator]
    if operator == "IsPresent":
        present = value is not _MISSING and not isinstance(value, (dict, list))
        return present is bool(operand)
    if value is _MISSING:
        return operator == "NotIn"
    if operator in ("In", "NotIn", "StartsWith"):
        text = value if isinstance(value, str) else str(value)
        if operator == "StartsWith":
            return any(text.startswith(prefix) for prefix in operand)
        found = any(text == str(candidate) for candidate in operand)
        return found if operator == "In" else not found
    number = _number(value)
    if number is None:
        return False
    compare = {
        "GreaterThan": number > operand,
        "LessThan": number < operand,
        "EqualTo": number == operand,
        "NotEqualTo": number != operand,
    }
    return compare[operator]


def contributor(definition: dict[str, Any], event: dict[str, Any]) -> tuple[str, ...] | None:
    """The contributor (the rule's key values) event counts for, or None when the rule does not match it."""
    contribution = definition["Contribution"]
    filters = contribution.get("Filters", [])
    if len(filters) > 4 or not 1 <= len(contribution["Keys"]) <= 4:
        raise ValueError("a rule has 1 to 4 keys and at most 4 filters")
    # Every filter is checked against the syntax before any is applied, whatever the event.
    operators = [_operator(condition) for condition in filters]
    if not all(_passes(event, condition, operator) for condition, operator in zip(filters, operators)):
        return None
    keys = [value_at(event, path) for path in contribution["Keys"]]
    if any(key is _MISSING for key in keys):
        return None
    if definition["AggregateOn"] == "Sum" and _number(value_at(event, contribution["ValueOf"])) is None:
        return None
    return tuple(str(key) for key in keys)


def contribution_value(definition: dict[str, Any], event: dict[str, Any]) -> float:
    """What event adds to its contributor: 1 for a Count rule, its ValueOf field for a Sum rule."""
    if definition["AggregateOn"] == "Count":
        return 1.0
    number = _number(value_at(event, definition["Contribution"]["ValueOf"]))
    return 0.0 if number is None else number


def report(definition: dict[str, Any], events: list[dict[str, Any]]) -> dict[tuple[str, ...], float]:
    """Each contributor's aggregate over events, as the rule's report would rank them."""
    totals: dict[tuple[str, ...], float] = {}
    for event in events:
        key = contributor(definition, event)
        if key is not None:
            totals[key] = totals.get(key, 0.0) + contribution_value(definition, event)
    return totals
