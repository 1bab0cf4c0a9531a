"""The console's HTTP server: the standard library's, bound to 127.0.0.1 only, a thread per request.

Every request passes the guard first (auth: its Host, then its token or cookie; a POST also its
CSRF token); then one route answers. What a person or a script can get wrong is answered with its
status and a clear message (a page for a browser, JSON otherwise), never a stack trace.
"""

from __future__ import annotations

import json
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from clay_relay.config import ConfigError
from clay_relay.observability import mask_email
from relay_cli import CommandError
from relay_cli.console.auth import Guard, Refusal
from relay_cli.console.pages import Console, Page
from relay_cli.console.reports import BadRequest
from relay_cli.stack import StackError

LOOPBACK = "127.0.0.1"
MAX_FORM_BYTES = 64 * 1024
STATIC = {"/static/console.css": "text/css", "/static/console.js": "text/javascript"}
ROUTES = {
    "/": "GET",
    "/leads": "GET",
    "/dead-letters": "GET",
    "/dead-letters/replay": "POST",
    **dict.fromkeys(STATIC, "GET"),
}
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # no-referrer would make the browser send `Origin: null` with a form
    "Cache-Control": "no-store",
}


class ConsoleServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, console: Console, port: int):
        super().__init__((LOOPBACK, port), ConsoleRequest)
        self.console = console
        self.guard = Guard(self.server_address[1], csrf=console.csrf)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.server_address[1]}/?token={self.guard.token}"


class ConsoleRequest(BaseHTTPRequestHandler):
    server: ConsoleServer
    server_version = "relay-console"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:
        """No access log: a request line may carry the token."""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def _handle(self, method: str) -> None:
        guard, url = self.server.guard, urlsplit(self.path)
        if refusal := guard.host_refusal(self.headers.get("Host")):
            return self._refuse(refusal)
        query = parse_qs(url.query, max_num_fields=50)
        if "token" in query and guard.holds_token(query["token"][0]):
            rest = {k: v for k, v in query.items() if k != "token"}
            location = url.path + ("?" + urlencode(rest, doseq=True) if rest else "")
            return self._send(303, b"", "text/plain", {"Location": location, "Set-Cookie": guard.set_cookie()})
        if not guard.signed_in(self.headers.get("Cookie")):
            return self._refuse(Refusal(401, "open the address `relay console` printed (with its token)"))
        if url.path not in ROUTES:
            return self._refuse(Refusal(404, f"no page {url.path[:100]}"))
        if method != ROUTES[url.path] and not (url.path == "/dead-letters/replay" and method == "GET"):
            return self._refuse(Refusal(405, f"{method} is not served here"), allow=ROUTES[url.path])
        try:
            self._route(method, url.path, query)
        except _Refused as error:
            self._refuse(error.refusal)
        except BadRequest as error:
            self._refuse(Refusal(400, str(error)))
        except (StackError, CommandError, ConfigError) as error:
            self._refuse(Refusal(502, f"cannot read the stack: {mask_email(str(error))}"))
        except (BotoCoreError, ClientError) as error:
            self._refuse(Refusal(502, f"AWS: {mask_email(str(error))}"))
        except Exception:  # noqa: BLE001 - a bug answers 500 without its trace; the trace goes to the terminal
            traceback.print_exc()
            self._refuse(Refusal(500, "the console failed on this request: its terminal shows why"))

    def _route(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        console = self.server.console
        first = {name: values[0] for name, values in query.items()}
        if path in STATIC:
            body = (Path(__file__).parent / "static" / Path(path).name).read_bytes()
            return self._send(200, body, STATIC[path])
        if path == "/":
            return self._page(console.overview())
        if path == "/leads":
            return self._page(console.leads(first.get("q", "").strip(), first.get("reveal") == "1"))
        if path == "/dead-letters":
            return self._page(console.dead_letters(first.get("reveal", "")))
        form = self._form() if method == "POST" else {}
        if refusal := self.server.guard.change_refusal(method, self.headers.get("Origin"), _one(form, "csrf")):
            return self._refuse(refusal, allow="POST")
        page = console.replay(form.get("id", []), _one(form, "all") == "1", _one(form, "action") or "preview")
        return self._page(page)

    def _form(self) -> dict[str, list[str]]:
        kind = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            raise _Refused(Refusal(415, "send the console's form (application/x-www-form-urlencoded)"))
        try:
            length = int(self.headers.get("Content-Length") or "")
        except ValueError:
            raise _Refused(Refusal(411, "a Content-Length is needed")) from None
        if not 0 <= length <= MAX_FORM_BYTES:
            raise _Refused(Refusal(413, f"a form of at most {MAX_FORM_BYTES} bytes"))
        try:
            return parse_qs(self.rfile.read(length).decode(), strict_parsing=length > 0, max_num_fields=1_100)
        except (UnicodeDecodeError, ValueError):
            raise BadRequest("the form is not readable") from None

    def _page(self, page: Page) -> None:
        self._send(page.status, page.html.encode(), "text/html; charset=utf-8")

    def _refuse(self, refusal: Refusal, allow: str | None = None) -> None:
        extra = {"Allow": allow} if allow and refusal.status == 405 else {}
        if "text/html" in (self.headers.get("Accept") or "") and refusal.status != 421:
            page = self._message_page(refusal)
            return self._send(refusal.status, page.encode(), "text/html; charset=utf-8", extra)
        body = json.dumps({"error": refusal.message, "status": refusal.status}).encode()
        self._send(refusal.status, body, "application/json", extra)

    def _message_page(self, refusal: Refusal) -> str:
        if refusal.status == 401:  # no page of the console for someone without the token
            return f"<!doctype html><title>401</title><p>401 Unauthorized: {refusal.message}.</p>"
        heading = {400: "Bad request", 403: "Refused", 404: "Not found", 405: "Not allowed"}.get(
            refusal.status, "Error"
        )
        return self.server.console.message(refusal.status, heading, refusal.message).html

    def _send(self, status: int, body: bytes, kind: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in {**HEADERS, "Content-Type": kind, "Content-Length": str(len(body)), **(extra or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class _Refused(BadRequest):
    def __init__(self, refusal: Refusal):
        super().__init__(refusal.message)
        self.refusal = refusal


def _one(form: dict[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None
