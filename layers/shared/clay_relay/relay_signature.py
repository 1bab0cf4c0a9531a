"""The relay's own signature, for senders of `POST /clay/enriched` that can sign (Clay itself cannot):

    x-relay-signature: t=<unix seconds>,v1=<hex HMAC-SHA256(key, "{t}." + raw body)>[,v1=<hex>…]

The timestamp is signed with the body, so a captured request stops passing once it is more than
the tolerance (5 minutes) away from now, either way; within those minutes the relay's duplicate
check stops a replay. Several `v1` entries (one per key, while a sender rotates) and several
active keys are accepted; every comparison is constant time and all of them are made. Entries of
other versions are ignored, so a sender may add a future scheme beside `v1`.

The old form, `sha256=<hex of HMAC-SHA256(key, raw body)>` (or the bare hex), covers the body only
and can be replayed at any time: it passes only when `clay_callback.hmac_accept_body_only` says so,
as a migration aid. Anything missing or wrong fails closed with Unauthorized; a stale or malformed
header is refused before any key is read.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable

from clay_relay.errors import Unauthorized

TOLERANCE_SECONDS = 300
TIMESTAMP = re.compile(r"[0-9]{1,12}")  # ASCII digits only (str.isdigit() also takes "²")
SCHEME = "t=<unix seconds>,v1=<hex of HMAC-SHA256(key, '<t>.' + raw body)>"


def _utf8(text: str) -> bytes:
    # Keys and header values may hold unpaired surrogates (a JSON event's "\ud800"): they match
    # only themselves and are never an error.
    return text.encode("utf-8", "surrogatepass")


def digest(key: str, timestamp: int | str, body: bytes) -> str:
    """The hex HMAC-SHA256 of `{timestamp}.{body}` with `key`."""
    return hmac.new(_utf8(key), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(key: str, body: bytes, timestamp: int | None = None) -> str:
    """The header value a sender puts in `x-relay-signature` (now, unless `timestamp` is given)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},v1={digest(key, timestamp, body)}"


def body_only_matches(body: bytes, presented: str, keys: tuple[str, ...]) -> bool:
    """The old form: `sha256=<hex>` (or bare hex) of HMAC-SHA256(key, raw body), for any active key."""
    presented_digest = presented.strip().lower().removeprefix("sha256=")
    matched = False
    for key in keys:
        expected = hmac.new(_utf8(key), body, hashlib.sha256).hexdigest()
        matched |= hmac.compare_digest(_utf8(presented_digest), expected.encode())
    return matched and bool(presented_digest)


def _entries(header: str) -> tuple[list[str], list[str]] | None:
    """The `t` and `v1` values of a `t=…,v1=…` header; None when it has no `t` entry (the old form)."""
    timestamps: list[str] = []
    signatures: list[str] = []
    for entry in header.split(","):
        name, separator, value = entry.strip().partition("=")
        if not separator:
            continue
        if name == "t":
            timestamps.append(value.strip())
        elif name == "v1":
            signatures.append(value.strip().lower())
    return (timestamps, signatures) if timestamps else None


def verify(
    header: str,
    body: bytes,
    keys: Callable[[], tuple[str, ...]],
    *,
    accept_body_only: bool = False,
    tolerance_seconds: int | None = None,
    now: float | None = None,
) -> bool:
    """Raises Unauthorized unless `header` signs `body` with one of the active `keys` (read only for
    a header that is complete and fresh). Returns whether it was the old, body-only form.
    `tolerance_seconds` defaults to TOLERANCE_SECONDS (read at each call)."""
    tolerance = TOLERANCE_SECONDS if tolerance_seconds is None else tolerance_seconds
    entries = _entries(header)
    if entries is None:
        if not accept_body_only:
            raise Unauthorized(f"the signature has no timestamp: sign {SCHEME}")
        if not body_only_matches(body, header, keys()):
            raise Unauthorized("invalid signature")
        return True
    timestamps, signatures = entries
    if len(timestamps) != 1 or not TIMESTAMP.fullmatch(timestamps[0]):
        raise Unauthorized("the signature's t is not one unix timestamp")
    timestamp = timestamps[0]
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance:
        raise Unauthorized("the signature's timestamp is too old or too far in the future")
    if not any(signatures):
        raise Unauthorized(f"the signature has no v1 entry: sign {SCHEME}")
    expected = [digest(key, timestamp, body).encode() for key in keys()]
    matched = False
    for presented in signatures:
        for candidate in expected:
            matched |= hmac.compare_digest(_utf8(presented), candidate)
    if not matched:
        raise Unauthorized("invalid signature")
    return False
