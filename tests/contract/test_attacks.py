"""Attacks on every HTTP route, through the functions' handlers with API Gateway HTTP API (v2) events:
forged, truncated and replayed signatures, stale and future timestamps, wrong tokens and secrets,
mangled headers, oversized, malformed and hostile bodies, methods that are not allowed.

Each is answered with the status the wire formats call for and a JSON error body (never a 5xx,
never a stack trace), and a request that is not authenticated costs no AWS call beyond reading the
secret that decides it (none at all when it lacks what a secret could be checked against). Valid
requests in another header case, or with a second signature or secret, still pass.

Valid requests are signed by the `standardwebhooks` reference implementation (bodies that are no
UTF-8 text, which it cannot sign, by a plain HMAC in attack_helpers.py), never by the relay's code.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import boto3
import pytest

from clay_relay import relay_signature
from clay_relay.runtime import get_runtime
from clay_relay.settings import Settings
from tests.contract.attack_requests import (
    BEARER_ROUTES,
    DIRECTUS_EVENT,
    DIRECTUS_TOKEN,
    LEAD,
    LOOPS_CONTACT,
    LOOPS_EVENT,
    MAX_BODY,
    ORIGINAL_SECRETS,
    ROUTES,
    VALID_BODY,
    assert_accepted,
    assert_aws_calls,
    assert_rejected,
    body_only_signature,
    flip_bit,
    flip_signature_bit,
    hmac_digest,
    hmac_signature,
    nested,
    raw,
    recased,
    relay_stack,
    request,
    signed_by_hmac,
    store_secret,
    webhook_headers,
    with_headers,
)
from tests.loops_requests import CLAY_TOKEN, SECRET, UNRELATED_SECRET, contact_created, new_webhook_id
from tests.queues import receive, run_worker, sqs_record


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with relay_stack(tmp_path_factory.mktemp("attacks")) as stack:
        yield stack


@pytest.fixture
def relay(stack):
    return stack.sender()


@pytest.fixture
def boto_calls(stack) -> list[tuple[str, str]]:
    """The AWS calls of the last request sent."""
    return stack.aws_calls


@pytest.fixture
def stored(stack):
    """`stored(name, value)` replaces a secret (None deletes it) for one test."""
    changed: set[str] = set()

    def store(name: str, value: str | None) -> None:
        changed.add(name)
        store_secret(stack.secrets_prefix + name, value)

    yield store
    for name in changed:
        store_secret(stack.secrets_prefix + name, ORIGINAL_SECRETS[name])


def padded(route: str, size: int) -> bytes:
    """The route's valid body with extra fields of at most about 400 characters (short enough for
    Loops) making it exactly `size` bytes."""
    body = dict(VALID_BODY[route])
    overhead = len(raw({**body, "pad_000000": ""})) - len(raw(body))  # ', "pad_000000": ""'
    missing = size - len(raw(body))
    full = max(0, (missing - overhead) // (overhead + 400))
    for i in range(full):
        body[f"pad_{i:06}"] = "a" * 400
    body[f"pad_{full:06}"] = "a" * (missing - overhead - full * (overhead + 400))
    data = raw(body)
    assert len(data) == size
    return data


def compact_body(route: str, size: int) -> bytes:
    """The route's valid body with fields of 400 characters, written without spaces, `size` bytes."""
    body = dict(VALID_BODY[route])

    def compact(value: dict) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()

    i = 0
    while len(compact(body)) < size - 450:
        body[f"p{i:05}"] = "a" * 400
        i += 1
    body["last"] = "a" * (size - len(compact(body)) - len(b',"last":""'))
    data = compact(body)
    assert len(data) == size
    return data


def many_fields(route: str, count: int = 4000) -> dict:
    """The route's valid body with `count` extra fields of 40 characters (about 240 KB)."""
    extra = {f"field_{i:05}": "x" * 40 for i in range(count)}
    if route == "directus":
        return {**DIRECTUS_EVENT, "payload": {**DIRECTUS_EVENT["payload"], **extra}}
    if route == "loops-webhook":
        return contact_created({**contact_created()["contact"], **extra})
    return {**VALID_BODY[route], **extra}


def nested_objects(levels: int) -> object:
    value: object = 1
    for _ in range(levels):
        value = {"a": value}
    return value


def with_base64_body(event: dict, body: str) -> dict:
    event["isBase64Encoded"] = True
    event["body"] = body
    return event


# --- the attacks --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Attack:
    name: str
    build: Callable[[], dict]
    status: int = 401
    error: str = "unauthorized"
    secret_read: bool = True  # False: refused before any secret was looked up


def now(offset: int = 0) -> int:
    return int(time.time()) + offset


def token_of(route: str) -> str:
    return DIRECTUS_TOKEN if route == "directus" else CLAY_TOKEN


def appended(route: str, fragment: bytes) -> bytes:
    """The route's valid body with `fragment` (`"key": value`, as raw JSON text) as its last field."""
    return raw(VALID_BODY[route])[:-1] + b", " + fragment + b"}"


def webhook(**changes: str | None) -> dict:
    """A valid Loops webhook whose headers were then changed."""
    return with_headers(request("loops-webhook"), **changes)


