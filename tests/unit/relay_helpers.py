"""Plain helpers of the unit suite (fixtures live in conftest.py): a local HTTP server standing in
for Clay, SQS records built from real ReceiveMessage answers, a call-recording boto3 wrapper."""

from __future__ import annotations

import base64
import importlib.util
import io
import itertools
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3

from clay_relay.settings import DEFAULT_CONFIG_PATH
from local_stack import poller
from local_stack.sandboxes import Sandboxes
from relay_cli.stack import Stack

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"


def relay_stack(aws, *, api_url: str = "http://127.0.0.1:9", **fields) -> Stack:
    """The `relay` command's view of the moto stack (AWS answered in-process by moto)."""
    return Stack(
        name="test",
        region=REGION,
        api_url=api_url,
        queue_url=aws.ref("DeliveryQueue"),
        dead_letter_url=aws.ref("DeadLetterQueue"),
        table_name=aws.environment["RELAY_TABLE"],
        secrets_prefix=aws.environment.get("SECRETS_PREFIX", ""),
        **fields,
    )


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


def received_records(queue_url: str, expected: int) -> list[dict]:
    """The `expected` messages now visible on the queue, as the SQS records of one worker batch."""
    messages = receive(queue_url)
    assert len(messages) == expected
    return [sqs_record(message, queue_url) for message in messages]


def run_worker(records: list[dict], context: object = None) -> set[str]:
    """The delivery worker over one SQS batch; the message ids it reports as failed."""
    from clay_relay.worker import handle_batch

    response = handle_batch({"Records": records}, context)
    return {item["itemIdentifier"] for item in response["batchItemFailures"]}


def make_visible_again(queue_url: str, records: list[dict]) -> None:
    """What SQS does when a message's visibility timeout ends (or the Lambda that received it
    died): it can be received again, as a redelivery. By then the worker's cool-down for a
    destination that failed is over too."""
    from clay_relay.runtime import get_runtime

    get_runtime().breaker.reset()
    sqs = boto3.client("sqs")
    for record in records:
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=0)


def message_attribute(message: dict, name: str) -> str:
    return message["MessageAttributes"][name]["StringValue"]


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
    method: str = "POST"

    def json(self):
        return json.loads(self.body)


class StubServer:
    """ThreadingHTTPServer on 127.0.0.1, port 0, answering POSTs (and PUTs, PATCHes) per path as told."""

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
                headers = {k.lower(): v for k, v in self.headers.items()}
                request = Received(path, headers, body, self.command)
                stub.received.append(request)
                answer = stub.respond(request)
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

            do_PUT = do_PATCH = do_POST

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def respond(self, request: Received) -> Answer:
        """The answer to a request: by its path, as told (a subclass may answer by its content)."""
        return self.next_answer(request.path)

    def next_answer(self, path: str) -> Answer:
        answers = self.answers.get(path)
        if not answers:
            return self.default
        return answers.pop(0) if len(answers) > 1 else answers[0]

    def answer(self, path: str, *answers: Answer) -> str:
        """Answer requests to `path` with these answers in turn (the last one repeats). Returns the URL."""
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


# --- the sandboxes (local_stack) standing in for Loops, Slack, Zapier and Directus ----------------
LOOPS_API_KEY = "loops-test-key"
DIRECTUS_API_TOKEN = "directus-api-token"
SLACK_PATH = "/slack/webhooks/hot-leads"
ZAPIER_PATH = "/zapier/hooks/leads"


@dataclass
class Destinations:
    """Running sandboxes and their base URL; the relay's secrets point at them."""

    sandboxes: Sandboxes
    base: str

    def received(self, destination: str) -> list[dict]:
        """Requests the destination's sandbox received (faults included), in order."""
        return [d for d in self.sandboxes.deliveries.all() if d["destination"] == destination]


# --- API Gateway HTTP API (payload format 2.0) events and the functions' handlers -----------------
FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
_loaded = itertools.count(1)


def load_handler(function: str):
    """`lambda_handler` of a fresh copy of functions/<function>/app.py, under a module name of its
    own (a new Lambda execution environment)."""
    spec = importlib.util.spec_from_file_location(f"{function}_app_{next(_loaded)}", FUNCTIONS / function / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lambda_handler


class LambdaContext:
    function_name = "test-Function"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test-Function"
    aws_request_id = "00000000-0000-0000-0000-000000000002"
    log_group_name = "/aws/lambda/test-Function"
    log_stream_name = "unit"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def http_api_event(
    path: str,
    body: object = None,
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    route_key: str | None = None,
    path_parameters: dict[str, str] | None = None,
    base64_encoded: bool = False,
) -> dict:
    """An API Gateway HTTP API (payload format 2.0) event. `body`: bytes as sent, a str, or an
    object sent as JSON; header names are lower-cased, as API Gateway does."""
    if body is None:
        raw = b""
    elif isinstance(body, bytes):
        raw = body
    else:
        raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    sent = {"host": "relay.example.com", **{k.lower(): v for k, v in (headers or {}).items()}}
    if raw:
        sent["content-length"] = str(len(raw))
    route_key = route_key or f"ANY {path}"
    event = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": sent,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "unit",
            "domainName": "relay.example.com",
            "domainPrefix": "relay",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.9",
                "userAgent": sent.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "timeEpoch": int(time.time() * 1000),
        },
        "pathParameters": path_parameters or {},
        "isBase64Encoded": base64_encoded,
    }
    if raw:
        event["body"] = base64.b64encode(raw).decode() if base64_encoded else raw.decode("utf-8", "surrogateescape")
    return event


def call_handler(handler, event: dict) -> tuple[int, dict]:
    """The handler's answer: its status and its body, which must be JSON."""
    answer = handler(event, LambdaContext())
    assert answer["headers"]["Content-Type"] == "application/json"
    return answer["statusCode"], json.loads(answer["body"])
