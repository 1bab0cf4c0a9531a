"""The delivery worker: carries out a batch of queued jobs (Clay rows; Loops events and contacts,
Slack messages, Zapier posts, Directus write-backs), reporting partial failures.

For a batch it:
0. puts the rows of a bundle (one event's thousands of rows, see intake) on the queue one by one,
1. claims each job's event (one conditional put each; a second copy of an event is skipped);
   jobs whose repeat would show (Slack, Zapier) are claimed just before their request instead,
2. reserves Clay submissions for all rows of a target in one conditional update per URL,
3. delivers the jobs, each lane (a destination; for Clay, a workspace) in its own thread so that a
   slow or failing one never holds up the others, paced to the destination's rate; a lane that
   asked to slow down is paused, one that is down is left alone for a while (circuit breaker),
4. reports each record through Powertools' BatchProcessor (one failing record never fails the others),
5. then, in batch calls: hides failed messages until their next attempt (exponential backoff with
   jitter, at least the destination's Retry-After), moves the hopeless and those past the retry
   horizon to the dead-letter queue with the reason, and re-queues rows held for lack of Clay quota;
   a batch in which a destination failed notes its last failure (`status#<destination>`, for
   `relay status`): one write per failing destination, none for a batch that went well.
Anything that cannot be settled is reported as a batch item failure, so SQS keeps it: an accepted
event is delivered or dead-lettered, never dropped.
"""

from __future__ import annotations

import contextvars
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import ValidationError

from clay_relay import directus, hooks, loops
from clay_relay.backoff import backoff_seconds, throttle_seconds
from clay_relay.clay import ClayPoolUnavailable, ClayQuota, ClayWebhook, send_row
from clay_relay.config import DeliveryPolicy, RelayConfig, load_config
from clay_relay.delivery_queue import DeadLetter, DeliveryQueue
from clay_relay.jobs import (
    ClayRowBundle,
    ClayRowJob,
    DeliveryJob,
    DirectusPatchJob,
    LoopsContactJob,
    LoopsEventJob,
    SlackMessageJob,
    ZapierPostJob,
    parse_job,
)
from clay_relay.observability import count, logger, mask_email
from clay_relay.outbound import Outcome
from clay_relay.pacing import BREAKER, PACER
from clay_relay.settings import get_settings
from clay_relay.store import Claim, Failure, RelayTable

SAFETY_SECONDS = 5  # time kept to settle the batch after the last request's timeout
MAX_PACE_WAIT_SECONDS = 5  # a longer pause (e.g. a Retry-After) is waited out on the queue, not in Lambda


class RetryLater(Exception):
    """Raised for a record whose delivery failed and will be tried again."""