def webhook_signed_for(**signing) -> dict:
    """A Loops webhook carrying a signature made with other parameters (secret, id, timestamp)."""
    event = request("loops-webhook")
    headers = event["headers"]
    sign = {"webhook_id": headers["webhook-id"], "timestamp": int(headers["webhook-timestamp"]), **signing}
    signature = webhook_headers(raw(contact_created()), **sign)["webhook-signature"]
    return with_headers(event, webhook_signature=signature)


def webhook_signed_at(timestamp: int) -> dict:
    data = raw(contact_created())
    return request("loops-webhook", data, headers=webhook_headers(data, timestamp=timestamp))


def signature_changed(change: Callable[[str], str]) -> dict:
    event = request("loops-webhook")
    return with_headers(event, webhook_signature=change(event["headers"]["webhook-signature"]))


def hmac_changed(change: Callable[[str], str], **headers: str) -> Callable[[], dict]:
    """A lead whose `x-relay-signature` (`t=<now>,v1=<hex>`) was then changed."""
    return lambda: signed_by_hmac(signature=lambda body: change(hmac_signature(body)), **headers)


def v1_changed(change: Callable[[str], str]) -> Callable[[], dict]:
    """A lead signed now whose v1 hex digest was then changed (the timestamp left as signed)."""

    def signature(body: bytes) -> str:
        timestamp = now()
        return f"t={timestamp},v1={change(hmac_digest(body, timestamp=timestamp))}"

    return lambda: signed_by_hmac(signature=signature)


def lead_signed(header: Callable[[bytes, int], str]) -> Callable[[], dict]:
    """A lead whose `x-relay-signature` is `header(body, now)`."""
    return lambda: signed_by_hmac(signature=lambda body: header(body, now()))


# Authorization headers (from the route's valid token) that must not pass: (what, value, a secret read).
TOKENS: list[tuple[str, Callable[[str], str | None], bool]] = [
    ("no authorization header", lambda token: None, False),
    ("an empty authorization header", lambda token: "", False),
    ("the scheme without a token", lambda token: "Bearer ", True),  # "Bearer", once trimmed: a (wrong) bare token
    ("a wrong token", lambda token: "Bearer not-the-token", True),
    ("a bit flipped in the token's first character", lambda token: f"Bearer {flip_bit(token, 0)}", True),
    ("a bit flipped in the token's last character", lambda token: f"Bearer {flip_bit(token, -1)}", True),
    ("the token truncated by one character", lambda token: f"Bearer {token[:-1]}", True),
    ("half of the token", lambda token: f"Bearer {token[: len(token) // 2]}", True),
    ("the token with a character appended", lambda token: f"Bearer {token}x", True),
    ("the token in capitals", lambda token: f"Bearer {token.upper()}", True),
    (
        "the token under the Basic scheme",
        lambda token: "Basic " + base64.b64encode(f"u:{token}".encode()).decode(),
        True,
    ),
    ("a non-ASCII token", lambda token: "Bearer tökén-ünïcode", True),
    ("an unpaired surrogate as the token", lambda token: "Bearer \ud800", True),
    # Two Authorization headers: API Gateway joins their values with a comma.
    ("the valid token twice (a duplicated header)", lambda token: f"Bearer {token},Bearer {token}", True),
    ("a wrong and the valid token (a duplicated header)", lambda token: f"Bearer wrong,Bearer {token}", True),
]

