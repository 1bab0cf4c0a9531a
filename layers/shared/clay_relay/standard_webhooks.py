"""Standard Webhooks signatures (https://www.standardwebhooks.com), the scheme Loops signs with.

    webhook-id: msg_…            webhook-timestamp: 1734425918 (unix seconds)
    webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{raw body}")> [v1,… …]

The key is the base64 after a `whsec_` prefix. Several signatures per header and several active
secrets (rotation) are accepted; every comparison is constant time; the timestamp must be within
the tolerance both ways (5 minutes by default; 0 turns the check off, for replaying fixed events
locally). Anything missing or wrong fails closed with Unauthorized, before any AWS call.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping

from clay_relay.errors import Unauthorized

PREFIX = "whsec_"
TIMESTAMP = re.compile(r"[0-9]{1,12}")  # ASCII digits only (str.isdigit() also takes "²")


def signing_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret (also accepted without the prefix)."""
    encoded = secret.strip().removeprefix(PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)  # padding optional
    except (binascii.Error, ValueError):
        raise ValueError("a Standard Webhooks secret is 'whsec_' followed by base64") from None
    if not key:
        raise ValueError("empty Standard Webhooks secret")
    return key


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The `v1,<base64>` signature of a message (what a sender puts in webhook-signature)."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(signing_key(secret), signed, hashlib.sha256).digest()).decode()


def verify(
    headers: Mapping[str, str],
    body: bytes,
    secrets: tuple[str, ...] | Callable[[], tuple[str, ...]],
    *,
    tolerance_seconds: int = 300,
    now: float | None = None,
) -> str:
    """Returns the message's `webhook-id` when one of its signatures matches one active secret.

    `secrets` may be a function: it is called only for a message whose headers are complete and
    whose timestamp is fresh, so an unsigned or stale request costs no secret look-up."""
    webhook_id = (headers.get("webhook-id") or "").strip()
    timestamp = (headers.get("webhook-timestamp") or "").strip()
    signatures = (headers.get("webhook-signature") or "").strip()
    if not (webhook_id and timestamp and signatures):
        raise Unauthorized("missing webhook-id, webhook-timestamp or webhook-signature header")
    if not TIMESTAMP.fullmatch(timestamp):
        raise Unauthorized("webhook-timestamp is not a unix timestamp")
    if tolerance_seconds and abs((time.time() if now is None else now) - int(timestamp)) > tolerance_seconds:
        raise Unauthorized("webhook-timestamp is too old or too far in the future")
    try:
        signed = f"{webhook_id}.{timestamp}.".encode() + body
        signatures.encode()
    except UnicodeEncodeError:  # an unpaired surrogate: no sender signed that, and it could not be stored
        raise Unauthorized("webhook-id or webhook-signature is not text") from None
    keys = []
    for secret in secrets() if callable(secrets) else secrets:
        try:
            keys.append(signing_key(secret))
        except ValueError:
            continue  # a malformed secret never matches; the others still may
    if not keys:
        raise Unauthorized("signature verification is not configured")
    expected = [base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()) for key in keys]
    matched = False
    for presented in signatures.split():
        version, _, signature = presented.partition(",")
        if version != "v1":
            continue
        for candidate in expected:
            matched |= hmac.compare_digest(signature.encode(), candidate)
    if not matched:
        raise Unauthorized("no valid signature")
    return webhook_id
