"""The activity the console shows comes from the relay's CloudWatch metrics: a day's sums per
destination, deliveries per minute over the last hour, and the accepted events; what CloudWatch
cannot answer is said, not guessed."""

from __future__ import annotations

import time
from unittest import mock

from botocore.exceptions import ClientError

from relay_cli import activity
from tests.invocations import relay_stack


def put(stack, metric: str, value: float, seconds_ago: float, destination: str | None = None) -> None:
    dimensions = [{"Name": "service", "Value": "clay-relay"}]
    if destination:  # in the order the local stack stores them (moto compares dimensions in order)
        dimensions.insert(0, {"Name": "destination", "Value": destination})
    stack.cloudwatch.put_metric_data(
        Namespace=f"ClayRelay/{stack.name}",
        MetricData=[
            {"MetricName": metric, "Dimensions": dimensions, "Value": value, "Timestamp": time.time() - seconds_ago}
        ],
    )


def test_a_days_figures_per_destination_and_deliveries_per_minute_come_from_cloudwatch(aws):
    stack = relay_stack(aws, local=True)
    put(stack, "Delivered", 4, 90, "clay")
    put(stack, "Delivered", 2, 5 * 3600, "clay")  # in the day, not in the hour's chart
    put(stack, "DeadLettered", 1, 600, "slack")
    put(stack, "EventsAccepted", 9, 300)
    put(stack, "Delivered", 100, 2 * 86_400, "clay")  # older than a day: not counted
    found = activity.gather(stack)
    assert found["error"] is None
    assert found["totals"] == {"EventsAccepted": 9, "EventsDuplicate": 0}
    rows = {row["destination"]: row for row in found["destinations"]}
    assert (rows["clay"]["Delivered"], rows["clay"]["DeadLettered"]) == (6, 0)
    assert rows["slack"]["DeadLettered"] == 1
    assert len(rows["clay"]["per_minute"]) == 60
    assert sum(rows["clay"]["per_minute"]) == 4


def test_without_access_to_cloudwatch_it_says_so(aws):
    stack = relay_stack(aws, local=True)
    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetMetricData")
    with mock.patch.object(stack.cloudwatch, "get_metric_data", side_effect=denied):
        found = activity.gather(stack)
    assert found["error"] == "cannot read CloudWatch: ClientError"
    assert found["destinations"] == []
