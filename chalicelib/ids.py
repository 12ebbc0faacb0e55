"""The shapes of the ids the API accepts and keys its data by, and the order ids it makes.

Order ids sort by creation time (ULIDs), so newest-first is one reverse Query. The shapes are
read by the web edge (validation, the OpenAPI document) and by chalicelib.store.keys alike.
"""

from __future__ import annotations

import os
import re
import threading
import time

TENANT_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?$")
CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
PRODUCT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
# "ord_" and a ULID in Crockford's base32, as new_order_id makes them.
ORDER_ID = re.compile(r"^ord_[0-9A-HJKMNP-TV-Z]{26}$")
# The SHA-256 of an Idempotency-Key: the raw key, chosen by the client, never reaches a key string.
KEY_DIGEST = re.compile(r"^[0-9a-f]{64}$")
MAX_IDEMPOTENCY_KEY_LENGTH = 128
# Printable ASCII without spaces: the rule check_idempotency_key applies and the OpenAPI document states.
IDEMPOTENCY_KEY = re.compile(rf"^[!-~]{{1,{MAX_IDEMPOTENCY_KEY_LENGTH}}}$")
# How long an Idempotency-Key binds the order it placed; after that the key is free again.
IDEMPOTENCY_KEY_LIFETIME_SECONDS = 24 * 3600

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
