"""Typed environment of a relay function: each variable declared once (its alias below), validated
when the runtime is built, so misconfiguration fails loudly and once.

Plain pydantic rather than pydantic-settings: reading a flat set of strings needs none of its
sources, and importing it (with python-dotenv) adds about 15 ms to every cold start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "relay.json"
DEFAULT_LOOPS_API_BASE = "https://app.loops.so/api"
TracingMode = Literal["lambda", "off", "xray"]
TRACING_MODES: tuple[TracingMode, ...] = get_args(TracingMode)


class Settings(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    table_name: str = Field(alias="RELAY_TABLE", min_length=1, description="the stack's DynamoDB table")
    delivery_queue_url: str = Field(alias="DELIVERY_QUEUE_URL", min_length=1, description="the stack's delivery queue")
    dead_letter_queue_url: str = Field(
        alias="DEAD_LETTER_QUEUE_URL", min_length=1, description="the stack's dead-letter queue"
    )
    secrets_prefix: str = Field(
        default="", alias="SECRETS_PREFIX", description="`<stack name>/`, prepended to every secret name"
    )
    secrets_cache_seconds: int = Field(
        default=300,
        ge=0,
        alias="SECRETS_CACHE_SECONDS",
        description="how long a secret read is kept (a used-up Clay pool is read again at once)",
    )
    config_path: Path = Field(
        default=DEFAULT_CONFIG_PATH, alias="RELAY_CONFIG_PATH", description="another relay.json (default: the layer's)"
    )
    max_body_bytes: int = Field(
        default=262_144, ge=1024, alias="MAX_BODY_BYTES", description="larger request bodies get `413`"
    )
    outbound_timeout_seconds: float = Field(
        default=10.0, gt=0, alias="OUTBOUND_TIMEOUT_SECONDS", description="a destination slower than this is retried"
    )
    reconcile_settle_seconds: int = Field(
        default=120,
        ge=0,
        le=3600,
        alias="RECONCILE_SETTLE_SECONDS",
        description="how long the reconciliation sweep leaves a Directus change to its Flow before it looks at it "
        "(an event still on its way is not taken for a lost one); the local stack's `--reconcile-seconds` shortens it",
    )
    reconcile_every_seconds: int | None = Field(
        default=None,
        ge=1,
        alias="RECONCILE_EVERY_SECONDS",
        description="replaces every Directus source's `reconcile_minutes` (the local stack's `--reconcile-seconds`, "
        "for demos and tests); unset in a deployed stack",
    )
    loops_webhook_tolerance_seconds: int = Field(
        default=300,
        ge=0,
        alias="LOOPS_WEBHOOK_TOLERANCE_SECONDS",
        description="how far a Loops webhook's timestamp may be from now, both ways; from the template parameter "
        "`LoopsWebhookToleranceSeconds` (0 turns the check off: local use only)",
    )
    worker_max_concurrency: int = Field(
        default=1,
        ge=1,
        alias="WORKER_MAX_CONCURRENCY",
        description="how many shares each destination's rate is split into; from the template parameter "
        "`WorkerMaximumConcurrency` (the local stack sets 1: its workers share one pacer)",
    )
    loops_api_base: str = Field(
        default=DEFAULT_LOOPS_API_BASE,
        min_length=1,
        alias="LOOPS_API_BASE",
        description="Loops' API base URL (the local stack points it at its Loops sandbox); like every "
        "destination, an `https://` URL of a public host",
    )
    allow_local_destinations: bool = Field(
        default=False,
        alias="ALLOW_LOCAL_DESTINATIONS",
        description="also send to this machine (`http://` or `https://` to 127.0.0.1, `::1`, `localhost`, "
        "`host.docker.internal`): the local stack, the tests and `events/env.json` set it. Never in a deployed "
        "stack, which sends only to `https://` URLs of public hosts",
    )
    enrichment_sla_seconds: int | None = Field(
        default=None,
        ge=1,
        alias="ENRICHMENT_SLA_SECONDS",
        description="replaces every Clay target's `enrichment_sla_minutes` (the local stack's `--enrichment-sla`, "
        "for demos and tests); unset in a deployed stack",
    )

    tracing: TracingMode = Field(
        default="lambda",
        alias="RELAY_TRACING",
        description="how the functions are traced; from the template parameter `Tracing`, which also sets Lambda's "
        "tracing: `lambda` (Lambda records each invocation's segment in X-Ray, no tracer in the functions), `off` "
        "(nothing recorded), `xray` (as `lambda`, plus the X-Ray SDK's subsegments for the handler, every AWS "
        "request and every outbound request). docs/operating.md: Tracing",
    )

    @field_validator("tracing", mode="before")
    @classmethod
    def _known_tracing_mode(cls, value: object) -> object:
        if value not in TRACING_MODES:
            raise ValueError(
                f"{value!r} is not a tracing mode (the template parameter `Tracing`): "
                f"use one of {', '.join(TRACING_MODES)}"
            )
        return value

    clay_budget_cache_seconds: int = Field(
        default=15,
        ge=0,
        le=30,
        alias="CLAY_BUDGET_CACHE_SECONDS",
        description="how long a worker keeps a Clay target's budget as `relay clay budget` set it, before reading "
        "it again from the table (one read per target)",
    )

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """The settings from the environment (an empty variable counts as unset)."""
        aliases = {field.alias for field in cls.model_fields.values()}
        try:
            return cls.model_validate({name: value for name, value in environ.items() if name in aliases and value})
        except ValidationError as error:
            problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in error.errors() if e["loc"])
            raise SettingsError(f"invalid function environment: {problems}") from None


class SettingsError(RuntimeError):
    """The function's environment is incomplete or invalid (a deployment problem)."""
