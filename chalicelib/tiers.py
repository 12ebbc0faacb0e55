"""The service tiers: one definition of each tier's rate, burst and monthly quota."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tier:
    """A tier's limits, as API Gateway usage plans and the local limiter apply them."""

    name: str
    rate_per_second: float
    burst: int
    monthly_quota: int


TIERS: dict[str, Tier] = {
    tier.name: tier
    for tier in (
        Tier("basic", rate_per_second=10, burst=20, monthly_quota=100_000),
        Tier("standard", rate_per_second=100, burst=200, monthly_quota=1_000_000),
        Tier("premium", rate_per_second=1_000, burst=2_000, monthly_quota=10_000_000),
    )
}