@dataclass
class Plan:
    """What this batch does with one message."""

    record: dict
    job: DeliveryJob | None = None
    attempts: int = 1
    settled: str | None = None  # "delivered", "duplicate", "dead-lettered" or "held": nothing left to do
    failure: str | None = None  # failed before delivery (e.g. quota or claim unavailable)
    webhook: ClayWebhook | None = None
    retry_reason: str | None = None  # set when the message comes back later
    unsent: bool = False  # a reserved Clay submission that never reached Clay

    @property
    def message_id(self) -> str:
        return self.record["messageId"]

    @property
    def replayed(self) -> bool:
        """Moved back from the dead-letter queue by an operator (it still carries its `reason`)."""
        return "reason" in (self.record.get("messageAttributes") or {})


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds:.0f} s"


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
    unbundled: dict[str, list[ClayRowJob]] = field(default_factory=dict)  # message id → its rows, queued one by one
    failures: dict[str, Failure] = field(default_factory=dict)  # destination → its last failure in this batch
    workers: int = 1
    request_seconds: float = 10.0  # the longest one request can take (the outbound timeout)
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
            if isinstance(plan.job, ClayRowBundle):
                # Each unpacking is a new acceptance of the rows: should a bundle come back after
                # its rows were queued, the second copies are duplicates to the worker's claims.
                plan.settled = "unbundled"
                self.unbundled[plan.message_id] = [
                    row.model_copy(update={"job_id": uuid.uuid4().hex}) for row in plan.job.rows
                ]
                continue
            if plan.job.repeat_is_harmless:
                self._claim(plan)
        self._reserve_clay_quota()

    def _claim(self, plan: Plan, *, sending: bool = False) -> bool:
        """Claims the plan's event; False when there is nothing to send (settled or failed)."""
        job = plan.job
        try:
            claim = self.table.claim(
                job.event_id, job.job_id, job.dedupe_window_seconds, sending=sending, replayed=plan.replayed
            )
        except Exception as error:  # noqa: BLE001 - any failure here means 'try again later'
            plan.failure = f"could not claim the event: {type(error).__name__}"
            return False
        if claim is Claim.DUPLICATE or claim is Claim.DELIVERED:
            plan.settled = "duplicate"
            count("DuplicatesSkipped", destination=job.destination)
        elif claim is Claim.UNCONFIRMED:
            self._dead_letter(
                plan,
                f"unconfirmed: the worker stopped while sending it, or {job.destination} did not answer in time; "
                f"it may have arrived: check {job.destination}, and replay it if it did not",
            )
        return claim is Claim.OWNED

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

    # --- 3: delivery, one thread per lane ---------------------------------------------------------
    def lane(self, job: DeliveryJob) -> str:
        """What is paced and left alone as one: a Clay workspace (its tables share its rate), else
        the destination (one Loops team, one Slack, ...)."""
        target = self.config.clay_targets.get(job.target) if isinstance(job, ClayRowJob) else None
        return f"clay:{target.workspace}" if target else job.destination

    def deliver_all(self) -> None:
        by_lane: dict[str, list[Plan]] = defaultdict(list)
        for plan in self.plans.values():
            if not plan.settled:
                by_lane[self.lane(plan.job)].append(plan)
        if len(by_lane) <= 1:
            for plans in by_lane.values():
                self._deliver_in_turn(plans)
            return
        with ThreadPoolExecutor(len(by_lane), thread_name_prefix="delivery") as pool:
            # Each thread keeps the invocation's context (its log keys).
            futures = [
                pool.submit(contextvars.copy_context().run, self._deliver_in_turn, plans) for plans in by_lane.values()
            ]
        for future in futures:
            future.result()

    def _deliver_in_turn(self, plans: list[Plan]) -> None:
        for plan in plans:
            try:
                self._deliver(plan)
            except Exception as error:  # noqa: BLE001 - a bug must not lose the event, nor stop the others
                # Only this job is retried: the destination is not to blame (no breaker), and a job
                # claimed as `sending` stays unconfirmed, as the request may have gone out.
                logger.exception("unexpected error while delivering")
                self._retry(plan, f"unexpected error: {type(error).__name__}", None)

    def _deliver(self, plan: Plan) -> None:
        if plan.failure:
            self._retry(plan, plan.failure, None)
            return
        job = plan.job
        destination, lane = job.destination, self.lane(job)
        if self.seconds_left() < MAX_PACE_WAIT_SECONDS + self.request_seconds + SAFETY_SECONDS:
            self._defer(plan, "the worker ran out of time before sending it", 1)
            return
        if why := BREAKER.why_open(lane):
            self._defer(plan, f"{destination} unavailable, not attempted (last error: {why})", None)
            return
        pause = PACER.delay(lane)
        if pause > MAX_PACE_WAIT_SECONDS:
            self._defer(plan, f"{destination} asked to slow down", throttle_seconds(pause, plan.attempts, self.policy))
            return
        PACER.wait(lane, self.policy.rates_per_second[destination], self.workers)
        if not job.repeat_is_harmless and not self._claim(plan, sending=True):
            if plan.failure:
                self._retry(plan, plan.failure, None)
            return
        self._settle(plan, self._send(plan))

    def _send(self, plan: Plan) -> Outcome:
        job = plan.job
        if isinstance(job, ClayRowJob):
            return send_row(self.config.clay_targets[job.target], plan.webhook, job.row, job.event_id)
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
            return Outcome(
                delivered=False, retryable=False, reason=f"{job.kind} is no longer configured", reached=False
            )
        if isinstance(job, SlackMessageJob):
            return hooks.post_to_hook(settings.webhook_secret, {"text": job.text}, event_id=job.event_id)
        if isinstance(job, ZapierPostJob):
            return hooks.post_to_hook(settings.webhook_secret, job.payload, event_id=job.event_id)
        return directus.write_back(job, settings)

    def _settle(self, plan: Plan, outcome: Outcome) -> None:
        job = plan.job
        if not job.repeat_is_harmless:
            self._record_outcome(plan, outcome)
        lane = self.lane(job)
        if outcome.retry_after:
            PACER.pause(lane, outcome.retry_after)
        if outcome.delivered:
            plan.settled = "delivered"
            BREAKER.close(lane)
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
            plan.unsent = True
        reason = f"{job.destination} answered {outcome.reason}"
        if not outcome.retryable:
            self._dead_letter(plan, reason)
        elif outcome.throttled:
            self._defer(plan, reason, throttle_seconds(outcome.retry_after or 1.0, plan.attempts, self.policy))
        else:
            if outcome.unavailable:
                # Until the earliest a retry can come back (half the first backoff).
                BREAKER.trip(lane, self.policy.min_backoff_seconds / 2, outcome.reason)
            self._retry(plan, reason, outcome.retry_after)

    def _record_outcome(self, plan: Plan, outcome: Outcome) -> None:
        """For a job claimed as `sending`: settle the claim when the outcome is known. A request
        that may have arrived (timed out waiting for the answer) stays unconfirmed."""
        try:
            if outcome.delivered:
                self.table.mark_delivered(plan.job.event_id)
            elif not outcome.reached or outcome.status is not None:
                self.table.release(plan.job.event_id)
        except Exception:  # noqa: BLE001 - the next attempt then finds it unconfirmed: dead-lettered, not sent twice
            logger.exception("could not record the outcome of a delivery", extra={"event_id": plan.job.event_id})

    def _defer(self, plan: Plan, reason: str, delay: int | None) -> None:
        """Not attempted now (rate limit, circuit open, no time left): back later; spends no attempt
        beyond the message's receive, only time within the horizon."""
        if isinstance(plan.job, ClayRowJob):
            plan.unsent = True
        self._retry(plan, reason, None, delay=delay, metric="DeliveryDeferred")

    def _retry(
        self,
        plan: Plan,
        reason: str,
        retry_after: float | None,
        *,
        delay: int | None = None,
        metric: str = "DeliveryRetried",
    ) -> None:
        age = time.time() - plan.job.accepted_at
        if age >= self.policy.retry_horizon_seconds:
            self._dead_letter(plan, f"gave up after {plan.attempts} attempts in {_duration(age)}; last error: {reason}")
            return
        delay = delay if delay is not None else backoff_seconds(plan.attempts, self.policy, retry_after)
        self.retry_delays[plan.record["receiptHandle"]] = delay
        plan.retry_reason = reason
        if metric == "DeliveryRetried":  # a failure; a deferral (rate limit, no time left) is not one
            self.failures[plan.job.destination] = Failure(mask_email(reason), "retrying", plan.job.origin, time.time())
        count(metric, destination=plan.job.destination)
        logger.warning(
            "not delivered yet, will retry",
            extra={
                "event_id": plan.job.event_id,
                "attempt": plan.attempts,
                "retry_in_seconds": delay,
                "reason": reason,
            },
        )

    def _dead_letter(self, plan: Plan, reason: str, destination: str | None = None, origin: str | None = None) -> None:
        plan.settled = "dead-lettered"
        job = plan.job
        destination = destination or job.destination
        self.dead_letters[plan.message_id] = DeadLetter(
            body=plan.record["body"],
            reason=reason,
            attempts=plan.attempts,
            destination=destination,
            origin=origin or job.origin,
        )
        self.failures[destination] = Failure(mask_email(reason), "dead-lettered", origin or job.origin, time.time())
        count("DeadLettered", destination=destination)
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

    # --- 4: the BatchProcessor's record handler --------------------------------------------------
    def report(self, record: SQSRecord) -> None:
        if reason := self.plans[record.message_id].retry_reason:
            raise RetryLater(reason)

    # --- 5: settle in batch calls ----------------------------------------------------------------
    def finish(self, response: dict) -> dict:
        failures = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
        for message_id, rows in self.unbundled.items():
            try:
                self.queue.enqueue(rows)
            except Exception:  # noqa: BLE001 - the bundle comes back; rows queued twice are claimed once
                logger.exception("could not queue the rows of a bundle; it comes back after the visibility timeout")
                failures.add(message_id)
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
        if self.failures:
            try:
                self.table.note_failures(self.failures)
            except Exception:  # noqa: BLE001 - only `relay status` misses it
                logger.exception("could not note the destinations' last failures")
        unsent: dict[str, list[ClayWebhook]] = defaultdict(list)
        for plan in self.plans.values():
            if plan.unsent and plan.webhook is not None:
                unsent[plan.webhook.webhook_id].append(plan.webhook)
        for webhooks in unsent.values():
            try:
                ClayQuota(self.table).give_back(webhooks[0], len(webhooks))
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
        request_seconds=settings.outbound_timeout_seconds,
        seconds_left=(lambda: remaining() / 1000) if remaining else (lambda: float("inf")),
    )
    run.prepare()
    run.deliver_all()
    # A processor per batch: it holds the batch's state while processing.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    with processor(records=records, handler=run.report, lambda_context=context):
        processor.process()
    return run.finish(processor.response())
