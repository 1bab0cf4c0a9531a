"""What the relay does with an enriched lead from Clay: decided at the edge, one job per action.

outreach (ICP ≥ 80): a Loops event that starts the outreach workflow
nurture  (ICP ≥ 50): the contact created/updated in Loops, in the nurture mailing list
skip     (below):    nothing sent (logged and counted)
hot      (ICP ≥ 90, on top of outreach/nurture): a Slack message
optional: the lead posted to Zapier; the enrichment written back into its Directus item
Thresholds and everything else come from relay.json's `clay_callback`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clay_relay import hooks, loops
from clay_relay.config import ClayCallback
from clay_relay.jobs import (
    DeliveryJob,
    DirectusPatchJob,
    LoopsContactJob,
    LoopsEventJob,
    SlackMessageJob,
    ZapierPostJob,
    content_id,
)
from clay_relay.leads import Decision, EnrichedLead, decide
from clay_relay.ledger import LeadRef, directus_alias, lead_ref

if TYPE_CHECKING:
    from typing import Any

ORIGIN = "clay/enriched"


def lead_event_id(lead: EnrichedLead) -> str:
    """The sender's explicit id when there is one, else the lead's canonical content (after
    coercion, so "85" and 85 are the same lead). Never the clock."""
    if lead.lead_id:
        return content_id(ORIGIN, "lead_id", lead.lead_id)
    return content_id(ORIGIN, lead.model_dump(mode="json", exclude_none=True))


def ledger_lead(lead: EnrichedLead, decision: Decision, event_id: str, settings: ClayCallback) -> LeadRef:
    """The lead as the ledger knows it: its email, and its Directus item when the write-back names the
    collection; its `clay.enriched` stage with the route, the score and whether it is hot."""
    write_back = settings.directus_writeback
    aliases = [directus_alias(write_back.collection, lead.directus_id)] if write_back and lead.directus_id else []
    detail = {"route": decision.route, "score": lead.icp_score, "hot": decision.hot, "directus_id": lead.directus_id}
    ref = lead_ref(lead.email, aliases=aliases, accepted="clay.enriched", accepted_event_id=event_id, detail=detail)
    if ref is None:  # unreachable: an EnrichedLead always has an email
        raise ValueError("an enriched lead without an email")
    return ref


def enrichment_jobs(lead: EnrichedLead, settings: ClayCallback) -> tuple[Decision, str, LeadRef, list[DeliveryJob]]:
    """The lead's route, its event id, its ledger lead, and one job per action (none for a skip)."""
    decision = decide(lead, settings.routing)
    event_id = lead_event_id(lead)
    ref = ledger_lead(lead, decision, event_id, settings)
    if decision.route == "skip":
        return decision, event_id, ref, []

    def common(action: str) -> dict[str, Any]:
        return {
            "event_id": content_id(event_id, action),
            "origin": ORIGIN,
            "dedupe_window_seconds": settings.dedupe_window_seconds,
            "lead": ref,
        }

    jobs: list[DeliveryJob] = []
    if decision.route == "outreach":
        jobs.append(LoopsEventJob(**common("loops_event"), payload=loops.event_payload(lead, settings.loops)))
    else:
        jobs.append(LoopsContactJob(**common("loops_contact"), payload=loops.contact_payload(lead, settings.loops)))
    if decision.hot and settings.slack:
        jobs.append(SlackMessageJob(**common("slack_message"), text=hooks.hot_lead_message(lead, settings.slack)))
    if settings.zapier and decision.route in settings.zapier.routes:
        payload = {**lead.model_dump(mode="json", exclude_none=True), "route": decision.route, "hot": decision.hot}
        jobs.append(ZapierPostJob(**common("zapier_post"), payload=payload))
    write_back = settings.directus_writeback
    if write_back and lead.directus_id is not None:
        values = {column: getattr(lead, field) for field, column in write_back.fields.items()}
        fields = {column: value for column, value in values.items() if value is not None}
        if fields:
            jobs.append(
                DirectusPatchJob(
                    **common("directus_patch"),
                    collection=write_back.collection,
                    item_id=str(lead.directus_id),
                    fields=fields,
                )
            )
    return decision, event_id, ref, jobs
