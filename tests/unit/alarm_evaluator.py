"""CloudWatch alarm evaluation, modelled for tests: PutMetricAlarm arguments against raw datapoints.

Datapoints are recorded as services publish them (one value per request or invocation, at a
second); the evaluator aggregates them per period with the alarm's statistic, computes metric
math (arithmetic, comparisons, AND/OR/NOT, IF, FILL and the array forms of SUM/MIN/MAX/AVG)
with missing values as CloudWatch has them, and applies the threshold, comparison,
EvaluationPeriods, DatapointsToAlarm and TreatMissingData over every sliding window.
Anything outside that subset raises NotImplementedError rather than being guessed.
"""

from __future__ import annotations

import bisect
import math
import operator
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable

# CloudWatch evaluates alarms once a minute: windows start on every minute, not only on period edges.
EVALUATION_STEP_SECONDS = 60

MetricKey = tuple[str, str, frozenset[tuple[str, str]]]
Value = float | None

COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanThreshold": operator.gt,
    "GreaterThanOrEqualToThreshold": operator.ge,
    "LessThanThreshold": operator.lt,
    "LessThanOrEqualToThreshold": operator.le,
}


def metric_key(namespace: str, name: str, dimensions: dict[str, str] | list[dict[str, str]]) -> MetricKey:
    """The identity of a metric: namespace, name and the exact set of dimensions."""
    pairs = dimensions.items() if isinstance(dimensions, dict) else ((d["Name"], d["Value"]) for d in dimensions)
    return namespace, name, frozenset(pairs)


@dataclass
class Datapoints:
    """Raw datapoints per metric, as (second, value)."""

    series: dict[MetricKey, list[tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))
    _sorted: dict[MetricKey, tuple[list[float], list[float]]] = field(default_factory=dict)

    def add(self, second: float, namespace: str, name: str, dimensions: dict[str, str], value: float) -> None:
        """Record one datapoint."""
        key = metric_key(namespace, name, dimensions)
        self.series[key].append((second, value))
        self._sorted.pop(key, None)

    def end(self) -> float:
        """The second after the last datapoint."""
        return max((second for points in self.series.values() for second, _ in points), default=0.0) + 1

    def _in(self, key: MetricKey, start: float, period: int) -> list[float]:
        if key not in self._sorted:
            ordered = sorted(self.series.get(key, ()))
            self._sorted[key] = ([second for second, _ in ordered], [value for _, value in ordered])
        seconds, values = self._sorted[key]
        return values[bisect.bisect_left(seconds, start) : bisect.bisect_left(seconds, start + period)]

    def statistic(self, key: MetricKey, stat: str, start: float, period: int) -> Value:
        """stat over the datapoints in [start, start + period); None when there are none."""
        values = self._in(key, start, period)
        if not values:
            return None
        if stat == "Sum":
            return math.fsum(values)
        if stat == "SampleCount":
            return float(len(values))
        if stat == "Average":
            return math.fsum(values) / len(values)
        if stat == "Maximum":
            return max(values)
        if stat == "Minimum":
            return min(values)
        percentile = re.fullmatch(r"p(\d+(?:\.\d+)?)", stat)
        if percentile:
            ordered = sorted(values)
            rank = math.ceil(float(percentile.group(1)) / 100 * len(ordered))
            return ordered[max(rank, 1) - 1]
        raise NotImplementedError(f"statistic {stat}")


# --- metric math ---------------------------------------------------------------------------

TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d*)?|\.\d+)|([A-Za-z_][A-Za-z0-9_]*)|(>=|<=|==|!=|&&|\|\||[-+*/^(),<>!\[\]]))")


def _tokens(expression: str) -> list[str]:
    tokens, position = [], 0
    while position < len(expression.rstrip()):
        match = TOKEN.match(expression, position)
        if not match:
            raise NotImplementedError(f"cannot read {expression[position:]!r} in {expression!r}")
        tokens.append(match.group(match.lastindex))
        position = match.end()
    return tokens


def _arith(op: Callable[[float, float], float]) -> Callable[[Value, Value], Value]:
    def apply(left: Value, right: Value) -> Value:
        if left is None or right is None:
            return None
        try:
            return float(op(left, right))
        except ZeroDivisionError:
            return None

    return apply


def _logic(op: Callable[[bool, bool], bool]) -> Callable[[Value, Value], Value]:
    return _arith(lambda left, right: op(left != 0, right != 0))


BINARY: list[dict[str, Callable[[Value, Value], Value]]] = [
    {"OR": _logic(operator.or_), "||": _logic(operator.or_)},
    {"AND": _logic(operator.and_), "&&": _logic(operator.and_)},
    {
        ">": _arith(operator.gt),
        "<": _arith(operator.lt),
        ">=": _arith(operator.ge),
        "<=": _arith(operator.le),
        "==": _arith(operator.eq),
        "!=": _arith(operator.ne),
    },
    {"+": _arith(operator.add), "-": _arith(operator.sub)},
    {"*": _arith(operator.mul), "/": _arith(operator.truediv)},
    {"^": _arith(operator.pow)},
]


