"""Loops' webhook events as Loops sends them, one builder for all 17 types (the shapes of Loops'
OpenAPI `webhooks`): the envelope (`eventName`, `eventTime`, `webhookSchemaVersion`), the
`contactIdentity`, and each type's own fields: `contact` (contact.created), `mailingList`
(mailing-list events), `email` with `campaignId`/`loopId`/`transactionalId` (email events),
`message` (the test event)."""

from __future__ import annotations

import hashlib
import time
import uuid

from clay_relay.config import LOOPS_EVENT_TYPES, canonical_event_type

EMAIL_EVENTS = {"email.delivered", "email.softBounced", "email.hardBounced", "email.spamReported"}  # any source
MARKETING_EVENTS = {"email.opened", "email.clicked", "email.unsubscribed", "email.resubscribed"}  # not transactional
SENT_EVENTS = {
    "campaign.email.sent": ("campaignId", "campaignName", "Welcome campaign"),
    "loop.email.sent": ("loopId", "loopName", "Onboarding workflow"),
    "transactional.email.sent": ("transactionalId", "transactionalName", "Password reset"),
}
SOURCE_IDS = {"campaign": "campaignId", "loop": "loopId", "transactional": "transactionalId"}


def _id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:20]}"


def loops_event(event_type: str, *, email: str | None = None, contact_id: str | None = None, **fields: object) -> dict:
    """A `event_type` event about `email` (a new address when None; its contact id is the same for every
    event of one address, as in Loops); `fields` replace or add top-level fields."""
    event_type = canonical_event_type(event_type)
    if event_type not in LOOPS_EVENT_TYPES:
        raise ValueError(f"{event_type!r} is no Loops event type; send one of {', '.join(LOOPS_EVENT_TYPES)}")
    event: dict = {"eventName": event_type, "eventTime": int(time.time()), "webhookSchemaVersion": "1.0.0"}
    if event_type == "testing.testEvent":
        return {**event, "message": "test", **fields}
    email = email or f"lead-{uuid.uuid4().hex[:8]}@example.com"
    contact_id = contact_id or "cm" + hashlib.sha256(email.lower().encode()).hexdigest()[:20]  # one per contact
    event["contactIdentity"] = {"id": contact_id, "email": email, "userId": None}
    if event_type == "contact.created":
        event["contact"] = {
            "id": contact_id,
            "email": email,
            "firstName": None,
            "lastName": None,
            "source": "API",
            "subscribed": True,
            "userGroup": "",
            "userId": None,
            "mailingLists": {},
            "optInStatus": "accepted",
        }
    elif event_type.startswith("contact.mailingList."):
        event["mailingList"] = {"id": "cm4list0001", "name": "Newsletter", "description": None, "isPublic": True}
    elif event_type in SENT_EVENTS:
        id_field, name_field, name = SENT_EVENTS[event_type]
        event.update({id_field: _id("cm"), name_field: name, "email": _email(name)})
        if event_type != "transactional.email.sent":
            event["mailingLists"] = []
    elif event_type in EMAIL_EVENTS | MARKETING_EVENTS:
        source = str(fields.pop("sourceType", "campaign"))
        if source not in SOURCE_IDS or (source == "transactional" and event_type in MARKETING_EVENTS):
            raise ValueError(f"{event_type} has no sourceType {source!r}")
        event.update({"sourceType": source, SOURCE_IDS[source]: _id("cm"), "email": _email("Welcome aboard")})
    return {**event, **fields}


def _email(subject: str) -> dict:
    return {"id": _id("cm"), "emailMessageId": _id("cm"), "subject": subject}
