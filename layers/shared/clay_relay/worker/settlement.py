"""Settling the batch, in batch calls, once every lane is done.

- the rows of unpacked bundles are queued, one message each;
- rows held for lack of Clay quota are re-queued, delayed by the policy's `hold_seconds`; rows held
  for their target's budget by its `budget_hold_seconds` (shorter: a raise lets them go within a minute);
- the hopeless and those past the retry horizon go to the dead-letter queue with their reason;
- messages that come back later are hidden until their next attempt (exponential backoff with
  jitter, at least the destination's Retry-After), or, parked while their destination is down, until
  released (worker.parking);
- a destination that failed in this batch has its last failure noted (`status#<destination>`, for
  `relay status`): one write per failing destination, none for a batch that went well;
- Clay submissions and budget reserved for rows that never reached Clay are given back, and the rows
  that began or stopped waiting for a budget are counted (`relay clay spend`: held);
- the failures of jobs about a lead (retries, holds, dead letters) go into the lead ledger.

Anything that cannot be settled is reported as a batch item failure, so SQS keeps it: an accepted
event is delivered or dead-lettered, never dropped.
"""

from __future__ import annotations

from collections import defaultdict

from clay_relay.clay import ClayQuota, ClayWebhook
from clay_relay.config import RelayConfig
from clay_relay.delivery_queue import DeliveryQueue
from clay_relay.jobs import ClayRowJob
from clay_relay.ledger.writes import record_outcomes
from clay_relay.observability import logger
from clay_relay.spend.budget import Period, note_held, release_rows
from clay_relay.store import RelayTable
from clay_relay.worker.batch import Batch
from clay_relay.worker.parking import settle_parked

# What the worker answers SQS: `{"batchItemFailures": [{"itemIdentifier": <message id>}, ...]}`.
BatchResponse = dict[str, list[dict[str, str]]]


def settle_batch(
    batch: Batch, queue: DeliveryQueue, table: RelayTable, quota: ClayQuota, config: RelayConfig
) -> BatchResponse:
    """The batch's settling calls; its answer to SQS (`batchItemFailures`: the messages SQS keeps)."""
    kept = batch.comes_back()
    for message_id, rows in batch.unbundled.items():
        try:
            queue.enqueue(rows)
        except Exception:  # noqa: BLE001 - the bundle comes back; rows queued twice are claimed once
            logger.exception("could not queue the rows of a bundle; it comes back after the visibility timeout")
            kept.add(message_id)
    for held, delay in ((batch.held, batch.policy.hold_seconds), (batch.budget_held, batch.policy.budget_hold_seconds)):
        if not held:
            continue
        try:
            queue.enqueue(sorted(held.values(), key=lambda job: job.accepted_at), delay_seconds=delay)
        except Exception:  # noqa: BLE001 - they stay on the queue and come back
            logger.exception("could not re-queue held rows; they return after the visibility timeout")
            kept.update(held)
    if batch.dead_letters:
        try:
            queue.dead_letter(list(batch.dead_letters.values()))
        except Exception:  # noqa: BLE001
            logger.exception("could not write to the dead-letter queue; messages stay on the queue")
            kept.update(batch.dead_letters)
    settle_parked(batch, table)
    if batch.retry_delays:
        try:
            queue.retry_later(batch.retry_delays)
        except Exception:  # noqa: BLE001 - they come back after the queue's visibility timeout
            logger.exception("could not set retry delays")
    if batch.failures:
        try:
            table.note_failures(batch.failures)
        except Exception:  # noqa: BLE001 - only `relay status` misses it
            logger.exception("could not note the destinations' last failures")
    give_back_unsent(batch, quota)
    settle_budgets(batch, table)
    record_outcomes(table, batch, config)
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in sorted(kept)]}


def give_back_unsent(batch: Batch, quota: ClayQuota) -> None:
    """Submissions reserved for rows that never reached Clay, given back to their URL (one update each)."""
    unsent: dict[str, list[ClayWebhook]] = defaultdict(list)
    for plan in batch.plans.values():
        if plan.unsent and plan.webhook is not None:
            unsent[plan.webhook.webhook_id].append(plan.webhook)
    for webhooks in unsent.values():
        try:
            quota.give_back(webhooks[0], len(webhooks))
        except Exception:  # noqa: BLE001 - only costs quota, never an event
            logger.exception("could not give back unused Clay submissions")


def settle_budgets(batch: Batch, table: RelayTable) -> None:
    """Budget counted for rows that never reached Clay, given back (one update per target and day);
    the change in each target's rows waiting for its budget (one update per target, when it changed).
    A row stops waiting when it settles, or waits for a URL instead; a retry keeps it counted."""
    unsent: dict[tuple[str, Period], int] = defaultdict(int)
    held: dict[str, int] = defaultdict(int)
    for plan in batch.plans.values():
        job = plan.job
        if not isinstance(job, ClayRowJob):
            continue
        if plan.budget_period is not None and (plan.webhook is None or plan.unsent or plan.refused_used_up):
            unsent[job.target, plan.budget_period] += 1
        # A message that comes back later (a retry) is the same message: counted until it settles.
        waits = plan.held_for_budget or (job.budget_held and plan.settlement is None)
        held[job.target] += int(waits) - int(job.budget_held)
    try:
        for (target, period), rows in unsent.items():
            release_rows(table, target, period, rows)
        for target, change in held.items():
            note_held(table, target, change)
    except Exception:  # noqa: BLE001 - only the counts of `relay clay spend` miss it
        logger.exception("could not settle the Clay budgets' counts")
