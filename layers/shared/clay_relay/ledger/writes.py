"""Writing the ledger: the claim's entry, the round trips and links of Clay rows, failures, and the
enrichment that closes a round trip. Every write but the claim's is best effort: a failure is logged
and counted (`LedgerWriteFailed`), and the events go on as if the ledger did not exist.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from clay_relay.jobs import ClayRowJob, DeliveryJob, DirectusFeedbackJob, DirectusPatchJob, LoopsForwardJob
from clay_relay.ledger.entries import (
    DELIVERY_STAGES,
    OBSERVED_OUTCOMES,
    OVERDUE,
    LeadRef,
    Scalar,
    Stage,
    entry,
    retention_until,
)
from clay_relay.observability import count, logger, mask_email
from clay_relay.store import Claim

if TYPE_CHECKING:
    from clay_relay.config import RelayConfig
    from clay_relay.store import RelayTable
    from clay_relay.worker.batch import Batch, Plan


def _failed(what: str, error: Exception) -> None:
    count("LedgerWriteFailed")
    logger.warning(f"could not write the ledger's {what}; delivery goes on", extra={"error": type(error).__name__})


def delivery_detail(plan: Plan) -> dict[str, Scalar]:
    """What a person would look up elsewhere about the delivery of the plan's job."""
    job = plan.parsed
    if isinstance(job, ClayRowJob):
        return {
            "target": job.target,
            "webhook_id": plan.webhook.webhook_id if plan.webhook else None,
            "submission": plan.submission,
        }
    if job.kind == "loops_event":
        return {"idempotency_key": job.event_id, "event_name": str(getattr(job, "payload", {}).get("eventName"))}
    if job.kind == "loops_contact":
        return {"mailing_lists": ",".join(getattr(job, "payload", {}).get("mailingLists", {}) or {}) or None}
    if isinstance(job, DirectusPatchJob):
        return {"collection": job.collection, "item_id": job.item_id}
    if isinstance(job, DirectusFeedbackJob):
        written = ", ".join(f"{name}={value}" for name, value in job.fields.items())
        return {"collection": job.collection, "fields": written[:300]}
    if isinstance(job, LoopsForwardJob):
        return {"endpoint": job.endpoint, "webhook_id": job.webhook_id}
    return {}


def claim_entry(plan: Plan, config: RelayConfig) -> dict[str, Any] | None:
    """The ledger entry the plan's claim carries (None for a job about no known lead)."""
    job = plan.parsed
    if job.lead is None:
        return None
    detail = delivery_detail(plan)
    if plan.replayed:
        detail["replayed"] = True
    return entry(
        job.lead,
        DELIVERY_STAGES[job.kind],
        "sent",
        event_id=job.event_id,
        retention_days=config.ledger_retention_days,
        accepted_at=job.accepted_at,
        detail=detail,
    )


def sla_seconds(config: RelayConfig, target: str, override: int | None) -> float:
    if override is not None:
        return float(override)
    clay_target = config.clay_targets.get(target)
    return 60.0 * (clay_target.enrichment_sla_minutes if clay_target else 240)


def open_round_trips(table: RelayTable, plans: list[Plan], config: RelayConfig, sla_override: int | None) -> None:
    """Before the rows go to Clay: each lead's round trip (due for its enrichment callback by the
    target's SLA) and its alias links, in one batch write. Written before the request, so a callback
    that comes back at once always finds the trip it closes."""
    now = time.time()
    puts: list[dict[str, Any]] = []
    for plan in plans:
        job = plan.job_as(ClayRowJob)
        lead = job.lead
        if lead is None or not lead.knows_email:
            continue
        expires = {"N": str(retention_until(now, config.ledger_retention_days))}
        trip = entry(
            lead,
            "clay.delivered",
            "waiting",
            event_id=job.event_id,
            retention_days=config.ledger_retention_days,
            at=now + sla_seconds(config, job.target, sla_override),
            detail={**delivery_detail(plan), "sent_at": round(now, 3)},
        )
        puts.append({**trip, "pk": {"S": f"trip#{lead.key.removeprefix('email#')}"}, "lead": {"S": OVERDUE}})
        puts += [
            {"pk": {"S": f"link#{alias}"}, "link_to": {"S": lead.key}, "expires_at": expires} for alias in lead.aliases
        ]
    if not puts:
        return
    try:
        table.write_batch(puts)
    except Exception as error:  # noqa: BLE001 - the ledger never stops a delivery
        _failed("round trips", error)


