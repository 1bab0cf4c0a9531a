"""How long a job waits before its next attempt: exponential backoff with jitter after a failure,
and a spread-out pause while its destination is rate limiting."""

from __future__ import annotations

import math
import random

from clay_relay.config import DeliveryPolicy

THROTTLE_GRACE = 20  # deferrals for a rate limit before they back off like failures


def backoff_seconds(attempts: int, policy: DeliveryPolicy, retry_after: float | None = None) -> int:
    """Exponential backoff with equal jitter, never sooner than the destination asked."""
    ceiling = min(policy.max_backoff_seconds, policy.min_backoff_seconds * 2 ** max(0, attempts - 1))
    delay = random.uniform(ceiling / 2, ceiling)
    return math.ceil(max(delay, retry_after or 0))


def throttle_seconds(pause: float, attempts: int, policy: DeliveryPolicy) -> int:
    """How long a job waits when its destination is rate limiting: the pause, spread out so that the
    deferred jobs do not all come back at once; exponential only for a job deferred over and over."""
    delay = random.uniform(max(pause, 1.0), 2 * max(pause, 1.0))
    if attempts > THROTTLE_GRACE:
        delay = max(delay, backoff_seconds(attempts - THROTTLE_GRACE, policy))
    return math.ceil(delay)
