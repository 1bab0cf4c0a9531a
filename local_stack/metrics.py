"""CloudWatch's EMF extraction, for the local stack: the functions print their metrics as embedded
metric format lines, as on Lambda, and the local stack puts each into moto's CloudWatch under every
dimension set the line names, as CloudWatch Logs does. So `relay console --local` (and anything
else that reads CloudWatch) sees the local stack's figures as it sees a deployed stack's.

Those lines are taken out of the stack's output (nobody reads a blob per invocation on a terminal);
every other line passes through as it was printed. A background thread sends them in batches.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import threading
from datetime import UTC, datetime

import boto3

FLUSH_SECONDS = 1.0
PUT_BATCH = 500  # PutMetricData takes 1,000 values a request


def datums(blob: dict) -> list[tuple[str, list[dict]]]:
    """(namespace, MetricData) per namespace of an EMF blob: one datum per metric, value and dimension set."""
    meta = blob.get("_aws") or {}
    at = datetime.fromtimestamp(float(meta.get("Timestamp", 0)) / 1000, UTC)
    out = []
    for directive in meta.get("CloudWatchMetrics", []):
        data = []
        for metric in directive.get("Metrics", []):
            values = blob.get(metric["Name"])
            for value in values if isinstance(values, list) else [values]:
                if not isinstance(value, int | float):
                    continue
                for names in directive.get("Dimensions", []) or [[]]:
                    # Sorted by name: moto matches a query's dimensions in order (CloudWatch as a set).
                    dimensions = [{"Name": n, "Value": str(blob[n])} for n in sorted(names) if n in blob]
                    data.append(
                        {
                            "MetricName": metric["Name"],
                            "Dimensions": dimensions,
                            "Timestamp": at,
                            "Value": float(value),
                            "Unit": metric.get("Unit", "None"),
                        }
                    )
        out.append((directive.get("Namespace", ""), data))
    return out


class MetricsExtraction(io.TextIOBase):
    """Stands in for sys.stdout: EMF lines go to moto's CloudWatch, the rest to the real output.
    Lines are assembled per thread (print writes its text and its newline separately)."""

    def __init__(self, output, cloudwatch=None):
        self.output = output
        self.cloudwatch = cloudwatch
        self._lines = threading.local()
        self._pending: list[tuple[str, dict]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="emf-extraction", daemon=True)

    def start(self) -> MetricsExtraction:
        self.cloudwatch = self.cloudwatch or boto3.client("cloudwatch")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.flush_metrics()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        buffer = getattr(self._lines, "text", "") + text
        *lines, rest = buffer.split("\n")
        self._lines.text = rest
        for line in lines:
            if not self._take(line):
                self.output.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        self.output.flush()

    def _take(self, line: str) -> bool:
        if not line.startswith('{"_aws"') and '"_aws"' not in line[:200]:
            return False
        try:
            blob = json.loads(line)
        except ValueError:
            return False
        if not isinstance(blob, dict) or "_aws" not in blob:
            return False
        with self._lock:
            self._pending += [(namespace, datum) for namespace, data in datums(blob) for datum in data]
        return True

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_SECONDS):
            self.flush_metrics()

    def flush_metrics(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        by_namespace: dict[str, list[dict]] = {}
        for namespace, datum in pending:
            by_namespace.setdefault(namespace, []).append(datum)
        for namespace, data in by_namespace.items():
            for start in range(0, len(data), PUT_BATCH):
                with contextlib.suppress(Exception):  # moto stopping: the figures are a convenience
                    self.cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[start : start + PUT_BATCH])


@contextlib.contextmanager
def extracting_metrics():
    """sys.stdout extracts EMF lines into CloudWatch while the block runs."""
    extraction = MetricsExtraction(sys.stdout).start()
    sys.stdout = extraction
    try:
        yield extraction
    finally:
        sys.stdout = extraction.output
        extraction.stop()
