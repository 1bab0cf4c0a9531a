"""Properties of how the relay authenticates and parses requests, checked by Hypothesis:

- Standard Webhooks (Loops): a message the `standardwebhooks` reference implementation signed
  always passes, among any other signatures and secrets; any change to its body, webhook-id,
  timestamp or signature is refused, and the relay never accepts what the reference refuses.
- The static bearer token (Directus, Clay, Clay → Loops) passes exactly when it is one of the
  active tokens; the relay's signature (Clay: `t=<unix>,v1=<hex>`) exactly when a v1 is the
  HMAC-SHA256 of `{t}.{raw body}` with an active key and t is fresh; the old body-only form only
  when configured, and then exactly when it is the HMAC of those bytes.
- Any JSON (and any bytes) a sender can send is answered 202 or with the 4xx of the relay's own
  validation errors, never a 5xx, and whatever is accepted is queued as a job the worker can read.

Through the functions' handlers where it matters (moto, one stack for the module), else the
functions themselves. Example counts are kept moderate: the whole file runs in well under 30 s.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import time

import boto3
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from clay_relay.auth import presented_token, token_matches
from clay_relay.errors import Unauthorized
from clay_relay.jobs import parse_job
from clay_relay.relay_signature import body_only_matches
from clay_relay.relay_signature import verify as verify_relay_signature
from clay_relay.standard_webhooks import verify
from tests.contract.attack_requests import (
    DIRECTUS_EVENT,
    DIRECTUS_TOKEN,
    HMAC_KEY,
    ROUTES,
    VALID_BODY,
    assert_accepted,
    assert_aws_calls,
    assert_rejected,
    body_only_signature,
    hmac_digest,
    hmac_signature,
    nested,
    relay_stack,
    request,
    signed_by_hmac,
)
from tests.loops_requests import CLAY_TOKEN, SECRET, contact_created, reference_headers, whsec
from tests.queues import receive

FAST = settings(max_examples=200, deadline=None, database=None)
# Through a handler: a few milliseconds an example.
THROUGH_HANDLERS = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
PER_ROUTE = settings(THROUGH_HANDLERS, max_examples=40)
TOLERANCE = 300


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with relay_stack(tmp_path_factory.mktemp("properties")) as stack:
        yield stack


# --- strategies -----------------------------------------------------------------------------------------
ANY_CHARACTER = st.characters(exclude_categories=())  # unpaired surrogates included
TEXT_CHARACTER = st.characters(exclude_categories=("Cs",))
HEADER_CHARACTER = st.characters(exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp"))  # no white space at the ends
SIGNATURE_CHARACTER = st.characters(exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp"), exclude_characters=",")

keys = st.binary(min_size=1, max_size=64)
webhook_ids = st.text(HEADER_CHARACTER, min_size=1, max_size=40)
offsets = st.integers(min_value=-(TOLERANCE - 30), max_value=TOLERANCE - 30)  # clear of the edges for both clocks
bodies = st.text(TEXT_CHARACTER, max_size=512)
tokens = st.text(HEADER_CHARACTER, min_size=1, max_size=60)


def json_values(characters: st.SearchStrategy = ANY_CHARACTER, *, nan: bool = True) -> st.SearchStrategy:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(10**40), max_value=10**40)
        | st.floats(allow_nan=nan, allow_infinity=nan)
        | st.text(characters, max_size=30)
    )
    return st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(characters, max_size=12), children),
        max_leaves=12,
    )


def objects(
    fields: dict[str, st.SearchStrategy], values: st.SearchStrategy, key_characters: st.SearchStrategy = ANY_CHARACTER
) -> st.SearchStrategy:
    """Objects with any of `fields` (each either its plausible values or any JSON) and other keys."""
    plausible = {name: strategy | values for name, strategy in fields.items()}
    return st.builds(
        lambda known, extra: {**extra, **known},
        st.fixed_dictionaries({}, optional=plausible),
        st.dictionaries(st.text(key_characters, max_size=12), values, max_size=3),
    )


ANY_JSON = json_values()
numbers_as_clay_sends_them = (
    st.integers(-10, 200) | st.floats(-10, 200) | st.from_regex(r"\A ?-?[0-9,]{0,6}(\.[0-9]{1,3})?%? ?\Z")
)
BODY_SHAPES = {
    "directus": objects(
        {
            "event": st.sampled_from(
                ["leads.items.create", "leads.items.update", "leads.items.delete", "users.create"]
            ),
            "collection": st.sampled_from(["leads", "posts"]),
            "key": st.integers() | st.text(max_size=8),
            "keys": st.lists(st.integers() | st.text(max_size=8), max_size=5),
            "payload": st.dictionaries(
                st.sampled_from(["email", "first_name", "company", "website", "icp_score", "other"]), ANY_JSON
            ),
        },
        ANY_JSON,
    ),
    "clay": objects(
        {
            "email": st.emails() | st.text(max_size=20),
            "icp_score": numbers_as_clay_sends_them,
            "employee_count": numbers_as_clay_sends_them,
            "first_name": st.text(max_size=20),
            "directus_id": st.integers() | st.text(max_size=8),
            "lead_id": st.text(max_size=20),
        },
        ANY_JSON,
    ),
    "loops-webhook": objects(
        {
            "eventName": st.sampled_from(["contact.created", "contact.deleted", "email.opened", ""]),
            "eventTime": st.integers() | st.floats(),
            "webhookSchemaVersion": st.sampled_from(["1.0.0", "2.0.0"]),
            "contactIdentity": objects({"id": st.text(max_size=8), "email": st.emails()}, ANY_JSON),
            "contact": objects({"id": st.text(max_size=8), "email": st.emails()}, ANY_JSON),
        },
        ANY_JSON,
    ),
    "loops-contacts": objects(
        {
            "email": st.emails(),
            "userId": st.text(max_size=10),
            "mailingLists": st.dictionaries(st.text(max_size=8), st.booleans()),
        },
        ANY_JSON,
    ),
    "loops-events": objects(
        {
            "email": st.emails(),
            "eventName": st.text(max_size=20),
            "eventProperties": st.dictionaries(st.text(max_size=8), ANY_JSON),
        },
        ANY_JSON,
    ),
}


# Values that broke a receiver once (a 500): unpaired surrogates, deep nesting, NaN, huge numbers.
HOSTILE = (
    ANY_JSON
    | st.text(ANY_CHARACTER, min_size=1, max_size=8)
    | st.integers(50, 400).map(nested)
    | st.sampled_from([math.nan, math.inf, -math.inf, 10**400, "9" * 400, "\ud800", {"a": "\udfff"}])
)


def dict_paths(value: object, path: tuple = ()) -> list[tuple]:
    """The paths to every object in `value` (itself included)."""
    if not isinstance(value, dict):
        return []
    return [path] + [inner for key, child in value.items() for inner in dict_paths(child, (*path, key))]


@st.composite
def spoiled(draw, route: str) -> dict:
    """The route's valid body with one hostile value set somewhere in it: it gets past the first
    checks, so the value reaches what comes after them."""
    body = copy.deepcopy(VALID_BODY[route])
    node = body
    for key in draw(st.sampled_from(dict_paths(body))):
        node = node[key]
    node[draw(st.sampled_from(sorted(node)) | st.text(ANY_CHARACTER, max_size=8))] = draw(HOSTILE)
    return body


def to_bytes(value: object, ascii_only: bool) -> bytes:
    """JSON text as a sender might write it: escaped, or raw UTF-8 (where an unpaired surrogate makes
    bytes that are no UTF-8)."""
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def signed_message(key: bytes, webhook_id: str, timestamp: int, body: str) -> dict[str, str]:
    return reference_headers(whsec(key), body, webhook_id=webhook_id, timestamp=timestamp)


def reference_accepts(secret: str, headers: dict[str, str], body: bytes) -> bool:
    try:
        Webhook(secret).verify(body, headers, json_parse=False)
    except Exception:  # the reference library raises more than its own error for malformed headers
        return False
    return True


@st.composite
def changed_messages(draw, key: bytes, webhook_id: str, timestamp: int, body: str):
    """A signed message with one thing changed: (headers, body, whether the change is one of
    content, which the reference library must refuse too, or only of the signature's text)."""
    headers = signed_message(key, webhook_id, timestamp, body)
    part = draw(st.sampled_from(["body", "webhook-id", "webhook-timestamp", "signature bit", "signature key", "text"]))
    data = body.encode()
    if part == "body":
        other = draw(bodies.filter(lambda text: text != body))
        return headers, other.encode(), True
    if part == "webhook-id":
        headers["webhook-id"] = draw(webhook_ids.filter(lambda other: other != webhook_id))
        return headers, data, True
    if part == "webhook-timestamp":
        # still fresh, so that only the signature can refuse it (drawn as an offset: the clock moves)
        headers["webhook-timestamp"] = str(timestamp + draw(st.integers(-240, 240).filter(bool)))
        return headers, data, True
    digest = bytearray(base64.b64decode(headers["webhook-signature"][3:]))
    if part == "signature bit":
        bit = draw(st.integers(0, len(digest) * 8 - 1))
        digest[bit // 8] ^= 1 << (bit % 8)
        headers["webhook-signature"] = "v1," + base64.b64encode(bytes(digest)).decode()
        return headers, data, True
    if part == "signature key":
        other_key = draw(keys.filter(lambda other: other != key))
        headers["webhook-signature"] = signed_message(other_key, webhook_id, timestamp, body)["webhook-signature"]
        return headers, data, True
    signature = headers["webhook-signature"]
    edit = draw(st.sampled_from(["truncate", "append", "label", "replace"]))
    if edit == "truncate":
        headers["webhook-signature"] = signature[: draw(st.integers(3, len(signature) - 1))]
    elif edit == "append":
        headers["webhook-signature"] = signature + draw(st.text(HEADER_CHARACTER, min_size=1, max_size=4))
    elif edit == "label":
        label = draw(st.text(HEADER_CHARACTER, max_size=4).filter(lambda text: text != "v1"))
        headers["webhook-signature"] = f"{label},{signature[3:]}"
    else:
        headers["webhook-signature"] = draw(
            st.text(HEADER_CHARACTER, min_size=1, max_size=60).filter(lambda t: t != signature)
        )
    return headers, data, False


# --- Standard Webhooks -------------------------------------------------------------------------------------
@FAST
@given(
    key=keys,
    others=st.lists(keys, max_size=3),
    webhook_id=webhook_ids,
    offset=offsets,
    body=bodies,
    position=st.integers(0, 3),
    malformed=st.lists(st.sampled_from(["whsec_", "whsec_!!", "REPLACE_ME", "whsec_ab c"]), max_size=2),
)
def test_a_message_the_reference_library_signed_passes_among_any_other_signatures_and_secrets(
    key, others, webhook_id, offset, body, position, malformed
):
    now = time.time()
    timestamp = int(now) + offset
    signatures = [signed_message(k, webhook_id, timestamp, body)["webhook-signature"] for k in others]
    headers = signed_message(key, webhook_id, timestamp, body)
    signatures.insert(position % (len(signatures) + 1), headers["webhook-signature"])
    headers["webhook-signature"] = " ".join(signatures)
    secrets = [whsec(k) for k in others if k != key] + malformed
    secrets.insert(position % (len(secrets) + 1), whsec(key))
    assert verify(headers, body.encode(), tuple(secrets), tolerance_seconds=TOLERANCE, now=now) == webhook_id


@FAST
@given(key=keys, webhook_id=webhook_ids, offset=offsets, body=bodies, data=st.data())
def test_any_change_to_a_signed_message_is_refused_like_the_reference_library_refuses_it(
    key, webhook_id, offset, body, data
):
    timestamp = int(time.time()) + offset
    headers, sent, of_content = data.draw(changed_messages(key, webhook_id, timestamp, body))
    with pytest.raises(Unauthorized):
        verify(headers, sent, (whsec(key),), tolerance_seconds=TOLERANCE)
    if of_content:
        assert not reference_accepts(whsec(key), headers, sent)


@FAST
@given(
    key=keys,
    webhook_id=webhook_ids,
    offset=st.integers(-2 * TOLERANCE, 2 * TOLERANCE),
    body=bodies,
    id_header=st.none() | webhook_ids,
    timestamp_header=st.none() | st.from_regex(r"\A[0-9]{1,12}\Z") | st.text(HEADER_CHARACTER, max_size=12),
    entries=st.lists(
        st.tuples(st.sampled_from(["v1", "v2", "V1", ""]), st.none() | st.text(SIGNATURE_CHARACTER, max_size=44)),
        max_size=3,
    ),
    keep_valid=st.booleans(),
)
def test_the_relay_never_accepts_a_message_the_reference_library_refuses(
    key, webhook_id, offset, body, id_header, timestamp_header, entries, keep_valid
):
    """Headers assembled from pieces of a valid message and anything else (no white space around
    values, which HTTP trims; signature entries `<label>,<text>`, as senders write them, and the
    reference library needs)."""
    assume(abs(abs(offset) - TOLERANCE) > 5)  # both clocks agree away from the edges
    timestamp = int(time.time()) + offset
    valid = signed_message(key, webhook_id, timestamp, body)
    signatures = [f"{label},{text}" for label, text in entries if text is not None]
    if keep_valid:  # first: the reference library gives up at the first entry it cannot decode
        signatures.insert(0, valid["webhook-signature"])
    headers = {
        "webhook-id": valid["webhook-id"] if id_header is None else id_header,
        "webhook-timestamp": valid["webhook-timestamp"] if timestamp_header is None else timestamp_header,
        "webhook-signature": " ".join(signatures),
    }
    try:
        verify(headers, body.encode(), (whsec(key),), tolerance_seconds=TOLERANCE)
    except Unauthorized:
        return
    assert reference_accepts(whsec(key), headers, body.encode())


# --- static tokens and HMAC signatures ----------------------------------------------------------------------
@FAST
@given(active=st.lists(st.text(ANY_CHARACTER, max_size=20), min_size=1, max_size=4), presented=st.text(ANY_CHARACTER))
def test_a_token_passes_exactly_when_it_is_one_of_the_active_tokens(active, presented):
    assert token_matches(presented, tuple(active)) == (presented != "" and presented in active)


@FAST
@given(
    active=st.lists(tokens, min_size=1, max_size=4),
    index=st.integers(0, 3),
    position=st.integers(0, 59),
    data=st.data(),
)
def test_any_one_character_change_to_an_active_token_is_refused(active, index, position, data):
    token = active[index % len(active)]
    position %= len(token)
    replacement = data.draw(st.characters(exclude_categories=()).filter(lambda c: c != token[position]))
    changed = data.draw(
        st.sampled_from([token[:position] + replacement + token[position + 1 :], token[:position], token + replacement])
    )
    assume(changed not in active)
    assert not token_matches(changed, tuple(active))


@FAST
@given(token=tokens, scheme=st.sampled_from(["Bearer", "bearer", "BEARER", "bEaReR"]), spaces=st.integers(1, 3))
def test_the_token_is_read_from_the_header_with_or_without_the_bearer_scheme(token, scheme, spaces):
    assert presented_token({"authorization": f"{scheme}{' ' * spaces}{token}"}) == token
    assert presented_token({"x-api-key": token}, "X-Api-Key") == token


def passes(header: str, body: bytes, keys_: list[str], *, at: float, body_only: bool = False) -> bool:
    try:
        verify_relay_signature(header, body, lambda: tuple(keys_), accept_body_only=body_only, now=at)
    except Unauthorized:
        return False
    return True


@FAST
@given(
    keys_=st.lists(tokens, min_size=1, max_size=3),
    index=st.integers(0, 2),
    body=st.binary(max_size=1024),
    offset=offsets,
    others=st.lists(st.sampled_from(["v1=00", "v0=abc", "v2=", "x"]), max_size=3),
    position=st.integers(0, 3),
    capitals=st.booleans(),
)
def test_a_fresh_signature_of_the_raw_body_with_any_active_key_passes_among_other_entries(
    keys_, index, body, offset, others, position, capitals
):
    at = time.time()
    timestamp = int(at) + offset
    digest = hmac_digest(body, keys_[index % len(keys_)], timestamp)
    entries = [*others]
    entries.insert(position % (len(entries) + 1), f"v1={digest.upper() if capitals else digest}")
    entries.insert((position + 1) % (len(entries) + 1), f"t={timestamp}")
    assert passes(",".join(entries), body, keys_, at=at)


@FAST
@given(key=tokens, body=st.binary(max_size=1024), offset=offsets, data=st.data())
def test_any_change_to_the_body_its_timestamp_or_its_hmac_is_refused(key, body, offset, data):
    at = time.time()
    timestamp = int(at) + offset
    digest = hmac_digest(body, key, timestamp)
    change = data.draw(st.sampled_from(["body", "timestamp", "digit", "truncate", "extend", "key", "stale"]))
    if change == "body":
        body = data.draw(st.binary(max_size=1024).filter(lambda other: other != body))
    elif change == "timestamp":  # still fresh: only the signature can refuse it
        timestamp += data.draw(st.integers(-30, 30).filter(bool))
    elif change == "digit":
        position = data.draw(st.integers(0, len(digest) - 1))
        digit = data.draw(st.sampled_from("0123456789abcdef").filter(lambda d: d != digest[position]))
        digest = digest[:position] + digit + digest[position + 1 :]
    elif change == "truncate":
        digest = digest[: data.draw(st.integers(0, len(digest) - 1))]
    elif change == "extend":
        digest += data.draw(st.text("0123456789abcdef", min_size=1, max_size=4))
    elif change == "key":
        digest = hmac_digest(body, data.draw(tokens.filter(lambda other: other != key)), timestamp)
    else:  # signed long enough ago or ahead, and replayed: refused however valid its HMAC
        timestamp = int(at) + data.draw(st.sampled_from([-1, 1])) * data.draw(st.integers(TOLERANCE + 1, 10**9))
        digest = hmac_digest(body, key, timestamp)
    assert not passes(f"t={timestamp},v1={digest}", body, [key], at=at)


@FAST
@given(key=tokens, body=st.binary(max_size=1024), body_only=st.booleans(), form=st.integers(0, 2))
def test_the_old_body_only_form_passes_only_when_configured(key, body, body_only, form):
    header = [body_only_signature(body, key), body_only_signature(body, key).upper(), hmac_digest(body, key)][form]
    assert passes(header, body, [key], at=time.time(), body_only=body_only) is body_only


@FAST
@given(
    keys_=st.lists(tokens, min_size=1, max_size=3),
    index=st.integers(0, 2),
    body=st.binary(max_size=1024),
    form=st.integers(0, 2),
)
def test_the_hmac_of_the_raw_body_with_any_active_key_passes_the_old_form(keys_, index, body, form):
    digest = body_only_signature(body, keys_[index % len(keys_)])
    presented = [digest, digest.upper(), digest.removeprefix("sha256=")][form]
    assert body_only_matches(body, presented, tuple(keys_))


@FAST
@given(key=tokens, body=st.binary(max_size=1024), data=st.data())
def test_any_change_to_the_body_or_its_old_form_hmac_is_refused(key, body, data):
    digest = body_only_signature(body, key)
    change = data.draw(st.sampled_from(["body", "digit", "truncate", "extend", "key"]))
    if change == "body":
        body = data.draw(st.binary(max_size=1024).filter(lambda other: other != body))
    elif change == "digit":
        position = data.draw(st.integers(7, len(digest) - 1))
        digit = data.draw(st.sampled_from("0123456789abcdef").filter(lambda d: d != digest[position]))
        digest = digest[:position] + digit + digest[position + 1 :]
    elif change == "truncate":
        digest = digest[: data.draw(st.integers(0, len(digest) - 1))]
    elif change == "extend":
        digest += data.draw(st.text("0123456789abcdef", min_size=1, max_size=4))
    else:
        digest = body_only_signature(body, data.draw(tokens.filter(lambda other: other != key)))
    assert not body_only_matches(body, digest, (key,))


# --- through the handlers --------------------------------------------------------------------------------
def drain_jobs(queue_url: str) -> list:
    """Every job queued since the last drain, as the worker reads it; the queue is left empty."""
    sqs, jobs = boto3.client("sqs"), []
    while messages := receive(queue_url):
        jobs += [parse_job(message["Body"]) for message in messages]
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)
    return jobs


ERROR_OF_STATUS = {
    400: "malformed_request",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_payload",
}


def assert_answered_without_a_5xx(stack, answer) -> None:
    status = answer[0]
    if status == 202:
        assert_accepted(answer)
        drain_jobs(stack.provisioned.ref("DeliveryQueue"))  # each parses as a job
    else:
        assert status in ERROR_OF_STATUS, answer
        assert_rejected(answer, status, ERROR_OF_STATUS[status])
        assert_aws_calls(stack.aws_calls, secret_read=True)


@pytest.mark.parametrize("route", ROUTES)
@PER_ROUTE
@given(data=st.data(), ascii_only=st.booleans(), base64_encoded=st.booleans())
def test_any_json_a_sender_can_send_is_answered_202_or_with_a_4xx(stack, route, data, ascii_only, base64_encoded):
    body = to_bytes(data.draw(spoiled(route) | BODY_SHAPES[route] | ANY_JSON, label="body"), ascii_only)
    base64_encoded |= not is_utf8(body)  # API Gateway passes bytes that are no text base64-encoded
    send = stack.sender()
    assert_answered_without_a_5xx(stack, send(request(route, body, base64_encoded=base64_encoded)))


@THROUGH_HANDLERS
@given(
    route=st.sampled_from(ROUTES),
    body=st.binary(max_size=256)
    | st.text(ANY_CHARACTER, max_size=64).map(lambda t: t.encode("utf-8", "surrogatepass")),
)
def test_any_bytes_a_sender_can_send_are_answered_202_or_with_a_4xx(stack, route, body):
    send = stack.sender()
    assert_answered_without_a_5xx(stack, send(request(route, body, base64_encoded=True)))


@THROUGH_HANDLERS
@given(
    # A contact Loops can send: text without unpaired surrogates (the relay answers 400 to those).
    contact=objects(
        {"id": st.text(TEXT_CHARACTER, max_size=8), "email": st.emails()},
        json_values(TEXT_CHARACTER, nan=False),
        TEXT_CHARACTER,
    ),
    data=st.data(),
)
def test_a_loops_webhook_the_reference_library_signed_passes_and_any_change_is_401(stack, contact, data):
    send = stack.sender()
    body = json.dumps(contact_created(contact), ensure_ascii=data.draw(st.booleans()))
    assert_accepted(send(request("loops-webhook", body)))
    headers, sent, _ = data.draw(changed_messages(base64.b64decode(SECRET[6:]), "msg_property", int(time.time()), body))
    assert_rejected(send(request("loops-webhook", sent, headers=headers)), 401, "unauthorized")
    assert_aws_calls(stack.aws_calls, secret_read=True)


@THROUGH_HANDLERS
@given(
    route=st.sampled_from(["directus", "clay", "loops-contacts", "loops-events"]),
    presented=st.text(ANY_CHARACTER, max_size=60),
)
def test_any_token_but_an_active_one_is_401_without_a_dynamodb_or_sqs_call(stack, route, presented):
    assume(presented.strip() not in (DIRECTUS_TOKEN, CLAY_TOKEN, "clay-callback-token-next"))
    send = stack.sender()
    assert_rejected(send(request(route, headers={"authorization": f"Bearer {presented}"})), 401, "unauthorized")
    assert_aws_calls(stack.aws_calls, secret_read=True)


@THROUGH_HANDLERS
@given(lead=BODY_SHAPES["clay"], key=st.sampled_from([HMAC_KEY, "another-key"]), change=st.booleans())
def test_a_lead_signed_with_the_hmac_key_is_never_401_and_a_changed_one_always_is(stack, lead, key, change):
    body = to_bytes(lead, ascii_only=True)
    sent = body + b" " if change else body
    event = signed_by_hmac(sent, signature=lambda _: hmac_signature(body, key))
    answer = stack.sender()(event)
    if change or key != HMAC_KEY:
        assert_rejected(answer, 401, "unauthorized")
        assert_aws_calls(stack.aws_calls, secret_read=True)
    else:
        assert answer[0] != 401
        assert_answered_without_a_5xx(stack, answer)


def test_the_handler_properties_see_a_valid_request_accepted(stack):
    """The properties above would pass vacuously if nothing were ever accepted."""
    queue = stack.provisioned.ref("DeliveryQueue")
    drain_jobs(queue)
    send = stack.sender()
    for route in ROUTES:
        assert_accepted(send(request(route)))
    assert_accepted(send(request("directus", {**DIRECTUS_EVENT, "key": 2})))
    assert len(drain_jobs(queue)) == len(ROUTES) + 1
