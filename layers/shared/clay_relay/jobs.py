"""Delivery jobs: what a receiver puts on the queue and the worker carries out.

`event_id` identifies the event for deduplication (derived from the sender's content, never the
clock); `job_id` identifies this acceptance of it, so the worker's claim lets redeliveries and
replays of the same job through while stopping a second copy of the event.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, TypeAdapter, model_serializer

from clay_relay.item_keys import CollectionName, ItemKeyText
from clay_relay.ledger.entries import LeadRef

EVENT_ID_HEADER = "X-Relay-Event-Id"  # the event id on a receiver's answer and on every request out


def content_id(*parts: object) -> str:
    """A stable id from canonical JSON of `parts` (sorted keys, no whitespace)."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


Destination = Literal["clay", "loops", "slack", "zapier", "directus", "forward"]  # where a job can be delivered
DESTINATIONS: tuple[str, ...] = get_args(Destination)


class _Job(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str = Field(min_length=8, max_length=128)
    job_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    origin: str = Field(description="route that accepted it, e.g. directus/leads")
    dedupe_window_seconds: int = 86_400
    accepted_at: float = Field(default_factory=time.time)
    holds: int = Field(default=0, description="times it waited for a Clay webhook URL with quota left")
    lead: LeadRef | None = Field(default=None, description="the lead it is about, for the ledger")
    destination: ClassVar[Destination]  # where the worker delivers it: clay, loops, slack, zapier, directus, forward
    # Whether sending the request twice is harmless: an idempotency key (Loops' Idempotency-Key,
    # the Clay row's idempotency column) or an idempotent method (PUT, PATCH). Jobs whose repeat
    # would show (a second Slack message) are claimed as `sending` and never sent twice.
    repeat_is_harmless: ClassVar[bool] = True

    @property
    def horizon_start(self) -> float:
        """When its retry and hold horizons start: when it was accepted."""
        return self.accepted_at


class ClayRowJob(_Job):
    """One row for a Clay table, posted to the target's current webhook URL."""

    kind: Literal["clay_row"] = "clay_row"
    target: str
    row: dict[str, Any]
    budget_held: bool = Field(default=False, description="waiting for its target's budget (relay clay spend: held)")
    budget_held_at: float | None = Field(
        default=None,
        description="when it last waited for its target's budget: its retry and hold horizons start then",
    )

    @model_serializer(mode="wrap")
    def _compact(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Without the budget's fields when they are off: a bundle carries thousands of rows in 256 KiB
        requests."""
        fields: dict[str, Any] = handler(self)
        if not fields.get("budget_held"):
            fields.pop("budget_held", None)
        if fields.get("budget_held_at") is None:
            fields.pop("budget_held_at", None)
        return fields

    @property
    def horizon_start(self) -> float:
        """When it was accepted, or last waited for its target's budget, the later: a wait for a budget
        (a month's, weeks long) is neither a failure nor a wait for Clay quota, so it does not count
        towards `retry_horizon_seconds` or `hold_horizon_seconds`."""
        return max(self.accepted_at, self.budget_held_at or 0.0)

    @property
    def lead_update(self) -> bool:
        """A change to a lead (a Directus update or delete, a Loops event other than contact.created), not
        a new lead: sent even when the person already went to the target, unless its
        person_dedupe_updates. Read from what the accepting stage recorded (directus: `event`, Loops
        webhooks: `type`), so that no byte is added to the thousands of rows of a bundle."""
        detail = self.lead.detail if self.lead else {}
        event, kind = str(detail.get("event") or ""), detail.get("type")
        return event.endswith((".update", ".delete")) or (kind is not None and kind != "contact.created")

    destination: ClassVar[Destination] = "clay"


class LoopsEventJob(_Job):
    """`POST /v1/events/send`: starts the outreach workflow (Idempotency-Key: the event id)."""

    kind: Literal["loops_event"] = "loops_event"
    payload: dict[str, Any]

    destination: ClassVar[Destination] = "loops"


class LoopsContactJob(_Job):
    """`PUT /v1/contacts/update`: creates or updates the contact, e.g. into the nurture list."""

    kind: Literal["loops_contact"] = "loops_contact"
    payload: dict[str, Any]

    destination: ClassVar[Destination] = "loops"


class SlackMessageJob(_Job):
    kind: Literal["slack_message"] = "slack_message"
    text: str

    destination: ClassVar[Destination] = "slack"
    repeat_is_harmless: ClassVar[bool] = False


class ZapierPostJob(_Job):
    """The lead, posted to the configured Zapier (or any) webhook URL."""

    kind: Literal["zapier_post"] = "zapier_post"
    payload: dict[str, Any]

    destination: ClassVar[Destination] = "zapier"
    repeat_is_harmless: ClassVar[bool] = False


class DirectusPatchJob(_Job):
    """`PATCH /items/<collection>/<item_id>` with enrichment fields (the write-back)."""

    kind: Literal["directus_patch"] = "directus_patch"
    collection: CollectionName  # both are path segments: a job (even an old one, replayed) holds only safe ones
    item_id: ItemKeyText
    fields: dict[str, Any]

    destination: ClassVar[Destination] = "directus"


class DirectusFeedbackJob(_Job):
    """Loops' feedback on a lead (an unsubscribe, a bounce, a complaint) for its Directus items: found
    by the lead ledger or a Directus query on the email, PATCHed unless a newer event set the fields."""

    kind: Literal["directus_feedback"] = "directus_feedback"
    event_type: str
    event_time: float = Field(description="Loops' eventTime: of two events setting a field, the newer wins")
    rank: int = Field(default=0, ge=0, lt=1000, description="of two events with the same time, the higher wins")
    email: str | None = Field(default=None, description="the lead's email, as Loops sent it")
    collection: str
    fields: dict[str, Any] = Field(min_length=1)

    destination: ClassVar[Destination] = "directus"


class LoopsForwardJob(_Job):
    """A Loops event for one of `loops_webhook.forward`'s endpoints, re-signed with its secret when
    sent. Its `webhook-id` stays Loops' own, which Standard Webhooks receivers deduplicate on."""

    kind: Literal["loops_forward"] = "loops_forward"
    endpoint: str
    webhook_id: str
    body: str = Field(description="the event exactly as Loops sent it")

    destination: ClassVar[Destination] = "forward"


class ClayRowBundle(_Job):
    """Many rows of one accepted event in one message: a Directus updateMany of thousands of items
    is queued in a few requests, so the receiver answers in time; the worker then queues each row
    as its own job (`rows` keep their own event ids, so a bundle unpacked twice is still one row each)."""

    kind: Literal["clay_row_bundle"] = "clay_row_bundle"
    rows: list[ClayRowJob] = Field(min_length=1)

    destination: ClassVar[Destination] = "clay"


DeliveryJob = Annotated[
    ClayRowJob
    | LoopsEventJob
    | LoopsContactJob
    | SlackMessageJob
    | ZapierPostJob
    | DirectusPatchJob
    | DirectusFeedbackJob
    | LoopsForwardJob
    | ClayRowBundle,
    Field(discriminator="kind"),
]
_job_adapter: TypeAdapter[DeliveryJob] = TypeAdapter(DeliveryJob)


def parse_job(body: str) -> DeliveryJob:
    return _job_adapter.validate_json(body)


def dump_job(job: DeliveryJob) -> str:
    return job.model_dump_json()
