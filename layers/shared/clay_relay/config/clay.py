"""Clay in relay.json: its tables (targets) and the `/clay/enriched` callback with its lead routing."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictInt, model_validator

from clay_relay.config.base import Name, SecretName, _Strict
from clay_relay.config.directus import DirectusWriteBack
from clay_relay.config.hooks import SlackSettings, ZapierSettings
from clay_relay.config.loops import LoopsSettings


class ClayBudget(_Strict):
    """How many rows a Clay target may receive per UTC day and per UTC month (either may be left out).
    Rows past it are held, never dropped; `relay clay budget` changes it at run time."""

    rows_per_day: StrictInt | None = Field(
        default=None,
        ge=0,
        description="rows sent to the target per UTC day at most; rows past it wait on the queue until the next "
        "day or a raise (`null`: no daily limit; `0` holds every row)",
    )
    rows_per_month: StrictInt | None = Field(
        default=None,
        ge=0,
        description="rows sent to the target per UTC calendar month at most (`null`: no monthly limit)",
    )


class UsedUpAnswer(_Strict):
    """An answer of Clay's that means the webhook URL takes no more submissions (its limit reached,
    or its table full), whatever the relay counted. What Clay really answers then is undocumented."""

    status: int = Field(ge=400, le=599, description="the answer's HTTP status")
    body_contains: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="text the answer's body holds (case-insensitive; the first 200 characters are read); "
        "`null`: any body",
    )


# Clay's answer past a URL's limit is undocumented: these are the plausible ones (and the local
# stack's `--clay-over-limit reject`); a target's `used_up_answers` replaces them.
DEFAULT_USED_UP_ANSWERS = (
    UsedUpAnswer(status=403, body_contains="limit"),
    UsedUpAnswer(status=403, body_contains="full"),
    UsedUpAnswer(status=422, body_contains="full"),
)


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
    email_column: str = Field(
        default="email",
        min_length=1,
        max_length=200,
        description="the column that holds the lead's email: the lead ledger (and `relay trace`) knows a row by it",
    )
    enrichment_sla_minutes: int = Field(
        default=240,
        ge=1,
        le=30 * 24 * 60,
        description="a row whose enrichment callback has not come back this long after it reached Clay is overdue "
        "(`EnrichmentOverdue`, `relay leads --overdue`)",
    )
    used_up_answers: tuple[UsedUpAnswer, ...] = Field(
        default=DEFAULT_USED_UP_ANSWERS,
        max_length=20,
        description="Clay answers that mean a URL takes no more submissions: the URL is counted as used up and "
        "skipped, and the row goes to the next URL of the pool (default: 403 with `limit` or `full` in its body, "
        "422 with `full`); `[]` relies on the relay's own count alone",
    )
    idempotency_column: str | None = Field(
        default="relay_event_id",
        min_length=1,
        max_length=200,
        description="column that carries each row's event id; turn on the table's auto-dedupe on it "
        "(see Set up Clay). `null` leaves it out",
    )
    budget: ClayBudget | None = Field(
        default=None,
        description="rows per day and per month the target may receive (the spend guard, see Operating it); "
        "`null`: no budget (rows are still counted for `relay clay spend`)",
    )
    person_dedupe_days: int = Field(
        default=30,
        ge=0,
        le=365,
        description="a new lead whose email (trimmed, lower-cased) already went to this target within this many "
        "days is not sent again: recorded as `clay.skipped` with the earlier row's event id. `0` turns it off",
    )
    person_dedupe_updates: bool = Field(
        default=False,
        description="also skip updates (a Directus update or delete, a forwarded Loops event) of a person who "
        "already went to this target; by default a deliberate change is sent",
    )
    mode: Literal["live", "shadow"] = Field(
        default="live",
        description="`shadow` sends nothing to Clay and spends no submission or budget: each row is recorded "
        "(`clay.shadow` in the ledger, `ClayRowsShadowed`) as what the target would have sent",
    )


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
        description='header carrying `t=<unix seconds>,v1=<hex of HMAC-SHA256(key, "<t>." + raw body)>` '
        "(several `v1=` while rotating keys); `t` must be within 5 minutes of now, either way",
    )
    hmac_accept_body_only: bool = Field(
        default=False,
        description="also accept the old `sha256=<hex of HMAC-SHA256(key, raw body)>`, which has no timestamp "
        "and can be replayed: a migration aid while senders move to `t=…,v1=…`; turn it off again after",
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
