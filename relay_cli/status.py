"""`relay status`: what is waiting, what failed, how much Clay quota is left, and each Clay target's spend.

Where each figure comes from, and what it cannot tell:
- the delivery queue: SQS's own counts (ready, in flight, delayed) for the whole queue. SQS does not
  count per destination, and the command never receives from this queue to count (each receive
  would count towards the redrive's maxReceiveCount and hide the jobs from the workers), so these
  are totals. Its oldest message's age is CloudWatch's AWS/SQS ApproximateAgeOfOldestMessage
  (deployed stacks; the local stack has no CloudWatch);
- dead letters per flow and destination: read from the dead-letter queue itself (no consumer: see
  dead_letters), with the oldest's age and the latest reason;
- each destination's last failure: the `status#<destination>` item the worker writes in a batch
  where that destination failed (retrying or dead-lettered); successes write nothing, so it is the
  last failure, not the destination's current health;
- rows held for Clay quota: the delivery queue's delayed messages, as only a held row is queued with
  a delay (re-queued for `hold_seconds`), less the rows held for a budget (below); one on its way back
  to a worker at that moment is not counted. No extra call, and no write on the worker's side;
- Clay quota per webhook URL: the `clay-quota#<webhook id>` counters (see clay_pool);
- Clay spend per target: rows sent today and this month against its budget, rows held for it (the
  `clay-budget#<target>` counter the worker keeps as rows begin and stop waiting), and whether the
  target is in shadow mode (see clay_spend; `relay clay spend` has more).
- parked destinations: each lane that is down (or back and still releasing), since when, its jobs
  parked and its last error: the lanes' items the worker keeps while it parks (see parked);
- each Directus source's last reconciliation sweep and what it recovered: its checkpoint (see sweeps).
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

from botocore.exceptions import BotoCoreError, ClientError

from clay_relay.config import RelayConfig
from clay_relay.jobs import DESTINATIONS
from clay_relay.observability import mask_email
from relay_cli.clay_pool import pool_summary, print_pools
from relay_cli.clay_spend import spend_of
from relay_cli.dead_letters import NO_REASON, DeadLetterQueue, Letter
from relay_cli.output import duration, iso, print_json, print_table, shorten
from relay_cli.parked import parked_report, print_parked
from relay_cli.stack import Stack
from relay_cli.sweeps import print_sweeps, sweep_rows


def register(commands) -> None:
    status = commands.add_parser(
        "status",
        help="queues, dead letters per flow and destination, last failures, parked destinations, Clay quota and spend",
        description=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    status.set_defaults(run=run)


def flows(config: RelayConfig) -> list[tuple[str, str]]:
    """(flow, destination) pairs the configuration routes, as the jobs' `origin` names the flow."""
    pairs = [(f"directus/{name}", "clay") for name in config.directus_sources]
    callback = config.clay_callback
    if callback:
        pairs.append(("clay/enriched", "loops"))
        pairs += [("clay/enriched", d) for d, on in (("slack", callback.slack), ("zapier", callback.zapier)) if on]
        if callback.directus_writeback:
            pairs.append(("clay/enriched", "directus"))
    if config.loops_webhook:
        pairs.append(("loops/webhook", "clay"))
    if config.loops_forwarding:
        pairs += [("loops/contacts", "loops"), ("loops/events", "loops")]
    return pairs


# SQS's own counts of the delivery queue, by the names the command gives them.
QUEUE_COUNTS = {
    "ready": "ApproximateNumberOfMessages",
    "in_flight": "ApproximateNumberOfMessagesNotVisible",
    "delayed": "ApproximateNumberOfMessagesDelayed",
}


def queue_counts(stack: Stack) -> dict[str, int]:
    """The delivery queue's jobs: ready, in flight (or waiting for a retry, or parked), delayed (Clay rows held for
    quota or for a budget: nothing else is queued with a delay)."""
    counts = stack.sqs.get_queue_attributes(QueueUrl=stack.queue_url, AttributeNames=list(QUEUE_COUNTS.values()))
    return {name: int(counts["Attributes"].get(attribute, 0)) for name, attribute in QUEUE_COUNTS.items()}


