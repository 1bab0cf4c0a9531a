"""Pacing: each destination's requests are spaced so that every worker together stays within the
destination's rate (Loops: 10 requests/s per team; Clay: ~10 records/s per workspace).

No shared state is needed (and no DynamoDB write per request): Lambda never runs more worker
instances than the event source's maximum concurrency (WORKER_MAX_CONCURRENCY), so each instance
takes an equal share of the rate, with a small margin for clock jitter. A `429`, `Retry-After` or
`x-ratelimit-remaining: 0` pauses that destination in this instance.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

MARGIN = 0.92


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
        interval = workers / (rate_per_second * MARGIN)
        with self._lock:
            turn = self._turns.setdefault(destination, threading.Lock())
        with turn:
            with self._lock:
                pause = self._next.get(destination, 0.0) - self._clock()
            if pause > 0:
                self._sleep(pause)
            with self._lock:
                self._next[destination] = max(self._next.get(destination, 0.0), self._clock()) + interval

    def reset(self) -> None:
        with self._lock:
            self._next.clear()

    def pause(self, destination: str, seconds: float) -> None:
        """The destination asked us to slow down: send nothing to it for `seconds`."""
        with self._lock:
            self._next[destination] = max(self._next.get(destination, 0.0), self._clock() + seconds)


PACER = Pacer()
