"""The local gateway answers like API Gateway's HTTP API, whatever arrives on the socket: its own
refusals are JSON `{"message": …}`, chunked bodies reach the function whole (up to 10 MB), and a
burst of simultaneous connections is queued and answered, never reset."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time

import pytest

from local_stack.gateway import Gateway
from local_stack.request_body import MAX_PAYLOAD
from local_stack.sandboxes import Sandboxes
from local_stack.template import HttpRoute


class EchoFunction:
    """Stands in for a receiver: answers 200 with the body its event carried."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    def invoke(self, event: dict) -> dict:
        self.events.append(event)
        return {
            "statusCode": 200,
            "headers": {"content-type": "application/json"},
            "body": json.dumps({"body": event.get("body")}),
        }


@pytest.fixture(scope="module")
def _served() -> tuple[EchoFunction, int]:
    echo = EchoFunction()
    server = Gateway([HttpRoute("POST", "/echo", "Echo")], {"Echo": echo}, Sandboxes())
    url = server.start("127.0.0.1", 0)
    yield echo, int(url.rsplit(":", 1)[1])
    server.stop()


@pytest.fixture
def echo(_served) -> EchoFunction:
    _served[0].events.clear()
    return _served[0]


@pytest.fixture
def gateway(_served, echo) -> int:
    """The port of a local gateway with one route, POST /echo, served by `echo`."""
    return _served[1]


class _OneReader:
    """The connection as `http.client.HTTPResponse` sees it: every answer is read through one buffered
    reader, so bytes of the next answer that the reader fetched ahead are never lost with it."""

    def __init__(self, connection: socket.socket):
        self._file = connection.makefile("rb")

    def makefile(self, *args, **kwargs) -> _OneReader:
        return self

    def __getattr__(self, name: str):
        return getattr(self._file, name)

    def close(self) -> None:  # a response closes its file when read; the next answer still needs it
        pass


def answers(port: int, raw: bytes, *, count: int = 1, timeout: float = 60) -> list[http.client.HTTPResponse]:
    """Sends `raw` bytes on one connection; the `count` answers read from it (bodies read)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.sendall(raw)
        reader = _OneReader(connection)
        responses = []
        for _ in range(count):
            response = http.client.HTTPResponse(reader)  # type: ignore[arg-type]
            response.begin()
            response.body = response.read()  # type: ignore[attr-defined]
            responses.append(response)
        return responses


def answer(port: int, raw: bytes) -> tuple[int, str | None, dict]:
    [response] = answers(port, raw)
    return response.status, response.getheader("Content-Type"), json.loads(response.body)  # type: ignore[attr-defined]


def post(body_headers: str, body: bytes = b"") -> bytes:
    return f"POST /echo HTTP/1.1\r\nHost: localhost\r\n{body_headers}\r\n".encode() + body


# --- the gateway's own answers are JSON ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("request_bytes", "status", "message"),
    [
        (b"BREW /echo HTTP/1.1\r\nHost: localhost\r\n\r\n", 501, "Not Implemented"),
        (post(f"X-Big: {'a' * 70_000}\r\n"), 431, "Request Header Fields Too Large"),
        (post("".join(f"X-{n}: {n}\r\n" for n in range(120))), 431, "Request Header Fields Too Large"),
        (b"POST /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414, "Request-URI Too Long"),
        (b"GARBAGE\r\n\r\n", 400, "Bad Request"),
        (b"GET /echo\r\n\r\n", 400, "Bad Request"),
        (b"POST /echo HTTP/7.0\r\n\r\n", 505, "HTTP Version Not Supported"),
        (post("Content-Length: abc\r\n"), 400, "Bad Request"),
        (post("Content-Length: -1\r\n"), 400, "Bad Request"),
        (post("Content-Length: 2\r\nContent-Length: 3\r\n", b"{}"), 400, "Bad Request"),
        (post(f"Content-Length: {MAX_PAYLOAD + 1}\r\n"), 413, "Request Entity Too Large"),
        (post("Transfer-Encoding: gzip, chunked\r\n"), 501, "Not Implemented"),
        (post("Transfer-Encoding: chunked\r\n", b"zz\r\nhello\r\n0\r\n\r\n"), 400, "Bad Request"),
        (post("Transfer-Encoding: chunked\r\n", b"2\r\nhello\r\n0\r\n\r\n"), 400, "Bad Request"),
        (post("Transfer-Encoding: chunked\r\n", f"{MAX_PAYLOAD + 1:x}\r\n".encode()), 413, "Request Entity Too Large"),
    ],
    ids=[
        "unknown method",
        "a header line over 64 KB",
        "over 100 headers",
        "a request line over 64 KB",
        "a request line that is no request",
        "HTTP/0.9",
        "an unknown HTTP version",
        "Content-Length not a number",
        "Content-Length negative",
        "two Content-Lengths",
        "Content-Length over 10 MB",
        "a transfer coding other than chunked",
        "a chunk size that is no number",
        "a chunk longer than its size",
        "a chunk over 10 MB",
    ],
)
def test_what_the_gateway_refuses_itself_is_answered_in_json_as_api_gateway_does(
    gateway, echo, request_bytes, status, message
):
    assert answer(gateway, request_bytes) == (status, "application/json", {"message": message})
    assert echo.events == [], "nothing refused reaches a function"


def test_a_refusal_closes_the_connection_so_an_unread_body_is_never_taken_for_a_request(gateway):
    [refused] = answers(gateway, post(f"Content-Length: {MAX_PAYLOAD + 1}\r\n", b"POST /echo HTTP/1.1\r\n\r\n"))
    assert (refused.status, refused.getheader("Connection")) == (413, "close")


# --- chunked bodies ------------------------------------------------------------------------------------
def test_a_chunked_body_reaches_the_function_whole(gateway, echo):
    chunks = b'7\r\n{"lead"\r\n4;ext=1\r\n: "a\r\nA\r\nda@example\r\n4\r\n.io"\r\n1\r\n}\r\n0\r\nX-Trailer: t\r\n\r\n'
    headers = "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
    status, content_type, body = answer(gateway, post(headers, chunks))
    assert (status, content_type) == (200, "application/json")
    assert body == {"body": '{"lead": "ada@example.io"}'}


def test_a_chunked_body_of_10_mb_is_read_and_the_connection_serves_the_next_request(gateway, echo):
    data = b"x" * MAX_PAYLOAD
    parts = (data[:1000], data[1000:])
    chunked = b"".join(f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in parts) + b"0\r\n\r\n"
    then = post("Content-Length: 2\r\n", b"{}")
    first, second = answers(gateway, post("Transfer-Encoding: chunked\r\n", chunked) + then, count=2)
    assert (first.status, second.status) == (200, 200)
    assert [len(event["body"]) for event in echo.events] == [MAX_PAYLOAD, 2]


# --- bursts --------------------------------------------------------------------------------------------
def test_a_burst_of_200_simultaneous_connections_is_queued_and_every_one_answered(gateway):
    connections = 200
    statuses: list[int | str] = []
    start = threading.Barrier(connections)

    def one() -> None:
        start.wait()
        try:
            [response] = answers(gateway, post("Content-Length: 2\r\nConnection: close\r\n", b"{}"))
            statuses.append(response.status)
        except OSError as error:  # reset, refused or never answered
            statuses.append(repr(error))

    threads = [threading.Thread(target=one) for _ in range(connections)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 120
    for thread in threads:
        thread.join(max(0, deadline - time.monotonic()))
    assert statuses == [200] * connections
