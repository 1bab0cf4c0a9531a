"""How the worker delivers: its pacing per destination and its retries."""

from __future__ import annotations

from pydantic import Field, field_validator

from clay_relay.config.base import _Strict
from clay_relay.jobs import Destination

DEFAULT_RATES_PER_SECOND: dict[Destination, float] = {
    "clay": 10,
    "loops": 10,
    "slack": 1,
    "zapier": 10,
    "directus": 10,
    "forward": 10,  # to each of loops_webhook.forward's endpoints
}


class DeliveryPolicy(_Strict):
    """How the worker retries: exponential backoff with jitter for `retry_horizon_seconds` after
    the event was accepted, then the dead-letter queue. Waiting for a destination's rate limit or
    for a Clay URL with quota left spends no retries, only time: a row waits for quota until
    `hold_horizon_seconds` after it was accepted. A Clay row's wait for its target's budget counts
    towards neither horizon: they start when it last waited for it. With the defaults a failing job
    is retried about 30 times over its 24 hours."""

    retry_horizon_seconds: int = Field(
        default=86_400,
        ge=1,
        le=13 * 86_400,  # SQS keeps messages 14 days
        description="how long after it was accepted a job is retried (a Clay row held for its target's budget: "
        "after it last waited for it). After that, its next failure sends it to the dead-letter queue with the last "
        "error and its attempt count (at most 13 days: SQS keeps messages 14)",
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
    hold_horizon_seconds: int = Field(
        default=259_200,
        ge=1,
        le=13 * 86_400,
        description="how long after it was accepted (or last waited for its target's budget) a Clay row may wait "
        "for a webhook URL with quota left (72 h: a pool used up on a Friday evening waits until Monday for someone "
        "to add a URL). After that, its next hold sends it to the dead-letter queue, saying how long it waited for "
        "Clay quota; add a URL and replay it. Apart from `retry_horizon_seconds`, which is for failures, because "
        "only a person can end this wait (at most 13 days)",
    )
    budget_hold_seconds: int = Field(
        default=30,
        ge=1,
        le=900,
        description="how often a row waiting for its Clay target's budget checks again: shorter than "
        "`hold_seconds`, so that held rows resume within a minute of a raise (this plus "
        "`CLAY_BUDGET_CACHE_SECONDS`); each check of a held row costs about 0.3 SQS requests. A row waits for its "
        "budget as long as it takes (the next day or month, or a raise): the wait counts towards neither horizon",
    )
    park_when_down: bool = Field(
        default=True,
        description="while a destination is down (it timed out, refused the connection or answered `5xx`), its "
        "jobs are parked instead of each retrying on its own: hidden on the queue until one probe a "
        '`probe_seconds` finds it back, then released oldest first at its rate (see "After an outage" in '
        "Operating it). Off: every job backs off on its own schedule, and the backlog trickles out for as long "
        "as its backoffs last",
    )
    probe_seconds: int = Field(
        default=5,
        ge=1,
        le=900,
        description="while a destination is down, how often one of its parked jobs tries it (the probe); the "
        "backlog is released at most this long after the destination is back. Each probe costs about three "
        "SQS and Lambda requests, whatever the backlog",
    )
    park_seconds: int = Field(
        default=43_000,
        ge=1,
        le=43_000,
        description="the longest a parked job stays hidden before it checks its destination by itself, should "
        "no release come (at most about 12 h: SQS hides a message at most 12 h after its receive)",
    )
    rates_per_second: dict[Destination, float] = Field(
        default=DEFAULT_RATES_PER_SECOND,
        description="requests per second to each destination (Clay: to each workspace; forward: to each "
        "endpoint), all workers together "
        '(see "Pacing" in How it keeps its promises); a destination left out keeps its default; each rate '
        "must be positive",
    )

    @field_validator("rates_per_second")
    @classmethod
    def _positive(cls, rates: dict[Destination, float]) -> dict[Destination, float]:
        if any(rate <= 0 for rate in rates.values()):
            raise ValueError("rates must be positive")
        return {**DEFAULT_RATES_PER_SECOND, **rates}
