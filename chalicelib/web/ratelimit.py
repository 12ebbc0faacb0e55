"""The in-app limiter used where no API Gateway usage plan applies (the local stage).

Each tenant has its own token bucket sized by its tier, as API Gateway gives each API key
its own bucket: a steady rate per second and a burst the bucket can hold.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from chalicelib.tiers import Tier


class TenantRateLimiter:
    """Token buckets keyed by tenant, refilled continuously at the tier's rate."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}

    def acquire(self, tenant_id: str, tier: Tier) -> float:
        """Take one request from the tenant's bucket: 0.0 if allowed, else seconds until one is."""
        now = self._clock()
        with self._lock:
            tokens, updated = self._buckets.get(tenant_id, (float(tier.burst), now))
            # min() also applies a lowered tier at once to a bucket filled under a higher one.
            tokens = min(float(tier.burst), tokens + (now - updated) * tier.rate_per_second)
            if tokens >= 1.0:
                self._buckets[tenant_id] = (tokens - 1.0, now)
                return 0.0
            self._buckets[tenant_id] = (tokens, now)
            return (1.0 - tokens) / tier.rate_per_second
