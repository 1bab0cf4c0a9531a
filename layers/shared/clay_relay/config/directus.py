"""Directus in relay.json: the `/directus/<name>` sources and the write-back of enriched leads."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from clay_relay.config.base import Name, SecretName, _Strict

EventHandling = Literal["send", "skip"]


class MetadataColumns(_Strict):
    """Clay column names for what the relay adds to every row; null leaves that column out."""

    event: str | None = Field(default="directus_event", description="column for the event name")
    collection: str | None = Field(default="directus_collection", description="column for the collection")
    key: str | None = Field(default="directus_key", description="column for the item key")


class DirectusSource(_Strict):
    """One `/directus/<name>` route: which events of which collection become rows of which target.

    An update whose changed fields are all outside `fields` is skipped (`"skipped": "no mapped field changed"`)."""

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
    on_update: EventHandling = Field(default="send", description="`send` or `skip`, for updates")
    on_delete: EventHandling = Field(default="send", description="`send` or `skip`, for deletes")
    dedupe_window_seconds: int = Field(
        default=86_400, ge=60, le=30 * 86_400, description="how long an identical event counts as a duplicate"
    )

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