def queue_figures(stack: Stack) -> dict:
    counts = queue_counts(stack)
    age, source = oldest_age(stack)
    return {**counts, "oldest_age_seconds": age, "oldest_age_source": source}


def oldest_age(stack: Stack) -> tuple[float | None, str]:
    """The delivery queue's oldest message's age from CloudWatch (AWS/SQS, per minute)."""
    if stack.local:
        return None, "n/a: the local stack has no CloudWatch metrics"
    now = datetime.now(UTC)
    try:
        points = stack.cloudwatch.get_metric_statistics(
            Namespace="AWS/SQS",
            MetricName="ApproximateAgeOfOldestMessage",
            Dimensions=[{"Name": "QueueName", "Value": stack.queue_url.rstrip("/").rsplit("/", 1)[-1]}],
            StartTime=now - timedelta(minutes=15),
            EndTime=now + timedelta(minutes=1),  # the minute under way too
            Period=60,
            Statistics=["Maximum"],
        )["Datapoints"]
    except (BotoCoreError, ClientError) as error:
        return None, f"n/a: cannot read CloudWatch ({type(error).__name__})"
    if not points:
        return None, "n/a: no CloudWatch datapoint in the last 15 minutes"
    latest = max(points, key=lambda point: point["Timestamp"])
    return float(latest["Maximum"]), f"CloudWatch ApproximateAgeOfOldestMessage at {latest['Timestamp']:%H:%M} UTC"


def dead_letter_rows(config: RelayConfig, letters: list[Letter]) -> list[dict]:
    """One row per configured (flow, destination), plus any other pair found among the letters."""
    pairs = flows(config)
    pairs += sorted({(letter.origin, letter.destination) for letter in letters} - set(pairs))
    rows = []
    for origin, destination in pairs:
        mine = [letter for letter in letters if (letter.origin, letter.destination) == (origin, destination)]
        oldest = min((letter.at for letter in mine if letter.at), default=None)
        latest = max(mine, key=lambda letter: letter.at or 0, default=None)
        rows.append(
            {
                "flow": origin,
                "destination": destination,
                "dead_lettered": len(mine),
                "oldest_at": iso(oldest),
                "oldest_age_seconds": None if oldest is None else round(time.time() - oldest),
                "latest_reason": mask_email(latest.reason or NO_REASON) if latest else None,
            }
        )
    return rows


def destination_rows(stack: Stack, pairs: list[dict]) -> list[dict]:
    """Each destination with its dead letters and last failure (an unreadable job's is `unknown`)."""
    destinations = list(dict.fromkeys([*(row["destination"] for row in pairs), *DESTINATIONS, "unknown"]))
    failures = stack.table.last_failures(destinations)
    rows = []
    for destination in destinations:
        failure = failures.get(destination)
        if destination not in {row["destination"] for row in pairs} and not failure:
            continue  # not configured, never failed
        rows.append(
            {
                "destination": destination,
                "dead_lettered": sum(row["dead_lettered"] for row in pairs if row["destination"] == destination),
                "last_failure": failure
                and {
                    "at": iso(failure.at),
                    "age_seconds": round(time.time() - failure.at),
                    "kind": failure.kind,
                    "flow": failure.origin,
                    "error": mask_email(failure.error),  # masked when written; again for older records
                },
            }
        )
    return rows


def gather(stack: Stack) -> dict:
    with DeadLetterQueue(stack) as dlq:
        letters, complete, hidden = dlq.letters, dlq.complete, dlq.hidden
    notes = [
        "Queue figures are for the whole queue: SQS cannot split them per flow or destination without receiving "
        "the jobs, which would take them from the workers. Dead letters are counted per flow and destination.",
        "A last failure stays until a newer one replaces it (successes write nothing): see the Delivered metric "
        "per destination to tell whether it recovered.",
    ]
    if not complete:
        notes.append(f"Only the first {len(letters)} dead letters were read; the counts below miss the rest.")
    if hidden:
        notes.append(f"{hidden} dead letter(s) were held by another reader (relay dlq, the console): not counted.")
    pairs = dead_letter_rows(stack.config, letters)
    queue = queue_figures(stack)
    spends = [spend_of(stack, name, target).as_json() for name, target in stack.config.clay_targets.items()]
    return {
        "stack": {"name": stack.name, "region": stack.region, "local": stack.local},
        "delivery_queue": queue,
        "held_for_quota": {
            "rows": max(0, queue["delayed"] - sum(spend["held"] for spend in spends)),
            "hold_horizon_seconds": stack.config.delivery.hold_horizon_seconds,
        },
        "dead_letter_queue": {"letters": len(letters), "read_completely": complete, "held_by_others": hidden},
        "flows": pairs,
        "destinations": destination_rows(stack, pairs),
        "parked": parked_report(stack),
        "clay_targets": [pool_summary(stack, name, target) for name, target in stack.config.clay_targets.items()],
        "clay_spend": spends,
        "directus_sweeps": sweep_rows(stack),
        "notes": notes,
    }


