"""The log of every request the sandboxes received (injected faults included)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime


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
