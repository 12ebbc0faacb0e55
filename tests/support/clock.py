"""A clock tests move by hand, for the caches and the rate limiter."""

from __future__ import annotations


class FakeClock:
    """A clock that only moves when told to, for the caches and the rate limiter."""

    def __init__(self, now: float = 0.0):
        self.now = now

    def __call__(self) -> float:
        """The current time, in seconds."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by seconds."""
        self.now += seconds
