"""Worker crashes for the local stack, as when Lambda's process dies in the middle of a batch.

`POST /_local/faults {"destination": "worker", "mode": "crash", "times": 3}` dooms the next three
delivery-worker invocations. Each dies right after a random one of its outbound calls (a DynamoDB
claim, a quota reservation, a request to a destination, an SQS call that settles the batch) has
completed: that call's effect happened, nothing after it runs in any of the invocation's threads,
and the batch is not acknowledged, so its messages come back after the queue's visibility timeout.
Every step boundary of the worker (after the claim, after a delivery before its acknowledgement,
between two records) is hit this way. With `"after": "delivery"` it dies right after its first
request to a destination (any call that is not to AWS) was answered: delivered, not acknowledged.
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
    dies_after: int | None  # outbound calls; None: after the first delivery
    calls_made: int = 0
    dead: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def cause(self) -> str:
        return "after a delivery" if self.dies_after is None else f"after {self.dies_after} outbound calls"

    def after_call(self, delivery: bool) -> None:
        with self.lock:
            self.calls_made += 1
            if delivery if self.dies_after is None else self.calls_made >= self.dies_after:
                self.dead = True
        if self.dead:
            raise WorkerKilled(self.cause)


_doom: contextvars.ContextVar[_Doom | None] = contextvars.ContextVar("worker_doom", default=None)
_install_lock = threading.Lock()
_original_urlopen = None


def _install() -> None:
    """Wraps urllib3's request (under both requests and botocore) once per process."""
    global _original_urlopen
    with _install_lock:
        if _original_urlopen is not None:
            return
        _original_urlopen = urllib3.connectionpool.HTTPConnectionPool.urlopen

        def urlopen(self, *args, **kwargs):
            doom = _doom.get()
            if doom is not None and doom.dead:
                raise WorkerKilled(doom.cause)  # a dead process sends nothing more
            answer = _original_urlopen(self, *args, **kwargs)
            if doom is not None:
                aws = urlsplit(os.environ.get("AWS_ENDPOINT_URL", ""))
                doom.after_call(delivery=(self.host, self.port) != (aws.hostname, aws.port))
            return answer

        urllib3.connectionpool.HTTPConnectionPool.urlopen = urlopen


@contextlib.contextmanager
def doomed(batch_size: int, *, after_delivery: bool = False) -> Iterator[None]:
    """The invocation run inside dies after a random one of the outbound calls a batch of
    `batch_size` makes (about two per record, plus a few to prepare and settle it), or right
    after its first delivery."""
    _install()
    token = _doom.set(_Doom(dies_after=None if after_delivery else random.randint(1, 2 * batch_size + 4)))
    try:
        yield
    finally:
        _doom.reset(token)
