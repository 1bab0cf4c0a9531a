"""Plain helpers of the unit suite (fixtures live in conftest.py): a local HTTP server standing in
for Clay, SQS records built from real ReceiveMessage answers, a call-recording boto3 wrapper."""

from __future__ import annotations

import io
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3

from clay_relay.settings import DEFAULT_CONFIG_PATH
from local_stack import poller

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"


def default_config() -> dict:
    """relay.json as shipped, as a dict (a fresh copy each call)."""
    return json.loads(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))


# --- logs ------------------------------------------------------------------------------------------
@dataclass
class CapturedLogs:
    buffer: io.StringIO

    @property
    def text(self) -> str:
        return self.buffer.getvalue()

    @property
    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip().startswith("{")]

    def messages(self, level: str | None = None) -> list[str]:
        return [line["message"] for line in self.lines if level is None or line.get("level") == level]


# --- AWS -------------------------------------------------------------------------------------------
class RecordingClient:
    """A boto3 client that notes every API call made through it (name and keyword arguments).
    With a lock, each call is also atomic with respect to the other threads using the wrapper."""

    def __init__(self, client, calls: list[tuple[str, dict]], lock: threading.Lock | None = None):
        self._client = client
        self._calls = calls
        self._lock = lock

    def __getattr__(self, name: str):
        attribute = getattr(self._client, name)
        if not callable(attribute) or name.startswith("_") or name in ("exceptions", "meta"):
            return attribute

        def call(*args, **kwargs):
            self._calls.append((name, kwargs))
            if self._lock is None:
                return attribute(*args, **kwargs)
            with self._lock:
                return attribute(*args, **kwargs)

        return call


@dataclass
class AwsCalls:
    dynamodb: list[tuple[str, dict]] = field(default_factory=list)
    sqs: list[tuple[str, dict]] = field(default_factory=list)

    def names(self, service: str | None = None) -> list[str]:
        calls = {"dynamodb": self.dynamodb, "sqs": self.sqs}.get(service or "", self.dynamodb + self.sqs)
        return [name for name, _ in calls]

    def sqs_calls(self, name: str) -> list[dict]:
        return [kwargs for called, kwargs in self.sqs if called == name]


def queue_arn(queue_url: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{queue_url.rsplit('/', 1)[-1]}"


def receive(queue_url: str, *, max_messages: int = 10) -> list[dict]:
    """Messages now visible on the queue (ReceiveMessage, all attributes)."""
    answer = boto3.client("sqs").receive_message(
        QueueUrl=queue_url,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
        MaxNumberOfMessages=max_messages,
    )
    return answer.get("Messages", [])


def sqs_record(message: dict, queue_url: str) -> dict:
    """An SQS Lambda event record built from a real ReceiveMessage answer, as the local stack's
    event source builds it."""
    return poller.sqs_record(message, queue_arn(queue_url))


def delayed_bodies(queue_url: str) -> list[str]:
    """Bodies of messages sent with a delay and still hidden. SQS has no API to peek at those, so
    this reads moto's backend."""
    from moto.sqs.models import sqs_backends

    queue = sqs_backends[ACCOUNT_ID][REGION].queues[queue_url.rsplit("/", 1)[-1]]
    return [message.body for message in queue._messages if message.delayed]


def queue_attribute(queue_url: str, name: str) -> int:
    answer = boto3.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=[name])
    return int(answer["Attributes"][name])


# --- a local HTTP server standing in for Clay (or any destination) -----------------------------
@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b'{"ok":true}'
    slow: bool = False  # answer only when the test ends, long after any client timeout


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


class StubServer:
    """ThreadingHTTPServer on 127.0.0.1, port 0, answering POSTs per path as told."""

    def __init__(self):
        self.received: list[Received] = []
        self.answers: dict[str, list[Answer]] = {}
        self.default = Answer()
        self.release = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path.split("?", 1)[0]
                stub.received.append(Received(path, {k.lower(): v for k, v in self.headers.items()}, body))
                answer = stub.next_answer(path)
                if answer.slow:
                    stub.release.wait(30)
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except OSError:
                    pass  # the client gave up waiting

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def next_answer(self, path: str) -> Answer:
        answers = self.answers.get(path)
        if not answers:
            return self.default
        return answers.pop(0) if len(answers) > 1 else answers[0]

    def answer(self, path: str, *answers: Answer) -> str:
        """Answer POSTs to `path` with these answers in turn (the last one repeats). Returns the URL."""
        self.answers[path] = list(answers)
        return self.url(path)

    def url(self, path: str = "/") -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}{path}"

    def posted_to(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    def start(self) -> StubServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
