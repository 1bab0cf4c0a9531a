"""Directus in relay.json: the `/directus/<name>` sources and the write-back of enriched leads."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from clay_relay.config.base import Name, SecretName, _Strict

EventHandling = Literal["send", "skip"]
UpdateHandling = Literal["full", "changed", "skip"]


class MetadataColumns(_Strict):
    """Clay column names for what the relay adds to every row; null leaves that column out."""

    event: str | None = Field(default="directus_event", description="column for the event name")
    collection: str | None = Field(default="directus_collection", description="column for the collection")
    key: str | None = Field(default="directus_key", description="column for the item key")


class DirectusSource(_Strict):
    """One `/directus/<name>` route: which events of which collection become rows of which target.

    An update whose changed fields are all outside `fields` is skipped (`"skipped": "no mapped field changed"`).
    With `on_update: "full"` the worker reads the updated item from Directus' items API and sends its current
    values; the reconciliation sweep (`reconcile_minutes`) reads the collection for events Directus never
    delivered."""

    clay_target: Name = Field(description="the `clay_targets` entry whose table gets the rows")
    collection: str | None = Field(
        default=None, description="accept only events of this collection (others: `422`); `null`: any"
    )
    tokens_secret: SecretName = Field(
        default="directus-tokens", description="secret with the accepted tokens (see Secrets)"
    )
    fields: dict[str, str] | list[str] | None = Field(
        default=None,
        description='which payload fields become which Clay columns: `{"field": "column"}`, a list of names kept '
        "as they are, or `null` for every field",
    )
    metadata: MetadataColumns = Field(
        default=MetadataColumns(),
        description="column names for the event name, the collection and the item key",
    )
    on_create: EventHandling = Field(
        default="send",
        description='`send` or `skip` (skipped events are answered `202` with `"skipped": "<why>"`)',
    )
    on_update: UpdateHandling = Field(
        default="full",
        description="`full`: the row carries the item's current value of every mapped field, read from Directus "
        "(`clay_callback.directus_writeback.api_secret`, else `directus-api`); `changed`: only the fields the "
        "update changed (`send`, the old spelling, means this); `skip`: updates are not sent",
    )
    on_delete: EventHandling = Field(default="send", description="`send` or `skip`, for deletes")
    dedupe_window_seconds: int = Field(
        default=86_400, ge=60, le=30 * 86_400, description="how long an identical event counts as a duplicate"
    )
    key_field: str = Field(
        default="id",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="the collection's primary key field: full rows and the sweep read items by it",
    )
    reconcile_minutes: int | None = Field(
        default=15,
        ge=5,
        le=1440,
        description="how often the reconciliation sweep reads the collection for creates and mapped-field updates "
        "the Flow never delivered (checked every 5 minutes); `null` turns it off for this source",
    )
    created_field: str | None = Field(
        default="date_created",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="the collection's `date_created` field (Directus' *Date Created*): the sweep finds creates by "
        "it; `null` when the collection has none (creates are then found by new primary keys, which must be "
        "integers, and updates are not swept)",
    )
    updated_field: str | None = Field(
        default="date_updated",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="the collection's `date_updated` field (Directus' *Date Updated*): the sweep finds updates by "
        "it (with `on_update: full`); `null` when the collection has none",
    )

    @field_validator("on_update", mode="before")
    @classmethod
    def _old_spelling(cls, value: Any) -> Any:
        """`send` was the only way to send updates before full rows: it meant what `changed` means."""
        return "changed" if value == "send" else value

    def columns(self) -> dict[str, str] | None:
        return column_map(self.fields)


def column_map(fields: dict[str, str] | list[str] | None) -> dict[str, str] | None:
    """`fields` as field → column (a list keeps names); None keeps every field."""
    if fields is None:
        return None
    if isinstance(fields, list):
        return {name: name for name in fields}
    return dict(fields)


LeadField = Literal[
    "email",
    "icp_score",
    "first_name",
    "last_name",
    "company_name",
    "job_title",
    "employee_count",
    "industry",
    "linkedin_url",
    "personalized_opener",
]


class DirectusWriteBack(_Strict):
    """PATCH the lead's originating Directus item (its `directus_id`) with enrichment fields."""

    api_secret: SecretName = Field(
        default="directus-api",
        description='secret with JSON `{"url": …, "token": …}`: the Directus URL and a static token that may '
        "update the fields",
    )
    collection: Name = Field(
        description="the Directus collection the leads' items are in (1 to 64 letters, digits, `_` or `-`: it is a "
        "segment of the PATCH's path)"
    )
    fields: dict[LeadField, str] = Field(
        min_length=1, description="lead field → Directus field; only non-empty values are written"
    )
