"""What the relay did, as tests read it: its log lines, its AWS calls (a recording client
wrapper), the EMF metrics Powertools prints."""

from __future__ import annotations

import io
import json
import threading
from dataclasses import dataclass, field


@dataclass
class CapturedLogs:
    buffer: io.StringIO

    @property
    def text(self) -> str:
        return self.buffer.getvalue()

    @property
    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip().startswith("{")]

    def messages(self, level: str | None = None) -> list[str]:
        return [line["message"] for line in self.lines if level is None or line.get("level") == level]


class RecordingClient:
    """A boto3 client that notes every API call made through it (name and keyword arguments).
    With a lock, each call is also atomic with respect to the other threads using the wrapper."""

    def __init__(self, client, calls: list[tuple[str, dict]], lock: threading.Lock | None = None):
        self._client = client
        self._calls = calls
        self._lock = lock

    def __getattr__(self, name: str):
        attribute = getattr(self._client, name)
        if not callable(attribute) or name.startswith("_") or name in ("exceptions", "meta"):
            return attribute

        def call(*args, **kwargs):
            self._calls.append((name, kwargs))
            if self._lock is None:
                return attribute(*args, **kwargs)
            with self._lock:
                return attribute(*args, **kwargs)

        return call


@dataclass
class AwsCalls:
    dynamodb: list[tuple[str, dict]] = field(default_factory=list)
    sqs: list[tuple[str, dict]] = field(default_factory=list)

    def names(self, service: str | None = None) -> list[str]:
        calls = {"dynamodb": self.dynamodb, "sqs": self.sqs}.get(service or "", self.dynamodb + self.sqs)
        return [name for name, _ in calls]

    def sqs_calls(self, name: str) -> list[dict]:
        return [kwargs for called, kwargs in self.sqs if called == name]


def emf_metrics(stdout: str) -> list[dict]:
    """Every metric printed in EMF: {"name", "value", "dimensions"} (one entry per metric per blob)."""
    found = []
    for line in stdout.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            blob = json.loads(line)
        except ValueError:
            continue
        for directive in blob.get("_aws", {}).get("CloudWatchMetrics", []):
            dimensions = {name: blob.get(name) for group in directive.get("Dimensions", []) for name in group}
            for metric in directive.get("Metrics", []):
                found.append({"name": metric["Name"], "value": blob.get(metric["Name"]), "dimensions": dimensions})
    return found


def metric_names(stdout: str) -> list[str]:
    return [metric["name"] for metric in emf_metrics(stdout)]
