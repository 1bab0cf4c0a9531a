"""The delivery worker: carries out a batch of queued jobs (Clay rows; Loops events and contacts,
Slack messages, Zapier posts, Directus write-backs), reporting partial failures.

For a batch it:
1. claims each job's event (one conditional put each; a second copy of an event is skipped),
2. reserves Clay submissions for all rows of a target in one conditional update per URL,
3. delivers each job (Powertools BatchProcessor: one failing record never fails the others),
4. then, in batch calls: hides failed messages until their next attempt (exponential backoff with
   jitter, at least the destination's Retry-After), moves the hopeless and the exhausted to the
   dead-letter queue with the reason, and re-queues rows held for lack of Clay quota.
Anything that cannot be settled is reported as a batch item failure, so SQS keeps it: an accepted
event is delivered or dead-lettered, never dropped.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import ValidationError

from clay_relay import directus, hooks, loops
from clay_relay.clay import ClayPoolUnavailable, ClayQuota, ClayWebhook, send_row
from clay_relay.config import DeliveryPolicy, RelayConfig, load_config
from clay_relay.delivery_queue import DeadLetter, DeliveryQueue
from clay_relay.jobs import (
    ClayRowJob,
    DeliveryJob,
    DirectusPatchJob,
    LoopsContactJob,
    LoopsEventJob,
    SlackMessageJob,
    ZapierPostJob,
    parse_job,
)
from clay_relay.observability import count, logger
from clay_relay.outbound import Outcome
from clay_relay.pacing import PACER
from clay_relay.settings import get_settings
from clay_relay.store import RelayTable

SAFETY_SECONDS = 10  # never wait for a pace slot into the last seconds of the function's timeout
MAX_PACE_WAIT_SECONDS = 5  # a longer pause (e.g. a Retry-After) is waited out on the queue, not in Lambda


class RetryLater(Exception):
    """Raised for a record whose delivery failed and will be tried again."""


@dataclass
class Plan:
    """What this batch does with one message."""

    record: dict
    job: DeliveryJob | None = None
    attempts: int = 1
    settled: str | None = None  # "duplicate", "dead-lettered" or "held": nothing left to deliver
    failure: str | None = None  # failed before delivery (e.g. quota or claim unavailable)
    webhook: ClayWebhook | None = None

    @property
    def message_id(self) -> str:
        return self.record["messageId"]


def backoff_seconds(attempts: int, policy: DeliveryPolicy, retry_after: float | None = None) -> int:
    """Exponential backoff with equal jitter, never sooner than the destination asked."""
    ceiling = min(policy.max_backoff_seconds, policy.min_backoff_seconds * 2 ** max(0, attempts - 1))
    delay = random.uniform(ceiling / 2, ceiling)
    return math.ceil(max(delay, retry_after or 0))


@dataclass
class DeliveryRun:
    records: list[dict]
    config: RelayConfig
    table: RelayTable = field(default_factory=RelayTable)
    queue: DeliveryQueue = field(default_factory=DeliveryQueue)
    plans: dict[str, Plan] = field(default_factory=dict)
    retry_delays: dict[str, int] = field(default_factory=dict)
    dead_letters: dict[str, DeadLetter] = field(default_factory=dict)
    held: dict[str, DeliveryJob] = field(default_factory=dict)
    unsent: dict[str, tuple[ClayWebhook, int]] = field(default_factory=dict)
    workers: int = 1
    seconds_left: Callable[[], float] = lambda: float("inf")

    @property
    def policy(self) -> DeliveryPolicy:
        return self.config.delivery

    # --- 1 and 2: claims and quota ---------------------------------------------------------------
    def prepare(self) -> None:
        for record in self.records:
            plan = Plan(record, attempts=int(record.get("attributes", {}).get("ApproximateReceiveCount", "1")))
            self.plans[plan.message_id] = plan
            try:
                plan.job = parse_job(record["body"])
            except ValidationError as error:
                self._dead_letter(plan, f"unreadable job: {error.errors()[0]['msg']}", "unknown", "unknown")
                continue
            try:
                if not self.table.claim(plan.job.event_id, plan.job.job_id, plan.job.dedupe_window_seconds):
                    plan.settled = "duplicate"
                    count("DuplicatesSkipped", destination=plan.job.destination)
            except Exception as error:  # noqa: BLE001 - any failure here means 'try again later'
                plan.failure = f"could not claim the event: {type(error).__name__}"
        self._reserve_clay_quota()

    def _reserve_clay_quota(self) -> None:
        by_target: dict[str, list[Plan]] = defaultdict(list)
        for plan in self.plans.values():
            if isinstance(plan.job, ClayRowJob) and not plan.settled and not plan.failure:
                by_target[plan.job.target].append(plan)
        for target_name, plans in by_target.items():
            target = self.config.clay_targets.get(target_name)
            if target is None:
                for plan in plans:
                    self._dead_letter(plan, f"clay target {target_name!r} is not configured")
                continue
            try:
                allocations = ClayQuota(self.table).allocate(target_name, target, len(plans))
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
                for _ in range(allocation.count):
                    next(waiting).webhook = allocation.webhook
            for plan in waiting:
                self._hold(plan, target_name)

    # --- 3: delivery (the BatchProcessor's record handler) ---------------------------------------
    def deliver(self, record: SQSRecord) -> None:
        plan = self.plans[record.message_id]
        if plan.settled:
            return
        if plan.failure:
            self._retry_or_give_up(plan, plan.failure, retry_after=None)
            return
        destination = plan.job.destination
        pause = PACER.delay(destination)
        if pause > min(MAX_PACE_WAIT_SECONDS, self.seconds_left() - SAFETY_SECONDS):
            self._not_sent(plan)
            self._retry_or_give_up(plan, f"{destination} asked to slow down", retry_after=pause)
            return
        PACER.wait(destination, self.policy.rates_per_second[destination], self.workers)
        try:
            outcome = self._send(plan)
        except Exception as error:  # noqa: BLE001 - a bug must not lose the event either
            logger.exception("unexpected error while delivering")
            outcome = Outcome(delivered=False, retryable=True, reason=f"unexpected error: {type(error).__name__}")
        self._settle(plan, outcome)

    def _send(self, plan: Plan) -> Outcome:
        job = plan.job
        if isinstance(job, ClayRowJob):
            return send_row(self.config.clay_targets[job.target], plan.webhook, job.row)
        if isinstance(job, LoopsEventJob):
            return loops.send_event(job, self.config.loops_api)
        if isinstance(job, LoopsContactJob):
            return loops.update_contact(job, self.config.loops_api)
        callback = self.config.clay_callback
        settings = {
            SlackMessageJob: callback and callback.slack,
            ZapierPostJob: callback and callback.zapier,
            DirectusPatchJob: callback and callback.directus_writeback,
        }[type(job)]
        if not settings:
            return Outcome(delivered=False, retryable=False, reason=f"{job.kind} is no longer configured")
        if isinstance(job, SlackMessageJob):
            return hooks.post_to_hook(settings.webhook_secret, {"text": job.text})
        if isinstance(job, ZapierPostJob):
            return hooks.post_to_hook(settings.webhook_secret, job.payload)
        return directus.write_back(job, settings)

    def _settle(self, plan: Plan, outcome: Outcome) -> None:
        job = plan.job
        if outcome.retry_after:
            PACER.pause(job.destination, outcome.retry_after)
        if outcome.delivered:
            count("Delivered", destination=job.destination)
            logger.info(
                "delivered",
                extra={
                    "event_id": job.event_id,
                    "destination": job.destination,
                    "kind": job.kind,
                    "attempt": plan.attempts,
                    "status": outcome.status,
                },
            )
            return
        if not outcome.reached:
            self._not_sent(plan)
        if not outcome.retryable:
            self._dead_letter(plan, f"{job.destination} answered {outcome.reason}")
            return
        self._retry_or_give_up(plan, f"{job.destination}: {outcome.reason}", retry_after=outcome.retry_after)

    def _not_sent(self, plan: Plan) -> None:
        """A Clay row that never reached Clay gives its reserved submission back (in finish())."""
        if isinstance(plan.job, ClayRowJob) and plan.webhook is not None:
            webhook, unsent = self.unsent.get(plan.webhook.webhook_id, (plan.webhook, 0))
            self.unsent[plan.webhook.webhook_id] = (webhook, unsent + 1)

    def _retry_or_give_up(self, plan: Plan, reason: str, retry_after: float | None) -> None:
        if plan.attempts >= self.policy.max_attempts:
            self._dead_letter(plan, f"gave up after {plan.attempts} attempts; last error: {reason}")
            return
        delay = backoff_seconds(plan.attempts, self.policy, retry_after)
        self.retry_delays[plan.record["receiptHandle"]] = delay
        count("DeliveryRetried", destination=plan.job.destination if plan.job else "unknown")
        logger.warning(
            "delivery failed, will retry",
            extra={
                "event_id": plan.job.event_id if plan.job else None,
                "attempt": plan.attempts,
                "retry_in_seconds": delay,
                "reason": reason,
            },
        )
        raise RetryLater(reason)

    def _dead_letter(self, plan: Plan, reason: str, destination: str | None = None, origin: str | None = None) -> None:
        plan.settled = "dead-lettered"
        job = plan.job
        self.dead_letters[plan.message_id] = DeadLetter(
            body=plan.record["body"],
            reason=reason,
            attempts=plan.attempts,
            destination=destination or (job.destination if job else "unknown"),
            origin=origin or (job.origin if job else "unknown"),
        )
        count("DeadLettered", destination=destination or (job.destination if job else "unknown"))
        logger.error(
            "moved to the dead-letter queue", extra={"event_id": job.event_id if job else None, "reason": reason}
        )

    def _hold(self, plan: Plan, target_name: str) -> None:
        plan.settled = "held"
        self.held[plan.message_id] = plan.job.model_copy(update={"holds": plan.job.holds + 1})
        count("HeldForQuota", destination="clay")
        logger.warning(
            "every Clay webhook URL of the target is used up: row held until a URL is added",
            extra={"event_id": plan.job.event_id, "target": target_name, "holds": plan.job.holds + 1},
        )

    # --- 4: settle in batch calls ----------------------------------------------------------------
    def finish(self, response: dict) -> dict:
        failures = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
        if self.held:
            try:
                self.queue.enqueue(list(self.held.values()), delay_seconds=self.policy.hold_seconds)
            except Exception:  # noqa: BLE001 - they stay on the queue and come back
                logger.exception("could not re-queue held rows; they return after the visibility timeout")
                failures.update(self.held)
        if self.dead_letters:
            try:
                self.queue.dead_letter(list(self.dead_letters.values()))
            except Exception:  # noqa: BLE001
                logger.exception("could not write to the dead-letter queue; messages stay on the queue")
                failures.update(self.dead_letters)
        if self.retry_delays:
            try:
                self.queue.retry_later(self.retry_delays)
            except Exception:  # noqa: BLE001 - they come back after the queue's visibility timeout
                logger.exception("could not set retry delays")
        for webhook, unsent in self.unsent.values():
            try:
                ClayQuota(self.table).give_back(webhook, unsent)
            except Exception:  # noqa: BLE001 - only costs quota, never an event
                logger.exception("could not give back unused Clay submissions")
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in sorted(failures)]}


def handle_batch(event: dict, context: object) -> dict:
    records = event.get("Records", [])
    settings = get_settings()
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    run = DeliveryRun(
        records,
        load_config(settings.config_path),
        workers=settings.worker_max_concurrency,
        seconds_left=(lambda: remaining() / 1000) if remaining else (lambda: float("inf")),
    )
    run.prepare()
    # A processor per batch: it holds the batch's state while processing.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    with processor(records=records, handler=run.deliver, lambda_context=context):
        processor.process()
    return run.finish(processor.response())
