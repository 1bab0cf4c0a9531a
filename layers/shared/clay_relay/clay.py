"""Clay targets: the pool of inbound webhook URLs of a table, its quota, and row delivery.

Clay accepts 50,000 submissions per webhook URL for the URL's lifetime, and what it answers past
that is unknown, so the relay counts on its own side (atomically, in DynamoDB) and never relies on
Clay's answer. When a URL is used up the next URL of the pool takes over; when the whole pool is
used up, rows wait (they are held, never dropped) until a URL is added to the pool's secret.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from clay_relay.config import ClayTarget
from clay_relay.errors import PayloadTooLarge
from clay_relay.observability import MetricUnit, count, gauge, logger
from clay_relay.outbound import Outcome, post_json
from clay_relay.secrets import SecretUnavailable, read_json
from clay_relay.store import RelayTable, Reservation


@dataclass(frozen=True)
class ClayWebhook:
    url: str = field(repr=False)
    token: str | None = field(default=None, repr=False)

    @property
    def webhook_id(self) -> str:
        """Counts are kept per URL, whichever secret or target names it."""
        return hashlib.sha256(self.url.encode()).hexdigest()[:24]


class ClayPoolUnavailable(RuntimeError):
    """The target's pool secret is missing or malformed (retry: an operator can fix it)."""


def load_pool(target: ClayTarget, *, refresh: bool = False) -> list[ClayWebhook]:
    try:
        entries = read_json(target.webhooks_secret, refresh=refresh)
    except SecretUnavailable as error:
        raise ClayPoolUnavailable(str(error)) from None
    return parse_pool(entries, target)


def parse_pool(entries: object, target: ClayTarget) -> list[ClayWebhook]:
    """The pool secret's value (parsed JSON): a list of {"url", "token"} or of URLs, in pool order."""
    if isinstance(entries, dict):
        entries = [entries]
    if not isinstance(entries, list):
        raise ClayPoolUnavailable(f"secret {target.webhooks_secret!r} must be a JSON list of webhooks")
    pool = []
    for entry in entries:
        if isinstance(entry, str):
            entry = {"url": entry}
        if not (isinstance(entry, dict) and str(entry.get("url", "")).startswith(("https://", "http://"))):
            raise ClayPoolUnavailable(f"secret {target.webhooks_secret!r} holds an entry without a URL")
        pool.append(ClayWebhook(url=entry["url"], token=entry.get("token") or None))
    return pool


@dataclass
class Allocation:
    webhook: ClayWebhook
    count: int
    first_submission: int = 1  # the number, on its URL, of the first submission reserved


