"""What one authentic Loops event becomes besides a Clay row: its stage in the lead's trace, the
Directus feedback it causes, and its copies for the other endpoints (`loops_webhook.forward`).

Every job of one event carries the same lead, accepted by the event's stage (`loops.email_hard_bounced`
with the campaign, workflow or transactional id): the claim each job's delivery writes anyway is the
event's ledger entry. An event that causes no job is kept in the ledger only when its type is in
`keep_email_events` (one write, by the receiver); otherwise it costs no write at all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from clay_relay.config import canonical_event_type
from clay_relay.jobs import ClayRowJob, DeliveryJob, DirectusFeedbackJob, LoopsForwardJob, content_id
from clay_relay.ledger import LeadRef, Stage, contact_alias, lead_ref
from clay_relay.ledger.entries import Scalar
from clay_relay.loops_webhooks import (
    ORIGIN,
    ContactIdentity,
    Ignored,
    LoopsWebhookEvent,
    check_row_fits,
    clay_row_job,
)

if TYPE_CHECKING:
    from clay_relay.config import LoopsWebhook, RelayConfig

# Each event type's stage in the lead's trace (contact.created, the test event and types Loops may
# add later are the plain `loops.webhook`).
EVENT_STAGES: dict[str, Stage] = {
    "campaign.email.sent": "loops.email_sent",
    "loop.email.sent": "loops.email_sent",
    "transactional.email.sent": "loops.email_sent",
    "email.delivered": "loops.email_delivered",
    "email.opened": "loops.email_opened",
    "email.clicked": "loops.email_clicked",
    "email.softBounced": "loops.email_soft_bounced",
    "email.hardBounced": "loops.email_hard_bounced",
    "email.spamReported": "loops.email_spam_reported",
    "email.unsubscribed": "loops.email_unsubscribed",
    "email.resubscribed": "loops.email_resubscribed",
    "contact.unsubscribed": "loops.contact_unsubscribed",
    "contact.deleted": "loops.contact_deleted",
    "contact.mailingList.subscribed": "loops.list_subscribed",
    "contact.mailingList.unsubscribed": "loops.list_unsubscribed",
}
# The event's own fields a person looks up in Loops, by the name the trace gives them.
_DETAIL = {
    "sourceType": "source",
    "campaignId": "campaign_id",
    "campaignName": "campaign",
    "loopId": "workflow_id",
    "loopName": "workflow",
    "transactionalId": "transactional_id",
    "transactionalName": "transactional",
}


@dataclass
class WebhookPlan:
    """What an event becomes: the jobs it queues, or the stage it is kept as in the ledger (or neither)."""

    event_id: str  # the event's own id (its Clay row's, and its ledger entry's): from the webhook-id
    stage: Stage
    lead: LeadRef | None
    jobs: list[DeliveryJob] = field(default_factory=list)
    keep: bool = False  # kept in the ledger although it causes no job
    not_sent: str | None = None  # why it goes nowhere, when it goes nowhere


def plan_webhook(
    event: LoopsWebhookEvent, webhook_id: str, body: bytes, config: RelayConfig, settings: LoopsWebhook
) -> WebhookPlan:
    event_type = canonical_event_type(event.eventName)
    event_id = content_id(ORIGIN, webhook_id)
    stage = EVENT_STAGES.get(event_type, "loops.webhook")
    lead = lead_of(event, webhook_id, stage, event_id)
    plan = WebhookPlan(event_id, stage, lead)
    try:
        # Its lead says which stage accepted it, like the event's other jobs.
        row = clay_row_job(event, webhook_id, settings).model_copy(update={"lead": lead})
        check_row_fits(row, config.clay_targets[settings.clay_target])  # too big for Clay: ignored, counted
        plan.jobs.append(row)
    except Ignored as ignored:
        plan.not_sent = str(ignored)
    if feedback := feedback_job(event, event_type, webhook_id, config, settings, lead):
        plan.jobs.append(feedback)
    for endpoint in settings.forward:
        if endpoint.wants(event_type):
            plan.jobs.append(
                LoopsForwardJob(
                    event_id=content_id(ORIGIN, webhook_id, "forward", endpoint.name),
                    origin=ORIGIN,
                    dedupe_window_seconds=settings.dedupe_window_seconds,
                    endpoint=endpoint.name,
                    webhook_id=webhook_id,
                    body=body.decode("utf-8"),
                    lead=lead,
                )
            )
    plan.keep = not plan.jobs and lead is not None and event_type in settings.keep_email_events
    if plan.jobs or plan.keep:
        plan.not_sent = None
    elif event_type != "contact.created":
        plan.not_sent = (
            f"{event.eventName} events go nowhere: loops_webhook names them in none of forward_events, "
            "directus_feedback, forward and keep_email_events"
        )
    return plan


def lead_of(event: LoopsWebhookEvent, webhook_id: str, stage: Stage, event_id: str) -> LeadRef | None:
    """The lead the event is about (its email, else its Loops contact), accepted by the event's stage."""
    identity = event.contactIdentity or ContactIdentity()
    contact = event.contact or {}
    contact_id = contact.get("id") or identity.id
    return lead_ref(
        contact.get("email") or identity.email,
        aliases=[contact_alias(str(contact_id))] if contact_id else [],
        accepted=stage,
        accepted_event_id=event_id,
        detail=event_detail(event, webhook_id),
    )


