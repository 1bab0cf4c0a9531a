"""Loops' account webhooks (Standard Webhooks signed) and what the relay makes of them.

contact.created carries the full contact record and becomes a Clay row; other event types carry
only `contactIdentity` (and event fields) and become rows only when listed in `forward_events`.
An authentic event is always answered 2xx, even when ignored: a 4xx would make Loops retry it or
disable the endpoint. An unknown `webhookSchemaVersion` is logged and counted, not fatal.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from clay_relay.config import LoopsWebhook
from clay_relay.jobs import ClayRowJob, content_id
from clay_relay.ledger import contact_alias, lead_ref
from clay_relay.observability import count, logger

ORIGIN = "loops/webhook"
KNOWN_SCHEMA_VERSIONS = {"1.0.0"}


class ContactIdentity(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str | None = None
    email: str | None = None
    userId: str | None = None


class LoopsWebhookEvent(BaseModel):
    """The envelope every Loops webhook shares; event-specific fields are kept as extras."""

    model_config = ConfigDict(extra="allow", frozen=True)

    eventName: str
    eventTime: int | float | None = None
    webhookSchemaVersion: str | None = None
    contactIdentity: ContactIdentity | None = None
    contact: dict[str, Any] | None = None


class Ignored(Exception):
    """An authentic event the configuration does not send anywhere (answered 2xx)."""


def parse_webhook(body: dict[str, Any]) -> LoopsWebhookEvent:
    try:
        event = LoopsWebhookEvent.model_validate(body)
    except ValidationError as error:
        count("LoopsWebhooksUnreadable")
        logger.warning("unreadable Loops webhook ignored", extra={"problem": error.errors()[0]["msg"]})
        raise Ignored("the body is not a Loops webhook event") from None
    if event.webhookSchemaVersion not in KNOWN_SCHEMA_VERSIONS:
        count("LoopsWebhookUnknownSchema")
        logger.warning("unknown Loops webhookSchemaVersion", extra={"version": event.webhookSchemaVersion})
    return event


def clay_row_job(event: LoopsWebhookEvent, webhook_id: str, settings: LoopsWebhook) -> ClayRowJob:
    """The Clay row for a contact.created (or a forwarded event): deduplicated on webhook-id."""
    identity = event.contactIdentity or ContactIdentity()
    if event.eventName == "contact.created":
        if not event.contact:
            raise Ignored("contact.created without a contact record")
        fields = dict(event.contact)
    elif event.eventName in settings.forward_events:
        # The contact's identity wins: email events carry their own top-level `email` object.
        fields = {**(event.model_extra or {}), "id": identity.id, "email": identity.email, "userId": identity.userId}
    else:
        raise Ignored(f"{event.eventName} events are not forwarded (see loops_webhook.forward_events)")
    columns = settings.columns()
    row = fields if columns is None else {col: fields[name] for name, col in columns.items() if name in fields}
    meta = settings.metadata
    contact_id = (event.contact or {}).get("id") or identity.id
    for column, value in (
        (meta.event, event.eventName),
        (meta.contact_id, contact_id),
        (meta.event_time, event.eventTime),
    ):
        if column:
            row[column] = value
    event_id = content_id(ORIGIN, webhook_id)
    lead = lead_ref(
        (event.contact or {}).get("email") or identity.email,
        aliases=[contact_alias(str(contact_id))] if contact_id else [],
        accepted="loops.webhook",
        detail={
            "type": event.eventName,
            "contact_id": str(contact_id) if contact_id else None,
            "webhook_id": webhook_id,
        },
    )
    return ClayRowJob(
        event_id=event_id,
        origin=ORIGIN,
        dedupe_window_seconds=settings.dedupe_window_seconds,
        target=settings.clay_target,
        row=row,
        lead=lead,
    )
