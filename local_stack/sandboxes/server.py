"""One HTTP server for every sandbox: the first part of the path picks the sandbox; every request is
logged (`deliveries`), and injected faults answer first."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

from local_stack.sandboxes.answers import Answer
from local_stack.sandboxes.clay import ClaySandbox
from local_stack.sandboxes.deliveries import DeliveryLog
from local_stack.sandboxes.directus import DirectusSandbox
from local_stack.sandboxes.faults import Fault
from local_stack.sandboxes.hooks import forward_receive, slack_receive, zapier_receive
from local_stack.sandboxes.loops import LoopsSandbox
from local_stack.serving import BackgroundServer


class Sandboxes:
    def __init__(self, clay: ClaySandbox | None = None):
        self.clay = clay or ClaySandbox()
        self.loops = LoopsSandbox()
        self.deliveries = DeliveryLog()
        self.directus = DirectusSandbox(log=self.deliveries.record)
        self.faults: list[Fault] = []
        self._faults_lock = threading.Lock()
        self._server = BackgroundServer(type("Handler", (_SandboxHandler,), {"owner": self}), "sandboxes")

    def service(self, destination: str) -> Callable[[str, list[str], dict, bytes], Answer] | None:
        return {
            "clay": self.clay.receive,
            "loops": self.loops.receive,
            "slack": slack_receive,
            "zapier": zapier_receive,
            "directus": self.directus.receive,
            "forward": forward_receive,
        }.get(destination)

    def add_fault(self, spec: dict) -> Fault:
        fault = Fault.from_request(spec)
        with self._faults_lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._faults_lock:
            self.faults.clear()

    def active_fault(self, destination: str) -> Fault | None:
        with self._faults_lock:
            for fault in self.faults:
                if fault.destination == destination and fault.take():
                    return fault
        return None

    def start(self, host: str = "127.0.0.1", port: int = 3001) -> str:
        return self._server.start(host, port)

    def stop(self) -> None:
        if self.clay.column is not None:
            self.clay.column.stop()
        self._server.stop()


class _SandboxHandler(BaseHTTPRequestHandler):
    owner: Sandboxes
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # the delivery log is the record
        pass

    def _send(self, answer: Answer) -> None:
        if isinstance(answer.body, str):
            data, content_type = answer.body.encode(), "text/plain; charset=utf-8"
        else:
            data, content_type = json.dumps(answer.body).encode(), "application/json"
        self.send_response(answer.status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in answer.headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        parts = self.path.split("?")[0].strip("/").split("/")
        service = self.owner.service(parts[0])
        if service is None:
            self._send(Answer(404, {"error": "no sandbox at this path"}))
            return
        if self._injected_fault(parts[0], headers, body):
            return
        if parts[0] == "directus":  # the only sandbox whose answer depends on the query string
            answer = service(self.command, parts, headers, body, query=urlsplit(self.path).query)
        else:
            answer = service(self.command, parts, headers, body)
        self.owner.deliveries.record(parts[0], self.command, self.path, headers, body, answer.status, **answer.note)
        self._send(answer)
        if answer.then:
            threading.Thread(target=answer.then, daemon=True).start()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def _injected_fault(self, destination: str, headers: dict, body: bytes) -> bool:
        fault = self.owner.active_fault(destination)
        if fault is None:
            return False
        record = self.owner.deliveries.record
        if fault.mode == "down":
            record(destination, self.command, self.path, headers, body, 0, fault="down")
            self.close_connection = True
            self.connection.shutdown(2)
            return True
        if fault.mode == "timeout":
            record(destination, self.command, self.path, headers, body, 0, fault="timeout")
            time.sleep(fault.delay)
            self.close_connection = True
            return True
        record(destination, self.command, self.path, headers, body, fault.status, fault="status")
        extra = {"Retry-After": "1"} if fault.status == 429 else {}
        if destination == "loops" and fault.status == 429:
            extra = {"x-ratelimit-limit": "10", "x-ratelimit-remaining": "0"}
        self._send(Answer(fault.status, {"error": f"injected fault {fault.status}"}, extra))
        return True
