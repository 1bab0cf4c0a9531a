"""Ledger entries: lead keys, the `LeadRef` a job carries, and stages as DynamoDB items."""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

if TYPE_CHECKING:
    from collections.abc import Iterable

# Every stage of a lead, in the order they happen among stages at the same time (timeline.ORDER).
Stage = Literal[
    "directus.accepted",
    "backfill",
    "directus.reconciled",
    "directus.gone",
    "loops.webhook",
    "loops.email_sent",
    "loops.email_delivered",
    "loops.email_opened",
    "loops.email_clicked",
    "loops.email_soft_bounced",
    "loops.email_hard_bounced",
    "loops.email_spam_reported",
    "loops.email_unsubscribed",
    "loops.email_resubscribed",
    "loops.contact_unsubscribed",
    "loops.contact_deleted",
    "loops.list_subscribed",
    "loops.list_unsubscribed",
    "replayed",
    "clay.held",
    "clay.skipped",
    "clay.shadow",
    "clay.delivered",
    "clay.enriched",
    "route.skipped",
    "loops.event",
    "loops.contact",
    "slack",
    "zapier",
    "directus.writeback",
    "directus.feedback",
    "forward",
    "dead_letter",
]
INDEX = "lead-timeline"  # the table's index: partition `lead`, sort `at`
OVERDUE = "overdue"  # the index partition of round trips still waiting for their enrichment
DAY = 86_400

# The stage each kind of job delivers.
DELIVERY_STAGES: dict[str, Stage] = {
    "clay_row": "clay.delivered",
    "loops_event": "loops.event",
    "loops_contact": "loops.contact",
    "slack_message": "slack",
    "zapier_post": "zapier",
    "directus_patch": "directus.writeback",
    "directus_feedback": "directus.feedback",
    "loops_forward": "forward",
}
# Stages the relay observed rather than delivered (what Loops reported about a lead), with their outcome.
OBSERVED_OUTCOMES: dict[Stage, str] = {
    "loops.email_sent": "sent",
    "loops.email_delivered": "delivered",
    "loops.email_opened": "opened",
    "loops.email_clicked": "clicked",
    "loops.email_soft_bounced": "soft-bounced",
    "loops.email_hard_bounced": "hard-bounced",
    "loops.email_spam_reported": "spam-reported",
    "loops.email_unsubscribed": "unsubscribed",
    "loops.email_resubscribed": "resubscribed",
    "loops.contact_unsubscribed": "unsubscribed",
    "loops.contact_deleted": "deleted",
    "loops.list_subscribed": "subscribed",
    "loops.list_unsubscribed": "unsubscribed",
}


def normalise_email(email: str) -> str:
    return email.strip().lower()


def email_hash(email: str) -> str:
    return hashlib.sha256(normalise_email(email).encode()).hexdigest()[:40]


def email_key(email: str) -> str:
    return f"email#{email_hash(email)}"


def directus_alias(collection: str, key: object) -> str:
    return f"directus#{collection}/{key}"


def contact_alias(contact_id: str) -> str:
    return f"loops-contact#{contact_id}"


Scalar = str | int | float | bool | None


class LeadRef(BaseModel):
    """Who a job is about, and the stage that accepted it: what its claim records in the ledger."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(description="the lead's ledger key: email#<hash>, or an alias when no email is known")
    email: str | None = Field(default=None, description="the normalised email (kept in the entry, never in a key)")
    aliases: tuple[str, ...] = Field(default=(), description="Directus item / Loops contact the stage names")
    accepted: Stage | None = Field(default=None, description="the stage that accepted the job")
    accepted_event_id: str | None = Field(default=None, description="when not the job's own event id")
    detail: dict[str, Scalar] = Field(default_factory=dict, description="what the accepting stage knew")

    @model_serializer(mode="wrap")
    def _compact(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Without its empty fields: every queued row carries one, and SQS bills by the 64 KB."""
        return {name: value for name, value in handler(self).items() if value not in (None, [], (), {})}

    @property
    def knows_email(self) -> bool:
        return self.key.startswith("email#")


def lead_ref(
    email: object,
    *,
    aliases: Iterable[str] = (),
    accepted: Stage | None = None,
    accepted_event_id: str | None = None,
    detail: dict[str, Scalar] | None = None,
) -> LeadRef | None:
    """The job's lead: by its email when it has a usable one, else by its first alias; None when
    the job names neither (it is delivered all the same, just not traced)."""
    names = tuple(dict.fromkeys(aliases))
    address = normalise_email(email) if isinstance(email, str) and "@" in email and len(email) <= 320 else None
    if address:
        key = email_key(address)
    elif names:
        key = names[0]
    else:
        return None
    return LeadRef(
        key=key,
        email=address,
        aliases=names,
        accepted=accepted,
        accepted_event_id=accepted_event_id,
        detail=detail or {},
    )


def retention_until(now: float, days: int) -> int:
    return int(now) + days * DAY


def entry(
    lead: LeadRef,
    stage: Stage,
    outcome: str,
    *,
    event_id: str,
    retention_days: int,
    at: float | None = None,
    accepted_at: float | None = None,
    detail: dict[str, Scalar] | None = None,
) -> dict[str, Any]:
    """A ledger entry as a DynamoDB item (without its `pk`): the stage, and the stage that accepted it
    (at `accepted_at`)."""
    now = time.time() if at is None else at
    item: dict[str, Any] = {
        "lead": {"S": lead.key},
        "at": {"N": f"{now:.3f}"},
        "stage": {"S": stage},
        "outcome": {"S": outcome},
        "event_id": {"S": event_id},
        "expires_at": {"N": str(retention_until(now, retention_days))},
    }
    if lead.email:
        item["email"] = {"S": lead.email}
    if detail:
        item["detail"] = {"M": to_attributes(detail)}
    if lead.aliases:
        item["aliases"] = {"L": [{"S": alias} for alias in lead.aliases]}
    if lead.accepted:
        accepted: dict[str, Any] = {"stage": {"S": lead.accepted}, "at": {"N": f"{accepted_at or now:.3f}"}}
        if lead.accepted_event_id:
            accepted["event_id"] = {"S": lead.accepted_event_id}
        if lead.detail:
            accepted["detail"] = {"M": to_attributes(lead.detail)}
        item["accepted"] = {"M": accepted}
    return item


def to_attributes(values: dict[str, Scalar]) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            attributes[name] = {"BOOL": value}
        elif isinstance(value, int | float):
            attributes[name] = {"N": str(value)}
        else:
            attributes[name] = {"S": str(value)[:1000]}
    return attributes


def from_attributes(attributes: dict[str, Any]) -> dict[str, Scalar]:
    values: dict[str, Scalar] = {}
    for name, value in attributes.items():
        if "BOOL" in value:
            values[name] = value["BOOL"]
        elif "N" in value:
            number = float(value["N"])
            values[name] = int(number) if number.is_integer() else number
        elif "S" in value:
            values[name] = value["S"]
    return values
