"""Stopping cleanly: Ctrl-C ends the backfill between requests, never in the middle of one."""

from __future__ import annotations

import signal
import sys
import threading
import time


class Stopped(Exception):
    """Ctrl-C asked the backfill to stop (raised only between requests)."""


class StopSignal:
    """The first Ctrl-C asks for a stop after the request in flight; a second one stops at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: object = None

    def __enter__(self) -> StopSignal:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)  # type: ignore[arg-type]

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nrelay: stopping after the request in flight (Ctrl-C again to stop at once)", file=sys.stderr)

    def check(self) -> None:
        """Raises Stopped once a stop was asked for."""
        if self.requested:
            raise Stopped

    def sleep(self, seconds: float) -> None:
        """Sleeps, but wakes within 0.1 s of a stop request (and raises Stopped)."""
        end = time.monotonic() + seconds
        while not self.requested:
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.1))
        raise Stopped
