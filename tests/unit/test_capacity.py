"""The capacity report's arithmetic on hand-made runs whose units are known."""

from __future__ import annotations

import random

import pytest

from scripts.measure.workload import PREMIUM_MIX, Run, mix_schedule, utilisation

TABLE = "t"


def run_with(requests: int, **partitions: tuple[float, float]) -> Run:
    run = Run("hand-made", requests=requests)
    for name, (reads, writes) in partitions.items():
        run.partitions[(TABLE, None, name)] = [reads, writes]
    return run


def test_a_partition_is_as_busy_as_its_busier_side():
    assert utilisation(1500, 0) == 0.5
    assert utilisation(0, 500) == 0.5
    assert utilisation(3000, 250) == 1.0


def test_units_per_request_scale_to_the_rate():
    # 10 requests put 15 RCU and 5 WCU on A: at 1,000 a second that is 1,500 RCU/s and 500 WCU/s.
    run = run_with(10, A=(15.0, 5.0), B=(1.0, 1.0))
    [(where, reads, writes), _] = run.load(1000)
    assert where == (TABLE, None, "A")
    assert (reads, writes) == (1500.0, 500.0)
    assert run.headroom(1000) == pytest.approx(2.0)
    assert run.headroom(2000) == pytest.approx(1.0)


def test_the_busiest_key_is_the_one_nearest_its_limit_not_the_one_with_most_units():
    # 2,400 RCU/s is 80 % of a read limit; 900 WCU/s is 90 % of a write limit.
    run = run_with(1, R=(2.4, 0.0), W=(0.0, 0.9))
    assert run.load(1000)[0][0] == (TABLE, None, "W")
    assert run.headroom(1000) == pytest.approx(1 / 0.9)


def test_the_mix_keeps_its_proportions():
    names = list(mix_schedule(1000, random.Random(1)))
    assert len(names) == 1000
    assert {name: names.count(name) * 100 // 1000 for name in PREMIUM_MIX} == PREMIUM_MIX


def test_doubling_index_writes_touches_only_index_partitions():
    run = run_with(1, A=(0.0, 0.2))
    run.partitions[(TABLE, "catalog", "C")] = [0.0, 0.3]
    doubled = run.with_index_writes_doubled()
    assert doubled.partitions[(TABLE, None, "A")] == [0.0, 0.2]
    assert doubled.partitions[(TABLE, "catalog", "C")] == [0.0, 0.6]
    assert doubled.headroom(1000) == pytest.approx(1000 / 600)


def test_whole_table_totals_add_up_every_partition_of_the_table_and_of_each_index():
    run = run_with(2, A=(1.0, 2.0), B=(3.0, 4.0))
    run.partitions[(TABLE, "catalog", "C")] = [0.5, 0.5]
    assert run.totals(10) == {(TABLE, None): (20.0, 30.0), (TABLE, "catalog"): (2.5, 2.5)}
