"""The only module that talks to SQS: the delivery queue and its dead-letter queue.

Every call is a batch call (10 entries per request), so SQS requests per event stay near one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from clay_relay.aws_clients import AwsClients
from clay_relay.jobs import DeliveryJob, dump_job

if TYPE_CHECKING:
    from collections.abc import Sequence

BATCH = 10
MAX_BATCH_BYTES = 262_144  # SQS: a message, and a batch request's messages together (256 KiB, the long-standing limit)
MAX_DELAY_SECONDS = 900
MAX_VISIBILITY_SECONDS = 43_200


class QueueError(RuntimeError):
    """SQS did not take every entry even after a second try."""


@dataclass(frozen=True)
class DeadLetter:
    body: str
    reason: str
    attempts: int
    destination: str
    origin: str


def _size(entry: dict[str, Any]) -> int:
    attributes = entry.get("MessageAttributes", {})
    return len(entry["MessageBody"].encode()) + sum(
        len(name) + len(value["DataType"]) + len(value["StringValue"].encode()) for name, value in attributes.items()
    )


def sqs_batches(entries: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Up to 10 entries per request, and no more bytes than SQS takes in one (big rows travel alone)."""
    batches: list[list[dict[str, Any]]] = []
    size = 0
    for entry in entries:
        entry_size = _size(entry)
        if not batches or len(batches[-1]) == BATCH or size + entry_size > MAX_BATCH_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(entry)
        size += entry_size
    return batches


class DeliveryQueue:
    """The queues, through the SQS client of `clients`; without it (or the URLs), of the current
    runtime (clay_relay.runtime)."""

    def __init__(
        self, queue_url: str | None = None, dead_letter_url: str | None = None, *, clients: AwsClients | None = None
    ):
        if not (queue_url and dead_letter_url and clients):
            from clay_relay.runtime import get_runtime

            runtime = get_runtime()
            queue_url = queue_url or runtime.settings.delivery_queue_url
            dead_letter_url = dead_letter_url or runtime.settings.dead_letter_queue_url
            clients = clients or runtime.aws
        self.url = queue_url
        self.dead_letter_url = dead_letter_url
        self._clients = clients

    def _sqs(self) -> Any:
        return self._clients.client("sqs")

    def _send_all(self, queue_url: str, entries: list[dict[str, Any]]) -> None:
        for pending in sqs_batches(entries):
            for _ in range(2):
                answer = self._sqs().send_message_batch(QueueUrl=queue_url, Entries=pending)
                failed = {f["Id"] for f in answer.get("Failed", [])}
                pending = [e for e in pending if e["Id"] in failed]
                if not pending:
                    break
            if pending:
                raise QueueError(f"SQS refused {len(pending)} message(s)")

    def enqueue(self, jobs: Sequence[DeliveryJob], *, delay_seconds: int = 0) -> None:
        delay = max(0, min(delay_seconds, MAX_DELAY_SECONDS))
        self._send_all(
            self.url,
            [{"Id": str(i), "MessageBody": dump_job(job), "DelaySeconds": delay} for i, job in enumerate(jobs)],
        )

    def retry_later(self, delays: dict[str, int]) -> set[str]:
        """Hide messages (receipt handle → seconds) until their next attempt. Returns the handles
        SQS refused; those come back after the queue's own visibility timeout instead."""
        refused: set[str] = set()
        handles = list(delays)
        for start in range(0, len(handles), BATCH):
            chunk = handles[start : start + BATCH]
            answer = self._sqs().change_message_visibility_batch(
                QueueUrl=self.url,
                Entries=[
                    {
                        "Id": str(i),
                        "ReceiptHandle": handle,
                        "VisibilityTimeout": max(0, min(delays[handle], MAX_VISIBILITY_SECONDS)),
                    }
                    for i, handle in enumerate(chunk)
                ],
            )
            refused.update(chunk[int(f["Id"])] for f in answer.get("Failed", []))
        return refused

    def dead_letter(self, letters: list[DeadLetter]) -> None:
        now = str(int(time.time()))
        self._send_all(
            self.dead_letter_url,
            [
                {
                    "Id": str(i),
                    "MessageBody": letter.body,
                    "MessageAttributes": {
                        "reason": {"DataType": "String", "StringValue": letter.reason[:1000] or "unknown"},
                        "attempts": {"DataType": "Number", "StringValue": str(letter.attempts)},
                        "destination": {"DataType": "String", "StringValue": letter.destination},
                        "origin": {"DataType": "String", "StringValue": letter.origin or "unknown"},
                        "failed_at": {"DataType": "Number", "StringValue": now},
                    },
                }
                for i, letter in enumerate(letters)
            ],
        )
