"""How long a failed or throttled delivery waits before it is tried again: exponential backoff with
equal jitter (half the ceiling, plus a random part of the other half), so that jobs that failed
together do not all come back together."""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clay_relay.config import DeliveryPolicy

THROTTLE_GRACE = 20  # deferrals for a rate limit before they back off like failures


def exponential_seconds(attempt: int, first: float, most: float) -> float:
    """Between half and all of `first`, twice that, four times … at most `most`, for attempt 1, 2, 3 …"""
    ceiling = min(most, first * 2 ** max(0, attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


def backoff_seconds(attempts: int, policy: DeliveryPolicy, retry_after: float | None = None) -> int:
    """Exponential backoff with equal jitter, never sooner than the destination asked."""
    delay = exponential_seconds(attempts, policy.min_backoff_seconds, policy.max_backoff_seconds)
    return math.ceil(max(delay, retry_after or 0))


def throttle_seconds(pause: float, attempts: int, policy: DeliveryPolicy) -> int:
    """How long a job waits when its destination is rate limiting: the pause, spread out so that the
    deferred jobs do not all come back at once; exponential only for a job deferred over and over."""
    delay = random.uniform(max(pause, 1.0), 2 * max(pause, 1.0))
    if attempts > THROTTLE_GRACE:
        delay = max(delay, backoff_seconds(attempts - THROTTLE_GRACE, policy))
    return math.ceil(delay)
