"""Accepting jobs at a receiver: duplicate check, then the queue. Nothing else.

The receiver's duplicate check is a read: the worker's conditional claim (after the job is safely
queued) is what guarantees once-only delivery, so no accepted event can be lost to a crash between
'marked as seen' and 'queued'. A burst of identical concurrent requests may all be answered
`duplicate: false`; the worker still delivers exactly one of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from clay_relay.delivery_queue import DeliveryQueue, QueueError
from clay_relay.errors import ServiceUnavailable
from clay_relay.jobs import DeliveryJob
from clay_relay.observability import count, logger
from clay_relay.store import RelayTable


@dataclass(frozen=True)
class Accepted:
    job: DeliveryJob
    duplicate: bool


def accept(jobs: list[DeliveryJob]) -> list[Accepted]:
    seen = RelayTable().already_seen([job.event_id for job in jobs])
    fresh = [job for job in jobs if job.event_id not in seen]
    if fresh:
        try:
            DeliveryQueue().enqueue(fresh)
        except (QueueError, BotoCoreError, ClientError) as error:
            logger.exception("could not queue accepted events", extra={"error": type(error).__name__})
            raise ServiceUnavailable("the relay could not queue the event; nothing was accepted, retry") from None
    count("EventsAccepted", len(fresh))
    count("EventsDuplicate", len(jobs) - len(fresh))
    return [Accepted(job, job.event_id in seen) for job in jobs]