class ClayQuota:
    """`used_up`: webhook ids this instance saw used up (default: the current runtime's
    `clay_used_up`), which skips a conditional write that would fail."""

    def __init__(self, table: RelayTable, used_up: set[str] | None = None):
        if used_up is None:
            from clay_relay.runtime import get_runtime

            used_up = get_runtime().clay_used_up
        self.table = table
        self.used_up = used_up

    def allocate(self, target_name: str, target: ClayTarget, wanted: int) -> list[Allocation]:
        """Reserve up to `wanted` submissions over the pool, in pool order. Fewer than wanted
        (possibly none) when the pool is used up. Publishes how much of the whole pool is used
        (`ClayPoolUsedPercent`), from what the reservations answered: no extra AWS call."""
        if wanted <= 0:
            return []
        pool = load_pool(target)
        allocations, used = self._allocate(target_name, target, wanted, pool)
        granted = sum(a.count for a in allocations)
        if granted < wanted:
            # The pool may have grown since we cached it: read the secret again before holding rows.
            pool = load_pool(target, refresh=True)
            more, used = self._allocate(target_name, target, wanted - granted, pool)
            allocations += more
        gauge(
            "ClayPoolUsedPercent",
            pool_used_percent(used, len(pool), target.submission_limit),
            MetricUnit.Percent,
            destination="clay",
            breakdown={"target": target_name},
        )
        return allocations

    def _allocate(
        self, target_name: str, target: ClayTarget, wanted: int, pool: list[ClayWebhook]
    ) -> tuple[list[Allocation], int]:
        """The allocations, and the submissions used over the pool as this allocation saw them.
        Allocation fills the pool in order, so the URLs it passed are used up (or, when it lost
        every race for one, as used as it answered) and the URLs it did not reach are unused. A
        few submissions given back to an earlier URL (`give_back`) are taken again by the next
        reservation before it moves on, so the figure misses at most a few batches' rows."""
        allocations: list[Allocation] = []
        used = 0
        for webhook in pool:
            if wanted <= 0:
                break
            if webhook.webhook_id in self.used_up:
                used += target.submission_limit
                continue
            reservation = self.table.reserve_submissions(
                webhook.webhook_id, wanted, target.submission_limit, target_name
            )
            used += min(reservation.used_after, target.submission_limit)
            if reservation.granted:
                allocations.append(Allocation(webhook, reservation.granted, reservation.used_before + 1))
                wanted -= reservation.granted
                self._warn_on_threshold(target_name, target, webhook, reservation)
            if reservation.exhausted:
                self.used_up.add(webhook.webhook_id)
                logger.warning(
                    "clay webhook URL used up, moving to the next URL of the pool",
                    extra={"target": target_name, "webhook_id": webhook.webhook_id},
                )
        return allocations, used

    @staticmethod
    def _warn_on_threshold(
        target_name: str, target: ClayTarget, webhook: ClayWebhook, reservation: Reservation
    ) -> None:
        for fraction in target.warn_at:
            mark = fraction * reservation.quota
            if reservation.used_before < mark <= reservation.used_after:
                logger.warning(
                    f"clay webhook URL has used {fraction:.0%} of its submissions",
                    extra={
                        "target": target_name,
                        "webhook_id": webhook.webhook_id,
                        "used": reservation.used_after,
                        "quota": reservation.quota,
                    },
                )
                count(f"ClayQuotaPassed{round(fraction * 100)}Percent", destination="clay")

    def used_up_by_answer(self, target_name: str, target: ClayTarget, webhook: ClayWebhook, answer: str) -> None:
        """Clay answered that the URL takes no more submissions: it is counted as used up (the
        next reservation moves to the next URL of the pool), even if the relay's count had some left."""
        self.table.mark_used_up(webhook.webhook_id, target.submission_limit, target_name)
        self.used_up.add(webhook.webhook_id)
        count("ClayUrlUsedUpByAnswer", destination="clay")
        logger.warning(
            "clay answered that a webhook URL takes no more submissions: counted as used up, moving to the next URL",
            extra={"target": target_name, "webhook_id": webhook.webhook_id, "answer": answer},
        )

    def give_back(self, webhook: ClayWebhook, count: int) -> None:
        self.table.release_submissions(webhook.webhook_id, count)
        self.used_up.discard(webhook.webhook_id)


def says_used_up(target: ClayTarget, outcome: Outcome) -> bool:
    """Clay's answer is one of the target's `used_up_answers` (status, and text in the body)."""
    if outcome.delivered or outcome.status is None:
        return False
    body = outcome.reason.partition(": ")[2].lower()  # `HTTP 403: <the body's first 200 characters>`
    return any(
        answer.status == outcome.status and (answer.body_contains is None or answer.body_contains.lower() in body)
        for answer in target.used_up_answers
    )


def pool_used_percent(used: int, urls: int, submission_limit: int) -> float:
    """Share of a pool's submissions used, in percent; an empty pool has nothing left (100)."""
    if urls <= 0:
        return 100.0
    return round(min(100.0, 100 * used / (urls * submission_limit)), 2)


def posted_row(target: ClayTarget, row: dict[str, Any], event_id: str) -> dict[str, Any]:
    """The row as Clay receives it: with its event id in the target's idempotency column, so that a
    row sent again (a worker that died after Clay answered and before the queue heard of it) is a
    duplicate that the table's auto-dedupe on that column removes."""
    return {**row, target.idempotency_column: event_id} if target.idempotency_column else row


def row_bytes(target: ClayTarget, row: dict[str, Any], event_id: str) -> int:
    """The size of the row as Clay receives it (compact JSON, UTF-8)."""
    return len(json.dumps(posted_row(target, row, event_id), separators=(",", ":"), ensure_ascii=False).encode())


def check_row_size(target: ClayTarget, row: dict[str, Any], event_id: str) -> int:
    """The row's size; refuse at the edge a row Clay would refuse (its payload limit), rather than
    dead-letter it later."""
    size = row_bytes(target, row, event_id)
    if size > target.max_row_bytes:
        raise PayloadTooLarge(f"the Clay row would be {size} bytes; Clay accepts at most {target.max_row_bytes}")
    return size


def send_row(target: ClayTarget, webhook: ClayWebhook, row: dict[str, Any], event_id: str) -> Outcome:
    headers = {target.auth_header: webhook.token} if webhook.token else {}
    return post_json(webhook.url, posted_row(target, row, event_id), headers, event_id=event_id)
