"""Delivering the batch: each lane (a destination; for Clay, a workspace) in its own thread, so that
a slow or failing one never holds up the others.

Within a lane, jobs go in turn, paced to the destination's rate. A lane that asked to slow down
(429, Retry-After) is paused and its jobs deferred; one that is down (timeouts, 5xx) is left alone
for a while (circuit breaker), its jobs parked until it is back (worker.parking); and no request
starts that could outlast the invocation (the deadline guard): those jobs come back later instead
of being cut off mid-request.
"""

from __future__ import annotations

import contextvars
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from clay_relay.backoff import throttle_seconds
from clay_relay.clay import ClayQuota, says_used_up
from clay_relay.config import RelayConfig
from clay_relay.jobs import ClayRowJob, DeliveryJob, LoopsForwardJob
from clay_relay.observability import logger
from clay_relay.outbound import Outcome
from clay_relay.runtime import Runtime
from clay_relay.worker.batch import Batch, Plan
from clay_relay.worker.claims import claim_event
from clay_relay.worker.destinations import deliver

SAFETY_SECONDS = 5  # time kept to settle the batch after the last request's timeout
MAX_PACE_WAIT_SECONDS = 5  # a longer pause (e.g. a Retry-After) is waited out on the queue, not in Lambda


@dataclass(frozen=True)
class Deadline:
    """The invocation's time left, against the longest one request can take (the outbound timeout)."""

    seconds_left: Callable[[], float]
    request_seconds: float

    @classmethod
    def of(cls, context: object, request_seconds: float) -> Deadline:
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        return cls((lambda: remaining() / 1000) if remaining else (lambda: float("inf")), request_seconds)

    def too_close(self) -> bool:
        """A request started now (after the longest pacing wait) might not be settled in time."""
        return self.seconds_left() < MAX_PACE_WAIT_SECONDS + self.request_seconds + SAFETY_SECONDS


def lane_of(job: DeliveryJob, config: RelayConfig) -> str:
    """What is paced and left alone as one: a Clay workspace (its tables share its rate), each
    endpoint Loops' events are forwarded to, else the destination (one Loops team, one Slack, ...)."""
    if isinstance(job, LoopsForwardJob):
        return f"forward:{job.endpoint}"
    target = config.clay_targets.get(job.target) if isinstance(job, ClayRowJob) else None
    return f"clay:{target.workspace}" if target else job.destination


def deliver_by_lane(batch: Batch, runtime: Runtime, deadline: Deadline) -> None:
    by_lane: dict[str, list[Plan]] = defaultdict(list)
    for plan in batch.plans.values():
        if plan.open:
            by_lane[lane_of(plan.parsed, runtime.config)].append(plan)
    if len(by_lane) <= 1:
        for lane, plans in by_lane.items():
            deliver_in_turn(batch, lane, plans, runtime, deadline)
        return
    with ThreadPoolExecutor(len(by_lane), thread_name_prefix="delivery") as pool:
        # Each thread keeps the invocation's context (its log keys).
        futures = [
            pool.submit(contextvars.copy_context().run, deliver_in_turn, batch, lane, plans, runtime, deadline)
            for lane, plans in by_lane.items()
        ]
    for future in futures:
        future.result()


def deliver_in_turn(batch: Batch, lane: str, plans: list[Plan], runtime: Runtime, deadline: Deadline) -> None:
    for plan in plans:
        try:
            deliver_plan(batch, lane, plan, runtime, deadline)
        except Exception as error:  # noqa: BLE001 - a bug must not lose the event, nor stop the others
            # Only this job is retried: the destination is not to blame (no breaker), and a job
            # claimed as `sending` stays unconfirmed, as the request may have gone out.
            logger.exception("unexpected error while delivering")
            batch.retry(plan, f"unexpected error: {type(error).__name__}")


