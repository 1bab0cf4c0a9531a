"""Worker crashes for the local stack, as when Lambda's process dies in the middle of a batch.

`POST /_local/faults {"destination": "worker", "mode": "crash", "times": 3}` dooms the next three
delivery-worker invocations. Each dies right after a random one of its outbound calls (a DynamoDB
claim, a quota reservation, a request to a destination, an SQS call that settles the batch) has
completed: that call's effect happened, nothing after it runs in any of the invocation's threads,
and the batch is not acknowledged, so its messages come back after the queue's visibility timeout.
Every step boundary of the worker (after the claim, after a delivery before its acknowledgement,
between two records) is hit this way. With `"after": "delivery"` it dies right after its first
request to a destination (any call that is not to AWS) was answered: delivered, not acknowledged.

`{"destination": "receiver", "mode": "crash", "times": 3}` does the same to the next three
requests' receivers, right after their duplicate check and before the job is queued: the gateway
answers 502, as API Gateway does for a Lambda that died, and nothing was accepted.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import urllib3.connectionpool


class WorkerKilled(BaseException):
    """Not an Exception: no handler in the relay catches it, as nothing catches a SIGKILL."""


@dataclass
class _Doom:
    dies_after: int | None = None  # outbound calls (else after the first delivery, or before queueing)
    before_enqueue: bool = False
    calls_made: int = 0
    dead: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def cause(self) -> str:
        if self.before_enqueue:
            return "after its duplicate check, before queueing"
        return "after a delivery" if self.dies_after is None else f"after {self.dies_after} outbound calls"

    def before_call(self, enqueue: bool) -> None:
        with self.lock:
            if self.before_enqueue and enqueue:
                self.dead = True
        if self.dead:
            raise WorkerKilled(self.cause)  # a dead process sends nothing more

    def after_call(self, delivery: bool) -> None:
        if self.before_enqueue:
            return
        with self.lock:
            self.calls_made += 1
            if delivery if self.dies_after is None else self.calls_made >= self.dies_after:
                self.dead = True
        if self.dead:
            raise WorkerKilled(self.cause)


_doom: contextvars.ContextVar[_Doom | None] = contextvars.ContextVar("doom", default=None)
_install_lock = threading.Lock()
_original_urlopen = None


def _install() -> None:
    """Wraps urllib3's request (under both requests and botocore) once per process."""
    global _original_urlopen
    with _install_lock:
        if _original_urlopen is not None:
            return
        _original_urlopen = urllib3.connectionpool.HTTPConnectionPool.urlopen

        def urlopen(self, method, url, body=None, headers=None, *args, **kwargs):
            doom = _doom.get()
            if doom is not None:
                doom.before_call(enqueue="SendMessage" in str((headers or {}).get("X-Amz-Target", "")))
            answer = _original_urlopen(self, method, url, body, headers, *args, **kwargs)
            if doom is not None:
                aws = urlsplit(os.environ.get("AWS_ENDPOINT_URL", ""))
                doom.after_call(delivery=(self.host, self.port) != (aws.hostname, aws.port))
            return answer

        urllib3.connectionpool.HTTPConnectionPool.urlopen = urlopen


@contextlib.contextmanager
def _dying(doom: _Doom) -> Iterator[_Doom]:
    _install()
    token = _doom.set(doom)
    try:
        yield doom
    finally:
        _doom.reset(token)


def doomed(batch_size: int, *, after_delivery: bool = False) -> contextlib.AbstractContextManager[_Doom]:
    """The worker invocation run inside dies after a random one of the outbound calls a batch of
    `batch_size` makes (about two per record, plus a few to prepare and settle it), or right
    after its first delivery. One that made fewer calls (or no delivery) dies as it returns,
    before its batch is acknowledged (`killed_at_the_end`): a crash fault always kills."""
    return _dying(_Doom(dies_after=None if after_delivery else random.randint(1, 2 * batch_size + 4)))


def killed_at_the_end(doom: _Doom | None) -> None:
    """A doomed invocation that returned alive dies now, before the poller acknowledges its batch."""
    if doom is not None and not doom.dead:
        doom.dead = True
        raise WorkerKilled(f"after its last outbound call ({doom.calls_made}), before its batch was acknowledged")


def dies_before_enqueue() -> contextlib.AbstractContextManager[_Doom]:
    """The receiver invocation run inside dies after its duplicate check, right before it would
    put the job on the queue: the sender gets API Gateway's 502 and nothing was accepted."""
    return _dying(_Doom(before_enqueue=True))
