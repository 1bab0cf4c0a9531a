"""What the relay did lately, from its CloudWatch metrics (namespace `ClayRelay/<stack>`, service
`clay-relay`): events accepted and duplicates over the last 24 h, and per destination what was
delivered, retried and dead-lettered, with deliveries per minute over the last hour. One
GetMetricData call. The local stack puts its functions' metrics into moto's CloudWatch (as
CloudWatch does with their EMF lines), so the figures come from the same place for both.

The metrics are kept per destination, not per flow: a flow dimension would add a custom metric
($0.30 a month each) per flow and destination, for figures the dead letters already split by flow.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from botocore.exceptions import BotoCoreError, ClientError

from clay_relay.jobs import DESTINATIONS
from relay_cli.stack import Stack

SERVICE = "clay-relay"  # template.yaml's POWERTOOLS_SERVICE_NAME
PER_DESTINATION = ("Delivered", "DeliveryRetried", "DeadLettered")
TOTALS = ("EventsAccepted", "EventsDuplicate")
DAY_SECONDS = 86_400
CHART_MINUTES = 60


def namespace(stack: Stack) -> str:
    return f"ClayRelay/{stack.name}"


def _query(query_id: str, stack: Stack, metric: str, period: int, destination: str | None = None) -> dict:
    dimensions = [{"Name": "service", "Value": SERVICE}]
    if destination is not None:  # sorted by name, as the local stack stores them (moto compares in order)
        dimensions.insert(0, {"Name": "destination", "Value": destination})
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {"Namespace": namespace(stack), "MetricName": metric, "Dimensions": dimensions},
            "Period": period,
            "Stat": "Sum",
        },
        "ReturnData": True,
    }


def queries(stack: Stack) -> list[dict]:
    """Hourly sums over the day (per destination and the totals), and per-minute deliveries."""
    found = [_query(f"total_{i}", stack, metric, 3600) for i, metric in enumerate(TOTALS)]
    for d, destination in enumerate(DESTINATIONS):
        found += [_query(f"day_{d}_{m}", stack, metric, 3600, destination) for m, metric in enumerate(PER_DESTINATION)]
        found.append(_query(f"minute_{d}", stack, "Delivered", 60, destination))
    return found


def gather(stack: Stack, now: float | None = None) -> dict:
    """The figures, or `error` saying why there are none (no permission, no CloudWatch)."""
    now = now or time.time()
    end = datetime.fromtimestamp(now, UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    try:
        results = _results(stack, queries(stack), end - timedelta(seconds=DAY_SECONDS), end)
    except (BotoCoreError, ClientError) as error:
        return {"error": f"cannot read CloudWatch: {type(error).__name__}", "destinations": [], "totals": {}}
    since_chart = end - timedelta(minutes=CHART_MINUTES)
    minutes = [since_chart + timedelta(minutes=i) for i in range(CHART_MINUTES)]
    destinations = []
    for d, destination in enumerate(DESTINATIONS):
        sums = {metric: _total(results.get(f"day_{d}_{m}", {})) for m, metric in enumerate(PER_DESTINATION)}
        per_minute = results.get(f"minute_{d}", {})
        series = [per_minute.get(minute, 0.0) for minute in minutes]
        destinations.append({"destination": destination, **{k: int(v) for k, v in sums.items()}, "per_minute": series})
    return {
        "error": None,
        "since": since_chart.isoformat(timespec="minutes"),
        "totals": {metric: int(_total(results.get(f"total_{i}", {}))) for i, metric in enumerate(TOTALS)},
        "destinations": destinations,
        "chart_minutes": CHART_MINUTES,
    }


def _total(values: dict[datetime, float]) -> float:
    return sum(values.values())


def _results(stack: Stack, wanted: list[dict], start: datetime, end: datetime) -> dict[str, dict[datetime, float]]:
    """Each query's values by the minute they start at (UTC, seconds dropped)."""
    found: dict[str, dict[datetime, float]] = {}
    token = None
    while True:
        extra = {"NextToken": token} if token else {}
        answer = stack.cloudwatch.get_metric_data(MetricDataQueries=wanted, StartTime=start, EndTime=end, **extra)
        for result in answer.get("MetricDataResults", []):
            values = found.setdefault(result["Id"], {})
            for at, value in zip(result.get("Timestamps", []), result.get("Values", []), strict=False):
                minute = at.astimezone(UTC).replace(second=0, microsecond=0)
                values[minute] = values.get(minute, 0.0) + float(value)
        token = answer.get("NextToken")
        if not token:
            return found
