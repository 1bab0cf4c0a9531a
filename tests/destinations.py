"""Stand-ins for the destinations: a local HTTP server that answers like Clay (and records what
it got), and the local stack's Loops, Slack, Zapier and Directus sandboxes wired to the relay's secrets."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from local_stack.sandboxes import Sandboxes


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
    """ThreadingHTTPServer on 127.0.0.1, port 0, answering POSTs (and PUTs, PATCHes, GETs) per path as told."""

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

            do_PUT = do_PATCH = do_GET = do_POST

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