def event_detail(event: LoopsWebhookEvent, webhook_id: str) -> dict[str, Scalar]:
    """What the trace shows of the event: its type, what sent the email and which it was, its contact."""
    extra: dict[str, Any] = event.model_extra or {}
    identity = event.contactIdentity or ContactIdentity()
    detail: dict[str, Scalar] = {"type": event.eventName}
    detail.update({name: extra[key] for key, name in _DETAIL.items() if _scalar(extra.get(key))})
    email = extra.get("email")
    if isinstance(email, dict):
        if _scalar(email.get("subject")):
            detail["subject"] = str(email["subject"])[:120]
        if _scalar(email.get("emailMessageId")):
            detail["email_message_id"] = email["emailMessageId"]
    mailing_list = extra.get("mailingList")
    if isinstance(mailing_list, dict) and _scalar(mailing_list.get("id")):
        detail["mailing_list_id"] = mailing_list["id"]
    detail["contact_id"] = (event.contact or {}).get("id") or identity.id
    detail["webhook_id"] = webhook_id
    return {name: value for name, value in detail.items() if _scalar(value)}


def _scalar(value: object) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool) and value != ""


def feedback_job(
    event: LoopsWebhookEvent,
    event_type: str,
    webhook_id: str,
    config: RelayConfig,
    settings: LoopsWebhook,
    lead: LeadRef | None,
) -> DirectusFeedbackJob | None:
    """The Directus feedback the event causes (None when its type sets nothing)."""
    target = config.feedback_target()
    if target is None or event_type not in target.settings.events:
        return None
    ranks = list(target.settings.events)
    at = float(event.eventTime) if event.eventTime is not None else time.time()
    placeholders = {
        "event_time": datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "event_type": event_type,
    }
    fields = {
        name: value.format_map(placeholders) if isinstance(value, str) else value
        for name, value in target.settings.events[event_type].items()
    }
    identity = event.contactIdentity or ContactIdentity()
    return DirectusFeedbackJob(
        event_id=content_id(ORIGIN, webhook_id, "directus_feedback"),
        origin=ORIGIN,
        dedupe_window_seconds=settings.dedupe_window_seconds,
        event_type=event_type,
        event_time=at,
        rank=ranks.index(event_type),
        email=identity.email or (event.contact or {}).get("email"),
        collection=target.collection,
        fields=fields,
        lead=lead,
    )


def actions_of(jobs: list[DeliveryJob]) -> list[str]:
    """The receipt's list of what the event was queued for: `clay`, `directus_feedback`, `forward:<name>`."""
    names: dict[type, str] = {ClayRowJob: "clay", DirectusFeedbackJob: "directus_feedback"}
    return [f"forward:{job.endpoint}" if isinstance(job, LoopsForwardJob) else names[type(job)] for job in jobs]
