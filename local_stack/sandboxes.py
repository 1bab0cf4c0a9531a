"""Sandbox stand-ins for the outside world, behaving like the real services where it matters.

Clay (`POST /clay/webhooks/<id>`, one URL per table webhook):
- checks the `x-clay-webhook-auth` token when the URL has one (401 otherwise),
- accepts only JSON objects (400) of at most 100 KB (413),
- limits the workspace to `rate` records/s with bursts of `burst` (429 + Retry-After),
- counts submissions per URL and, past `submission_limit`, does what Clay may do: silently drop
  the row (200, no row: `over_limit="drop"`, the default) or refuse it (`over_limit="reject"`).
Every request received is logged (`deliveries`); injected faults answer first.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler

from local_stack.serving import BackgroundServer

CLAY_MAX_BODY = 100_000


class DeliveryLog:
    """Every request the sandboxes received, in order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[dict] = []

    def record(
        self, destination: str, method: str, path: str, headers: dict, body: bytes, status: int, **extra
    ) -> None:
        try:
            parsed: object = json.loads(body) if body else None
        except ValueError:
            parsed = body.decode("utf-8", "replace")
        entry = {
            "destination": destination,
            "method": method,
            "path": path,
            "headers": headers,
            "body": parsed,
            "status": status,
            "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            **extra,
        }
        with self._lock:
            self._entries.append(entry)

    def all(self) -> list[dict]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


@dataclass
class Fault:
    destination: str
    status: int | None = None  # answer this status
    mode: str = "status"  # "status", "timeout" (answer after `delay` s), "down" (close the connection)
    times: int | None = None  # how many requests it applies to (None: until `until`)
    until: float | None = None  # monotonic deadline
    delay: float = 15.0

    @classmethod
    def from_request(cls, spec: dict) -> Fault:
        destination = spec.get("destination")
        if destination not in ("clay", "loops", "slack", "zapier", "directus"):
            raise ValueError("destination must be one of clay, loops, slack, zapier, directus")
        mode = spec.get("mode", "status")
        if mode not in ("status", "timeout", "down", "rate_limit"):
            raise ValueError("mode must be status, timeout, down or rate_limit")
        status = spec.get("status", 429 if mode == "rate_limit" else 503)
        times, seconds = spec.get("times"), spec.get("seconds")
        if times is None and seconds is None:
            times = 1
        return cls(
            destination=destination,
            status=int(status),
            mode="status" if mode == "rate_limit" else mode,
            times=int(times) if times is not None else None,
            until=time.monotonic() + float(seconds) if seconds is not None else None,
            delay=float(spec.get("delay", 15.0)),
        )

    def take(self) -> bool:
        if self.until is not None and time.monotonic() > self.until:
            return False
        if self.times is not None:
            if self.times <= 0:
                return False
            self.times -= 1
        return True


@dataclass
class ClaySandbox:
    submission_limit: int = 50_000
    over_limit: str = "drop"
    rate: float = 10.0
    burst: int = 20
    tokens: dict[str, str] = field(default_factory=dict)  # webhook id → expected token
    submissions: Counter = field(default_factory=Counter)  # webhook id → submissions received
    rows: Counter = field(default_factory=Counter)  # webhook id → rows created
    _bucket: float = 0.0
    _last: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._bucket = float(self.burst)

    def _take_rate_token(self) -> bool:
        now = time.monotonic()
        self._bucket = min(self.burst, self._bucket + (now - self._last) * self.rate)
        self._last = now
        if self._bucket < 1:
            return False
        self._bucket -= 1
        return True

    def receive(self, webhook_id: str, headers: dict, body: bytes) -> tuple[int, dict, dict]:
        """(status, answer body, extra fields for the delivery log)."""
        expected = self.tokens.get(webhook_id)
        if expected is not None and headers.get("x-clay-webhook-auth") != expected:
            return 401, {"error": "Unauthorized"}, {}
        if len(body) > CLAY_MAX_BODY:
            return 413, {"error": "Payload too large"}, {}
        try:
            row = json.loads(body)
        except ValueError:
            row = None
        if not isinstance(row, dict):
            return 400, {"error": "Body must be a JSON object"}, {}
        with self._lock:
            if not self._take_rate_token():
                return 429, {"error": "Too many requests"}, {"retry_after": "1"}
            self.submissions[webhook_id] += 1
            if self.submissions[webhook_id] > self.submission_limit:
                if self.over_limit == "reject":
                    return 403, {"error": "Webhook submission limit reached"}, {"row_created": False}
                return 200, {"status": "ok"}, {"row_created": False}
            self.rows[webhook_id] += 1
        return 200, {"status": "ok"}, {"row_created": True}


class Sandboxes:
    def __init__(self, clay: ClaySandbox | None = None):
        self.clay = clay or ClaySandbox()
        self.deliveries = DeliveryLog()
        self.faults: list[Fault] = []
        self._faults_lock = threading.Lock()
        self._server = BackgroundServer(type("Handler", (_SandboxHandler,), {"owner": self}), "sandboxes")

    def add_fault(self, spec: dict) -> Fault:
        fault = Fault.from_request(spec)
        with self._faults_lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._faults_lock:
            self.faults.clear()

    def active_fault(self, destination: str) -> Fault | None:
        with self._faults_lock:
            for fault in self.faults:
                if fault.destination == destination and fault.take():
                    return fault
        return None

    def start(self, host: str = "127.0.0.1", port: int = 3001) -> str:
        return self._server.start(host, port)

    def stop(self) -> None:
        self._server.stop()


class _SandboxHandler(BaseHTTPRequestHandler):
    owner: Sandboxes
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # the delivery log is the record
        pass

    def _answer(self, status: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) == 3 and parts[:2] == ["clay", "webhooks"]:
            self._clay(parts[2], headers, body)
            return
        self._answer(404, {"error": "no sandbox at this path"})

    def _clay(self, webhook_id: str, headers: dict, body: bytes) -> None:
        if self._injected_fault("clay", headers, body):
            return
        status, answer, extra = self.owner.clay.receive(webhook_id, headers, body)
        retry_after = extra.pop("retry_after", None)
        self.owner.deliveries.record("clay", "POST", self.path, headers, body, status, **extra)
        self._answer(status, answer, {"Retry-After": retry_after} if retry_after else None)

    def _injected_fault(self, destination: str, headers: dict, body: bytes) -> bool:
        fault = self.owner.active_fault(destination)
        if fault is None:
            return False
        if fault.mode == "down":
            self.owner.deliveries.record(destination, "POST", self.path, headers, body, 0, fault="down")
            self.close_connection = True
            self.connection.shutdown(2)
            return True
        if fault.mode == "timeout":
            self.owner.deliveries.record(destination, "POST", self.path, headers, body, 0, fault="timeout")
            time.sleep(fault.delay)
            self.close_connection = True
            return True
        self.owner.deliveries.record(destination, "POST", self.path, headers, body, fault.status, fault="status")
        extra = {"Retry-After": "1"} if fault.status == 429 else None
        self._answer(fault.status, {"error": f"injected fault {fault.status}"}, extra)
        return True
