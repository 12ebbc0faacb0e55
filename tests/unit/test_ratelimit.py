"""Unit tests of the in-app token bucket limiter, driven by a fake clock."""

from __future__ import annotations

import pytest

from chalicelib.tiers import TIERS
from chalicelib.web.ratelimit import TenantRateLimiter
from tests.support.clock import FakeClock

BASIC, STANDARD, PREMIUM = TIERS["basic"], TIERS["standard"], TIERS["premium"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def limiter(clock: FakeClock) -> TenantRateLimiter:
    return TenantRateLimiter(clock=clock)


def test_the_tiers_are_the_documented_ones():
    assert [(t.name, t.rate_per_second, t.burst, t.monthly_quota) for t in TIERS.values()] == [
        ("basic", 10, 20, 100_000),
        ("standard", 100, 200, 1_000_000),
        ("premium", 1_000, 2_000, 10_000_000),
    ]
    assert TIERS["basic"] is BASIC
    with pytest.raises(KeyError):
        TIERS["gold"]


@pytest.mark.parametrize("tier", [BASIC, STANDARD, PREMIUM], ids=lambda tier: tier.name)
def test_a_full_burst_is_allowed_then_the_next_request_waits(limiter, tier):
    assert all(limiter.acquire("acme", tier) == 0.0 for _ in range(tier.burst))
    wait = limiter.acquire("acme", tier)
    assert wait == pytest.approx(1 / tier.rate_per_second)


def test_the_bucket_refills_at_the_tier_rate(limiter, clock):
    for _ in range(BASIC.burst):
        limiter.acquire("acme", BASIC)
    assert limiter.acquire("acme", BASIC) == pytest.approx(0.1)
    clock.advance(0.05)
    assert limiter.acquire("acme", BASIC) == pytest.approx(0.05)
    clock.advance(0.05)
    assert limiter.acquire("acme", BASIC) == 0.0
    assert limiter.acquire("acme", BASIC) > 0
    clock.advance(0.5)  # five requests' worth at 10 per second
    assert [limiter.acquire("acme", BASIC) for _ in range(6)][:5] == [0.0] * 5
    assert limiter.acquire("acme", BASIC) > 0


def test_refill_never_exceeds_the_burst(limiter, clock):
    limiter.acquire("acme", BASIC)
    clock.advance(3600)
    allowed = sum(limiter.acquire("acme", BASIC) == 0.0 for _ in range(BASIC.burst + 5))
    assert allowed == BASIC.burst


def test_each_tenant_has_its_own_bucket(limiter):
    for _ in range(BASIC.burst):
        limiter.acquire("acme", BASIC)
    assert limiter.acquire("acme", BASIC) > 0
    assert limiter.acquire("other", BASIC) == 0.0


def test_a_lowered_tier_applies_at_once(limiter):
    limiter.acquire("acme", PREMIUM)
    allowed = sum(limiter.acquire("acme", BASIC) == 0.0 for _ in range(100))
    assert allowed == BASIC.burst


def test_refused_requests_do_not_take_from_the_bucket(limiter, clock):
    for _ in range(BASIC.burst):
        limiter.acquire("acme", BASIC)
    for _ in range(50):
        limiter.acquire("acme", BASIC)
    clock.advance(0.1)
    assert limiter.acquire("acme", BASIC) == 0.0
