"""The relay's declarative configuration: Directus sources, Clay targets, field mappings, delivery.

It lives in one JSON file (`layers/shared/relay.json`, deployed with the layer; `RELAY_CONFIG_PATH`
points elsewhere) and holds no secret: secrets are referenced by name and resolved at run time
(see `secrets`). Unknown keys are rejected so a typo fails the deployment loudly, not silently.

The models live by concern (`directus`, `clay`, `loops`, `hooks`, `delivery`); every public name is
imported from here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, ValidationError, model_validator

from clay_relay.config.base import Name, SecretName, _Strict
from clay_relay.config.clay import ClayBudget, ClayCallback, ClayTarget, Routing, UsedUpAnswer
from clay_relay.config.delivery import DEFAULT_RATES_PER_SECOND, DeliveryPolicy
from clay_relay.config.directus import (
    DirectusSource,
    DirectusWriteBack,
    EventHandling,
    LeadField,
    MetadataColumns,
    column_map,
)
from clay_relay.config.hooks import SlackSettings, ZapierSettings
from clay_relay.config.loops import LoopsApi, LoopsForwarding, LoopsMetadataColumns, LoopsSettings, LoopsWebhook
from clay_relay.config.loops_feedback import (
    LOOPS_EVENT_TYPES,
    DirectusFeedback,
    ForwardEndpoint,
    canonical_event_type,
)
from clay_relay.errors import validation_fields

__all__ = [
    "DEFAULT_RATES_PER_SECOND",
    "LOOPS_EVENT_TYPES",
    "ClayBudget",
    "ClayCallback",
    "ClayTarget",
    "ConfigError",
    "DeliveryPolicy",
    "DirectusFeedback",
    "DirectusSource",
    "DirectusWriteBack",
    "EventHandling",
    "FeedbackTarget",
    "ForwardEndpoint",
    "LeadField",
    "LoopsApi",
    "LoopsForwarding",
    "LoopsMetadataColumns",
    "LoopsSettings",
    "LoopsWebhook",
    "MetadataColumns",
    "Name",
    "RelayConfig",
    "Routing",
    "SecretName",
    "SlackSettings",
    "UsedUpAnswer",
    "ZapierSettings",
    "canonical_event_type",
    "column_map",
    "load_config",
]


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
    ledger_retention_days: int = Field(
        default=30,
        ge=1,
        le=365,
        description="how long the lead ledger keeps each stage of a lead (`relay trace`); then DynamoDB's TTL "
        "removes it",
    )

    def write_back_fields(self, collection: str) -> set[str]:
        """Directus fields of `collection` the relay itself writes, enrichment and Loops feedback
        (their updates are echoes)."""
        write_back = self.clay_callback.directus_writeback if self.clay_callback else None
        fields = set(write_back.fields.values()) if write_back and write_back.collection == collection else set()
        feedback = self.feedback_target()
        if feedback and feedback.collection == collection:
            fields |= feedback.settings.fields()
        return fields

    def feedback_target(self) -> FeedbackTarget | None:
        """Where Loops' feedback goes in Directus (None when it is not configured)."""
        settings = self.loops_webhook.directus_feedback if self.loops_webhook else None
        if settings is None:
            return None
        write_back = self.clay_callback.directus_writeback if self.clay_callback else None
        collection = settings.collection or (write_back.collection if write_back else "")
        api_secret = settings.api_secret or (write_back.api_secret if write_back else "directus-api")
        return FeedbackTarget(settings, collection, api_secret)

    @model_validator(mode="after")
    def _targets_exist(self) -> RelayConfig:
        for name, source in self.directus_sources.items():
            if source.clay_target not in self.clay_targets:
                raise ValueError(f"directus source {name!r} names unknown clay_target {source.clay_target!r}")
        if self.loops_webhook and self.loops_webhook.clay_target not in self.clay_targets:
            raise ValueError(f"loops_webhook names unknown clay_target {self.loops_webhook.clay_target!r}")
        feedback = self.feedback_target()
        if feedback and not feedback.collection:
            raise ValueError(
                "loops_webhook.directus_feedback needs a collection (there is no clay_callback.directus_writeback "
                "to take it from)"
            )
        return self


@dataclass(frozen=True)
class FeedbackTarget:
    """Loops' feedback settings with the collection and API secret they take from the write-back."""

    settings: DirectusFeedback
    collection: str
    api_secret: str


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
