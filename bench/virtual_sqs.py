"""An in-memory SQS on a virtual clock, for bench/recovery.py (moto's SQS keeps real time, and a
10-minute outage must not take 10 minutes).

It answers the calls the relay and Lambda's event source mapping make, in the shape boto3 does,
and keeps SQS's rules where the relay depends on them:
- a receive hides each message for the queue's visibility timeout and hands out a new receipt
  handle; ApproximateReceiveCount, ApproximateFirstReceiveTimestamp and SentTimestamp are kept;
- only the latest receipt handle of a message counts: a change of visibility with an older one is
  refused (ReceiptHandleIsInvalid), a delete with one succeeds but deletes nothing (as SQS's
  documentation says); a message that is not in flight refuses a change (MessageNotInflight);
- a message stays hidden at most 12 hours from its receive; DelaySeconds ≤ 900; 10 entries per batch;
- the redrive policy moves a message received more than maxReceiveCount times to its dead-letter queue.
Every request is logged with its virtual time and who made it (`Request`), for the figures.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

MAX_VISIBILITY_SECONDS = 43_200
MAX_DELAY_SECONDS = 900
BATCH = 10


@dataclass
class Message:
    message_id: str
    body: str
    attributes: dict[str, dict[str, str]]  # message attributes, as sent
    sent_at: float
    visible_at: float
    receive_count: int = 0
    first_received_at: float | None = None
    received_at: float | None = None  # of the latest receive
    receipt_handle: str | None = None  # the latest


@dataclass
class Queue:
    url: str
    visibility_timeout: int
    max_receive_count: int | None = None
    dead_letter_url: str | None = None
    messages: dict[str, Message] = field(default_factory=dict)  # message id → message, in send order
    by_handle: dict[str, str] = field(default_factory=dict)  # every receipt handle ever given → message id

    def in_flight(self, message: Message, now: float) -> bool:
        return message.receive_count > 0 and message.visible_at > now


@dataclass(frozen=True)
class Request:
    at: float  # virtual time
    operation: str  # SQS's name: ReceiveMessage, SendMessageBatch, ...
    caller: str  # receiver, event source mapping, worker
    queue: str


def _error(code: str, message: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}, "ResponseMetadata": {}}, operation)


class VirtualSqs:
    """The queues; `client(caller)` is what a caller gets instead of boto3's SQS client."""

    def __init__(self, clock: Callable[[], float], *, latency: Callable[[], None] = lambda: None):
        self.clock = clock
        self.latency = latency  # what one request costs the caller (advances its virtual time)
        self.queues: dict[str, Queue] = {}
        self.requests: list[Request] = []

    def create_queue(
        self, url: str, visibility_timeout: int, *, dead_letter_url: str | None = None, max_receive: int | None = None
    ) -> Queue:
        self.queues[url] = Queue(url, visibility_timeout, max_receive, dead_letter_url)
        return self.queues[url]

    def client(self, caller: str) -> SqsClient:
        return SqsClient(self, caller)

    def _queue(self, url: str, operation: str) -> Queue:
        if url not in self.queues:
            raise _error("AWS.SimpleQueueService.NonExistentQueue", f"no queue {url}", operation)
        return self.queues[url]

    def next_visible_at(self, url: str) -> float | None:
        """When the next message of the queue is (or becomes) visible: what ends a long poll."""
        return min((m.visible_at for m in self.queues[url].messages.values()), default=None)

    def counts(self, url: str) -> dict[str, int]:
        now, queue = self.clock(), self.queues[url]
        in_flight = sum(queue.in_flight(m, now) for m in queue.messages.values())
        delayed = sum(m.receive_count == 0 and m.visible_at > now for m in queue.messages.values())
        return {"visible": len(queue.messages) - in_flight - delayed, "in_flight": in_flight, "delayed": delayed}

    # The operations, in boto3's shape (keyword arguments, answers as dicts).

    def send(self, caller: str, url: str, entries: list[dict[str, Any]], operation: str) -> dict[str, Any]:
        self._log(operation, caller, url)
        queue = self._queue(url, operation)
        if not 1 <= len(entries) <= BATCH:
            raise _error("AWS.SimpleQueueService.TooManyEntriesInBatchRequest", f"{len(entries)} entries", operation)
        now, successful = self.clock(), []
        for entry in entries:
            delay = int(entry.get("DelaySeconds", 0))
            if not 0 <= delay <= MAX_DELAY_SECONDS:
                raise _error("InvalidParameterValue", f"DelaySeconds {delay}", operation)
            message = Message(
                message_id=str(uuid.uuid4()),
                body=entry["MessageBody"],
                attributes=dict(entry.get("MessageAttributes") or {}),
                sent_at=now,
                visible_at=now + delay,
            )
            queue.messages[message.message_id] = message
            md5 = hashlib.md5(message.body.encode(), usedforsecurity=False).hexdigest()
            successful.append({"Id": entry.get("Id", "0"), "MessageId": message.message_id, "MD5OfMessageBody": md5})
        return {"Successful": successful, "Failed": []}

    def receive(self, caller: str | None, url: str, most: int, *, logged: bool = True) -> list[dict[str, Any]]:
        """Up to `most` visible messages, oldest first (SQS: best effort). `logged` False: the answer of a
        long poll already counted when it began."""
        if logged and caller is not None:
            self._log("ReceiveMessage", caller, url)
        queue = self._queue(url, "ReceiveMessage")
        if not 1 <= most <= BATCH:
            raise _error("InvalidParameterValue", f"MaxNumberOfMessages {most}", "ReceiveMessage")
        now = self.clock()
        visible = sorted((m for m in queue.messages.values() if m.visible_at <= now), key=lambda m: m.visible_at)
        answer: list[dict[str, Any]] = []
        for message in visible:
            if len(answer) == most:
                break
            if queue.max_receive_count is not None and message.receive_count >= queue.max_receive_count:
                self._redrive(queue, message)
                continue
            message.receive_count += 1
            message.received_at = now
            message.first_received_at = message.first_received_at or now
            message.visible_at = now + queue.visibility_timeout
            message.receipt_handle = f"{message.message_id}#{message.receive_count}#{uuid.uuid4().hex}"
            queue.by_handle[message.receipt_handle] = message.message_id
            answer.append(self._received(message))
        return answer

    def _redrive(self, queue: Queue, message: Message) -> None:
        del queue.messages[message.message_id]
        if queue.dead_letter_url:
            target = self.queues[queue.dead_letter_url]
            now = self.clock()
            target.messages[message.message_id] = Message(
                message.message_id, message.body, message.attributes, message.sent_at, now
            )

    @staticmethod
    def _received(message: Message) -> dict[str, Any]:
        return {
            "MessageId": message.message_id,
            "ReceiptHandle": message.receipt_handle,
            "Body": message.body,
            "MD5OfBody": hashlib.md5(message.body.encode(), usedforsecurity=False).hexdigest(),
            "Attributes": {
                "ApproximateReceiveCount": str(message.receive_count),
                "SentTimestamp": str(int(message.sent_at * 1000)),
                "ApproximateFirstReceiveTimestamp": str(int((message.first_received_at or 0) * 1000)),
                "SenderId": "AIDABENCH",
            },
            "MessageAttributes": message.attributes,
        }

    def _current(self, queue: Queue, handle: str) -> Message | None:
        """The message whose latest receipt handle `handle` is, if it is still on the queue."""
        message = queue.messages.get(queue.by_handle.get(handle, ""))
        return message if message is not None and message.receipt_handle == handle else None

    def change_visibility(self, caller: str, url: str, entries: list[dict[str, Any]], operation: str) -> dict:
        self._log(operation, caller, url)
        queue = self._queue(url, operation)
        if not 1 <= len(entries) <= BATCH:
            raise _error("AWS.SimpleQueueService.TooManyEntriesInBatchRequest", f"{len(entries)} entries", operation)
        now, successful, failed = self.clock(), [], []
        for entry in entries:
            message = self._current(queue, entry["ReceiptHandle"])
            timeout = int(entry["VisibilityTimeout"])
            code = None
            if not 0 <= timeout <= MAX_VISIBILITY_SECONDS:
                code = "InvalidParameterValue"
            elif message is None:
                code = "ReceiptHandleIsInvalid"
            elif not queue.in_flight(message, now):
                code = "AWS.SimpleQueueService.MessageNotInflight"
            elif now + timeout - (message.received_at or now) > MAX_VISIBILITY_SECONDS:
                code = "InvalidParameterValue"  # hidden more than 12 hours after its receive
            if code is not None:
                failed.append({"Id": entry.get("Id", "0"), "SenderFault": True, "Code": code, "Message": code})
                continue
            assert message is not None
            message.visible_at = now + timeout
            successful.append({"Id": entry.get("Id", "0")})
        return {"Successful": successful, "Failed": failed}

    def delete(self, caller: str, url: str, entries: list[dict[str, Any]], operation: str) -> dict:
        self._log(operation, caller, url)
        queue = self._queue(url, operation)
        if not 1 <= len(entries) <= BATCH:
            raise _error("AWS.SimpleQueueService.TooManyEntriesInBatchRequest", f"{len(entries)} entries", operation)
        for entry in entries:
            if (message := self._current(queue, entry["ReceiptHandle"])) is not None:
                del queue.messages[message.message_id]
            elif entry["ReceiptHandle"] not in queue.by_handle:
                raise _error("ReceiptHandleIsInvalid", "never handed out", operation)
            # else: an older receipt handle: SQS answers success and deletes nothing
        return {"Successful": [{"Id": entry.get("Id", "0")} for entry in entries], "Failed": []}

    def _log(self, operation: str, caller: str, url: str) -> None:
        self.latency()
        self.requests.append(Request(self.clock(), operation, caller, url))


