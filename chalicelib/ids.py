"""Order ids that sort by creation time (ULIDs), so newest-first is one reverse Query."""

from __future__ import annotations

import os
import threading
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_lock = threading.Lock()
_last = (0, 0)
_RANDOM_LIMIT = 1 << 80


def _random_part() -> int:
    return int.from_bytes(os.urandom(10), "big")


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, remainder = divmod(value, 32)
        chars.append(_CROCKFORD[remainder])
    return "".join(reversed(chars))


def new_order_id(now_ms: int | None = None) -> str:
    """A new order id: "ord_" and a ULID (48-bit millisecond time, 80 random bits).

    Ids made in the same millisecond by this process increase by one, so they still sort
    in creation order.
    """
    global _last
    millis = int(time.time() * 1000) if now_ms is None else now_ms
    with _lock:
        last_ms, last_random = _last
        if millis <= last_ms:
            millis, randomness = last_ms, last_random + 1
        else:
            randomness = _random_part()
        if randomness >= _RANDOM_LIMIT:
            # This millisecond's random part is used up; wrapping it would sort before earlier ids.
            millis, randomness = millis + 1, _random_part()
        _last = (millis, randomness)
    return "ord_" + _encode(millis, 10) + _encode(randomness, 16)
