"""The body of a request to the local gateway, read as API Gateway reads it: by `Content-Length`, or
in chunks (`Transfer-Encoding: chunked`), at most 10 MB either way (HTTP API's payload limit).

A body that cannot be read is refused with the status API Gateway would answer: 400 for a malformed
length or chunk, 413 beyond the limit, 501 for a transfer coding other than chunked.
"""

from __future__ import annotations

import re
from email.message import Message
from http import HTTPStatus
from typing import BinaryIO

MAX_PAYLOAD = 10 * 1024 * 1024  # API Gateway HTTP API's limit
_MAX_LINE = 64 * 1024  # a chunk-size line or a trailer field, as long as the standard library allows a header
_DIGITS = re.compile(r"[0-9]+")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]+)[ \t]*(?:;[^\r\n]*)?\r?\n")


class BodyRefused(Exception):
    """The request's body cannot be read: answer `status` and close the connection."""

    def __init__(self, status: HTTPStatus, reason: str):
        super().__init__(reason)
        self.status = status


def read_body(headers: Message, stream: BinaryIO, limit: int = MAX_PAYLOAD) -> bytes:
    """The request's body from `stream`, which is left at the start of the next request."""
    coding = headers.get_all("Transfer-Encoding") or []
    if coding:
        if [c.strip().lower() for c in ",".join(coding).split(",")] != ["chunked"]:
            raise BodyRefused(HTTPStatus.NOT_IMPLEMENTED, f"unsupported Transfer-Encoding {', '.join(coding)!r}")
        return _read_chunked(stream, limit)  # chunked wins over any Content-Length (RFC 9112, 6.3)
    lengths = {value.strip() for value in headers.get_all("Content-Length") or []}
    if not lengths:
        return b""
    if len(lengths) > 1 or not _DIGITS.fullmatch(next(iter(lengths))):
        raise BodyRefused(HTTPStatus.BAD_REQUEST, f"invalid Content-Length {', '.join(sorted(lengths))!r}")
    length = int(next(iter(lengths)))
    if length > limit:
        raise BodyRefused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"a body of {length} bytes is over {limit}")
    return _read_exactly(stream, length)


def _read_chunked(stream: BinaryIO, limit: int) -> bytes:
    body = bytearray()
    while True:
        line = stream.readline(_MAX_LINE + 1)
        found = _CHUNK_SIZE.fullmatch(line)
        if not found:
            raise BodyRefused(HTTPStatus.BAD_REQUEST, f"invalid chunk size line {line[:40]!r}")
        size = int(found.group(1), 16)
        if len(body) + size > limit:
            raise BodyRefused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"a chunked body over {limit} bytes")
        if size == 0:
            break
        body += _read_exactly(stream, size)
        if stream.readline(3) not in (b"\r\n", b"\n"):
            raise BodyRefused(HTTPStatus.BAD_REQUEST, "a chunk does not end where its size says")
    for _ in range(100):  # trailer fields (ignored, as API Gateway does), up to the empty line
        line = stream.readline(_MAX_LINE + 1)
        if line in (b"\r\n", b"\n"):
            return bytes(body)
        if not line or len(line) > _MAX_LINE:
            break
    raise BodyRefused(HTTPStatus.BAD_REQUEST, "the chunked body does not end with an empty line")


def _read_exactly(stream: BinaryIO, length: int) -> bytes:
    data = stream.read(length) if length else b""
    if len(data) != length:
        raise BodyRefused(HTTPStatus.BAD_REQUEST, f"the body ended after {len(data)} of {length} bytes")
    return data