def render(report: dict) -> None:
    stack, queue, dlq = report["stack"], report["delivery_queue"], report["dead_letter_queue"]
    print(f"stack {stack['name']} ({'local' if stack['local'] else stack['region']})")
    print()
    oldest = queue["oldest_age_seconds"]
    print("Delivery queue (all flows and destinations together)")
    print(
        f"  ready {queue['ready']}, in flight, waiting for a retry or parked {queue['in_flight']}, "
        f"delayed (Clay rows held for quota or budget) {queue['delayed']}"
    )
    age = f"{duration(oldest)} ({queue['oldest_age_source']})" if oldest is not None else queue["oldest_age_source"]
    print(f"  oldest message: {age}")
    print()
    held = report["held_for_quota"]
    print(
        f"Held for Clay quota: {held['rows']} row(s), each until a URL is added to its target's pool, at most "
        f"{duration(held['hold_horizon_seconds'])} after it was accepted; then dead-lettered (hold_horizon_seconds)"
    )
    print()
    print(f"Dead letters: {dlq['letters']}")
    rows = [
        [r["flow"], r["destination"], r["dead_lettered"], _age(r["oldest_age_seconds"]), shorten(r["latest_reason"])]
        for r in report["flows"]
    ]
    print_table(["FLOW", "DESTINATION", "DEAD", "OLDEST", "LATEST REASON"], rows)
    print()
    print("Destinations: last failure (retrying or dead-lettered)")
    rows = []
    for row in report["destinations"]:
        failure = row["last_failure"] or {}
        when = _age(failure.get("age_seconds"))
        error = shorten(failure.get("error"))
        rows.append([row["destination"], row["dead_lettered"], when and f"{when} ago", failure.get("kind"), error])
    print_table(["DESTINATION", "DEAD", "LAST FAILURE", "KIND", "ERROR"], rows)
    print()
    print_parked(report["parked"])
    print()
    print("Clay targets (pool order; the current URL is the first with submissions left)")
    print_pools(report["clay_targets"])
    print()
    print_spend_summary(report["clay_spend"])
    print_sweeps(report["directus_sweeps"])
    print()
    for note in report["notes"]:
        print(f"note: {note}")


def print_spend_summary(spends: list[dict]) -> None:
    """Used, left and held per target against its budget; which targets are in shadow mode."""
    if not spends:
        return
    print(f"Clay spend (UTC day {spends[0]['day']}; `relay clay spend` for skips and the month's projection)")

    def used(sent: int, budget: int | None) -> str:
        return f"{sent:,}" if budget is None else f"{sent:,} of {budget:,}"

    rows = [
        [
            s["target"],
            s["mode"],
            used(s["sent"]["today"], s["budget"]["rows_per_day"]),
            s["left"]["today"],
            used(s["sent"]["month"], s["budget"]["rows_per_month"]),
            s["left"]["month"],
            s["held"],
        ]
        for s in spends
    ]
    print_table(["TARGET", "MODE", "SENT TODAY", "LEFT TODAY", "SENT THIS MONTH", "LEFT THIS MONTH", "HELD"], rows)
    if shadow := [s["target"] for s in spends if s["mode"] == "shadow"]:
        print(f"  in shadow mode (nothing sent, nothing spent; relay trace shows each decision): {', '.join(shadow)}")


def _age(seconds: float | None) -> str | None:
    return None if seconds is None else duration(seconds)


def run(stack: Stack, args: argparse.Namespace) -> None:
    report = gather(stack)
    if args.json:
        print_json(report)
    else:
        render(report)
