"""The spend guard of a batch's Clay rows, before any Clay submission is reserved:

- a row of a target in shadow mode is recorded (`clay.shadow`: what it would do) and not sent;
- a new lead whose person already went to the target within `person_dedupe_days` is skipped
  (`clay.skipped`, with the earlier row's event id); in a batch, the first row of a person goes;
- the other rows are counted against the target's budget (rows per UTC day and month) in one
  conditional update per target; the rows past it are held, oldest first, and come back every
  `budget_hold_seconds`.
The persons' round trips (where their earlier rows are remembered) are read in one BatchGetItem.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from clay_relay.jobs import ClayRowJob
from clay_relay.observability import logger
from clay_relay.spend.budget import BudgetLimits, Period, reserve_rows, warn_on_thresholds
from clay_relay.spend.persons import EarlierRow, earlier_row, guarded, trip_key
from clay_relay.worker.batch import Batch, Decision, Plan, Settlement

if TYPE_CHECKING:
    from clay_relay.config import ClayTarget, RelayConfig
    from clay_relay.store import RelayTable


def guard_clay_rows(
    batch: Batch, config: RelayConfig, table: RelayTable, limits: BudgetLimits, by_target: dict[str, list[Plan]]
) -> dict[str, list[Plan]]:
    """Per target, the rows that may go to Clay now, oldest first; the others are decided or held."""
    now = time.time()
    if guarded(config) and not read_trips(batch, table, by_target):
        return {}
    admitted = {}
    for target_name, plans in by_target.items():
        admitted[target_name] = guard_target(
            batch, table, limits, target_name, config.clay_targets[target_name], plans, now
        )
    return admitted


def read_trips(batch: Batch, table: RelayTable, by_target: dict[str, list[Plan]]) -> bool:
    """The round trips of the batch's persons, into `batch.trips`; False (the rows retry) if unreadable."""
    keys = {key for plans in by_target.values() for plan in plans if (key := trip_key(plan.job_as(ClayRowJob)))}
    try:
        found = {item["pk"]["S"]: item for item in table.get_many(sorted(keys))} if keys else {}
    except Exception as error:  # noqa: BLE001 - the rows come back later
        for plans in by_target.values():
            for plan in plans:
                plan.failure = f"could not read the persons' earlier rows: {type(error).__name__}"
        return False
    batch.trips.update({key: found.get(key) for key in keys})
    return True


def guard_target(
    batch: Batch,
    table: RelayTable,
    limits: BudgetLimits,
    target_name: str,
    target: ClayTarget,
    plans: list[Plan],
    now: float,
) -> list[Plan]:
    sending: list[Plan] = []
    in_batch: dict[str, EarlierRow] = {}  # a person's first row of this batch, by round trip key
    skipped = shadowed = 0
    for plan in sorted(plans, key=lambda plan: plan.parsed.accepted_at):
        job = plan.job_as(ClayRowJob)
        key = trip_key(job)
        earlier = None
        if key is not None and target.person_dedupe_days:
            earlier = in_batch.get(key) or earlier_row(batch.trips.get(key), job, target.person_dedupe_days, now)
            if earlier is not None and earlier.event_id == job.event_id:
                earlier = None  # a second copy of the same event: its claim makes it a duplicate
        skip = earlier is not None and (not job.lead_update or target.person_dedupe_updates)
        detail = {"target": target_name, "earlier_event_id": earlier.event_id if skip and earlier else None}
        if target.mode == "shadow":
            plan.decision = Decision(
                Settlement.SHADOWED, "clay.shadow", {**detail, "would": "skip" if skip else "send"}
            )
            shadowed += not skip
        elif skip:
            plan.decision = Decision(Settlement.SKIPPED, "clay.skipped", {**detail, "reason": "same person"})
            skipped += 1
        else:
            sending.append(plan)
        if key is not None and not skip:
            in_batch.setdefault(key, EarlierRow(job.event_id, now))
    period = Period.of(now)
    try:
        in_force = limits.of(target_name, target)
        reservation = reserve_rows(table, target_name, in_force, period, len(sending), skipped=skipped, shadow=shadowed)
    except Exception as error:  # noqa: BLE001 - the rows come back later; only the counts of the others miss
        logger.exception("could not count the Clay target's budget", extra={"target": target_name})
        for plan in sending:
            plan.failure = f"could not count the Clay budget: {type(error).__name__}"
        return []
    warn_on_thresholds(target_name, target, in_force, reservation)
    for plan in sending[: reservation.granted]:
        plan.budget_period = period
    for plan in sending[reservation.granted :]:
        batch.hold(plan, target_name, budget=True)
    return sending[: reservation.granted]
