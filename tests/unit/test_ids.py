"""Unit tests of order ids: ord_ plus a ULID that sorts by creation time, monotonic within a millisecond."""

from __future__ import annotations

import threading

import pytest

from chalicelib import ids
from chalicelib.store import keys

ULID_MS_2024 = 1_704_067_200_000  # 2024-01-01T00:00:00Z


@pytest.fixture(autouse=True)
def fresh_generator(monkeypatch):
    """Forget the last id made, so fake times earlier than the real clock may be used."""
    monkeypatch.setattr(ids, "_last", (0, 0))


def timestamp_of(order_id: str) -> int:
    value = 0
    for char in order_id[4:14]:
        value = value * 32 + ids._CROCKFORD.index(char)
    return value


def test_an_order_id_has_the_order_id_shape_and_encodes_its_time():
    order_id = ids.new_order_id(ULID_MS_2024)
    assert keys.ORDER_ID.fullmatch(order_id)
    assert timestamp_of(order_id) == ULID_MS_2024


def test_ids_sort_by_time():
    made = [ids.new_order_id(ULID_MS_2024 + offset) for offset in (0, 1, 2, 1000, 86_400_000, 10**9)]
    assert made == sorted(made)
    assert len(set(made)) == len(made)


def test_ids_made_in_the_same_millisecond_increase():
    made = [ids.new_order_id(ULID_MS_2024) for _ in range(1000)]
    assert made == sorted(made)
    assert len(set(made)) == 1000
    assert {timestamp_of(order_id) for order_id in made} == {ULID_MS_2024}


def test_a_clock_stepping_back_does_not_break_the_order():
    first = ids.new_order_id(ULID_MS_2024 + 10)
    second = ids.new_order_id(ULID_MS_2024)
    assert second > first


def test_ids_stay_monotonic_when_the_random_part_would_overflow(monkeypatch):
    monkeypatch.setattr(ids.os, "urandom", lambda size: b"\xff" * size)
    made = [ids.new_order_id(ULID_MS_2024) for _ in range(3)]
    assert made == sorted(made)
    assert len(set(made)) == 3
    assert all(keys.ORDER_ID.fullmatch(order_id) for order_id in made)


def test_ids_made_by_the_real_clock_from_many_threads_are_unique_and_increasing_per_thread():
    results: dict[int, list[str]] = {}

    def make(index: int) -> None:
        results[index] = [ids.new_order_id() for _ in range(200)]

    threads = [threading.Thread(target=make, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [order_id for made in results.values() for order_id in made]
    assert len(set(everything)) == len(everything) == 1600
    assert all(made == sorted(made) for made in results.values())