def record_outcomes(table: RelayTable, batch: Batch, config: RelayConfig) -> None:
    """The batch's failures about leads (retries, holds, dead letters) and deliveries that ended
    otherwise than their claim says (feedback `unmatched` or `superseded`), in one batch write; a Clay
    row that is dead-lettered never reached Clay, so its round trip is dropped."""
    puts: list[dict[str, Any]] = []
    deletes: list[str] = []
    for plan in batch.plans.values():
        job = plan.job
        if job is None or job.lead is None:
            continue
        recorded = _outcome(plan, job)
        if recorded is None:
            continue
        suffix, stage, outcome, detail = recorded
        item = entry(
            job.lead,
            stage,
            outcome,
            event_id=job.event_id,
            retention_days=config.ledger_retention_days,
            accepted_at=job.accepted_at,
            detail=detail,
        )
        puts.append({**item, "pk": {"S": f"ledger#{job.event_id}#{suffix}"}})
        if suffix == "dead_letter" and isinstance(job, ClayRowJob) and job.lead.knows_email:
            deletes.append(f"trip#{job.lead.key.removeprefix('email#')}")
    if not (puts or deletes):
        return
    try:
        table.write_batch(puts, deletes)
    except Exception as error:  # noqa: BLE001
        _failed("failures", error)


def _outcome(plan: Plan, job: DeliveryJob) -> tuple[str, Stage, str, dict[str, Scalar]] | None:
    from clay_relay.worker.batch import Postponement, Settlement

    if plan.settlement is Settlement.DEAD_LETTERED:
        letter = plan.dead_letter_reason or "dead-lettered"
        return (
            "dead_letter",
            "dead_letter",
            "dead-lettered",
            {"destination": job.destination, "reason": mask_email(letter)},
        )
    if plan.settlement is Settlement.HELD and isinstance(job, ClayRowJob):
        return "held", "clay.held", "held", {"target": job.target, "holds": job.holds + 1}
    if plan.settlement is Settlement.DELIVERED and plan.ledger_note and job.kind in DELIVERY_STAGES:
        # Delivered, but not as its claim says: Directus feedback that matched no item, or was older.
        note, reason = plan.ledger_note
        return note, DELIVERY_STAGES[job.kind], note, {"reason": mask_email(reason)}
    if plan.postponement is Postponement.RETRY and job.kind in DELIVERY_STAGES:
        reason = mask_email(plan.retry_reason or "")
        return "retry", DELIVERY_STAGES[job.kind], "retrying", {"reason": reason, "attempt": plan.attempts}
    return None


def close_round_trip(
    table: RelayTable, lead: LeadRef, event_id: str, detail: dict[str, Scalar], retention_days: int
) -> None:
    """The enrichment callback: the lead's round trip is closed by its `clay.enriched` stage (one
    write, whether or not the relay sent the row: a trip left open becomes this entry)."""
    item = entry(
        lead,
        "clay.enriched",
        str(detail.get("route", "enriched")),
        event_id=event_id,
        retention_days=retention_days,
        detail=detail,
    )
    try:
        table.put({**item, "pk": {"S": f"trip#{lead.key.removeprefix('email#')}"}})
    except Exception as error:  # noqa: BLE001 - the callback's jobs are already queued
        _failed("enrichment", error)


def record_observed(
    table: RelayTable, lead: LeadRef, stage: Stage, event_id: str, *, retention_days: int, window_seconds: int
) -> bool:
    """An event the relay only observes (an email outcome Loops reported, kept in the trace): one
    conditional put, the claim of its event id, so a redelivery is recorded once. True when it is new;
    a write that fails is logged and counted (the event is answered all the same, untraced)."""
    item = entry(
        lead.model_copy(update={"accepted": None, "accepted_event_id": None, "detail": {}}),
        stage,
        OBSERVED_OUTCOMES.get(stage, "received"),
        event_id=event_id,
        retention_days=retention_days,
        detail=lead.detail,
    )
    try:
        return table.claim(event_id, uuid.uuid4().hex, window_seconds, ledger=item) is Claim.OWNED
    except Exception as error:  # noqa: BLE001 - the trace misses it; the sender is never refused for it
        _failed("email outcome", error)
        return True
