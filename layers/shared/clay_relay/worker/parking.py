"""Parking: while a destination is down, its jobs wait hidden on the queue instead of each retrying on
its own schedule, and when it is back they are released oldest first, at its rate.

- A lane (clay_relay.worker.lanes) is down when a request to it timed out, was refused or answered
  `5xx`: its circuit breaker opens, and while it is open this worker parks the lane's jobs without
  trying them. A parked job's message is hidden for `park_seconds` (or until its retry horizon ends)
  and its receipt handle recorded: per batch, one update of the lane's state and one batch write per
  25 jobs. Parking costs a job one receive, whatever the length of the outage.
- One parked job per lane is the probe: hidden only `probe_seconds`, it tries the lane when it comes
  back, and is parked again (still the probe) when the lane is still down.
- A delivery that goes well on a lane that may hold parked jobs (its job was received before, this
  instance tripped the lane, or has not looked for a minute) reads the lane's state. When jobs are
  parked, the first such worker takes the release: the oldest jobs, up to a minute's worth at the
  lane's rate, are made visible one after the other at that rate, and their entries deleted; the
  next delivery that goes well after that minute releases the next ones.
Parking never takes a message off the queue: a job whose release fails (a worker stopped mid-way)
comes back when its hiding ends, and a job that comes back twice is still delivered once (its claim).
"""

from __future__ import annotations

import math
import time
from typing import cast

from clay_relay.config import DeliveryPolicy
from clay_relay.jobs import Destination
from clay_relay.observability import MetricUnit, count, gauge, logger
from clay_relay.runtime import Runtime
from clay_relay.store import RelayTable
from clay_relay.store.parking import ParkedJob
from clay_relay.worker.batch import Batch, Plan, Settlement
from clay_relay.worker.lanes import lane_of

RELEASE_SPAN_SECONDS = 60  # one release lets go of at most this long's worth of jobs at the lane's rate
RELEASE_LEASE_SECONDS = 30  # a release whose worker stopped is taken over after this
RELEASE_TIME_NEEDED = 10  # seconds of the invocation a release may take
# How a job can end without a request to its lane: a parked job ending so may have been its lane's probe.
UNTRIED = (Settlement.DUPLICATE, Settlement.SKIPPED, Settlement.SHADOWED, Settlement.GONE, Settlement.HELD)


def destination_of(lane: str) -> Destination:
    """`clay:<workspace>` → clay, `forward:<endpoint>` → forward, else the lane is the destination."""
    return cast("Destination", lane.split(":", 1)[0])  # lanes are named after their destination


def hidden_seconds(plan: Plan, policy: DeliveryPolicy, now: float) -> int:
    """How long a parked job stays hidden: `park_seconds`, or until its retry horizon ends."""
    horizon_left = plan.parsed.horizon_start + policy.retry_horizon_seconds - now
    return max(1, min(policy.park_seconds, math.ceil(horizon_left)))


def settle_parked(batch: Batch, table: RelayTable) -> None:
    """Each lane's parked jobs: the lane marked down (and its probe claimed, if due), their receipts
    recorded, and how long each stays hidden. A lane whose parking cannot be recorded keeps its
    jobs' backoff delays: they come back on their own, as without parking."""
    policy, now = batch.policy, time.time()
    for lane, plans in batch.parked.items():
        plans.sort(key=lambda plan: plan.parsed.accepted_at)
        reason = plans[0].retry_reason or "down"
        delays = {plan.record["receiptHandle"]: hidden_seconds(plan, policy, now) for plan in plans}
        try:
            probe = table.mark_down(lane, reason, now, policy.probe_seconds)
            table.park(
                lane,
                [ParkedJob(plan.message_id, plan.record["receiptHandle"], plan.parsed.accepted_at) for plan in plans],
                now,
                max(delays.values()),
            )
        except Exception:  # noqa: BLE001 - they come back after their backoff instead
            logger.exception("could not park the jobs of a down lane; they retry on their own", extra={"lane": lane})
            continue
        if probe:  # the oldest tries the lane again in `probe_seconds`
            oldest = plans[0].record["receiptHandle"]
            delays[oldest] = min(policy.probe_seconds, delays[oldest])
        batch.retry_delays.update(delays)
        gauge("DestinationDown", 1, MetricUnit.Count, destination=destination_of(lane), breakdown=_breakdown(lane))
        logger.warning(
            "destination down: jobs parked until it is back",
            extra={"lane": lane, "parked": len(plans), "probe": probe, "reason": reason},
        )