UNAUTHENTICATED: list[Attack] = [
    # static tokens: Directus, Clay, Clay → Loops
    *[
        Attack(
            f"{route}: {what}",
            lambda r=route, v=value: request(r, headers={"authorization": v(token_of(r))}),
            secret_read=read,
        )
        for what, value, read in TOKENS
        for route in BEARER_ROUTES
    ],
    *[
        Attack(
            f"{route}: the token in another header",
            lambda r=route: request(r, headers={"authorization": None, "x-api-key": token_of(r)}),
            secret_read=False,
        )
        for route in BEARER_ROUTES
    ],
    # The relay's signature (t=<unix>,v1=<hex HMAC-SHA256 of "{t}.{body}">): the Clay callback with signing keys
    Attack("clay: a bit flipped in the HMAC signature", v1_changed(lambda d: flip_bit(d, 10))),
    Attack("clay: the HMAC signature's last hex digit changed", hmac_changed(lambda s: flip_bit(s, -1))),
    Attack("clay: the HMAC signature truncated by one digit", hmac_changed(lambda s: s[:-1])),
    Attack("clay: half of the HMAC signature", v1_changed(lambda d: d[:32])),
    Attack(
        "clay: the HMAC scheme without a signature", hmac_changed(lambda s: s.split(",")[0] + ",v1="), secret_read=False
    ),
    Attack("clay: only a timestamp", hmac_changed(lambda s: s.split(",")[0]), secret_read=False),
    Attack(
        "clay: the v1 entry under another name", hmac_changed(lambda s: s.replace(",v1=", ",v2=")), secret_read=False
    ),
    Attack(
        "clay: the HMAC signature twice (a duplicated header)", hmac_changed(lambda s: f"{s},{s}"), secret_read=False
    ),
    Attack("clay: an unpaired surrogate in the HMAC signature", hmac_changed(lambda s: s[:-1] + "\udc80")),
    Attack("clay: an HMAC made with another key", lambda: signed_by_hmac(signature=lambda b: hmac_signature(b, "k"))),
    Attack(
        "clay: an HMAC of the same lead serialised differently",
        lambda: signed_by_hmac(signature=lambda b: hmac_signature(json.dumps(LEAD, indent=2).encode())),
    ),
    Attack(
        "clay: a bad HMAC signature beside a valid token",
        hmac_changed(lambda s: flip_bit(s, -3), authorization=f"Bearer {CLAY_TOKEN}"),
    ),
    # replays and the old, replayable form
    *[
        Attack(
            f"clay: signed {what}",
            lead_signed(lambda body, at, o=offset: hmac_signature(body, timestamp=at + o)),
            secret_read=False,
        )
        for what, offset in (
            ("301 s ago", -301),
            ("an hour ago", -3600),
            ("ten years ago", -10 * 365 * 86400),
            ("301 s ahead", 301),
            ("an hour ahead", 3600),
            ("ten years ahead", 10 * 365 * 86400),
        )
    ],
    Attack("clay: signed at t=0 (1970)", lead_signed(lambda b, at: hmac_signature(b, timestamp=0)), secret_read=False),
    *[
        Attack(
            f"clay: the signature's t {value!r}",
            lead_signed(lambda body, at, v=value: f"t={v},v1={hmac_digest(body, timestamp=at)}"),
            secret_read=False,
        )
        for value in ("", "yesterday", "1.7e9", "-1", "0x6745f0e0", "2026-11-23T12:00:00Z", "²³", "٣", "9" * 40)
    ],
    Attack(
        "clay: a fresh t beside the v1 of an old one (a replay made to look new)",
        lead_signed(lambda body, at: f"t={at},v1={hmac_digest(body, timestamp=at - 600)}"),
    ),
    Attack(
        "clay: t one second off what was signed",
        lead_signed(lambda body, at: f"t={at + 1},v1={hmac_digest(body, timestamp=at)}"),
    ),
    Attack(
        "clay: a stale t and a fresh one (two t entries)",
        lead_signed(lambda body, at: f"t={at - 600},t={at},v1={hmac_digest(body, timestamp=at)}"),
        secret_read=False,
    ),
    Attack(
        "clay: a fresh t with the HMAC of the body alone",
        lead_signed(lambda body, at: f"t={at},v1={hmac_digest(body)}"),
    ),
    Attack(
        "clay: the old body-only signature (replayable; not configured)",
        lambda: signed_by_hmac(signature=body_only_signature),
        secret_read=False,
    ),
    Attack(
        "clay: the old body-only signature as bare hex (not configured)",
        lambda: signed_by_hmac(signature=lambda body: hmac_digest(body)),
        secret_read=False,
    ),
    Attack(
        "clay: the old signature under another prefix",
        lambda: signed_by_hmac(signature=lambda body: "sha1=" + hmac_digest(body)),
        secret_read=False,
    ),
    # Standard Webhooks: Loops
    *[
        Attack(
            f"loops-webhook: bit {bit} of the signature flipped",
            lambda bit=bit: signature_changed(lambda s: flip_signature_bit(s, bit)),
        )
        for bit in (0, 7, 100, 255)
    ],
    Attack("loops-webhook: the signature truncated by one character", lambda: signature_changed(lambda s: s[:-1])),
    Attack("loops-webhook: half of the signature", lambda: signature_changed(lambda s: s[: len(s) // 2])),
    Attack("loops-webhook: the signature with a character appended", lambda: signature_changed(lambda s: s + "A")),
    Attack("loops-webhook: an empty v1 signature", lambda: signature_changed(lambda s: "v1,")),
    *[
        Attack(
            f"loops-webhook: the signature labelled {label!r}",
            lambda label=label: signature_changed(lambda s: label + s.removeprefix("v1,")),
        )
        for label in ("v2,", "V1,", "v1a,", "v0,", "v1 ,", "v1", ",", "")
    ],
    Attack(
        "loops-webhook: the signature in hex, not base64",
        lambda: signature_changed(lambda s: "v1," + base64.b64decode(s[3:]).hex()),
    ),
    Attack("loops-webhook: the signature twice (a duplicated header)", lambda: signature_changed(lambda s: f"{s},{s}")),
    Attack("loops-webhook: signed with another secret", lambda: webhook_signed_for(secret=UNRELATED_SECRET)),
    Attack("loops-webhook: signed for another webhook-id", lambda: webhook_signed_for(webhook_id=new_webhook_id())),
    Attack("loops-webhook: signed for another timestamp", lambda: webhook_signed_for(timestamp=now(-60))),
    Attack(
        "loops-webhook: the body changed after signing",
        lambda: request("loops-webhook", headers=webhook_headers(raw(contact_created({"id": "x"})))),
    ),
    Attack("loops-webhook: unsigned", lambda: request("loops-webhook", signed=False), secret_read=False),
    *[
        Attack(f"loops-webhook: {what} {header} header", lambda h=header, v=value: webhook(**{h: v}), secret_read=False)
        for header in ("webhook_id", "webhook_timestamp", "webhook_signature")
        for what, value in (("no", None), ("an empty", ""), ("a blank", "   "))
    ],
    Attack(
        "loops-webhook: webhook-id twice (a duplicated header)",
        lambda: (lambda e: with_headers(e, webhook_id=f"{e['headers']['webhook-id']},{new_webhook_id()}"))(
            request("loops-webhook")
        ),
    ),
    Attack(
        "loops-webhook: webhook-timestamp twice (a duplicated header)",
        lambda: (lambda e: with_headers(e, webhook_timestamp=f"{e['headers']['webhook-timestamp']},{now()}"))(
            request("loops-webhook")
        ),
        secret_read=False,
    ),
    Attack(
        "loops-webhook: an unpaired surrogate in webhook-id",
        lambda: webhook(webhook_id="msg_\udc80"),
        secret_read=False,
    ),
    Attack(
        "loops-webhook: an unpaired surrogate in webhook-signature",
        lambda: signature_changed(lambda s: s[:-2] + "\udc80="),
        secret_read=False,
    ),
    *[
        Attack(f"loops-webhook: signed {what}", lambda offset=offset: webhook_signed_at(now(offset)), secret_read=False)
        for what, offset in (
            ("330 s ago", -330),  # clear of the 300 s tolerance even on a slow machine
            ("an hour ago", -3600),
            ("ten years ago", -10 * 365 * 86400),
            ("330 s ahead", 330),
            ("an hour ahead", 3600),
            ("ten years ahead", 10 * 365 * 86400),
        )
    ],
    Attack("loops-webhook: signed at timestamp 0 (1970)", lambda: webhook_signed_at(0), secret_read=False),
    *[
        Attack(
            f"loops-webhook: webhook-timestamp {value!r}",
            lambda v=value: webhook(webhook_timestamp=v),
            secret_read=False,
        )
        for value in ("yesterday", "1.7e9", "-1", "0x6745f0e0", "2026-11-23T12:00:00Z", "²³", "9" * 40)
    ],
    # authentication comes before the body is looked at
    *[
        Attack(
            f"{route}: {what} without credentials",
            lambda r=route, d=data: request(r, d, headers={"authorization": None}, signed=False),
            secret_read=False,
        )
        for route in ROUTES
        for what, data in (
            ("not JSON", b"not json"),
            ("a body over the limit", b"{" + b" " * MAX_BODY + b"}"),
            ("invalid UTF-8", b'{"x": "\xff"}'),
            ("an empty body", b""),
        )
    ],
    *[
        Attack(
            f"{route}: a text/plain body without credentials",
            lambda r=route: request(r, headers={"authorization": None, "content-type": "text/plain"}, signed=False),
            secret_read=False,
        )
        for route in ROUTES
    ],
]

# A stored secret of the wrong format: (route, secret name, stored value). Fails closed.
BROKEN_SECRETS = [
    ("directus", "directus-tokens", "REPLACE_ME"),
    ("directus", "directus-tokens", "[not json"),
    ("directus", "directus-tokens", "[]"),
    ("directus", "directus-tokens", "[1, 2, {}]"),
    ("directus", "directus-tokens", " , ,\n"),
    ("clay", "clay-callback-tokens", '{"token": "local-clay-callback-token"}'),
    ("clay", "clay-callback-hmac-keys", "[not json"),
    ("loops-contacts", "clay-callback-tokens", "[not json"),
    ("loops-webhook", "loops-webhook-secret", "REPLACE_ME"),
    ("loops-webhook", "loops-webhook-secret", "whsec_"),
    ("loops-webhook", "loops-webhook-secret", "whsec_not*base64!"),
    ("loops-webhook", "loops-webhook-secret", "whsec_ bG9vcHM="),
    ("loops-webhook", "loops-webhook-secret", "whsec_bG9vcHM=\ud800"),
    ("loops-webhook", "loops-webhook-secret", '["whsec_bG9vcHM="]'),
]

INVALID = "invalid_payload"

# Authenticated requests with a body every route refuses: (what, body, base64-encoded, status, error).
BODIES: list[tuple[str, Callable[[str], bytes], bool, int, str]] = [
    # size
    ("a body one byte over MAX_BODY_BYTES", lambda r: padded(r, MAX_BODY + 1), False, 413, "payload_too_large"),
    ("a body one byte over MAX_BODY_BYTES (base64)", lambda r: padded(r, MAX_BODY + 1), True, 413, "payload_too_large"),
    ("a 5 MB body", lambda r: padded(r, 5 * 1024 * 1024), False, 413, "payload_too_large"),
    # not JSON, or no JSON object
    ("an empty body", lambda r: b"", False, 400, "malformed_request"),
    ("white space only", lambda r: b" \r\n\t ", False, 400, "malformed_request"),
    ("form data", lambda r: b"email=ada%40example.com&icp_score=90", False, 400, "malformed_request"),
    ("a custom body with unescaped quotes", lambda r: b'{"title": "a "quoted" word"}', False, 400, "malformed_request"),
    ("truncated JSON", lambda r: raw(VALID_BODY[r])[:-1], False, 400, "malformed_request"),
    ("a JSON array", lambda r: raw([VALID_BODY[r]]), False, 400, "malformed_request"),
    ("a JSON string", lambda r: b'"hello"', False, 400, "malformed_request"),
    ("JSON null", lambda r: b"null", False, 400, "malformed_request"),
    ("a JSON number", lambda r: b"42", False, 400, "malformed_request"),
    ("NaN", lambda r: appended(r, b'"x": NaN'), False, 400, "malformed_request"),
    ("-Infinity", lambda r: appended(r, b'"x": -Infinity'), False, 400, "malformed_request"),
    ("a number beyond a float's range", lambda r: appended(r, b'"x": 1e999'), False, 400, "malformed_request"),
    ("an integer of 5,000 digits", lambda r: appended(r, b'"x": ' + b"9" * 5000), False, 400, "malformed_request"),
    # no UTF-8 text (base64-encoded, as API Gateway passes binary bodies)
    ("a byte that is never UTF-8", lambda r: b'{"x": "\xff"}', True, 400, "malformed_request"),
    ("an overlong encoding", lambda r: b'{"x": "\xc0\xaf"}', True, 400, "malformed_request"),
    ("an encoded surrogate", lambda r: b'{"x": "\xed\xa0\x80"}', True, 400, "malformed_request"),
    ("a truncated multi-byte character", lambda r: b'{"x": "\xe2\x82"}', True, 400, "malformed_request"),
    ("UTF-16 with a byte order mark", lambda r: "\ufeff{}".encode("utf-16-le"), True, 400, "malformed_request"),
    ("an escaped unpaired surrogate", lambda r: appended(r, b'"x": "\\ud800"'), False, 400, "malformed_request"),
    ("an escaped unpaired surrogate in a key", lambda r: appended(r, b'"\\udc00": 1'), False, 400, "malformed_request"),
    # nesting
    ("arrays nested 100,000 deep", lambda r: b"[" * 100_000, False, 400, "malformed_request"),
    ("objects nested 50,000 deep", lambda r: b'{"a":' * 50_000, False, 400, "malformed_request"),
    (
        "a field nested 65 levels deep",
        lambda r: raw({**VALID_BODY[r], "x": nested(64)}),
        False,
        400,
        "malformed_request",
    ),
    (
        "a field nested 1,000 levels deep",
        lambda r: raw({**VALID_BODY[r], "x": nested(1000)}),
        False,
        400,
        "malformed_request",
    ),
]

CONTENT_TYPES = (
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/xml",
    "application/json,application/json",
    "json",
)
METHODS = ("GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT")


def other_path(event: dict, path: str, parameters: dict) -> dict:
    event.update(rawPath=path, pathParameters=parameters)
    event["requestContext"]["http"]["path"] = path
    return event


BAD_REQUESTS: list[Attack] = [
    *[
        Attack(f"{route}: {what}", lambda r=route, b=body, b64=b64: request(r, b(r), base64_encoded=b64), status, error)
        for what, body, b64, status, error in BODIES
        for route in ROUTES
    ],
    # invalid UTF-8 in a body API Gateway did not base64-encode (the bearer routes: a Loops signature
    # could not cover bytes that API Gateway cannot deliver)
    *[
        Attack(f"{route}: {what} (not base64)", lambda r=route, b=body: request(r, b(r)), status, error)
        for what, body, b64, status, error in BODIES
        if b64 and status == 400
        for route in BEARER_ROUTES
    ],
    *[
        Attack(
            f"{route}: invalid base64",
            lambda r=route: with_base64_body(request(r), "{{{not base64"),
            400,
            "malformed_request",
        )
        for route in ROUTES
    ],
    *[
        Attack(
            f"{route}: Content-Type {content_type}",
            lambda r=route, ct=content_type: request(r, headers={"content-type": ct}),
            415,
            "unsupported_media_type",
        )
        for content_type in CONTENT_TYPES
        for route in ROUTES
    ],
    *[
        Attack(
            f"{route}: method {method}",
            lambda r=route, m=method: request(r, method=m),
            405,
            "method_not_allowed",
            secret_read=False,
        )
        for method in METHODS
        for route in ROUTES
    ],
    *[
        Attack(
            f"{route}: method GET without credentials",
            lambda r=route: request(r, method="GET", headers={"authorization": None}, signed=False),
            405,
            "method_not_allowed",
            secret_read=False,
        )
        for route in ROUTES
    ],
    Attack(
        "directus: a source that is not configured",
        lambda: other_path(request("directus"), "/directus/nope", {"source": "nope"}),
        404,
        "not_found",
        secret_read=False,
    ),
    Attack(
        "loops: a route that does not exist",
        lambda: other_path(request("loops-contacts"), "/loops/nope", {"route": "nope"}),
        404,
        "not_found",
        secret_read=False,
    ),
    # route-specific bodies
    Attack(
        "directus: a row bigger than Clay accepts",
        lambda: request("directus", {**DIRECTUS_EVENT, "payload": {"first_name": "a" * 150_000}}),
        413,
        "payload_too_large",
    ),
    Attack(
        "directus: an escaped unpaired surrogate in a mapped field",
        lambda: request("directus", {**DIRECTUS_EVENT, "payload": {"email": "ada\ud800@example.com"}}),
        400,
        "malformed_request",
    ),
    Attack(
        "directus: an escaped unpaired surrogate as the item key",
        lambda: request("directus", {**DIRECTUS_EVENT, "key": "\udfff"}),
        400,
        "malformed_request",
    ),
    Attack(
        "directus: a mapped field nested 300 levels deep",
        lambda: request("directus", {**DIRECTUS_EVENT, "payload": {"first_name": nested(300)}}),
        400,
        "malformed_request",
    ),
    Attack(
        "directus: a key that is an object",
        lambda: request("directus", {**DIRECTUS_EVENT, "key": {"$gt": 0}}),
        422,
        "invalid_payload",
    ),
    Attack(
        "clay: a 100 KB field",
        lambda: request("clay", {**LEAD, "personalized_opener": "a" * 100_000}),
        422,
        "invalid_payload",
    ),
    Attack(
        "clay: an employee count of 400 digits",
        lambda: request("clay", {**LEAD, "employee_count": "9" * 400}),
        422,
        "invalid_payload",
    ),
    Attack(
        "clay: an employee count of 400 digits as a number",
        lambda: request("clay", {**LEAD, "employee_count": 10**400}),
        422,
        "invalid_payload",
    ),
    Attack(
        "clay: an ICP score of 400 digits",
        lambda: request("clay", {**LEAD, "icp_score": 10**400}),
        422,
        "invalid_payload",
    ),
    Attack(
        "clay: an email that is an object",
        lambda: request("clay", {**LEAD, "email": {"$ne": None}}),
        422,
        "invalid_payload",
    ),
    Attack(
        "loops-contacts: a 100 KB value",
        lambda: request("loops-contacts", {**LOOPS_CONTACT, "note": "a" * 100_000}),
        422,
        "invalid_payload",
    ),
    Attack(
        "loops-contacts: an email that is a list",
        lambda: request("loops-contacts", {"email": ["a@example.com"]}),
        422,
        "invalid_payload",
    ),
    # values read the wrong way (issue 20, finding 8)
    *[
        Attack(f"clay: an ICP score of {what}", lambda v=value: request("clay", {**LEAD, "icp_score": v}), 422, INVALID)
        for what, value in (
            ("fullwidth digits", "\uff19\uff10"),
            ("Arabic-Indic digits", "\u0669\u0660"),
            ("stray separators 1,0,0", "1,0,0"),
            ("spaced digits", " 9 0 "),
        )
    ],
    Attack(
        "clay: an employee count of 1e308", lambda: request("clay", {**LEAD, "employee_count": 1e308}), 422, INVALID
    ),
    *[
        Attack(
            f"{route}: an email with {what}",
            lambda r=route, b=body, e=email: request(r, {**b, "email": e}),
            422,
            INVALID,
        )
        for route, body in (("clay", LEAD), ("loops-contacts", LOOPS_CONTACT), ("loops-events", LOOPS_EVENT))
        for what, email in (
            ("a NUL", "alan\x00@example.com"),
            ("a zero-width space", "alan\u200b@example.com"),
            ("an RTL override", "alan@exa\u202emple.com"),
        )
    ],
    *[
        Attack(
            f"directus: the event {event!r}",
            lambda e=event: request("directus", {**DIRECTUS_EVENT, "event": e}),
            422,
            INVALID,
        )
        for event in ("create", "auth.login.create", "directus_users.items.create", "users.create")
    ],
    *[
        Attack(f"{route}: {what}", lambda r=route, x=extra: request(r, {**VALID_BODY[r], **x}), 422, INVALID)
        for route in ("loops-contacts", "loops-events")
        for what, extra in (
            ("a 501-character string in an array", {"tags": ["x" * 501]}),
            ("a key of 600 characters", {"k" * 600: "v"}),
            ("a nested object", {"company": {"name": "Acme"}}),
            ("an email that is no address", {"email": "alan@example"}),
            ("499 characters and an emoji (501 to Loops)", {"notes": "x" * 499 + "\U0001f600"}),
            ("a __proto__ key", {"__proto__": {"admin": True}}),
            ("a constructor key", {"constructor": {"prototype": {"admin": True}}}),
            ("a field nested 64 levels deep (parsed, then refused as no Loops property)", {"x": nested(63)}),
        )
    ],
    *[
        Attack(
            f"{route}: a compact body of exactly MAX_BODY_BYTES (its job would be over SQS's 256 KiB)",
            lambda r=route: request(r, compact_body(r, MAX_BODY)),
            413,
            "payload_too_large",
        )
        for route in ("loops-contacts", "loops-events")
    ],
    Attack(
        "loops-events: event properties nested 300 levels deep",
        lambda: request("loops-events", {**LOOPS_EVENT, "eventProperties": nested_objects(300)}),
        400,
        "malformed_request",
    ),
    Attack(
        "loops-webhook: a contact field nested 300 levels deep",
        lambda: request("loops-webhook", contact_created({"id": "c1", "email": nested(300)})),
        400,
        "malformed_request",
    ),
]


@pytest.mark.parametrize("attack", UNAUTHENTICATED, ids=lambda attack: attack.name)
def test_an_unauthenticated_request_is_401_and_costs_no_aws_call(relay, boto_calls, attack):
    assert_rejected(relay(attack.build()), attack.status, attack.error)
    assert_aws_calls(boto_calls, secret_read=attack.secret_read)


@pytest.mark.parametrize("attack", BAD_REQUESTS, ids=lambda attack: attack.name)
def test_a_bad_request_is_answered_with_its_4xx_and_nothing_is_queued(relay, boto_calls, attack):
    assert_rejected(relay(attack.build()), attack.status, attack.error)
    assert_aws_calls(boto_calls, secret_read=attack.secret_read)


@pytest.mark.parametrize(("route", "secret", "value"), BROKEN_SECRETS, ids=lambda value: repr(value)[1:-1])
def test_a_stored_secret_of_the_wrong_format_fails_closed(relay, boto_calls, stored, route, secret, value):
    stored(secret, value)
    event = signed_by_hmac() if secret == "clay-callback-hmac-keys" else request(route)
    assert_rejected(relay(event), 401, "unauthorized")
    assert_aws_calls(boto_calls, secret_read=True)


def test_a_missing_tokens_secret_fails_closed(relay, boto_calls, stored):
    stored("directus-tokens", None)
    assert_rejected(relay(request("directus")), 401, "unauthorized")
    assert_aws_calls(boto_calls, secret_read=True)


# --- what must still pass ------------------------------------------------------------------------------
def title_case(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))


VALID: list[tuple[str, Callable[[], dict]]] = [
    *[
        (f"{route}: {what}", lambda r=route, b=build: b(r))
        for what, build in (
            ("as its sender sends it", lambda r: request(r)),
            ("header names in Title-Case", lambda r: recased(request(r), title_case)),
            ("header names in capitals", lambda r: recased(request(r), str.upper)),
            (
                "Content-Type with a charset, in capitals",
                lambda r: request(r, headers={"Content-Type": "Application/JSON; charset=UTF-8"}),
            ),
            ("a +json Content-Type", lambda r: request(r, headers={"content-type": "application/vnd.api+json"})),
            ("no Content-Type", lambda r: request(r, headers={"content-type": None})),
            ("a base64-encoded body", lambda r: request(r, base64_encoded=True)),
            ("a body of exactly MAX_BODY_BYTES", lambda r: request(r, padded(r, MAX_BODY))),
            ("4,000 extra fields (240 KB)", lambda r: request(r, many_fields(r))),
            ("an escaped surrogate pair (an emoji)", lambda r: request(r, appended(r, b'"x": "\\ud83d\\ude00"'))),
        )
        for route in ROUTES
    ],
    # Loops' properties are flat (see BAD_REQUESTS): the depth limit is tried on the other routes.
    *[
        (
            f"{route}: a field nested 64 levels deep (the limit)",
            lambda r=route: request(r, {**VALID_BODY[r], "x": nested(63)}),
        )
        for route in ("directus", "clay", "loops-webhook")
    ],
    *[
        (f"{route}: {what}", lambda r=route, v=value: request(r, headers={"authorization": v(token_of(r))}))
        for what, value in (
            ("the scheme in lower case", lambda token: f"bearer {token}"),
            ("the scheme in capitals", lambda token: f"BEARER {token}"),
            ("the bare token", lambda token: token),
            ("the token among spaces", lambda token: f"  Bearer   {token}  "),
        )
        for route in BEARER_ROUTES
    ],
    ("clay: an HMAC signature instead of a token", signed_by_hmac),
    ("clay: the HMAC digest in capitals", v1_changed(str.upper)),
    ("clay: the HMAC header in Title-Case", lambda: recased(signed_by_hmac(), title_case)),
    ("clay: signed 290 s ago", lead_signed(lambda body, at: hmac_signature(body, timestamp=at - 290))),
    ("clay: signed 290 s ahead", lead_signed(lambda body, at: hmac_signature(body, timestamp=at + 290))),
    (
        "clay: a v1 of a retired key before the valid one (a rotation)",
        lead_signed(lambda b, at: f"t={at},v1={hmac_digest(b, 'retired', at)},v1={hmac_digest(b, timestamp=at)}"),
    ),
    (
        "clay: the v1 entry before t, spaces after the commas",
        lead_signed(lambda body, at: f"v1={hmac_digest(body, timestamp=at)}, t={at}"),
    ),
    (
        "clay: an entry of a future version beside v1",
        lead_signed(lambda body, at: f"t={at},v2=abc,v1={hmac_digest(body, timestamp=at)}"),
    ),
    (
        "loops-webhook: a valid signature after invalid ones",
        lambda: signature_changed(lambda s: f"v1,{base64.b64encode(b'x' * 32).decode()} v2,abc {s}"),
    ),
    ("loops-webhook: signed 290 s ago", lambda: webhook_signed_at(now(-290))),
    ("loops-webhook: signed 290 s ahead", lambda: webhook_signed_at(now(290))),
    (
        "loops-webhook: a non-ASCII webhook-id",
        lambda: request("loops-webhook", headers=webhook_headers(raw(contact_created()), webhook_id="msg_ünïcödé")),
    ),
    (
        "loops-webhook: a contact id that is an object",
        lambda: request("loops-webhook", contact_created({"id": {"a": 1}, "email": "ada@example.com"})),
    ),
]


@pytest.mark.parametrize("build", [build for _, build in VALID], ids=[name for name, _ in VALID])
def test_a_valid_request_still_passes(relay, build):
    assert_accepted(relay(build()))


@pytest.mark.parametrize(
    "value",
    [f"{UNRELATED_SECRET},{SECRET}", f"whsec_not*base64! {SECRET}", SECRET.removeprefix("whsec_"), f" {SECRET}\n"],
    ids=["rotation", "a malformed secret beside a good one", "without the whsec_ prefix", "surrounding white space"],
)
def test_a_webhook_passes_with_any_usable_form_of_its_stored_secret(relay, stored, value):
    stored("loops-webhook-secret", value)
    assert_accepted(relay(request("loops-webhook")))


# --- replays --------------------------------------------------------------------------------------------
@pytest.fixture
def queue(stack) -> str:
    """The delivery queue, emptied of what earlier tests queued."""
    url, sqs = stack.provisioned.ref("DeliveryQueue"), boto3.client("sqs")
    while messages := receive(url):  # (PurgeQueue may run once a minute)
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        sqs.delete_message_batch(QueueUrl=url, Entries=entries)
    return url


@pytest.fixture
def clay_pool(stored, http_stub):
    stored("clay-webhooks-leads", json.dumps([{"url": http_stub.url("/clay/leads"), "token": "clay-token-1"}]))
    return http_stub


def deliver_queued(queue: str) -> None:
    records = [sqs_record(message, queue) for message in receive(queue)]
    assert records
    assert run_worker(records) == set()


def test_a_replayed_webhook_is_a_duplicate_and_reaches_clay_once(relay, queue, clay_pool, boto_calls):
    sent = request("loops-webhook")
    first = assert_accepted(relay(json.loads(json.dumps(sent))))
    assert first["duplicate"] is False
    deliver_queued(queue)
    replay = assert_accepted(relay(json.loads(json.dumps(sent))))
    assert (replay["duplicate"], replay["event_id"]) == (True, first["event_id"])
    assert ("sqs", "SendMessageBatch") not in boto_calls
    assert receive(queue) == []
    assert len(clay_pool.posted_to("/clay/leads")) == 1


def test_a_webhook_replayed_before_the_worker_ran_is_delivered_once(relay, queue, clay_pool):
    # A person the module's stack has not sent yet (the same one would be skipped as already sent).
    sent = request(
        "loops-webhook", contact_created({**contact_created()["contact"], "email": "ada.replayed@example.com"})
    )
    for _ in range(3):
        assert_accepted(relay(json.loads(json.dumps(sent))))
    deliver_queued(queue)
    assert len(clay_pool.posted_to("/clay/leads")) == 1


@pytest.mark.parametrize(
    "change",
    [
        lambda h: {"webhook-timestamp": str(int(h["webhook-timestamp"]) + 1)},
        lambda h: {"webhook-timestamp": str(now())},
        lambda h: {"webhook-id": new_webhook_id()},
        lambda h: {"webhook-id": h["webhook-id"] + "x"},
        lambda h: {"webhook-id": h["webhook-id"].upper()},
    ],
    ids=["timestamp + 1 s", "a fresh timestamp", "a fresh webhook-id", "webhook-id with a suffix", "webhook-id upper"],
)
def test_a_replay_with_a_header_changed_to_look_new_is_401(relay, boto_calls, change):
    data = raw(contact_created())
    headers = webhook_headers(data, timestamp=now(-120))
    assert_rejected(relay(request("loops-webhook", data, headers={**headers, **change(headers)})), 401, "unauthorized")
    assert_aws_calls(boto_calls, secret_read=True)


@pytest.fixture
def tolerance(monkeypatch):
    """`tolerance(seconds)` sets LOOPS_WEBHOOK_TOLERANCE_SECONDS for the rest of the test."""

    def apply(seconds: int) -> None:
        monkeypatch.setenv("LOOPS_WEBHOOK_TOLERANCE_SECONDS", str(seconds))
        get_runtime().settings = Settings.from_environment()  # the same instance, with its caches

    yield apply
    monkeypatch.undo()
    get_runtime().settings = Settings.from_environment()


def test_a_webhook_replayed_after_the_tolerance_is_401(relay, tolerance, boto_calls):
    sent = webhook_signed_at(now(-200))
    assert_accepted(relay(json.loads(json.dumps(sent))))
    tolerance(120)  # as if it came back 80 s after the 5 minutes
    assert_rejected(relay(json.loads(json.dumps(sent))), 401, "unauthorized")
    assert_aws_calls(boto_calls, secret_read=False)


def test_a_signed_lead_replayed_after_the_tolerance_is_401(relay, boto_calls, monkeypatch):
    sent = signed_by_hmac(signature=lambda body: hmac_signature(body, timestamp=now(-200)))
    assert_accepted(relay(json.loads(json.dumps(sent))))
    monkeypatch.setattr(relay_signature, "TOLERANCE_SECONDS", 120)  # as if it came back 80 s after the 5 minutes
    assert_rejected(relay(json.loads(json.dumps(sent))), 401, "unauthorized")
    assert_aws_calls(boto_calls, secret_read=False)


@pytest.fixture
def body_only_accepted():
    """relay.json's clay_callback.hmac_accept_body_only turned on (the migration aid) for one test."""
    runtime = get_runtime()
    config = runtime.config
    callback = config.clay_callback.model_copy(update={"hmac_accept_body_only": True})
    runtime._config = config.model_copy(update={"clay_callback": callback})
    yield
    runtime._config = config


def test_while_the_migration_aid_is_on_the_old_form_passes_and_the_new_form_is_still_checked(
    relay, boto_calls, body_only_accepted
):
    assert_accepted(relay(signed_by_hmac(signature=body_only_signature)))
    assert_accepted(relay(signed_by_hmac(signature=lambda body: hmac_digest(body))))  # bare hex
    assert_accepted(relay(signed_by_hmac()))
    assert_rejected(relay(signed_by_hmac(signature=lambda b: body_only_signature(b, "k"))), 401, "unauthorized")
    stale = signed_by_hmac(signature=lambda body: hmac_signature(body, timestamp=now(-301)))
    assert_rejected(relay(stale), 401, "unauthorized")
    assert_aws_calls(boto_calls, secret_read=False)