class _Parser:
    """Recursive descent over one expression, evaluated at one point in time."""

    def __init__(self, expression: str, lookup: Callable[[str], Value]):
        self.expression = expression
        self.tokens = _tokens(expression)
        self.position = 0
        self.lookup = lookup

    def parse(self) -> Value:
        value = self._binary(0)
        if self.position != len(self.tokens):
            raise NotImplementedError(f"unexpected {self.tokens[self.position]!r} in {self.expression!r}")
        return value

    def _peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self, expected: str | None = None) -> str:
        token = self._peek()
        if token is None or (expected is not None and token.upper() != expected):
            raise NotImplementedError(f"expected {expected or 'more'} in {self.expression!r}")
        self.position += 1
        return token

    def _binary(self, level: int) -> Any:
        if level == len(BINARY):
            return self._unary()
        value = self._binary(level + 1)
        while (token := self._peek()) is not None and token.upper() in BINARY[level]:
            self._take()
            value = BINARY[level][token.upper()](value, self._binary(level + 1))
        return value

    def _unary(self) -> Any:
        token = self._peek()
        if token == "-":
            self._take()
            return _arith(operator.sub)(0.0, self._unary())
        if token in ("!", "NOT", "not"):
            self._take()
            operand = self._unary()
            return None if operand is None else float(operand == 0)
        return self._primary()

    def _primary(self) -> Any:
        token = self._take()
        if token == "(":
            value = self._binary(0)
            self._take(")")
            return value
        if token == "[":
            items = [self._binary(0)]
            while self._peek() == ",":
                self._take()
                items.append(self._binary(0))
            self._take("]")
            return items
        if re.fullmatch(r"\d+(?:\.\d*)?|\.\d+", token):
            return float(token)
        if self._peek() == "(":
            self._take()
            arguments = [self._binary(0)]
            while self._peek() == ",":
                self._take()
                arguments.append(self._binary(0))
            self._take(")")
            return _call(token.upper(), arguments, self.expression)
        return self.lookup(token)


def _present(values: list[Value]) -> list[float]:
    return [value for value in values if value is not None]


def _call(name: str, arguments: list[Any], expression: str) -> Value:
    if name == "IF" and len(arguments) in (2, 3):
        condition, then = arguments[0], arguments[1]
        otherwise = arguments[2] if len(arguments) == 3 else None
        if condition is None:
            return None
        return then if condition != 0 else otherwise
    if name == "FILL" and len(arguments) == 2 and not isinstance(arguments[1], list):
        return arguments[1] if arguments[0] is None else arguments[0]
    aggregates = {"SUM": math.fsum, "MAX": max, "MIN": min, "AVG": lambda v: math.fsum(v) / len(v)}
    if name in aggregates and len(arguments) == 1 and isinstance(arguments[0], list):
        # Over an array of series these apply point by point; over one series they would
        # reduce the whole range to one number, which this model does not do.
        present = _present(arguments[0])
        return float(aggregates[name](present)) if present else None
    raise NotImplementedError(f"{name} with these arguments in {expression!r}")


# --- alarms --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    """What an alarm saw: its value per evaluated point in time, and where it went into ALARM."""

    values: dict[float, Value]
    alarm_at: list[float]

    @property
    def breached(self) -> bool:
        """Whether the alarm went into ALARM at any point."""
        return bool(self.alarm_at)


def _period(alarm: dict[str, Any]) -> int:
    if "Metrics" not in alarm:
        return alarm["Period"]
    periods = {
        query.get("Period") or query["MetricStat"]["Period"] for query in alarm["Metrics"] if "MetricStat" in query
    }
    if len(periods) != 1:
        raise NotImplementedError(f"{alarm['AlarmName']}: metrics with different periods {sorted(periods)}")
    return periods.pop()


def alarm_value(alarm: dict[str, Any], points: Datapoints, start: float) -> Value:
    """The alarm's value for the period starting at start (None: no data)."""
    period = _period(alarm)
    if "Metrics" not in alarm:
        key = metric_key(alarm["Namespace"], alarm["MetricName"], alarm.get("Dimensions", []))
        return points.statistic(key, alarm.get("ExtendedStatistic") or alarm["Statistic"], start, period)
    queries = {query["Id"]: query for query in alarm["Metrics"]}
    cache: dict[str, Value] = {}

    def lookup(query_id: str) -> Value:
        if query_id not in queries:
            raise NotImplementedError(f"{alarm['AlarmName']}: no query {query_id!r}")
        if query_id not in cache:
            query = queries[query_id]
            if "MetricStat" in query:
                stat = query["MetricStat"]
                metric = stat["Metric"]
                key = metric_key(metric["Namespace"], metric["MetricName"], metric.get("Dimensions", []))
                cache[query_id] = points.statistic(key, stat["Stat"], start, period)
            else:
                cache[query_id] = _Parser(query["Expression"], lookup).parse()
        return cache[query_id]

    returned = [query["Id"] for query in alarm["Metrics"] if query.get("ReturnData", True)]
    if len(returned) != 1:
        raise NotImplementedError(f"{alarm['AlarmName']}: {len(returned)} queries return data")
    return lookup(returned[0])


def evaluate(alarm: dict[str, Any], points: Datapoints, end: float | None = None) -> Evaluation:
    """Every point in time, once a minute, where the alarm would be in ALARM over points."""
    period = _period(alarm)
    last = points.end() if end is None else end
    compare = COMPARISONS[alarm["ComparisonOperator"]]
    missing = alarm.get("TreatMissingData", "missing")
    periods = alarm["EvaluationPeriods"]
    needed = alarm.get("DatapointsToAlarm", periods)
    values: dict[float, Value] = {}
    alarm_at: list[float] = []
    # The window ending at each minute holds the EvaluationPeriods periods before it.
    evaluated_at = period * periods
    while evaluated_at <= last + period:
        window: list[bool] = []
        for index in range(periods):
            start = evaluated_at - (periods - index) * period
            value = alarm_value(alarm, points, start)
            values[start] = value
            if value is not None:
                window.append(compare(value, alarm["Threshold"]))
            elif missing == "breaching":
                window.append(True)
            elif missing == "notBreaching":
                window.append(False)
            # "missing" and "ignore": the point does not count either way.
        if sum(window) >= needed:
            alarm_at.append(evaluated_at)
        evaluated_at += EVALUATION_STEP_SECONDS
    return Evaluation(values, alarm_at)
