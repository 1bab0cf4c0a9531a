"""Typed environment of a relay function, validated once so misconfiguration fails loudly."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "relay.json"


class Settings(BaseModel):
    table_name: str = Field(min_length=1, description="RELAY_TABLE: the stack's DynamoDB table")
    delivery_queue_url: str = Field(min_length=1, description="DELIVERY_QUEUE_URL: the stack's delivery queue")
    dead_letter_queue_url: str = Field(min_length=1, description="DEAD_LETTER_QUEUE_URL: the stack's dead-letter queue")
    secrets_prefix: str = Field(
        default="", description="SECRETS_PREFIX: `<stack name>/`, prepended to every secret name"
    )
    secrets_cache_seconds: int = Field(
        default=300,
        ge=0,
        description="SECRETS_CACHE_SECONDS: how long a secret read is kept (a used-up Clay pool is read again at once)",
    )
    config_path: Path = Field(
        default=DEFAULT_CONFIG_PATH, description="RELAY_CONFIG_PATH: another relay.json (default: the layer's)"
    )
    max_body_bytes: int = Field(default=262_144, ge=1024, description="MAX_BODY_BYTES: larger request bodies get `413`")
    outbound_timeout_seconds: float = Field(
        default=10.0, gt=0, description="OUTBOUND_TIMEOUT_SECONDS: a destination slower than this is retried"
    )
    loops_webhook_tolerance_seconds: int = Field(
        default=300,
        ge=0,
        description="LOOPS_WEBHOOK_TOLERANCE_SECONDS: how far a Loops webhook's timestamp may be from now, both ways; "
        "from the template parameter `LoopsWebhookToleranceSeconds` (0 turns the check off: local use only)",
    )
    worker_max_concurrency: int = Field(
        default=1,
        ge=1,
        description="WORKER_MAX_CONCURRENCY: how many shares each destination's rate is split into; from the template "
        "parameter `WorkerMaximumConcurrency` (the local stack sets 1: its workers share one pacer)",
    )


_ENV = {
    "table_name": "RELAY_TABLE",
    "delivery_queue_url": "DELIVERY_QUEUE_URL",
    "dead_letter_queue_url": "DEAD_LETTER_QUEUE_URL",
    "secrets_prefix": "SECRETS_PREFIX",
    "secrets_cache_seconds": "SECRETS_CACHE_SECONDS",
    "config_path": "RELAY_CONFIG_PATH",
    "max_body_bytes": "MAX_BODY_BYTES",
    "outbound_timeout_seconds": "OUTBOUND_TIMEOUT_SECONDS",
    "loops_webhook_tolerance_seconds": "LOOPS_WEBHOOK_TOLERANCE_SECONDS",
    "worker_max_concurrency": "WORKER_MAX_CONCURRENCY",
}


class SettingsError(RuntimeError):
    """The function's environment is incomplete or invalid (a deployment problem)."""


@cache
def get_settings() -> Settings:
    values = {field: os.environ[var] for field, var in _ENV.items() if os.environ.get(var)}
    try:
        return Settings(**values)
    except ValidationError as error:
        problems = "; ".join(f"{_ENV[str(e['loc'][0])]}: {e['msg']}" for e in error.errors() if e["loc"])
        raise SettingsError(f"invalid function environment: {problems}") from None
