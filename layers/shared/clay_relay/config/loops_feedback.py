"""What the relay does with Loops' events besides Clay rows: suppression back into Directus, which
email outcomes the lead ledger keeps, and the other endpoints the one Loops webhook is fanned out to.
"""

from __future__ import annotations

import string
from typing import Annotated

from pydantic import AfterValidator, Field, field_validator, model_validator

from clay_relay.config.base import Name, SecretName, _Strict

# The 17 event types Loops sends (payloads keep `loop.*` although Loops calls them Workflows).
LOOPS_EVENT_TYPES = (
    "contact.created",
    "contact.deleted",
    "contact.unsubscribed",
    "contact.mailingList.subscribed",
    "contact.mailingList.unsubscribed",
    "campaign.email.sent",
    "loop.email.sent",
    "transactional.email.sent",
    "email.delivered",
    "email.opened",
    "email.clicked",
    "email.softBounced",
    "email.hardBounced",
    "email.spamReported",
    "email.unsubscribed",
    "email.resubscribed",
    "testing.testEvent",
)
# Loops' webhook settings name the mailing-list events without `contact.`; their payloads carry it.
_ALIASES = {name.removeprefix("contact."): name for name in LOOPS_EVENT_TYPES if name.startswith("contact.mailing")}
EVERY_EVENT = "*"
KEPT_BY_DEFAULT = (
    "campaign.email.sent",
    "loop.email.sent",
    "transactional.email.sent",
    "email.delivered",
    "email.softBounced",
    "email.hardBounced",
    "email.spamReported",
    "email.unsubscribed",
    "email.resubscribed",
)
PLACEHOLDERS = ("event_time", "event_type")


def canonical_event_type(name: str) -> str:
    """The event type as payloads name it (`mailingList.subscribed` → `contact.mailingList.subscribed`)."""
    return _ALIASES.get(name, name)


def _known(name: str) -> str:
    name = canonical_event_type(name)
    if name not in LOOPS_EVENT_TYPES:
        raise ValueError(f"{name!r} is no Loops event type; they are {', '.join(LOOPS_EVENT_TYPES)}")
    return name


def _known_or_every(name: str) -> str:
    return name if name == EVERY_EVENT else _known(name)


LoopsEventType = Annotated[str, AfterValidator(_known)]
FeedbackValue = str | int | float | bool | None


class DirectusFeedback(_Strict):
    """Loops' suppression events written into the lead's Directus item (PATCH, through the worker),
    in event-time order: an event older than the one that last set a field never overwrites it."""

    events: dict[LoopsEventType, dict[str, FeedbackValue]] = Field(
        min_length=1,
        description='event type → the fields it sets on the item, e.g. `{"email.hardBounced": {"email_status": '
        '"bounced", "email_status_at": "{event_time}"}}`. In a text value `{event_time}` is the event\'s time '
        "(ISO 8601, UTC) and `{event_type}` its type. When two events of a lead carry the same time (Loops sends "
        "`contact.unsubscribed` with every `email.hardBounced`), the one listed later here wins",
    )
    collection: str | None = Field(
        default=None,
        min_length=1,
        description="the Directus collection of the leads' items; `null`: the write-back's "
        "(`clay_callback.directus_writeback.collection`)",
    )
    email_field: str = Field(
        default="email",
        min_length=1,
        description="the item field with the lead's email, matched case-insensitively when the lead ledger knows "
        "no item of the lead",
    )
    key_field: str = Field(default="id", min_length=1, description="the collection's primary key field")
    api_secret: SecretName | None = Field(
        default=None,
        description='secret with `{"url": …, "token": …}` (a token that may read and update the fields); `null`: '
        "the write-back's (`directus-api` without one)",
    )

    @field_validator("events")
    @classmethod
    def _fields_to_set(cls, events: dict[str, dict[str, FeedbackValue]]) -> dict[str, dict[str, FeedbackValue]]:
        for event_type, fields in events.items():
            if not fields:
                raise ValueError(f"{event_type}: name at least one field to set")
            for value in fields.values():
                if isinstance(value, str):
                    _plain_placeholders(value)
        return events

    @model_validator(mode="after")
    def _key_is_not_set(self) -> DirectusFeedback:
        for event_type, fields in self.events.items():
            if self.key_field in fields:
                raise ValueError(f"{event_type}: {self.key_field!r} is the item's key, it cannot be set")
        return self

    def fields(self) -> set[str]:
        """Every field an event may set (Directus echoes these writes: see RelayConfig.write_back_fields)."""
        return {name for fields in self.events.values() for name in fields}


def _plain_placeholders(value: str) -> None:
    try:
        parsed = list(string.Formatter().parse(value))
    except ValueError as error:
        raise ValueError(f"{value!r}: {error} (write {{{{ and }}}} for braces)") from None
    for _, name, spec, conversion in parsed:
        if name is not None and (name not in PLACEHOLDERS or spec or conversion):
            raise ValueError(f"{value!r}: the placeholders are {{event_time}} and {{event_type}}")


class ForwardEndpoint(_Strict):
    """Another endpoint of Loops' events: each gets them re-signed with its own Standard Webhooks
    secret, through the worker (paced, retried, dead-lettered like every destination)."""

    name: Name = Field(description="the endpoint's name, in the lead's trace, dead letters and metrics")
    url_secret: SecretName = Field(description="secret with the endpoint's URL (an HTTPS URL: Zapier, any receiver)")
    signing_secret: SecretName = Field(
        description="secret with the endpoint's own `whsec_…` secret (several, comma-separated, while rotating: "
        "each signs)"
    )
    events: tuple[Annotated[str, AfterValidator(_known_or_every)], ...] = Field(
        min_length=1, description='the event types it gets, or `["*"]` for every one (unknown types included)'
    )

    def wants(self, event_type: str) -> bool:
        return EVERY_EVENT in self.events or canonical_event_type(event_type) in self.events