class SqsClient:
    """boto3's SQS client, as far as the relay and the event source mapping use it."""

    def __init__(self, sqs: VirtualSqs, caller: str):
        self._sqs, self.caller = sqs, caller

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict:
        return self._sqs.send(self.caller, QueueUrl, Entries, "SendMessageBatch")

    def send_message(self, *, QueueUrl: str, MessageBody: str, **rest: Any) -> dict:
        answer = self._sqs.send(self.caller, QueueUrl, [{"Id": "0", "MessageBody": MessageBody, **rest}], "SendMessage")
        return {"MessageId": answer["Successful"][0]["MessageId"]}

    def receive_message(self, *, QueueUrl: str, MaxNumberOfMessages: int = 1, **_: Any) -> dict:
        messages = self._sqs.receive(self.caller, QueueUrl, MaxNumberOfMessages)
        return {"Messages": messages} if messages else {}

    def change_message_visibility_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict:
        return self._sqs.change_visibility(self.caller, QueueUrl, Entries, "ChangeMessageVisibilityBatch")

    def change_message_visibility(self, *, QueueUrl: str, ReceiptHandle: str, VisibilityTimeout: int) -> dict:
        entry = {"Id": "0", "ReceiptHandle": ReceiptHandle, "VisibilityTimeout": VisibilityTimeout}
        answer = self._sqs.change_visibility(self.caller, QueueUrl, [entry], "ChangeMessageVisibility")
        if answer["Failed"]:
            raise _error(answer["Failed"][0]["Code"], "refused", "ChangeMessageVisibility")
        return {}

    def delete_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict:
        return self._sqs.delete(self.caller, QueueUrl, Entries, "DeleteMessageBatch")

    def delete_message(self, *, QueueUrl: str, ReceiptHandle: str) -> dict:
        self._sqs.delete(self.caller, QueueUrl, [{"Id": "0", "ReceiptHandle": ReceiptHandle}], "DeleteMessage")
        return {}

    def get_queue_attributes(self, *, QueueUrl: str, AttributeNames: list[str] | None = None) -> dict:
        self._sqs._log("GetQueueAttributes", self.caller, QueueUrl)
        counts = self._sqs.counts(QueueUrl)
        return {
            "Attributes": {
                "ApproximateNumberOfMessages": str(counts["visible"]),
                "ApproximateNumberOfMessagesNotVisible": str(counts["in_flight"]),
                "ApproximateNumberOfMessagesDelayed": str(counts["delayed"]),
            }
        }

    def __getattr__(self, name: str) -> Any:
        raise NotImplementedError(f"bench.virtual_sqs does not answer SQS's {name}: add it (faithfully)")
