"""The plan of a batch: what the worker does with each message, and what it has to settle at the end.

Each message ends in one `Settlement` or comes back later (a `Postponement`). Deciding is cheap and
happens as the batch goes; the queue and table calls that carry the decisions out are made once, in
batch calls, at the end (`settlement.settle_batch`).
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from clay_relay.backoff import backoff_seconds
from clay_relay.clay import ClayWebhook
from clay_relay.config import DeliveryPolicy
from clay_relay.delivery_queue import DeadLetter
from clay_relay.jobs import ClayRowJob, DeliveryJob
from clay_relay.observability import count, logger, mask_email
from clay_relay.store import Failure

if TYPE_CHECKING:
    from typing import Any, NotRequired, TypedDict, TypeVar

    from clay_relay.ledger import Stage
    from clay_relay.ledger.entries import Scalar
    from clay_relay.spend.budget import Period

    JobKind = TypeVar("JobKind")  # one of the kinds of DeliveryJob

    class SqsRecord(TypedDict):
        """What the worker reads of a record of the SQS event (it does without the two attribute maps)."""

        messageId: str
        receiptHandle: str
        body: str
        attributes: NotRequired[dict[str, str]]
        messageAttributes: NotRequired[dict[str, Any]]


class Settlement(enum.Enum):
    """Nothing left to do for the message in this batch: it is deleted from the queue."""

    DELIVERED = "delivered"
    DUPLICATE = "duplicate"  # its event was claimed by another copy, or already delivered
    DEAD_LETTERED = "dead-lettered"  # hopeless, or past the retry horizon: in the DLQ with its reason
    HELD = "held"  # its target's budget, or every Clay URL of it, is used up: re-queued, delayed
    SKIPPED = "skipped"  # a Clay row not sent: its person already went to the target (spend guard)
    SHADOWED = "shadowed"  # a Clay row of a target in shadow mode: recorded, not sent
    UNBUNDLED = "unbundled"  # a bundle whose rows are queued one by one

    GONE = "gone"  # a Directus update whose item was deleted before its full row was read: recorded, not sent


class Postponement(enum.Enum):
    """The message comes back later (hidden until then): why decides what it costs."""

    RETRY = "DeliveryRetried"  # the delivery (or a step before it) failed: backoff, and a failure to note
    DEFERRAL = "DeliveryDeferred"  # not attempted (rate limit, circuit open, no time left): not a failure
    PARKED = "DeliveryParked"  # its destination is down: hidden until released (worker.parking)

    @property
    def metric(self) -> str:
        return self.value


@dataclass(frozen=True)
class Decision:
    """What the spend guard decided for a Clay row that is not sent: its stage in the ledger."""

    settlement: Settlement  # SKIPPED or SHADOWED
    stage: Stage
    detail: dict[str, Scalar]


@dataclass
class Plan:
    """What this batch does with one message."""

    record: SqsRecord
    job: DeliveryJob | None = None
    attempts: int = 1
    settlement: Settlement | None = None
    failure: str | None = None  # failed before delivery (e.g. quota or claim unavailable): retried
    webhook: ClayWebhook | None = None  # the Clay URL whose submission this row reserved
    postponement: Postponement | None = None
    retry_reason: str | None = None  # why it comes back later
    unsent: bool = False  # a reserved Clay submission that never reached Clay: given back
    refused_used_up: bool = False  # Clay said its URL takes no more: no row made (budget given back, not the URL's)
    submission: int | None = None  # the number of the Clay submission reserved for it on its URL
    dead_letter_reason: str | None = None
    ledger_note: tuple[str, str] | None = None  # delivered otherwise than its claim says: (note, why)
    decision: Decision | None = None  # the spend guard's, for a Clay row it does not send
    budget_period: Period | None = None  # the day its target's budget counted it in (given back if unsent)
    held_for_budget: bool = False

    @classmethod
    def of(cls, record: SqsRecord) -> Plan:
        return cls(record, attempts=int(record.get("attributes", {}).get("ApproximateReceiveCount", "1")))

    @property
    def message_id(self) -> str:
        return self.record["messageId"]

    @property
    def parsed(self) -> DeliveryJob:
        """The job, for every plan past reading: only an unreadable message (dead-lettered as it is
        read, see claims.plan_batch) has none."""
        if self.job is None:
            raise LookupError(f"message {self.message_id} has no job: it was unreadable")
        return self.job

    def job_as(self, kind: type[JobKind]) -> JobKind:
        """The job, known to be of `kind` (a destination's delivery function is picked by it)."""
        job = self.parsed
        if not isinstance(job, kind):
            raise TypeError(f"a {type(job).__name__} is no {kind.__name__}")
        return job

    @property
    def replayed(self) -> bool:
        """Moved back from the dead-letter queue by an operator (it still carries its `reason`)."""
        return "reason" in (self.record.get("messageAttributes") or {})

    @property
    def open(self) -> bool:
        """Still to be delivered (or retried) in this batch."""
        return self.settlement is None


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds:.0f} s"


