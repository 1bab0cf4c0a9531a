"""The relay's declarative configuration: Directus sources, Clay targets, field mappings, delivery.

It lives in one JSON file (`layers/shared/relay.json`, deployed with the layer; `RELAY_CONFIG_PATH`
points elsewhere) and holds no secret: secrets are referenced by name and resolved at run time
(see `secrets`). Unknown keys are rejected so a typo fails the deployment loudly, not silently.
"""

from __future__ import annotations

import json
import string
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from clay_relay.errors import validation_fields
from clay_relay.jobs import Destination

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
SecretName = Annotated[str, Field(pattern=r"^[A-Za-z0-9/_+=.@-]{1,512}$")]
EventHandling = Literal["send", "skip"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClayTarget(_Strict):
    """A Clay table, reached through a pool of inbound webhook URLs (each good for `submission_limit`)."""

    webhooks_secret: SecretName = Field(
        description='Secret holding the pool: a JSON list of {"url": ..., "token": ...} (token optional)'
    )
    workspace: Name = Field(
        default="default", description="the Clay workspace of the table: tables of one workspace share its rate"
    )
    auth_header: str = Field(default="x-clay-webhook-auth", min_length=1)
    submission_limit: int = Field(default=50_000, ge=1, le=50_000)
    warn_at: tuple[float, ...] = Field(default=(0.8, 0.95))
    max_row_bytes: int = Field(default=100_000, ge=1_000)
    idempotency_column: str | None = Field(
        default="relay_event_id",
        min_length=1,
        max_length=200,
        description="column carrying each row's event id, for the table's auto-dedupe (null: none)",
    )


class MetadataColumns(_Strict):
    """Clay column names for what the relay adds to every row; null leaves that column out."""

    event: str | None = "directus_event"
    collection: str | None = "directus_collection"
    key: str | None = "directus_key"


class DirectusSource(_Strict):
    """One `/directus/<name>` route: which events of which collection become rows of which target."""

    clay_target: Name
    collection: str | None = Field(default=None, description="accept only this collection (default: any)")
    tokens_secret: SecretName = "directus-tokens"
    fields: dict[str, str] | list[str] | None = Field(
        default=None, description="payload field → Clay column; a list keeps names; null keeps all"
    )
    metadata: MetadataColumns = MetadataColumns()
    on_create: EventHandling = "send"
    on_update: EventHandling = "send"
    on_delete: EventHandling = "send"
    dedupe_window_seconds: int = Field(default=86_400, ge=60, le=30 * 86_400)

    def columns(self) -> dict[str, str] | None:
        return column_map(self.fields)


def column_map(fields: dict[str, str] | list[str] | None) -> dict[str, str] | None:
    """`fields` as field → column (a list keeps names); None keeps every field."""
    if fields is None:
        return None
    if isinstance(fields, list):
        return {name: name for name in fields}
    return dict(fields)


DEFAULT_RATES_PER_SECOND: dict[Destination, float] = {"clay": 10, "loops": 10, "slack": 1, "zapier": 10, "directus": 10}


class DeliveryPolicy(_Strict):
    """How the worker retries: exponential backoff with jitter for `retry_horizon_seconds` after
    the event was accepted, then the dead-letter queue. Waiting for a destination's rate limit or
    for a Clay URL with quota left spends no retries."""

    retry_horizon_seconds: int = Field(default=86_400, ge=1, le=13 * 86_400)  # SQS keeps messages 14 days
    min_backoff_seconds: int = Field(default=30, ge=0, le=43_200)
    max_backoff_seconds: int = Field(default=3_600, ge=1, le=43_200)
    hold_seconds: int = Field(default=900, ge=1, le=900, description="re-check delay for held events")
    rates_per_second: dict[Destination, float] = Field(
        default=DEFAULT_RATES_PER_SECOND,
        description="requests per second to each destination (for Clay: to each workspace), summed over every worker",
    )

    @field_validator("rates_per_second")
    @classmethod
    def _positive(cls, rates: dict) -> dict:
        if any(rate <= 0 for rate in rates.values()):
            raise ValueError("rates must be positive")
        return {**DEFAULT_RATES_PER_SECOND, **rates}


class Routing(_Strict):
    """ICP score thresholds (inclusive) that decide what happens to an enriched lead."""

    outreach_min_score: float = Field(default=80, ge=0, le=100)
    nurture_min_score: float = Field(default=50, ge=0, le=100)
    hot_min_score: float = Field(default=90, ge=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> Routing:
        if self.nurture_min_score > self.outreach_min_score:
            raise ValueError("nurture_min_score must not be above outreach_min_score")
        return self


class LoopsApi(_Strict):
    """Loops' API, for every flow that writes to Loops."""

    api_key_secret: SecretName = "loops-api-key"


class LoopsSettings(_Strict):
    """What enriched leads become in Loops."""

    outreach_event_name: str = Field(default="clay_outreach", min_length=1, max_length=100)
    nurture_mailing_list_id: str | None = Field(default=None, description="mailing list nurture leads join")
    source: str = Field(default="clay-relay", description="Loops contact 'source' for contacts the relay creates")


class SlackSettings(_Strict):
    webhook_secret: SecretName = "slack-webhook-url"
    message: str = Field(
        default=":fire: Hot lead: {first_name} {last_name}, {job_title} at {company_name} (ICP {icp_score})",
        description="placeholders: any EnrichedLead field, e.g. {email} {industry} {linkedin_url}",
    )

    @field_validator("message")
    @classmethod
    def _plain_placeholders(cls, message: str) -> str:
        """Only plain `{field}` placeholders: a format spec such as `{employee_count:,}` would fail
        on a lead whose field is empty, so it is refused when the configuration loads."""
        for _, field, spec, conversion in string.Formatter().parse(message):
            if field is not None and (spec or conversion or not field.isidentifier()):
                raise ValueError(
                    f"use plain placeholders like {{first_name}}, not {{{field}{':' + spec if spec else ''}}}"
                )
        return message


class ZapierSettings(_Strict):
    webhook_secret: SecretName = "zapier-webhook-url"
    routes: tuple[Literal["outreach", "nurture"], ...] = ("outreach", "nurture")  # skipped leads go nowhere


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

    api_secret: SecretName = Field(default="directus-api", description='JSON {"url": ..., "token": ...}')
    collection: str = Field(min_length=1)
    fields: dict[LeadField, str] = Field(min_length=1, description="EnrichedLead field → Directus field")


class ClayCallback(_Strict):
    """The `/clay/enriched` route: Clay's HTTP API column calls it with enriched leads."""

    tokens_secret: SecretName = "clay-callback-tokens"
    token_header: str = Field(default="authorization", min_length=1)
    hmac_secret: SecretName | None = Field(default=None, description="secrets for signed senders (optional)")
    hmac_header: str = Field(default="x-relay-signature", min_length=1)
    dedupe_window_seconds: int = Field(default=86_400, ge=60, le=30 * 86_400)
    routing: Routing = Routing()
    loops: LoopsSettings = LoopsSettings()
    slack: SlackSettings | None = None
    zapier: ZapierSettings | None = None
    directus_writeback: DirectusWriteBack | None = None


class LoopsMetadataColumns(_Strict):
    event: str | None = "loops_event"
    contact_id: str | None = "loops_contact_id"
    event_time: str | None = "loops_event_time"


class LoopsWebhook(_Strict):
    """`POST /loops/webhook`: Loops' signed account webhook; contact.created becomes a Clay row."""

    signing_secret: SecretName = Field(default="loops-webhook-secret", description="whsec_… secret(s)")
    clay_target: Name
    fields: dict[str, str] | list[str] | None = Field(
        default=None, description="contact field → Clay column; a list keeps names; null keeps all"
    )
    metadata: LoopsMetadataColumns = LoopsMetadataColumns()
    forward_events: tuple[str, ...] = Field(default=(), description="other event types also sent as rows")
    dedupe_window_seconds: int = Field(default=86_400, ge=60, le=30 * 86_400)

    def columns(self) -> dict[str, str] | None:
        return column_map(self.fields)


class LoopsForwarding(_Strict):
    """`POST /loops/contacts` and `/loops/events`: Clay writes to Loops without holding its key."""

    tokens_secret: SecretName = "clay-callback-tokens"
    token_header: str = Field(default="authorization", min_length=1)
    dedupe_window_seconds: int = Field(default=86_400, ge=60, le=30 * 86_400)


class RelayConfig(_Strict):
    directus_sources: dict[Name, DirectusSource] = Field(default_factory=dict)
    clay_targets: dict[Name, ClayTarget] = Field(default_factory=dict)
    clay_callback: ClayCallback | None = None
    loops_webhook: LoopsWebhook | None = None
    loops_forwarding: LoopsForwarding | None = None
    loops_api: LoopsApi = LoopsApi()
    delivery: DeliveryPolicy = DeliveryPolicy()

    def write_back_fields(self, collection: str) -> set[str]:
        """Directus fields of `collection` the relay itself writes (their updates are echoes)."""
        write_back = self.clay_callback.directus_writeback if self.clay_callback else None
        if write_back is None or write_back.collection != collection:
            return set()
        return set(write_back.fields.values())

    @model_validator(mode="after")
    def _targets_exist(self) -> RelayConfig:
        for name, source in self.directus_sources.items():
            if source.clay_target not in self.clay_targets:
                raise ValueError(f"directus source {name!r} names unknown clay_target {source.clay_target!r}")
        if self.loops_webhook and self.loops_webhook.clay_target not in self.clay_targets:
            raise ValueError(f"loops_webhook names unknown clay_target {self.loops_webhook.clay_target!r}")
        return self


class ConfigError(RuntimeError):
    """The configuration file is missing or invalid (a deployment problem, never a sender's)."""


@cache
def load_config(path: Path) -> RelayConfig:
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read relay configuration {path}: {error}") from None
    try:
        return RelayConfig.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(f"{f['field']}: {f['problem']}" for f in validation_fields(error, whole=""))
        raise ConfigError(f"invalid relay configuration {path}: {problems}") from None
