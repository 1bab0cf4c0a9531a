"""The relay's declarative configuration: Directus sources, Clay targets, field mappings, delivery.

It lives in one JSON file (`layers/shared/relay.json`, deployed with the layer; `RELAY_CONFIG_PATH`
points elsewhere) and holds no secret: secrets are referenced by name and resolved at run time
(see `secrets`). Unknown keys are rejected so a typo fails the deployment loudly, not silently.
"""

from __future__ import annotations

import json
import string
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
        description='secret holding the pool of webhook URLs: a JSON list of `{"url": …, "token": …}` '
        "(token optional), used in order"
    )
    workspace: Name = Field(
        default="default",
        description="the Clay workspace the table belongs to: tables of one workspace share its rate "
        "(`rates_per_second.clay`), tables of different workspaces each get their own",
    )
    auth_header: str = Field(
        default="x-clay-webhook-auth", min_length=1, description="header that carries a URL's token"
    )
    submission_limit: int = Field(default=50_000, ge=1, le=50_000, description="submissions per URL")
    warn_at: tuple[float, ...] = Field(
        default=(0.8, 0.95), description="fractions of the limit at which a warning is logged and counted"
    )
    max_row_bytes: int = Field(default=100_000, ge=1_000, description="bigger rows are refused at the edge with `413`")
    idempotency_column: str | None = Field(
        default="relay_event_id",
        min_length=1,
        max_length=200,
        description="column that carries each row's event id; turn on the table's auto-dedupe on it "
        "(see Set up Clay). `null` leaves it out",
    )


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


DEFAULT_RATES_PER_SECOND: dict[Destination, float] = {"clay": 10, "loops": 10, "slack": 1, "zapier": 10, "directus": 10}


class DeliveryPolicy(_Strict):
    """How the worker retries: exponential backoff with jitter for `retry_horizon_seconds` after
    the event was accepted, then the dead-letter queue. Waiting for a destination's rate limit or
    for a Clay URL with quota left spends no retries, only time. With the defaults a failing job is
    retried about 30 times over its 24 hours."""

    retry_horizon_seconds: int = Field(
        default=86_400,
        ge=1,
        le=13 * 86_400,  # SQS keeps messages 14 days
        description="how long after it was accepted a job is retried. After that, its next failure sends it to "
        "the dead-letter queue with the last error and its attempt count (at most 13 days: SQS keeps messages 14)",
    )
    min_backoff_seconds: int = Field(
        default=30,
        ge=0,
        le=43_200,
        description="first retry delay; doubles every attempt, with jitter (each delay is between half and all "
        "of it). Half of it is also how long a worker leaves a destination alone after it timed out, refused "
        "the connection or answered `5xx`",
    )
    max_backoff_seconds: int = Field(
        default=3_600,
        ge=1,
        le=43_200,
        description="the longest delay (at most 12 h); a destination's `Retry-After` is honoured when longer",
    )
    hold_seconds: int = Field(
        default=900,
        ge=1,
        le=900,
        description="how often a row waiting for a Clay URL with quota left checks again",
    )
    rates_per_second: dict[Destination, float] = Field(
        default=DEFAULT_RATES_PER_SECOND,
        description="requests per second to each destination (Clay: to each workspace), all workers together "
        '(see "Pacing" in How it keeps its promises); a destination left out keeps its default; each rate '
        "must be positive",
    )

    @field_validator("rates_per_second")
    @classmethod
    def _positive(cls, rates: dict[str, float]) -> dict[str, float]:
        if any(rate <= 0 for rate in rates.values()):
            raise ValueError("rates must be positive")
        return {**DEFAULT_RATES_PER_SECOND, **rates}


