"""Loops in relay.json: its API key, what leads become there, its webhook and the forwarding routes."""

from __future__ import annotations

from pydantic import Field, field_validator

from clay_relay.config.base import Name, SecretName, _Strict
from clay_relay.config.directus import column_map
from clay_relay.config.loops_feedback import KEPT_BY_DEFAULT, DirectusFeedback, ForwardEndpoint, LoopsEventType


class LoopsApi(_Strict):
    """Loops' API, for every flow that writes to Loops."""

    api_key_secret: SecretName = Field(default="loops-api-key", description="the secret with the Loops API key")


class LoopsSettings(_Strict):
    """What enriched leads become in Loops."""

    outreach_event_name: str = Field(
        default="clay_outreach", min_length=1, max_length=100, description="the Loops event outreach leads trigger"
    )
    nurture_mailing_list_id: str | None = Field(
        default=None, description="the mailing list nurture contacts join (`null`: none)"
    )
    source: str = Field(
        default="clay-relay", description="the contact `source` Loops records for contacts the relay creates"
    )


class LoopsMetadataColumns(_Strict):
    """Clay column names for what the relay adds to every Loops row; null leaves that column out."""

    event: str | None = Field(default="loops_event", description="column for the Loops event type")
    contact_id: str | None = Field(default="loops_contact_id", description="column for the Loops contact id")
    event_time: str | None = Field(default="loops_event_time", description="column for the event's time")


class LoopsWebhook(_Strict):
    """`POST /loops/webhook`: Loops' signed account webhook. contact.created becomes a Clay row; suppression
    events can be written back into Directus, email outcomes kept in the lead ledger, and every event
    fanned out to other endpoints."""

    signing_secret: SecretName = Field(
        default="loops-webhook-secret",
        description="secret with the endpoint's `whsec_…` secret(s), comma-separated while rotating",
    )
    clay_target: Name = Field(description="the `clay_targets` entry whose table gets the contacts")
    fields: dict[str, str] | list[str] | None = Field(
        default=None,
        description='contact field → Clay column (`{"firstName": "first_name"}`), a list of names kept as they '
        "are, or `null` for all (custom properties included)",
    )
    metadata: LoopsMetadataColumns = Field(default=LoopsMetadataColumns(), description="metadata column names")
    forward_events: tuple[str, ...] = Field(
        default=(), description='other event types that also become rows (e.g. `["contact.unsubscribed"]`)'
    )
    dedupe_window_seconds: int = Field(
        default=86_400, ge=60, le=30 * 86_400, description="how long a `webhook-id` counts as already seen"
    )
    directus_feedback: DirectusFeedback | None = Field(
        default=None, description="unsubscribes, bounces and complaints written back into Directus (`null`: none)"
    )
    keep_email_events: tuple[LoopsEventType, ...] = Field(
        default=KEPT_BY_DEFAULT,
        description="event types kept in the lead ledger (`relay trace`) even when they cause no delivery (one "
        "DynamoDB write each); an event that causes one is in the trace anyway, at no extra write. Add "
        '`"email.opened"` and `"email.clicked"` to keep opens and clicks',
    )
    forward: tuple[ForwardEndpoint, ...] = Field(
        default=(), description="other endpoints that get Loops' events, each re-signed with its own secret"
    )

    @field_validator("forward")
    @classmethod
    def _names_differ(cls, forward: tuple[ForwardEndpoint, ...]) -> tuple[ForwardEndpoint, ...]:
        names = [endpoint.name for endpoint in forward]
        if len(set(names)) != len(names):
            raise ValueError("each forward endpoint needs a name of its own")
        return forward

    def columns(self) -> dict[str, str] | None:
        return column_map(self.fields)

    def forward_endpoint(self, name: str) -> ForwardEndpoint | None:
        return next((endpoint for endpoint in self.forward if endpoint.name == name), None)


class LoopsForwarding(_Strict):
    """`POST /loops/contacts` and `/loops/events`: Clay writes to Loops without holding its key."""

    tokens_secret: SecretName = Field(default="clay-callback-tokens", description="secret with the accepted tokens")
    token_header: str = Field(default="authorization", min_length=1, description="header carrying the token")
    dedupe_window_seconds: int = Field(
        default=86_400, ge=60, le=30 * 86_400, description="how long the same body counts as a duplicate"
    )
