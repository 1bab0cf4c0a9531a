"""One place that creates the logger and metrics, and hands out the tracer (clay_relay.tracing);
every module imports these.

Every log line goes through `MaskingFormatter`, so an email address, in any of its forms, can never
reach CloudWatch in clear text, whoever logs it.
"""

from __future__ import annotations

import os
import re
import warnings
from typing import Any

from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.logging.types import PowertoolsLogRecord
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

from clay_relay.tracing import tracer  # the tracer's own module: tracing (one import, for the handlers)

# Every form an address takes (RFC 5322/6531): a dot-atom local part of any letters, including
# non-ASCII ones (Jürgen.Müller), or a quoted one ("john doe", which may hold spaces and @); a domain
# of any labels (bücher.de, a single one such as localhost) or an address literal ([127.0.0.1],
# [IPv6:…]). A local part starts only where a run of address characters starts (the lookbehind),
# which keeps the scan linear however long a text without an @ is.
_ATOM = r"""[^\s"(),.:;<>@\[\\\]\x00-\x1f\x7f]"""  # RFC 5322 atext, plus any non-ASCII letter
_ATOM_OR_DOT = r"""[^\s"(),:;<>@\[\\\]\x00-\x1f\x7f]"""
_LABEL = r"(?:[\w-]|[^\x00-\x7f\s])+"
EMAIL = re.compile(
    rf"""(?P<local>"(?:[^"\\\r\n]|\\.){{1,128}}"|(?<!{_ATOM_OR_DOT}){_ATOM_OR_DOT}*{_ATOM})"""
    rf"@(?P<domain>\[[^\[\]\s]{{1,64}}\]|(?:{_LABEL}\.)*{_LABEL})"
)


def _masked(match: re.Match[str]) -> str:
    local, domain = match["local"], match["domain"]
    shown = "[…]" if domain.startswith("[") else ".".join(domain.split(".")[-2:])
    first = re.search(r"\w", local)  # the first letter or digit is shown; none: nothing is
    if first is None:
        return f"***@{shown}"
    lead = "" if local.startswith('"') else local[: first.start()]  # punctuation before it is the text's
    if lead and first.end() == len(local):  # `!.!a@…`: punctuation and one letter would show all of it
        return f"{lead}***@{shown}"
    return f"{lead}{first.group()}***@{shown}"


def mask_email(text: str) -> str:
    """`jane.doe@mail.acme.com` → `j***@acme.com`: enough to tell leads apart, not to mail them.
    Every form: `Jürgen.Müller@bücher.de` → `J***@bücher.de`, `"john doe"@example.com` →
    `j***@example.com`, `user@[127.0.0.1]` → `u***@[…]`, `ops@localhost` → `o***@localhost`."""
    return EMAIL.sub(_masked, text) if "@" in text else text


def mask_emails_in(value: Any) -> Any:
    """`value` with every email masked in its strings, however deep in dicts, lists and tuples
    (keys too): for structures that are serialised afterwards, where JSON escaping (`\"john
    doe\"@…`) would hide a quoted form from `mask_email`."""
    if isinstance(value, str):
        return mask_email(value)
    if isinstance(value, dict):
        return {mask_emails_in(k): mask_emails_in(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_emails_in(item) for item in value]
    return value


def _masked_default(value: object) -> str:
    """How the log formatter turns a value JSON cannot hold into text: str(), masked."""
    return mask_email(str(value))


class MaskingFormatter(LambdaPowertoolsFormatter):
    """Masks every string of the log record before it is serialised (and what str() makes of
    the rest), so an email cannot reach CloudWatch in any form."""

    def __init__(self, **kwargs: Any):
        super().__init__(json_default=_masked_default, **kwargs)

    def serialize(self, log: dict[str, Any] | PowertoolsLogRecord) -> str:
        return super().serialize(mask_emails_in(log))


# Per-destination counts are published as single metrics; an invocation without any other is normal.
warnings.filterwarnings("ignore", message="No application metrics to publish")

logger = Logger(logger_formatter=MaskingFormatter())
metrics = Metrics()


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
    {service, destination, *breakdown} (what the dashboard plots per e.g. target); an empty breakdown
    publishes the first only. One log line."""
    if _metrics_disabled():
        return
    dimensions = {**metrics.default_dimensions, "destination": destination}
    if metrics.service:
        dimensions = {"service": metrics.service, **dimensions}
    emf = AmazonCloudWatchEMFProvider(namespace=metrics.namespace, default_dimensions=dimensions)
    emf.add_metric(name=name, unit=unit, value=value)
    if breakdown:
        emf.add_dimensions(**breakdown)
    emf.flush_metrics()


__all__ = ["count", "gauge", "MetricUnit", "logger", "mask_email", "mask_emails_in", "metrics", "tracer"]
