"""The target's quota: how many items the backfill may still send to a Clay target."""

from __future__ import annotations

from dataclasses import dataclass

from clay_relay.config import ClayTarget
from relay_cli.clay_pool import pool_use
from relay_cli.stack import Stack
from relay_cli.status import queue_counts


@dataclass(frozen=True)
class QuotaLeft:
    on_urls: int  # submissions left on the pool's URLs
    urls: int  # URLs in the pool
    queued: int  # jobs on the delivery queue, not yet counted
    reserve: int

    @property
    def budget(self) -> int:
        """Items the backfill may still send."""
        return max(0, self.on_urls - self.queued - self.reserve)


def quota_left(stack: Stack, target: ClayTarget, reserve: int) -> QuotaLeft:
    """What a Clay target can still take, from the same counts the workers reserve from."""
    urls = pool_use(stack, target)
    queued = sum(queue_counts(stack).values())
    return QuotaLeft(on_urls=sum(url.remaining for url in urls), urls=len(urls), queued=queued, reserve=reserve)


def default_reserve(target: ClayTarget) -> int:
    """1 % of one URL's submission_limit, kept for the rows the Flows send meanwhile."""
    return target.submission_limit // 100
