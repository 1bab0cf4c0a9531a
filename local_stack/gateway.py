"""A local API Gateway (HTTP API, payload format 2.0) for the routes template.yaml declares.

Requests become API Gateway v2 events for the real handlers; their answers become HTTP answers.
Also serves the local stack's own control routes under /_local/.

Like API Gateway, every answer the gateway gives itself is JSON (`{"message": "Not Found"}`): for
a malformed request (400), a request line or headers too large (414, 431), a body over 10 MB (413),
an unknown method or transfer coding (501). Bodies are read by length or in chunks (request_body).
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
import traceback
import uuid
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, urlsplit

import yaml

from local_stack.chaos import WorkerKilled, dies_before_enqueue
from local_stack.functions import LocalFunction
from local_stack.request_body import BodyRefused, read_body
from local_stack.sandboxes import Sandboxes
from local_stack.serving import BackgroundServer
from local_stack.template import ACCOUNT_ID, ROOT, HttpRoute

OPENAPI = ROOT / "openapi.yaml"
# API Gateway's own wording where Python's reason phrase differs (or differs between its versions).
MESSAGES = {413: "Request Entity Too Large", 414: "Request-URI Too Long"}
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/x-www-form-urlencoded", "+json")


def openapi_document(base_url: str) -> dict:
    """openapi.yaml (the relay's HTTP contract) as served by this stack: its only server is `base_url`."""
    document = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))
    document["servers"] = [{"url": base_url, "description": "this local stack"}]
    return document


def api_gateway_event(
    route: HttpRoute,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    path_parameters: dict[str, str],
    source_ip: str,
) -> dict:
    parts = urlsplit(url)
    content_type = headers.get("content-type", "")
    textual = any(t in content_type for t in TEXT_TYPES) or not content_type
    try:
        text = body.decode("utf-8") if textual else None
    except UnicodeDecodeError:
        text = None
    now = datetime.now(UTC)
    event = {
        "version": "2.0",
        "routeKey": f"{route.method} {route.path}",
        "rawPath": parts.path,
        "rawQueryString": parts.query,
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": "local",
            "domainName": headers.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": parts.path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": f"{route.method} {route.path}",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "pathParameters": path_parameters,
        "isBase64Encoded": text is None,
    }
    if body:
        event["body"] = text if text is not None else base64.b64encode(body).decode()
    if parts.query:
        event["queryStringParameters"] = dict(parse_qsl(parts.query, keep_blank_values=True))
    if "cookie" in headers:
        event["cookies"] = [c.strip() for c in headers["cookie"].split(";")]
    return event


class Gateway:
    def __init__(self, routes: list[HttpRoute], functions: dict[str, LocalFunction], sandboxes: Sandboxes):
        self.routes = routes
        self.functions = functions
        self.sandboxes = sandboxes
        self._server = BackgroundServer(type("Handler", (_GatewayHandler,), {"owner": self}), "gateway")

    def start(self, host: str, port: int) -> str:
        return self._server.start(host, port)

    def stop(self) -> None:
        self._server.stop()

    def route(self, method: str, path: str) -> tuple[HttpRoute, dict[str, str]] | None:
        for route in self.routes:
            params = route.match(method, path)
            if params is not None and route.allows(method):
                return route, params
        return None


