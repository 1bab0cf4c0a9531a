"""One place that creates the logger, metrics and tracer; every module imports these.

Every log line goes through `MaskingFormatter`, so an email address can never reach CloudWatch in
clear text, whoever logs it.
"""

from __future__ import annotations

import os
import re
import warnings
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer, single_metric
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.logging.types import PowertoolsLogRecord
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

EMAIL = re.compile(r"([A-Za-z0-9_%+-])[A-Za-z0-9._%+-]*@(?:[A-Za-z0-9-]+\.)*([A-Za-z0-9-]+\.[A-Za-z]{2,})")


def mask_email(text: str) -> str:
    """`jane.doe@mail.acme.com` → `j***@acme.com`: enough to tell leads apart, not to mail them."""
    return EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)


class MaskingFormatter(LambdaPowertoolsFormatter):
    def serialize(self, log: dict[str, Any] | PowertoolsLogRecord) -> str:
        return mask_email(super().serialize(log))


# Per-destination counts are published as single metrics; an invocation without any other is normal.
warnings.filterwarnings("ignore", message="No application metrics to publish")

logger = Logger(logger_formatter=MaskingFormatter())
metrics = Metrics()
tracer = Tracer(patch_modules=["botocore"])  # requests is patched when outbound first uses it


def _metrics_disabled() -> bool:
    return os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() in ("1", "true")


def count(name: str, value: int = 1, *, destination: str | None = None) -> None:
    """A count metric, per destination when one is named (its own EMF blob with that dimension).

    Dimensions, as alarms and the dashboard (template.yaml) must name them: {service} without a
    destination (flushed with the invocation's other metrics), {service, destination} with one."""
    if not value or _metrics_disabled():
        return
    if destination is None:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        return
    with single_metric(
        name=name,
        unit=MetricUnit.Count,
        value=value,
        namespace=metrics.namespace,
        default_dimensions={**metrics.default_dimensions, "destination": destination},
    ):
        pass


def gauge(name: str, value: float, unit: MetricUnit, *, destination: str, breakdown: dict[str, str]) -> None:
    """A measured level (not a count), in its own EMF blob published under two dimension sets:
    {service, destination}, the same whatever the configuration (what alarms watch), and
    {service, destination, *breakdown} (what the dashboard plots per e.g. target). One log line."""
    if _metrics_disabled():
        return
    dimensions = {**metrics.default_dimensions, "destination": destination}
    if metrics.service:
        dimensions = {"service": metrics.service, **dimensions}
    emf = AmazonCloudWatchEMFProvider(namespace=metrics.namespace, default_dimensions=dimensions)
    emf.add_metric(name=name, unit=unit, value=value)
    emf.add_dimensions(**breakdown)
    emf.flush_metrics()


__all__ = ["count", "gauge", "MetricUnit", "logger", "mask_email", "metrics", "tracer"]
