"""Faults injected in front of a sandbox (an answer status, a timeout, a closed connection), and the
crashes of function invocations (`worker`, `receiver`: see chaos)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from clay_relay.jobs import DESTINATIONS

CRASHING = ("worker", "receiver")  # not services: the function invocations a crash fault kills
COMMON_FIELDS = ("destination", "mode", "times", "seconds")
# The fields each mode has besides the common ones: a body with another mode's field is refused (a
# `{"status": 503, "mode": "timeout"}` would otherwise time out and silently never answer 503).
MODE_FIELDS = {
    "status": ("status",),
    "rate_limit": ("status",),
    "timeout": ("delay",),
    "down": (),
    "crash": ("after",),
}


@dataclass
class Fault:
    destination: str
    status: int | None = None  # answer this status
    mode: str = "status"  # "status", "timeout" (answer after `delay` s), "down" (close the connection)
    times: int | None = None  # how many requests it applies to (None: until `until`)
    until: float | None = None  # monotonic deadline
    delay: float = 15.0
    after: str = "any"  # a worker crash: after a random outbound call, or right after a "delivery"

    @classmethod
    def from_request(cls, spec: dict) -> Fault:
        destination = spec.get("destination")
        if destination not in DESTINATIONS + CRASHING:
            raise ValueError(f"destination must be one of {', '.join(DESTINATIONS + CRASHING)}")
        crashes = destination in CRASHING
        mode = spec.get("mode", "crash" if crashes else "status")
        if crashes != (mode == "crash"):
            raise ValueError(
                'mode "crash" is for the destinations "worker" and "receiver", and the only mode they have'
            )
        if mode not in MODE_FIELDS:
            raise ValueError("mode must be status, timeout, down, rate_limit or crash")
        if strays := sorted(set(spec) - {*COMMON_FIELDS, *MODE_FIELDS[mode]}):
            said = ", ".join(f"{k!r} ({_modes_with(k)})" for k in strays)
            own = ", ".join(MODE_FIELDS[mode]) or "none"
            raise ValueError(
                f"mode {mode!r} does not take {said}: one fault, one mode (its own fields: {own}; "
                f"every mode: {', '.join(COMMON_FIELDS)})"
            )
        status = None if mode == "crash" else spec.get("status", 429 if mode == "rate_limit" else 503)
        after = spec.get("after", "any")
        if after not in ("any", "delivery") or (after != "any" and destination != "worker"):
            raise ValueError('after (worker crashes only) must be "any" (a random outbound call) or "delivery"')
        times, seconds = spec.get("times"), spec.get("seconds")
        if times is None and seconds is None:
            times = 1
        return cls(
            destination=destination,
            status=None if status is None else int(status),
            mode="status" if mode == "rate_limit" else mode,
            times=int(times) if times is not None else None,
            until=time.monotonic() + float(seconds) if seconds is not None else None,
            delay=float(spec.get("delay", 15.0)),
            after=after,
        )

    def take(self) -> bool:
        if self.until is not None and time.monotonic() > self.until:
            return False
        if self.times is not None:
            if self.times <= 0:
                return False
            self.times -= 1
        return True


def _modes_with(field: str) -> str:
    modes = [mode for mode, fields in MODE_FIELDS.items() if field in fields]
    return "a field of mode " + " or ".join(modes) if modes else "no fault has it"
