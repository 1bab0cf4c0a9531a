"""Pacing and isolation per destination: each destination's requests are spaced so that every worker
together stays within the destination's rate (Loops: 10 requests/s per team; Clay: ~10 records/s
per workspace), and a destination that is down is left alone for a while instead of holding up the
worker.

No shared state is needed (and no DynamoDB write per request): Lambda never runs more worker
instances than the event source's maximum concurrency (WORKER_MAX_CONCURRENCY), so each instance
takes an equal share of the rate. The share is a whole number of requests per second, so that the
instances together stay within the rate in *every* one-second window, not only on average (10/s
over 3 instances is 3/s each, not 3.33/s, whose bursts could add up to 12 in one second). A `429`,
`Retry-After` or `x-ratelimit-remaining: 0` pauses that destination in this instance.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

MARGIN = 0.95  # of each share, for the jitter between a slot being taken and the request arriving


def interval_seconds(rate_per_second: float, workers: int) -> float:
    """Spacing between one instance's requests to a destination of `rate_per_second`."""
    share = rate_per_second / workers
    whole = math.floor(share) if share >= 1 else share  # below 1/s per instance, on average
    return 1 / (whole * MARGIN)


class Pacer:
    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._clock = clock
        self._sleep = sleep
        self._next: dict[str, float] = {}
        self._turns: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def delay(self, destination: str) -> float:
        """Seconds until this instance may send to `destination` again."""
        with self._lock:
            return max(0.0, self._next.get(destination, 0.0) - self._clock())

    def wait(self, destination: str, rate_per_second: float, workers: int) -> None:
        """Blocks until a request to `destination` is within its share of the rate, and takes it.

        Callers for one destination wait in turn, and the next slot is counted from when this one
        was really taken, so a caller that wakes late never bunches up with the next one."""
        interval = interval_seconds(rate_per_second, workers)
        with self._lock:
            turn = self._turns.setdefault(destination, threading.Lock())
        with turn:
            with self._lock:
                pause = self._next.get(destination, 0.0) - self._clock()
            if pause > 0:
                self._sleep(pause)
            with self._lock:
                self._next[destination] = max(self._next.get(destination, 0.0), self._clock()) + interval

    def pause(self, destination: str, seconds: float) -> None:
        """The destination asked us to slow down: send nothing to it for `seconds`."""
        with self._lock:
            self._next[destination] = max(self._next.get(destination, 0.0), self._clock() + seconds)

    def reset(self) -> None:
        with self._lock:
            self._next.clear()


class CircuitBreaker:
    """A destination that just timed out, refused the connection or answered 5xx is not called
    again by this instance for a cool-down: the jobs for it wait on the queue (with backoff)
    instead of each spending a timeout, so the worker's time goes to the destinations that work.
    After the cool-down one request probes it again.

    It also says when a delivery that went well should look whether the destination's jobs were parked
    (clay_relay.worker.parking): after this instance tripped it, and otherwise once a `LOOK_SECONDS`."""

    LOOK_SECONDS = 60.0

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._open: dict[str, tuple[float, str]] = {}  # destination → (closes at, why it opened)
        self._looked: dict[str, float] = {}  # destination → when this instance last looked for parked jobs
        self._lock = threading.Lock()

    def trip(self, destination: str, seconds: float, reason: str) -> None:
        with self._lock:
            self._looked.pop(destination, None)
            if seconds > 0:
                self._open[destination] = (self._clock() + seconds, reason)

    def look_due(self, destination: str) -> bool:
        """Whether to look for the destination's parked jobs now (and, if so, noted as looked)."""
        with self._lock:
            now = self._clock()
            last = self._looked.get(destination)
            if last is not None and now - last < self.LOOK_SECONDS:
                return False
            self._looked[destination] = now
            return True

    def close(self, destination: str) -> None:
        with self._lock:
            self._open.pop(destination, None)

    def why_open(self, destination: str) -> str | None:
        """The reason the destination is being left alone, or None when it may be called."""
        with self._lock:
            closes_at, reason = self._open.get(destination, (0.0, ""))
            return reason if self._clock() < closes_at else None

    def reset(self) -> None:
        with self._lock:
            self._open.clear()
            self._looked.clear()
