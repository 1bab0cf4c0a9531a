"""Before anything is sent: read the batch, claim each job's event, and reserve Clay submissions.

- A bundle (one event's thousands of rows, see intake) is unpacked: its rows go on the queue one by one.
- Directus updates of sources with full rows become their items' rows, under their state's event id,
  before they are claimed (`full_rows`: one Directus read per batch and collection).
- Each job's event is claimed with one conditional put; a second copy of an event is a duplicate.
  Jobs whose repeat would show (Slack, Zapier) are claimed only just before their request, as
  `sending`, so that a request that may have gone out is never sent again. A claim is also the
  job's entry in the lead ledger (clay_relay.ledger).
- The spend guard (`guard`) decides which Clay rows may go: rows of a target in shadow mode and rows of
  a person who already went to the target are recorded, not sent; rows past the target's budget are
  held. Rows skipped or shadowed are claimed like any job: the claim is their ledger entry.
- Clay submissions are reserved for the rows of a target in one conditional update per URL; rows the
  pool has no submissions left for are held (re-queued, delayed), never dropped. Rows are claimed
  after their reservation, so their ledger entry names the URL and the submission; a row that turns
  out to be a duplicate gives its submission back.
- The rows' round trips (due for their enrichment callback) are opened in one batch write.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import TYPE_CHECKING

from pydantic import ValidationError

from clay_relay.clay import ClayPoolUnavailable, ClayQuota
from clay_relay.config import RelayConfig
from clay_relay.item_state import claim_columns
from clay_relay.jobs import ClayRowBundle, ClayRowJob, parse_job
from clay_relay.ledger.writes import claim_entry, open_round_trips
from clay_relay.spend.budget import BudgetLimits
from clay_relay.store import Claim, RelayTable
from clay_relay.worker.batch import Batch, Plan
from clay_relay.worker.full_rows import read_full_rows
from clay_relay.worker.guard import guard_clay_rows

if TYPE_CHECKING:
    from clay_relay.worker.batch import SqsRecord


def plan_batch(
    records: list[SqsRecord],
    config: RelayConfig,
    table: RelayTable,
    quota: ClayQuota,
    budgets: BudgetLimits,
    sla_override: int | None = None,
) -> Batch:
    """The batch's plans, claimed and with their Clay submissions reserved."""
    batch = Batch(config.delivery)
    for record in records:
        plan = Plan.of(record)
        batch.plans[plan.message_id] = plan
        try:
            plan.job = parse_job(record["body"])
        except ValidationError as error:
            batch.dead_letter(plan, f"unreadable job: {error.errors()[0]['msg']}", "unknown", "unknown")
            continue
        if isinstance(plan.job, ClayRowBundle):
            # Each unpacking is a new acceptance of the rows: should a bundle come back after
            # its rows were queued, the second copies are duplicates to the worker's claims.
            batch.unbundle(plan, [row.model_copy(update={"job_id": uuid.uuid4().hex}) for row in plan.job.rows])
            continue
        if plan.job.repeat_is_harmless and not isinstance(plan.job, ClayRowJob):
            claim_event(batch, plan, table, config)
    read_full_rows(batch, config, table)  # Directus updates become their items' rows (worker.full_rows)
    reserve_clay_submissions(batch, config, table, quota, budgets)
    for plan in [plan for plan in batch.plans.values() if plan.decision is not None and plan.open]:
        if claim_event(batch, plan, table, config):
            batch.decided(plan)
    rows = [plan for plan in batch.plans.values() if plan.webhook is not None and plan.open and not plan.failure]
    for plan in rows:
        if not claim_event(batch, plan, table, config):
            plan.unsent = True  # a duplicate, or a claim that failed: its submission is given back
    open_round_trips(table, batch, [plan for plan in rows if plan.open and not plan.unsent], config, sla_override)
    return batch


def claim_event(batch: Batch, plan: Plan, table: RelayTable, config: RelayConfig, *, sending: bool = False) -> bool:
    """Claims the plan's event; False when there is nothing to send (settled, or `plan.failure`)."""
    job = plan.parsed
    try:
        claim = table.claim(
            job.event_id,
            job.job_id,
            job.dedupe_window_seconds,
            sending=sending,
            replayed=plan.replayed,
            ledger={**(claim_entry(plan, config) or {}), **claim_columns(job, config)} or None,
        )
    except Exception as error:  # noqa: BLE001 - any failure here means 'try again later'
        plan.failure = f"could not claim the event: {type(error).__name__}"
        return False
    if claim is Claim.DUPLICATE or claim is Claim.DELIVERED:
        batch.duplicate(plan)
    elif claim is Claim.UNCONFIRMED:
        batch.dead_letter(
            plan,
            f"unconfirmed: the worker stopped while sending it, or {job.destination} did not answer in time; "
            f"it may have arrived: check {job.destination}, and replay it if it did not",
        )
    return claim is Claim.OWNED


def reserve_clay_submissions(
    batch: Batch, config: RelayConfig, table: RelayTable, quota: ClayQuota, budgets: BudgetLimits
) -> None:
    """The spend guard's rows per target, then one reservation per target for the rows it lets go;
    each row learns the URL it goes to, or is held."""
    by_target: dict[str, list[Plan]] = defaultdict(list)
    for plan in batch.plans.values():
        if isinstance(plan.job, ClayRowJob) and plan.open and not plan.failure:
            if plan.job.target in config.clay_targets:
                by_target[plan.job.target].append(plan)
            else:
                batch.dead_letter(plan, f"clay target {plan.job.target!r} is not configured")
    for target_name, plans in guard_clay_rows(batch, config, table, budgets, by_target).items():
        if not plans:
            continue
        target = config.clay_targets[target_name]
        try:
            allocations = quota.allocate(target_name, target, len(plans))
        except ClayPoolUnavailable as error:
            for plan in plans:
                plan.failure = str(error)
            continue
        except Exception as error:  # noqa: BLE001
            for plan in plans:
                plan.failure = f"could not reserve Clay quota: {type(error).__name__}"
            continue
        waiting = iter(plans)
        for allocation in allocations:
            for number in range(allocation.first_submission, allocation.first_submission + allocation.count):
                plan = next(waiting)
                plan.webhook, plan.submission = allocation.webhook, number
        for plan in waiting:
            batch.hold(plan, target_name)