def deliver_plan(batch: Batch, lane: str, plan: Plan, runtime: Runtime, deadline: Deadline) -> None:
    failure = plan.failure  # a local, so mypy keeps plan.failure open: claim_event below may set it
    if failure:
        batch.retry(plan, failure)
        return
    job, policy = plan.parsed, batch.policy
    if deadline.too_close():
        batch.defer(plan, "the worker ran out of time before sending it", 1)
        return
    if why := runtime.breaker.why_open(lane):
        if policy.park_when_down:
            batch.park(plan, lane, f"{job.destination} down, parked (last error: {why})")
        else:
            batch.defer(plan, f"{job.destination} unavailable, not attempted (last error: {why})", None)
        return
    pause = runtime.pacer.delay(lane)
    if pause > MAX_PACE_WAIT_SECONDS:
        batch.defer(plan, f"{job.destination} asked to slow down", throttle_seconds(pause, plan.attempts, policy))
        return
    runtime.pacer.wait(lane, policy.rates_per_second[job.destination], runtime.settings.worker_max_concurrency)
    if not job.repeat_is_harmless and not claim_event(batch, plan, runtime.table, runtime.config, sending=True):
        if plan.failure:
            batch.retry(plan, plan.failure)
        return
    take_outcome(batch, lane, plan, deliver(runtime.config, plan), runtime)


def take_outcome(batch: Batch, lane: str, plan: Plan, outcome: Outcome, runtime: Runtime) -> None:
    """What the destination's answer means for the job and for its lane."""
    job = plan.parsed
    if not job.repeat_is_harmless:
        settle_sending_claim(plan, outcome, runtime)
    if outcome.retry_after:
        runtime.pacer.pause(lane, outcome.retry_after)
    if isinstance(job, ClayRowJob) and plan.webhook and (target := runtime.config.clay_targets.get(job.target)):
        if says_used_up(target, outcome):
            ClayQuota(runtime.table, runtime.clay_used_up).used_up_by_answer(
                job.target, target, plan.webhook, outcome.reason
            )
            batch.move_on(plan, f"clay answered {outcome.reason}: that URL is used up, the row goes to the next one")
            return
    if outcome.delivered:
        runtime.breaker.close(lane)
        batch.delivered(plan, outcome.status)
        if batch.policy.park_when_down and (plan.attempts > 1 or runtime.breaker.look_due(lane)):
            batch.recovered.add(lane)  # it may hold parked jobs: released after settling (worker.parking)
        if outcome.note:
            plan.ledger_note = (outcome.note, outcome.reason)
        return
    if not outcome.reached:
        plan.unsent = True
    reason = f"{job.destination} answered {outcome.reason}"
    if not outcome.retryable:
        batch.dead_letter(plan, reason)
        if batch.policy.park_when_down and plan.attempts > 1 and outcome.status is not None:
            batch.recovered.add(lane)  # it answered: it is up, whatever it thought of this job
    elif outcome.throttled:
        batch.defer(plan, reason, throttle_seconds(outcome.retry_after or 1.0, plan.attempts, batch.policy))
    elif outcome.unavailable and batch.policy.park_when_down and not outcome.retry_after:
        # Down: this job and the lane's next ones are parked until a probe finds it back.
        runtime.breaker.trip(lane, batch.policy.probe_seconds / 2, outcome.reason)
        batch.park(plan, lane, reason, failed=True)
    else:
        if outcome.unavailable:
            # Until the earliest a retry can come back (half the first backoff).
            runtime.breaker.trip(lane, batch.policy.min_backoff_seconds / 2, outcome.reason)
        batch.retry(plan, reason, outcome.retry_after)


def settle_sending_claim(plan: Plan, outcome: Outcome, runtime: Runtime) -> None:
    """For a job claimed as `sending`: settle the claim when the outcome is known. A request that
    may have arrived (timed out waiting for the answer) stays unconfirmed."""
    try:
        if outcome.delivered:
            runtime.table.mark_delivered(plan.parsed.event_id)
        elif not outcome.reached or outcome.status is not None:
            runtime.table.release(plan.parsed.event_id)
    except Exception:  # noqa: BLE001 - the next attempt then finds it unconfirmed: dead-lettered, not sent twice
        logger.exception("could not record the outcome of a delivery", extra={"event_id": plan.parsed.event_id})