@dataclass
class Batch:
    """The plans of one SQS batch, and what settling it takes. Lanes record into it from their own
    threads: each plan is touched by one thread only, and the shared dicts take single assignments."""

    policy: DeliveryPolicy
    plans: dict[str, Plan] = field(default_factory=dict)  # message id → its plan, in batch order
    retry_delays: dict[str, int] = field(default_factory=dict)  # receipt handle → seconds hidden
    dead_letters: dict[str, DeadLetter] = field(default_factory=dict)  # message id → its letter
    held: dict[str, DeliveryJob] = field(default_factory=dict)  # message id → the row to re-queue
    budget_held: dict[str, DeliveryJob] = field(default_factory=dict)  # the same, waiting for a budget
    unbundled: dict[str, list[ClayRowJob]] = field(default_factory=dict)  # message id → its rows
    failures: dict[str, Failure] = field(default_factory=dict)  # destination → its last failure here
    trips: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # round trips as read (spend guard)
    trips_written: dict[str, dict[str, Any]] = field(default_factory=dict)  # round trips as this batch wrote them
    parked: dict[str, list[Plan]] = field(default_factory=dict)  # lane → the plans parked on it
    recovered: set[str] = field(default_factory=set)  # lanes a delivery went well on, that may hold parked jobs

    def delivered(self, plan: Plan, status: int | None) -> None:
        job = plan.parsed
        plan.settlement = Settlement.DELIVERED
        count("Delivered", destination=job.destination)
        logger.info(
            "delivered",
            extra={
                "event_id": job.event_id,
                "destination": job.destination,
                "kind": job.kind,
                "attempt": plan.attempts,
                "status": status,
            },
        )

    def duplicate(self, plan: Plan) -> None:
        plan.settlement = Settlement.DUPLICATE
        count("DuplicatesSkipped", destination=plan.parsed.destination)

    def unbundle(self, plan: Plan, rows: list[ClayRowJob]) -> None:
        plan.settlement = Settlement.UNBUNDLED
        self.unbundled[plan.message_id] = rows

    def hold(self, plan: Plan, target_name: str, *, budget: bool = False) -> None:
        """The row waits, re-queued with a delay: for its target's budget (`budget`: until the next day
        or month, or a raise), or for a Clay URL with quota left, until one is added; past the hold
        horizon (from its acceptance, or the end of its wait for a budget) a row waiting for a URL is
        dead-lettered instead, saying how long it waited."""
        job = plan.job_as(ClayRowJob)
        if budget:
            plan.settlement, plan.held_for_budget = Settlement.HELD, True
            update = {"budget_held": True, "budget_held_at": time.time()}
            self.budget_held[plan.message_id] = job.model_copy(update=update)
            if not job.budget_held:
                count("HeldForBudget", destination="clay")
                logger.warning(
                    "the Clay target's budget is used up: row held until the next day or month, or a raise",
                    extra={"event_id": job.event_id, "target": target_name},
                )
            return
        waited = time.time() - job.horizon_start
        if waited >= self.policy.hold_horizon_seconds:
            self.dead_letter(
                plan,
                f"waited {_duration(waited)} for Clay quota (held {job.holds} times; hold_horizon_seconds is "
                f"{self.policy.hold_horizon_seconds}): every webhook URL of Clay target {target_name!r} is used up; "
                f"add one (relay clay add-webhook {target_name} URL), then replay it (relay dlq replay)",
            )
            return
        plan.settlement = Settlement.HELD
        self.held[plan.message_id] = job.model_copy(update={"holds": job.holds + 1, "budget_held": False})
        count("HeldForQuota", destination="clay")
        logger.warning(
            "every Clay webhook URL of the target is used up: row held until a URL is added",
            extra={"event_id": job.event_id, "target": target_name, "holds": job.holds + 1},
        )

    def decided(self, plan: Plan) -> None:
        """A Clay row the spend guard does not send (skipped as the same person, or shadowed)."""
        if plan.decision is None:
            raise LookupError(f"message {plan.message_id} has no decision of the spend guard")
        plan.settlement = plan.decision.settlement
        if plan.settlement is Settlement.SKIPPED:
            count("ClayRowsSkippedSamePerson", destination="clay")
        else:
            count("ClayRowsShadowed", destination="clay")
        logger.info(
            f"clay row {plan.settlement.value}",
            extra={"event_id": plan.parsed.event_id, **plan.decision.detail},
        )

    def dead_letter(self, plan: Plan, reason: str, destination: str | None = None, origin: str | None = None) -> None:
        """`destination` and `origin` name what an unreadable message (no job) is counted under."""
        plan.settlement, plan.dead_letter_reason = Settlement.DEAD_LETTERED, reason
        job = plan.job
        destination = destination or plan.parsed.destination
        origin = origin or plan.parsed.origin
        self.dead_letters[plan.message_id] = DeadLetter(
            body=plan.record["body"], reason=reason, attempts=plan.attempts, destination=destination, origin=origin
        )
        self.failures[destination] = Failure(mask_email(reason), "dead-lettered", origin, time.time())
        count("DeadLettered", destination=destination)
        logger.error(
            "moved to the dead-letter queue", extra={"event_id": job.event_id if job else None, "reason": reason}
        )

    def retry(self, plan: Plan, reason: str, retry_after: float | None = None) -> None:
        """Failed: back after an exponential backoff (at least the destination's Retry-After)."""
        self._postpone(plan, Postponement.RETRY, reason, None, retry_after)

    def defer(self, plan: Plan, reason: str, delay: int | None) -> None:
        """Not attempted now: back after `delay` (None: the backoff); spends no attempt beyond the
        message's receive, only time within the horizon. A deferred Clay row's submission is unused."""
        if isinstance(plan.job, ClayRowJob):
            plan.unsent = True
        self._postpone(plan, Postponement.DEFERRAL, reason, delay, None)

    def park(self, plan: Plan, lane: str, reason: str, *, failed: bool = False) -> None:
        """Its lane is down: hidden until released (`failed`: this job's own request failed). Settling
        decides how long (worker.parking); past the retry horizon it is dead-lettered instead."""
        if isinstance(plan.job, ClayRowJob) and not failed:
            plan.unsent = True
        self._postpone(plan, Postponement.PARKED, reason, None, None, failed=failed)
        if plan.postponement is Postponement.PARKED:
            self.parked.setdefault(lane, []).append(plan)

    def move_on(self, plan: Plan, reason: str) -> None:
        """Its Clay URL turned out to be used up: back in a second, for the next URL of the pool. Not
        a failure, and its submission is not given back (that URL has none left); the row its
        target's budget counted is (no row was made)."""
        plan.refused_used_up = True
        self._postpone(plan, Postponement.DEFERRAL, reason, 1, None)

    def _postpone(
        self,
        plan: Plan,
        kind: Postponement,
        reason: str,
        delay: int | None,
        retry_after: float | None,
        *,
        failed: bool = False,
    ) -> None:
        job = plan.parsed
        age = time.time() - job.horizon_start
        if age >= self.policy.retry_horizon_seconds:
            self.dead_letter(plan, f"gave up after {plan.attempts} attempts in {_duration(age)}; last error: {reason}")
            return
        delay = delay if delay is not None else backoff_seconds(plan.attempts, self.policy, retry_after)
        self.retry_delays[plan.record["receiptHandle"]] = delay
        plan.postponement, plan.retry_reason = kind, reason
        if kind is Postponement.RETRY or failed:
            self.failures[job.destination] = Failure(mask_email(reason), "retrying", job.origin, time.time())
        count(kind.metric, destination=job.destination)
        logger.warning(
            "parked while its destination is down" if kind is Postponement.PARKED else "not delivered yet, will retry",
            extra={"event_id": job.event_id, "attempt": plan.attempts, "retry_in_seconds": delay, "reason": reason},
        )

    def comes_back(self) -> set[str]:
        """Message ids that are to come back later: reported as batch item failures."""
        return {plan.message_id for plan in self.plans.values() if plan.postponement is not None}