class _GatewayHandler(BaseHTTPRequestHandler):
    owner: Gateway
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: without this a kept-alive connection waits 40 ms

    def log_message(self, fmt: str, *args) -> None:
        # A request refused before its request line was read has no command or path yet.
        request = f"{self.command or '-'} {getattr(self, 'path', '-')}"
        print(f"[gateway] {request} → {args[1] if len(args) > 1 else ''}", flush=True)

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if self.request_version == "HTTP/0.9":  # `GET /` alone: API Gateway speaks HTTP/1.1 and 2 only
            self.send_error(HTTPStatus.BAD_REQUEST, "HTTP/0.9 request")
            return False
        return True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The gateway's own refusals (the standard library's included: 400, 414, 431, 501, 505) in
        API Gateway's form: `{"message": "<reason phrase>"}`; the connection is closed after it."""
        self.log_error("code %d, message %s", code, message or explain)
        self.close_connection = True
        if self.request_version in ("HTTP/0.9", ""):  # an unreadable request line: answer in HTTP/1.1 all the same
            self.request_version = "HTTP/1.1"
        try:
            phrase = MESSAGES.get(code) or HTTPStatus(code).phrase
        except ValueError:
            phrase = message or "Error"
        self._send(code, json.dumps({"message": phrase}).encode(), {"Connection": "close"})

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        given = {key.lower() for key in headers or {}}
        headers = {**({} if "content-type" in given else {"Content-Type": "application/json"}), **(headers or {})}
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, value: object) -> None:
        self._send(status, json.dumps(value).encode())

    def _handle(self) -> None:
        try:
            body = read_body(self.headers, self.rfile)
        except BodyRefused as refused:
            self.send_error(refused.status, str(refused))
            return
        path = urlsplit(self.path).path
        if path.startswith("/_local/"):
            self._control(path, body)
            return
        found = self.owner.route(self.command, path)
        if found is None:
            self._json(404, {"message": "Not Found"})
            return
        route, params = found
        headers: dict[str, str] = {}
        for key, value in self.headers.items():  # API Gateway joins repeated headers with commas
            key = key.lower()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        event = api_gateway_event(route, self.command, self.path, headers, body, params, self.client_address[0])
        crash = self.owner.sandboxes.active_fault("receiver")
        try:
            with dies_before_enqueue() if crash else contextlib.nullcontext():
                result = self.owner.functions[route.function].invoke(event)
        except WorkerKilled as death:
            print(f"[receiver] killed {death}", flush=True)
            self._json(502, {"message": "Internal Server Error"})  # API Gateway's answer when the Lambda died
            return
        except Exception:
            traceback.print_exc()
            self._json(500, {"message": "Internal Server Error"})
            return
        self._respond_with(result)

    def _respond_with(self, result: object) -> None:
        if not (isinstance(result, dict) and "statusCode" in result):
            self._send(200, json.dumps(result).encode())
            return
        body = result.get("body") or ""
        data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
        headers = {k: str(v) for k, v in (result.get("headers") or {}).items()}
        self._send(int(result["statusCode"]), data, headers)

    def _control(self, path: str, body: bytes) -> None:
        sandboxes = self.owner.sandboxes
        if path == "/_local/deliveries" and self.command == "GET":
            self._json(200, sandboxes.deliveries.all())
        elif path == "/_local/deliveries" and self.command == "DELETE":
            sandboxes.deliveries.clear()
            self._json(200, {"cleared": True})
        elif path == "/_local/faults" and self.command == "POST":
            try:
                spec = json.loads(body or b"{}")
                fault = sandboxes.add_fault(spec if isinstance(spec, dict) else {})
            except ValueError as error:
                self._json(400, {"error": "invalid_fault", "message": str(error)})
                return
            self._json(
                201,
                {
                    "destination": fault.destination,
                    "mode": fault.mode,
                    "status": fault.status,
                    **({"after": fault.after} if fault.mode == "crash" else {}),
                    "times": fault.times,
                    "seconds_left": fault.until and round(fault.until - time.monotonic(), 1),
                },
            )
        elif path == "/_local/faults" and self.command == "DELETE":
            sandboxes.clear_faults()
            self._json(200, {"cleared": True})
        elif path == "/_local/loops/webhook" and self.command == "POST":
            try:
                event = json.loads(body or b"{}")
                sent = sandboxes.loops.fire_webhook(event if isinstance(event, dict) else {})
            except ValueError as error:
                self._json(400, {"error": "invalid_request", "message": str(error)})
                return
            self._json(200, sent)
        elif path == "/_local/openapi.json" and self.command == "GET":
            host = self.headers.get("host") or "{}:{}".format(*self.server.server_address[:2])
            self._json(200, openapi_document(f"http://{host}"))
        elif path.startswith("/_local/directus/items/") and path.count("/") == 4 and self.command == "POST":
            # Items that existed before the relay: stored in the sandbox Directus without firing its Flow.
            try:
                items = json.loads(body or b"[]")
                stored = sandboxes.directus.seed(path.rsplit("/", 1)[-1], items if isinstance(items, list) else [items])
            except ValueError as error:
                self._json(400, {"error": "invalid_request", "message": str(error)})
                return
            self._json(201, {"data": stored})
        elif path == "/_local/health":
            self._json(200, {"ok": True})
        else:
            self._json(404, {"message": "Not Found"})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_TRACE = do_CONNECT = _handle
