"""The SQS event source mapping of a function, as Lambda runs it: long-poll the queue, invoke
the function with a batch, delete what succeeded (ReportBatchItemFailures), leave the rest. An
invocation may be killed on purpose (`local_stack.chaos`): then nothing is deleted."""

from __future__ import annotations

import contextlib
import threading
import traceback
from collections.abc import Callable

import boto3

from local_stack.chaos import WorkerKilled, doomed, killed_at_the_end
from local_stack.functions import LocalFunction
from local_stack.sandboxes import Fault


def sqs_record(message: dict, queue_arn: str) -> dict:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {
            name: {"stringValue": a.get("StringValue"), "dataType": a["DataType"]}
            for name, a in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": "us-east-1",
    }


class QueuePoller:
    def __init__(
        self,
        function: LocalFunction,
        queue_url: str,
        queue_arn: str,
        batch_size: int = 10,
        crash_next: Callable[[], Fault | None] = lambda: None,
    ):
        self.function = function
        self.crash_next = crash_next  # asked before each invocation: kill this one?
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.batch_size = min(10, batch_size)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"poller-{function.spec.name}", daemon=True)
        self.batches = 0
        self.killed = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        sqs = boto3.client("sqs")
        while not self._stop.is_set():
            try:
                self.poll_once(sqs, wait_seconds=1)
            except Exception:  # moto shutting down, or a transient error: try again
                if not self._stop.wait(1):
                    traceback.print_exc()

    def poll_once(self, sqs, wait_seconds: int = 0) -> int:
        """One receive, one invocation, one delete: returns how many messages were received."""
        messages = sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if messages:
            self._deliver(sqs, messages)
        return len(messages)

    def _deliver(self, sqs, messages: list[dict]) -> None:
        self.batches += 1
        event = {"Records": [sqs_record(m, self.queue_arn) for m in messages]}
        crash = self.crash_next()
        dying = doomed(len(messages), after_delivery=crash.after == "delivery") if crash else contextlib.nullcontext()
        try:
            with dying as doom:
                result = self.function.invoke(event)
                killed_at_the_end(doom)
            failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
        except WorkerKilled as death:
            self.killed += 1
            print(
                f"[worker] killed mid-batch {death} by a crash fault: {self.function.spec.name}'s batch of "
                f"{len(messages)} message(s) is not acknowledged and comes back after the queue's visibility timeout",
                flush=True,
            )
            return
        except Exception:
            traceback.print_exc()  # the whole batch failed: Lambda leaves every message on the queue
            return
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
