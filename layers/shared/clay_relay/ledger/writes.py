"""Writing the ledger: the claim's entry, the round trips and links of Clay rows, failures, and the
enrichment that closes a round trip. Every write but the claim's is best effort: a failure is logged
and counted (`LedgerWriteFailed`), and the events go on as if the ledger did not exist.

A round trip also remembers which Clay targets its person went to (`sent`, see clay_relay.spend.persons):
the batch write that opens it carries that too, and the enrichment that closes it keeps it.
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
from clay_relay.spend.persons import ROUND_TRIP, kept_days, sent_attribute, trip_key, without_row
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
    decision = plan.decision  # a Clay row the spend guard does not send: its stage, not a delivery's
    detail = dict(decision.detail) if decision else delivery_detail(plan)
    if plan.replayed:
        detail["replayed"] = True
    return entry(
        job.lead,
        decision.stage if decision else DELIVERY_STAGES[job.kind],
        decision.settlement.value if decision else "sent",
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


def open_round_trips(
    table: RelayTable, batch: Batch, plans: list[Plan], config: RelayConfig, sla_override: int | None
) -> None:
    """Before the rows go to Clay: each lead's round trip (due for its enrichment callback by the
    target's SLA), with the targets its person went to when the batch read them (the spend guard), and
    its alias links, in one batch write. Written before the request, so a callback that comes back at
    once always finds the trip it closes. A person with several rows in the batch gets one trip (its
    last row's)."""
    now = time.time()
    expires = {"N": str(retention_until(now, config.ledger_retention_days))}
    rows: dict[str, list[ClayRowJob]] = {}
    links: list[dict[str, Any]] = []
    for plan in plans:
        job = plan.job_as(ClayRowJob)
        key = trip_key(job)
        if job.lead is None or key is None:
            continue
        rows.setdefault(key, []).append(job)
        trip = entry(
            job.lead,
            "clay.delivered",
            "waiting",
            event_id=job.event_id,
            retention_days=kept_days(config),
            at=now + sla_seconds(config, job.target, sla_override),
            detail={**delivery_detail(plan), "sent_at": round(now, 3)},
        )
        batch.trips_written[key] = {**trip, "pk": {"S": key}, "lead": {"S": OVERDUE}}
        links += [
            {"pk": {"S": f"link#{alias}"}, "link_to": {"S": job.lead.key}, "expires_at": expires}
            for alias in job.lead.aliases
        ]
    for key, jobs in rows.items():
        if key in batch.trips:  # read by the spend guard: what it held, and these rows
            went = [(job.target, job.event_id) for job in jobs if config.clay_targets[job.target].person_dedupe_days]
            batch.trips_written[key]["sent"] = sent_attribute(batch.trips[key], went, config, now)
    puts = [batch.trips_written[key] for key in rows] + links
    if not puts:
        return
    try:
        table.write_batch(puts)
    except Exception as error:  # noqa: BLE001 - the ledger never stops a delivery
        _failed("round trips", error)


def record_outcomes(table: RelayTable, batch: Batch, config: RelayConfig) -> None:
    """The batch's failures about leads (retries, parking, holds, dead letters) and deliveries that ended
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
        if suffix == "dead_letter" and isinstance(job, ClayRowJob) and (key := trip_key(job)):
            # The row never reached Clay: its round trip goes, and its person is not counted as sent.
            trip = batch.trips_written.get(key) or batch.trips.get(key)
            kept = without_row(trip, job.event_id) if trip else None
            if kept is None:
                deletes.append(key)
            elif kept != trip:  # a trip this row neither opened nor is in is left as it is
                batch.trips_written[key] = kept
                puts.append(kept)
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
        if plan.held_for_budget:  # written once, when it begins to wait: it checks again every few seconds
            return None if job.budget_held else ("held", "clay.held", "held", {"target": job.target, "for": "budget"})
        return "held", "clay.held", "held", {"target": job.target, "holds": job.holds + 1, "for": "a webhook URL"}
    if plan.settlement is Settlement.DELIVERED and plan.ledger_note and job.kind in DELIVERY_STAGES:
        # Delivered, but not as its claim says: Directus feedback that matched no item, or was older.
        note, reason = plan.ledger_note
        return note, DELIVERY_STAGES[job.kind], note, {"reason": mask_email(reason)}
    if plan.postponement in (Postponement.RETRY, Postponement.PARKED) and job.kind in DELIVERY_STAGES:
        # Parked: its destination is down; it goes when the destination is back (worker.parking).
        outcome = "parked" if plan.postponement is Postponement.PARKED else "retrying"
        reason = mask_email(plan.retry_reason or "")
        return "retry", DELIVERY_STAGES[job.kind], outcome, {"reason": reason, "attempt": plan.attempts}
    return None


def close_round_trip(
    table: RelayTable, lead: LeadRef, event_id: str, detail: dict[str, Scalar], retention_days: int
) -> None:
    """The enrichment callback: the lead's round trip is closed by its `clay.enriched` stage (one
    write, whether or not the relay sent the row: a trip left open becomes this entry). An update,
    not a put: the targets the person went to (`sent`) stay."""
    item = entry(
        lead,
        "clay.enriched",
        str(detail.get("route", "enriched")),
        event_id=event_id,
        retention_days=retention_days,
        detail=detail,
    )
    names = {f"#{name}": name for name in item}
    values = {f":{name}": value for name, value in item.items()}
    expression = "SET " + ", ".join(f"#{name} = :{name}" for name in item)
    if absent := [name for name in ROUND_TRIP if name not in item]:
        names.update({f"#{name}": name for name in absent})
        expression += " REMOVE " + ", ".join(f"#{name}" for name in absent)
    try:
        table.update(f"trip#{lead.key.removeprefix('email#')}", expression, values, names=names)
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