class Routing(_Strict):
    """ICP score thresholds (inclusive) that decide what happens to an enriched lead.
    `nurture_min_score` must not be above `outreach_min_score`."""

    outreach_min_score: float = Field(
        default=80, ge=0, le=100, description="from this score a lead is routed to outreach (a Loops event)"
    )
    nurture_min_score: float = Field(
        default=50,
        ge=0,
        le=100,
        description="from this score (below outreach) a lead is routed to nurture (a Loops contact); below it, skip",
    )
    hot_min_score: float = Field(
        default=90,
        ge=0,
        le=100,
        description="from this score an outreach or nurture lead is hot: also a Slack message",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Routing:
        if self.nurture_min_score > self.outreach_min_score:
            raise ValueError("nurture_min_score must not be above outreach_min_score")
        return self


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


class SlackSettings(_Strict):
    """The Slack message that announces hot leads."""

    webhook_secret: SecretName = Field(
        default="slack-webhook-url", description="secret with the Slack incoming webhook URL"
    )
    message: str = Field(
        default=":fire: Hot lead: {first_name} {last_name}, {job_title} at {company_name} (ICP {icp_score})",
        description="the message; placeholders: any EnrichedLead field, e.g. `{email}` `{industry}` "
        "`{linkedin_url}` (`?` when empty). Only plain placeholders: `{employee_count:,}` is refused when the "
        "configuration loads",
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
    """Posts each routed lead (plus `route` and `hot`) to a Zapier catch hook, or any webhook."""

    webhook_secret: SecretName = Field(default="zapier-webhook-url", description="secret with the catch hook's URL")
    routes: tuple[Literal["outreach", "nurture"], ...] = Field(
        default=("outreach", "nurture"),
        description="the routes whose leads are posted: `outreach`, `nurture` or both (skipped leads go nowhere)",
    )


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
    collection: str = Field(min_length=1, description="the Directus collection the leads' items are in")
    fields: dict[LeadField, str] = Field(
        min_length=1, description="lead field → Directus field; only non-empty values are written"
    )


class ClayCallback(_Strict):
    """The `/clay/enriched` route: Clay's HTTP API column calls it with enriched leads."""

    tokens_secret: SecretName = Field(default="clay-callback-tokens", description="secret with the accepted tokens")
    token_header: str = Field(
        default="authorization",
        min_length=1,
        description="header carrying the token (`Bearer <token>` or the bare token), e.g. `x-api-key`",
    )
    hmac_secret: SecretName | None = Field(
        default=None,
        description="secret with HMAC keys; when set, a request with `hmac_header` is verified by signature "
        "instead of token",
    )
    hmac_header: str = Field(
        default="x-relay-signature",
        min_length=1,
        description="header carrying `sha256=<hex of HMAC-SHA256(key, raw body)>`",
    )
    dedupe_window_seconds: int = Field(
        default=86_400, ge=60, le=30 * 86_400, description="how long the same lead counts as a duplicate"
    )
    routing: Routing = Field(default=Routing(), description="ICP thresholds, inclusive")
    loops: LoopsSettings = Field(default=LoopsSettings(), description="what outreach and nurture leads become in Loops")
    slack: SlackSettings | None = Field(default=None, description="the hot-lead message; `null` sends none")
    zapier: ZapierSettings | None = Field(default=None, description="`null` posts nothing to Zapier")
    directus_writeback: DirectusWriteBack | None = Field(
        default=None, description="write the enrichment back into Directus; `null` turns it off"
    )


class LoopsMetadataColumns(_Strict):
    """Clay column names for what the relay adds to every Loops row; null leaves that column out."""

    event: str | None = Field(default="loops_event", description="column for the Loops event type")
    contact_id: str | None = Field(default="loops_contact_id", description="column for the Loops contact id")
    event_time: str | None = Field(default="loops_event_time", description="column for the event's time")


class LoopsWebhook(_Strict):
    """`POST /loops/webhook`: Loops' signed account webhook; contact.created becomes a Clay row."""

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

    def columns(self) -> dict[str, str] | None:
        return column_map(self.fields)


class LoopsForwarding(_Strict):
    """`POST /loops/contacts` and `/loops/events`: Clay writes to Loops without holding its key."""

    tokens_secret: SecretName = Field(default="clay-callback-tokens", description="secret with the accepted tokens")
    token_header: str = Field(default="authorization", min_length=1, description="header carrying the token")
    dedupe_window_seconds: int = Field(
        default=86_400, ge=60, le=30 * 86_400, description="how long the same body counts as a duplicate"
    )


class RelayConfig(_Strict):
    """The whole of relay.json. A route whose section is left out (`clay_callback`, `loops_webhook`,
    `loops_forwarding`) answers `404`."""

    directus_sources: dict[Name, DirectusSource] = Field(
        default_factory=dict, description="one `POST /directus/<name>` route each"
    )
    clay_targets: dict[Name, ClayTarget] = Field(default_factory=dict, description="one Clay table each")
    clay_callback: ClayCallback | None = Field(default=None, description="the `POST /clay/enriched` route")
    loops_webhook: LoopsWebhook | None = Field(default=None, description="the `POST /loops/webhook` route")
    loops_forwarding: LoopsForwarding | None = Field(
        default=None, description="the `POST /loops/contacts` and `/loops/events` routes"
    )
    loops_api: LoopsApi = Field(default=LoopsApi(), description="Loops' API key, for every flow that writes to Loops")
    delivery: DeliveryPolicy = Field(default=DeliveryPolicy(), description="the worker's pacing and retries")

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


def load_config(path: Path) -> RelayConfig:
    """relay.json, validated (the runtime reads it once; see clay_relay.runtime)."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read relay configuration {path}: {error}") from None
    try:
        return RelayConfig.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(f"{f['field']}: {f['problem']}" for f in validation_fields(error, whole=""))
        raise ConfigError(f"invalid relay configuration {path}: {problems}") from None
