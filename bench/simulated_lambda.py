"""Lambda's SQS event source mapping and the delivery worker's instances on a virtual clock, for
bench/recovery.py: the worker code that runs is the real one (`clay_relay.worker.deliver_batch`),
only time is simulated.

- `VirtualClock`: the simulation's time in epoch seconds. While it is installed `time.time()` answers
  it; each actor (a worker instance, the receiver) runs at its own local time, in order of those
  times, and what it waits for (pacing, a request's round trip, an AWS request) advances it.
- `WorkerInstance`: one concurrency slot of the event source mapping (template.yaml's
  `WorkerMaximumConcurrency`): its pollers' receives (long polls of up to 20 s, the batching window,
  batches of up to `BatchSize`) and one Lambda execution environment with its own `Runtime` (pacer,
  breaker and secrets cache of its own, like a separate Lambda instance). After an invocation it
  deletes the messages not listed in `batchItemFailures`, as Lambda does; an invocation that raised
  or outlasted the function's timeout keeps its whole batch on the queue.
- `SimulatedClients`: a runtime's AWS clients: the virtual SQS, and moto's DynamoDB and Secrets
  Manager with each request costing virtual time and logged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from bench.virtual_sqs import SqsClient, VirtualSqs
from clay_relay.aws_clients import AwsClients
from clay_relay.runtime import Runtime, use_runtime

LONG_POLL_SECONDS = 20  # the event source mapping's pollers long-poll
INVOKE_SECONDS = 0.02  # from a batch received to the handler running (a warm instance)
ARN = "arn:aws:sqs:us-east-1:123456789012:clay-relay-bench-delivery"


class VirtualClock:
    """`now`: the time of whichever actor runs; `sleep` advances it (a Pacer's and the requests' waits)."""

    def __init__(self, start: float):
        self.start = start
        self.now = start

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.now += seconds

    def since_start(self, moment: float | None = None) -> float:
        return (self.now if moment is None else moment) - self.start

    @contextmanager
    def installed(self) -> Iterator[None]:
        """`time.time()` answers the virtual time (every module of the layer calls `time.time()`)."""
        with mock.patch.object(time, "time", self.time):
            yield


@dataclass(frozen=True)
class AwsRequest:
    at: float
    service: str
    operation: str
    caller: str


class TimedClient:
    """A boto3 client whose every call costs `seconds` of virtual time and is logged."""

    def __init__(self, client: Any, service: str, caller: str, clock: VirtualClock, seconds: float, log: list):
        self._client, self._service, self._caller = client, service, caller
        self._clock, self._seconds, self._log = clock, seconds, log

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute) or name.startswith("_") or name in ("exceptions", "meta"):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self._clock.sleep(self._seconds)
            self._log.append(AwsRequest(self._clock.now, self._service, name, self._caller))
            return attribute(*args, **kwargs)

        return call


class SimulatedClients(AwsClients):
    """What `runtime.aws` hands out: the virtual SQS; moto for the rest, each request timed and logged."""

    def __init__(self, sqs: SqsClient, clock: VirtualClock, seconds_per_request: float, log: list[AwsRequest]):
        super().__init__()
        self._sqs, self._clock, self._seconds, self._log = sqs, clock, seconds_per_request, log
        self._timed: dict[str, TimedClient] = {}

    def client(self, service: str) -> Any:
        if service == "sqs":
            return self._sqs
        with self._lock:
            if service not in self._timed:
                real = super().client(service)
                self._timed[service] = TimedClient(
                    real, service, self._sqs.caller, self._clock, self._seconds, self._log
                )
            return self._timed[service]


class VirtualContext:
    """The Lambda context the worker reads its deadline from."""

    function_name = "clay-relay-bench-DeliveryWorker"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:clay-relay-bench-DeliveryWorker"
    aws_request_id = "00000000-0000-0000-0000-00000000bench"
    log_group_name = "/aws/lambda/clay-relay-bench-DeliveryWorker"
    log_stream_name = "bench"

    def __init__(self, clock: VirtualClock, deadline: float):
        self._clock, self._deadline = clock, deadline

    def get_remaining_time_in_millis(self) -> int:
        return int(max(0.0, self._deadline - self._clock.now) * 1000)


@dataclass(frozen=True)
class Invocation:
    started: float
    ended: float
    messages: int
    kept: int  # batch item failures: left on the queue
    error: str | None = None


def lambda_record(message: dict[str, Any]) -> dict[str, Any]:
    """A received SQS message as a record of Lambda's SQS event."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message["Attributes"],
        "messageAttributes": {
            name: {
                "stringValue": value["StringValue"],
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value["DataType"],
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": ARN,
        "awsRegion": "us-east-1",
    }


Handler = Callable[[list[dict[str, Any]], object, Runtime], dict[str, list[dict[str, str]]]]


@dataclass
class WorkerInstance:
    name: str
    runtime: Runtime
    handler: Handler
    sqs: VirtualSqs
    queue_url: str
    clock: VirtualClock
    timeout_seconds: int
    batch_size: int
    window_seconds: float
    at: float = 0.0  # its local virtual time
    invocations: list[Invocation] = field(default_factory=list)
    _batch: list[dict[str, Any]] = field(default_factory=list)
    _polling_since: float | None = None  # a long poll that found nothing yet
    _window_from: float | None = None  # when the batch being gathered began
    _gathering: bool = False  # waiting out the batching window

    @property
    def busy(self) -> bool:
        return bool(self._batch)

    def next_step_at(self) -> float:
        """When it acts next: now, or, in a long poll, when a message becomes visible or the poll ends."""
        if self._batch or self._polling_since is None:
            return self.at
        end = self._polling_since + LONG_POLL_SECONDS
        visible = self.sqs.next_visible_at(self.queue_url)
        return max(self.at, min(end, visible if visible is not None else end))

    def step(self) -> None:
        """One move at `clock.now` (== `at`): a receive, the end of a batching window, or an invocation."""
        if not self._batch:
            self._receive()
            if not self._batch:
                self.at = self.clock.now
                return
        if not self._gathering and len(self._batch) < self.batch_size and self._window_from is not None:
            closes = self._window_from + self.window_seconds
            if self.clock.now < closes:
                self._gathering = True
                self.at = closes  # the batching window gathers more
                return
        if self._gathering and len(self._batch) < self.batch_size:
            self._batch += self.sqs.receive("event source mapping", self.queue_url, self.batch_size - len(self._batch))
        self._gathering = False
        self._invoke()
        self.at = self.clock.now

    def _receive(self) -> None:
        if self._polling_since is None:
            self._polling_since = self.clock.now
            found = self.sqs.receive("event source mapping", self.queue_url, self.batch_size)
        else:  # the long poll that began earlier answers now (one request)
            found = self.sqs.receive(None, self.queue_url, self.batch_size, logged=False)
        if found:
            self._batch = found
            self._polling_since = None
            if self._window_from is None:
                self._window_from = self.clock.now
            return
        self._window_from = None  # idle: the next batch's window starts with its first message
        if self.clock.now >= self._polling_since + LONG_POLL_SECONDS:
            self._polling_since = None  # answered empty; the next step polls again

    def _invoke(self) -> None:
        records = [lambda_record(message) for message in self._batch]
        self._batch = []
        self.clock.sleep(INVOKE_SECONDS)
        started = self.clock.now
        context = VirtualContext(self.clock, started + self.timeout_seconds)
        use_runtime(self.runtime)  # the layer's modules that ask for the current runtime get this instance's
        answer: dict[str, list[dict[str, str]]] | None = None
        error = None
        try:
            answer = self.handler(records, context, self.runtime)
        except Exception as failure:  # noqa: BLE001 - Lambda reports it; SQS keeps the batch
            error = f"{type(failure).__name__}: {failure}"
        ended = self.clock.now
        if ended - started > self.timeout_seconds:
            answer, error = None, f"timed out after {ended - started:.1f} s"
        ids = {record["messageId"] for record in records}
        kept = {failure["itemIdentifier"] for failure in answer["batchItemFailures"]} if answer else ids
        if not kept <= ids:  # Lambda: an unknown identifier fails the whole batch
            kept, error = ids, error or "batchItemFailures named a message not in the batch"
        done = [record for record in records if record["messageId"] not in kept]
        client = self.sqs.client("event source mapping")
        for start in range(0, len(done), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(done[start : start + 10])
            ]
            client.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        self.invocations.append(Invocation(started, self.clock.now, len(records), len(kept), error))
        self._window_from = started  # the pollers gathered the next batch while this one ran
