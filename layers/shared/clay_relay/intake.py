"""Accepting jobs at a receiver: duplicate check, then the queue. Nothing else.

The use cases (clay_relay.receivers) hand in their runtime's table and queue.

The receiver's duplicate check is a read: the worker's conditional claim (after the job is safely
queued) is what guarantees once-only delivery, so no accepted event can be lost to a crash between
'marked as seen' and 'queued'. A burst of identical concurrent requests may all be answered
`duplicate: false`; the worker still delivers exactly one of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from clay_relay.delivery_queue import MAX_BATCH_BYTES, DeliveryQueue, QueueError
from clay_relay.errors import PayloadTooLarge, ServiceUnavailable
from clay_relay.jobs import ClayRowBundle, ClayRowJob, DeliveryJob, content_id, dump_job
from clay_relay.observability import count, logger
from clay_relay.store import RelayTable

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import TypeGuard

BUNDLE_OVER = 100  # rows of one event; more are queued in bundles
BUNDLE_BYTES = MAX_BATCH_BYTES - 4_096  # room for the bundle's own fields


@dataclass(frozen=True)
class Accepted:
    job: DeliveryJob
    duplicate: bool


def accept(jobs: Sequence[DeliveryJob], *, table: RelayTable, queue: DeliveryQueue) -> list[Accepted]:
    """Each job, queued unless `table` says its event was seen; which of them were duplicates."""
    if len(jobs) > BUNDLE_OVER and _all_rows(jobs):
        # A Directus updateMany of thousands of items: a duplicate check and a request per 10 rows
        # would outlast the receiver's timeout. The worker's claims still send each row once.
        seen: set[str] = set()
        _enqueue(queue, bundle_rows(jobs))
    else:
        for job in jobs:
            _check_fits_one_message(job)
        seen = table.already_seen([job.event_id for job in jobs])
        _enqueue(queue, [job for job in jobs if job.event_id not in seen])
    count("EventsAccepted", len(jobs) - len(seen))
    count("EventsDuplicate", len(seen))
    return [Accepted(job, job.event_id in seen) for job in jobs]


def _check_fits_one_message(job: DeliveryJob) -> None:
    """A job SQS would refuse (over its 256 KiB) is refused now with a 413, not answered 503 (retry)
    on every try: a body of MAX_BODY_BYTES written compactly makes a job a few hundred bytes over."""
    size = len(dump_job(job).encode())
    if size > MAX_BATCH_BYTES:
        raise PayloadTooLarge(
            f"the queued job would be {size:,} bytes; a queue message carries at most {MAX_BATCH_BYTES:,} "
            "(send a smaller body)"
        )


def _all_rows(jobs: Sequence[DeliveryJob]) -> TypeGuard[Sequence[ClayRowJob]]:
    return all(isinstance(job, ClayRowJob) for job in jobs)


def _enqueue(queue: DeliveryQueue, jobs: Sequence[DeliveryJob]) -> None:
    if not jobs:
        return
    try:
        queue.enqueue(jobs)
    except (QueueError, BotoCoreError, ClientError) as error:
        logger.exception("could not queue accepted events", extra={"error": type(error).__name__})
        raise ServiceUnavailable("the relay could not queue the event; nothing was accepted, retry") from None


def bundle_rows(rows: Sequence[ClayRowJob]) -> list[ClayRowBundle]:
    """The rows in as few messages as fit SQS's message size."""
    bundles: list[list[ClayRowJob]] = [[]]
    size = 0
    for row in rows:
        row_size = len(dump_job(row).encode()) + 1
        if bundles[-1] and size + row_size > BUNDLE_BYTES:
            bundles.append([])
            size = 0
        bundles[-1].append(row)
        size += row_size
    return [
        ClayRowBundle(
            event_id=content_id(*(row.event_id for row in bundle)),
            origin=bundle[0].origin,
            dedupe_window_seconds=bundle[0].dedupe_window_seconds,
            rows=bundle,
        )
        for bundle in bundles
    ]