def release_recovered(batch: Batch, runtime: Runtime, seconds_left: float) -> None:
    """Release the parked jobs of the lanes a delivery went well on (not those that went down again);
    pass the probe on for the lanes whose job, received before, ended without trying its lane."""
    back = batch.recovered - batch.parked.keys()
    unsure = {
        lane_of(plan.parsed, runtime.config)
        for plan in batch.plans.values()
        if plan.attempts > 1 and plan.job is not None and plan.settlement in UNTRIED
    }
    for lane in sorted(back | unsure - batch.parked.keys()):
        if seconds_left < RELEASE_TIME_NEEDED:
            logger.info("no time left to release parked jobs; the next good delivery does", extra={"lane": lane})
            return
        try:
            if lane in back:
                release_lane(lane, runtime, set(batch.plans))
            else:
                pass_probe(lane, runtime, set(batch.plans))
        except Exception:  # noqa: BLE001 - they stay parked: the next delivery that goes well releases them
            logger.exception("could not release the parked jobs of a lane", extra={"lane": lane})


def pass_probe(lane: str, runtime: Runtime, in_hand: set[str]) -> None:
    """The job that came back ended without trying its lane (a duplicate, a row not sent): should it
    have been the probe of a lane still down, the oldest parked job becomes the probe, now."""
    table, now = runtime.table, time.time()
    state = table.lane_state(lane)
    if state is None or state.down_since is None or state.probe_until > now:
        return
    oldest = [job for job in table.parked(lane, len(in_hand) + 1) if job.message_id not in in_hand][:1]
    if oldest and table.mark_down(lane, state.reason, now, runtime.config.delivery.probe_seconds):
        runtime.queue.retry_later({oldest[0].receipt: 0})
        logger.info("the probe of a down lane passed on to its oldest parked job", extra={"lane": lane})


def release_lane(lane: str, runtime: Runtime, in_hand: set[str]) -> int:
    """Let go of the lane's oldest parked jobs, spaced at its rate; how many. Those `in_hand` (this
    batch's messages: the probe, jobs that came back by themselves) are only struck off."""
    table, now = runtime.table, time.time()
    state = table.lane_state(lane)
    if state is None or not state.has_parked(now) or not table.start_release(lane, now, RELEASE_LEASE_SECONDS):
        return 0
    destination = destination_of(lane)
    rate = runtime.config.delivery.rates_per_second[destination]
    at_most = max(1, int(rate * RELEASE_SPAN_SECONDS))
    jobs = table.parked(lane, at_most + len(in_hand) + 1)
    struck = [job for job in jobs if job.message_id in in_hand]
    jobs = [job for job in jobs if job.message_id not in in_hand]
    release, more = jobs[:at_most], len(jobs) > at_most
    # One after the other at the lane's rate, oldest first: the workers pace them, and the queue stays
    # open to the other lanes' jobs.
    refused = runtime.queue.retry_later({job.receipt: int(i / rate) for i, job in enumerate(release)})
    table.unpark(lane, [job.message_id for job in struck + release])
    table.end_release(lane, now + len(release) / rate, more)
    gauge("DestinationDown", 0, MetricUnit.Count, destination=destination, breakdown=_breakdown(lane))
    count("ParkedJobsReleased", len(release), destination=destination)
    down_for = f"{now - state.down_since:.0f} s" if state.down_since else "unknown"
    logger.info(
        "destination back: parked jobs released",
        extra={"lane": lane, "released": len(release), "more": more, "down_for": down_for, "came_back": len(refused)},
    )
    return len(release)


def _breakdown(lane: str) -> dict[str, str]:
    return {"lane": lane} if lane != destination_of(lane) else {}
