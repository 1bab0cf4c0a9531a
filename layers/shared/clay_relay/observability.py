"""One place that creates the logger, metrics and tracer; every module imports these.

Every log line goes through `MaskingFormatter`, so an email address can never reach CloudWatch in
clear text, whoever logs it.
"""

from __future__ import annotations

import os
import re
import warnings

from aws_lambda_powertools import Logger, Metrics, Tracer, single_metric
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics import MetricUnit

EMAIL = re.compile(r"([A-Za-z0-9_%+-])[A-Za-z0-9._%+-]*@(?:[A-Za-z0-9-]+\.)*([A-Za-z0-9-]+\.[A-Za-z]{2,})")


def mask_email(text: str) -> str:
    """`jane.doe@mail.acme.com` → `j***@acme.com`: enough to tell leads apart, not to mail them."""
    return EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)


class MaskingFormatter(LambdaPowertoolsFormatter):
    def serialize(self, log: dict) -> str:
        return mask_email(super().serialize(log))


# Per-destination counts are published as single metrics; an invocation without any other is normal.
warnings.filterwarnings("ignore", message="No application metrics to publish")

logger = Logger(logger_formatter=MaskingFormatter())
metrics = Metrics()
tracer = Tracer(patch_modules=["botocore"])  # requests is patched when outbound first uses it


def count(name: str, value: int = 1, *, destination: str | None = None) -> None:
    """A count metric, per destination when one is named (its own EMF blob with that dimension)."""
    if not value or os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() in ("1", "true"):
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


__all__ = ["count", "MetricUnit", "logger", "mask_email", "metrics", "tracer"]
