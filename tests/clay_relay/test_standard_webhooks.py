"""Standard Webhooks verification (the scheme Loops signs with), checked against the reference
implementation (`standardwebhooks` on PyPI) both ways and by properties: a valid message always
passes; any change to its body, id, timestamp or signature is rejected. Anything missing or wrong
is Unauthorized. The clock is passed in (`now=`), except where the reference library reads it."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from clay_relay.errors import Unauthorized
from clay_relay.standard_webhooks import sign, signing_key, verify
from tests.loops_requests import OTHER_SECRET, SECRET, UNRELATED_SECRET, reference_headers, whsec

T = 1_734_425_918
WEBHOOK_ID = "msg_2p6ZkD1yTestMessage0001"
BODY = b'{"eventName":"contact.created","eventTime":1734425918,"contact":{"email":"grace.hopper@example.com"}}'
HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")

PROPERTIES = settings(max_examples=150, deadline=None, database=None)


def headers_for(
    secret: str = SECRET, body: bytes = BODY, webhook_id: str = WEBHOOK_ID, timestamp: int | str = T
) -> dict[str, str]:
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, webhook_id, int(timestamp), body),
    }


def check(headers, body: bytes = BODY, secrets=(SECRET,), *, now: float = T, tolerance: int = 300) -> str:
    return verify(headers, body, secrets, tolerance_seconds=tolerance, now=now)


def refusal(headers, body: bytes = BODY, secrets=(SECRET,), **options) -> str:
    """The reason an Unauthorized gives (and fails the test when the message passes)."""
    with pytest.raises(Unauthorized) as refused:
        check(headers, body, secrets, **options)
    return refused.value.message


def signature_bytes(header: str) -> bytes:
    version, _, signature = header.partition(",")
    assert version == "v1"
    return base64.b64decode(signature)


class SecretsLookup:
    """A `secrets` callable that notes every time it is called."""

    def __init__(self, secrets=(SECRET,)):
        self.secrets = tuple(secrets)
        self.calls = 0

    def __call__(self) -> tuple[str, ...]:
        self.calls += 1
        return self.secrets


# --- interoperability with the reference implementation -----------------------------------------------
def test_a_message_signed_by_the_reference_library_is_accepted_and_its_webhook_id_returned():
    headers = reference_headers(SECRET, BODY, webhook_id=WEBHOOK_ID, timestamp=T)
    assert check(headers) == WEBHOOK_ID


def test_a_message_signed_here_is_accepted_by_the_reference_library():
    now = int(time.time())  # the reference library checks the timestamp against its own clock
    headers = headers_for(timestamp=now)
    assert Webhook(SECRET).verify(BODY, headers) == json.loads(BODY)


def test_the_reference_library_refuses_a_message_signed_here_with_another_secret():
    headers = headers_for(UNRELATED_SECRET, timestamp=int(time.time()))
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(BODY, headers)


def test_the_reference_library_refuses_a_body_changed_after_it_was_signed_here():
    headers = headers_for(timestamp=int(time.time()))
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(BODY.replace(b"grace", b"alice"), headers)


def test_signatures_made_here_are_those_of_the_reference_library():
    reference = Webhook(SECRET).sign(WEBHOOK_ID, datetime.fromtimestamp(T, tz=UTC), BODY.decode())
    assert sign(SECRET, WEBHOOK_ID, T, BODY) == reference


def test_a_reference_signed_body_with_non_ascii_text_is_verified_over_its_utf8_bytes():
    text = '{"contact":{"firstName":"José","companyName":"Straße & Söhne","note":"日本"}}'
    headers = reference_headers(SECRET, text, webhook_id=WEBHOOK_ID, timestamp=T)
    assert check(headers, text.encode("utf-8")) == WEBHOOK_ID


# --- the secret --------------------------------------------------------------------------------------
def test_the_signing_key_is_the_base64_decoded_part_after_whsec():
    assert signing_key(whsec(b"\x00\x01binary key\xff")) == b"\x00\x01binary key\xff"


def test_a_secret_without_the_whsec_prefix_or_with_surrounding_spaces_is_the_same_key():
    assert signing_key(SECRET.removeprefix("whsec_")) == signing_key(SECRET) == signing_key(f"  {SECRET}\n")


@pytest.mark.parametrize("configured", [SECRET, SECRET.removeprefix("whsec_")], ids=["with whsec_", "without"])
@pytest.mark.parametrize("signed_with", [SECRET, SECRET.removeprefix("whsec_")], ids=["by whsec_", "by bare"])
def test_a_secret_works_with_and_without_the_whsec_prefix(configured, signed_with):
    headers = reference_headers(signed_with, BODY, webhook_id=WEBHOOK_ID, timestamp=T)
    assert check(headers, secrets=(configured,)) == WEBHOOK_ID


@pytest.mark.parametrize("secret", ["whsec_", "", "   ", "whsec_not base64!", "whsec_a", "whsec_ab!c", "whsec_=="])
def test_a_malformed_secret_has_no_signing_key(secret):
    with pytest.raises(ValueError, match="Standard Webhooks secret"):
        signing_key(secret)


def test_a_malformed_secret_is_ignored_and_a_good_one_beside_it_still_matches():
    secrets = ("whsec_not base64!", "", "whsec_", SECRET, "whsec_a")
    assert check(headers_for(), secrets=secrets) == WEBHOOK_ID


def test_only_malformed_secrets_is_unauthorized():
    reason = refusal(headers_for(), secrets=("whsec_not base64!", "whsec_", ""))
    assert reason == "signature verification is not configured"


@pytest.mark.parametrize("secrets", [(), lambda: ()], ids=["empty tuple", "lookup finds none"])
def test_no_secret_at_all_is_unauthorized(secrets):
    assert refusal(headers_for(), secrets=secrets) == "signature verification is not configured"


def test_a_secret_without_base64_padding_works_as_in_the_reference_library():
    unpadded = SECRET.rstrip("=")
    assert unpadded != SECRET
    headers = reference_headers(unpadded, BODY, webhook_id=WEBHOOK_ID, timestamp=T)  # the reference accepts it
    assert check(headers, secrets=(unpadded,)) == WEBHOOK_ID


# --- several signatures, several secrets -----------------------------------------------------------
INVALID_SIGNATURES = [
    "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    sign(UNRELATED_SECRET, WEBHOOK_ID, T, BODY),
    "v1,not-base64!!",
    "v1,",
]


@pytest.mark.parametrize("position", [0, 2, 4], ids=["first", "middle", "last"])
def test_one_valid_signature_among_invalid_ones_is_enough(position):
    signatures = list(INVALID_SIGNATURES)
    signatures.insert(position, headers_for()["webhook-signature"])
    assert check({**headers_for(), "webhook-signature": " ".join(signatures)}) == WEBHOOK_ID


def test_several_signatures_of_which_none_is_valid_are_refused():
    headers = {**headers_for(), "webhook-signature": " ".join(INVALID_SIGNATURES)}
    assert refusal(headers) == "no valid signature"


@pytest.mark.parametrize("signed_with", [SECRET, OTHER_SECRET], ids=["current secret", "next secret"])
def test_during_a_rotation_a_message_signed_with_either_active_secret_passes(signed_with):
    headers = reference_headers(signed_with, BODY, webhook_id=WEBHOOK_ID, timestamp=T)
    assert check(headers, secrets=(SECRET, OTHER_SECRET)) == WEBHOOK_ID


def test_after_a_rotation_the_retired_secret_no_longer_passes():
    headers = reference_headers(SECRET, BODY, webhook_id=WEBHOOK_ID, timestamp=T)
    assert refusal(headers, secrets=(OTHER_SECRET,)) == "no valid signature"


def test_a_message_signed_with_both_secrets_of_a_rotation_passes_with_only_one_active():
    both = f"{headers_for(SECRET)['webhook-signature']} {headers_for(OTHER_SECRET)['webhook-signature']}"
    headers = {**headers_for(), "webhook-signature": both}
    assert check(headers, secrets=(OTHER_SECRET,)) == WEBHOOK_ID


# --- headers -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("header", HEADERS)
def test_a_missing_header_is_unauthorized(header):
    headers = {name: value for name, value in headers_for().items() if name != header}
    assert "missing" in refusal(headers)


@pytest.mark.parametrize("value", ["", "   "], ids=["empty", "blank"])
@pytest.mark.parametrize("header", HEADERS)
def test_an_empty_header_is_unauthorized(header, value):
    assert "missing" in refusal({**headers_for(), header: value})


def test_no_headers_at_all_is_unauthorized():
    assert "missing" in refusal({})


# --- the timestamp -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "timestamp", ["abc", "1734425918.0", "-1734425918", "+1734425918", "1.7e9", "0x675f1a3e", "1734425918abc"]
)
def test_a_timestamp_that_is_not_unix_seconds_is_unauthorized(timestamp):
    assert refusal({**headers_for(), "webhook-timestamp": timestamp}) == "webhook-timestamp is not a unix timestamp"


@pytest.mark.parametrize(
    "timestamp",
    ["²", "①⑦③④", "".join(chr(0xFF10 + int(d)) for d in str(T)), "9" * 13, "9" * 5000],
    ids=["superscript", "circled", "fullwidth", "13 digits", "5000 digits"],
)
def test_a_timestamp_of_non_ascii_or_too_many_digits_is_unauthorized_not_a_crash(timestamp):
    # str.isdigit() takes all of these, and int() raises ValueError (an HTTP 500) on some of them.
    assert refusal({**headers_for(), "webhook-timestamp": timestamp}) == "webhook-timestamp is not a unix timestamp"


@pytest.mark.parametrize("tolerance", [300, 60])
def test_a_timestamp_older_than_the_tolerance_is_refused(tolerance):
    assert "too old" in refusal(headers_for(), now=T + tolerance + 1, tolerance=tolerance)


@pytest.mark.parametrize("tolerance", [300, 60])
def test_a_timestamp_further_in_the_future_than_the_tolerance_is_refused(tolerance):
    assert "future" in refusal(headers_for(), now=T - tolerance - 1, tolerance=tolerance)


@pytest.mark.parametrize("tolerance", [300, 60])
@pytest.mark.parametrize("direction", [+1, -1], ids=["old", "ahead"])
def test_a_timestamp_exactly_at_the_tolerance_is_accepted(tolerance, direction):
    assert check(headers_for(), now=T + direction * tolerance, tolerance=tolerance) == WEBHOOK_ID


def test_the_default_tolerance_is_five_minutes():
    assert verify(headers_for(), BODY, (SECRET,), now=T + 300) == WEBHOOK_ID
    with pytest.raises(Unauthorized):
        verify(headers_for(), BODY, (SECRET,), now=T + 301)


@pytest.mark.parametrize("years", [+10, -10], ids=["ten years old", "ten years ahead"])
def test_tolerance_0_turns_the_timestamp_check_off(years):
    assert check(headers_for(), now=T + years * 365 * 86_400, tolerance=0) == WEBHOOK_ID


def test_tolerance_0_still_checks_the_signature():
    headers = {**headers_for(), "webhook-timestamp": str(T + 1)}
    assert refusal(headers, now=0, tolerance=0) == "no valid signature"


# --- the signature -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "presented",
    [
        lambda b64: f"v2,{b64}",
        lambda b64: f"v1a,{b64}",
        lambda b64: f"V1,{b64}",
        lambda b64: f"v0,{b64}",
        lambda b64: f"v1:{b64}",
        lambda b64: b64,
    ],
    ids=["v2", "v1a", "V1", "v0", "colon", "no version"],
)
def test_a_valid_signature_under_another_version_label_is_refused(presented):
    b64 = headers_for()["webhook-signature"].removeprefix("v1,")
    assert refusal({**headers_for(), "webhook-signature": presented(b64)}) == "no valid signature"


@pytest.mark.parametrize("bit", [0, 7, 100, 255])
def test_a_signature_with_one_bit_flipped_is_refused(bit):
    digest = bytearray(signature_bytes(headers_for()["webhook-signature"]))
    digest[bit // 8] ^= 1 << (bit % 8)
    flipped = "v1," + base64.b64encode(bytes(digest)).decode()
    assert refusal({**headers_for(), "webhook-signature": flipped}) == "no valid signature"


@pytest.mark.parametrize(
    "cut", [lambda s: s[:-1], lambda s: s[:-4], lambda s: s[: len(s) // 2], lambda s: "v1,", lambda s: s + "A"]
)
def test_a_truncated_or_extended_signature_is_refused(cut):
    presented = cut(headers_for()["webhook-signature"])
    assert refusal({**headers_for(), "webhook-signature": presented}) == "no valid signature"


def test_a_signature_of_the_raw_body_does_not_cover_a_reserialised_one():
    document = {"eventName": "contact.created", "contact": {"email": "grace.hopper@example.com", "firstName": "Grace"}}
    sent = json.dumps(document, indent=2).encode()
    headers = headers_for(body=sent)
    assert check(headers, sent) == WEBHOOK_ID
    reserialised = [
        json.dumps(document).encode(),
        json.dumps(document, separators=(",", ":")).encode(),
        json.dumps(document, indent=2, sort_keys=True).encode(),
        sent + b"\n",
        sent.replace(b"\n", b"\r\n"),
    ]
    for body in reserialised:
        assert json.loads(body) == document
        assert refusal(headers, body) == "no valid signature"


# --- the secrets are looked up only for a complete, fresh message ---------------------------------------------
def test_the_secrets_are_looked_up_once_for_a_complete_fresh_message():
    lookup = SecretsLookup()
    assert check(headers_for(), secrets=lookup) == WEBHOOK_ID
    assert lookup.calls == 1


@pytest.mark.parametrize("header", HEADERS)
def test_the_secrets_are_not_looked_up_when_a_header_is_missing(header):
    lookup = SecretsLookup()
    refusal({name: value for name, value in headers_for().items() if name != header}, secrets=lookup)
    assert lookup.calls == 0


@pytest.mark.parametrize(
    ("timestamp", "now"),
    [(str(T), T + 3600), (str(T), T - 3600), ("yesterday", T)],
    ids=["stale", "future", "not a timestamp"],
)
def test_the_secrets_are_not_looked_up_when_the_timestamp_is_unusable(timestamp, now):
    lookup = SecretsLookup()
    refusal({**headers_for(), "webhook-timestamp": timestamp}, secrets=lookup, now=now)
    assert lookup.calls == 0


# --- properties --------------------------------------------------------------------------------------
# Ids never have surrounding white space (HTTP trims header values; verify() strips them too).
webhook_ids = st.text(st.characters(exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), min_size=1, max_size=40)
timestamps = st.integers(min_value=0, max_value=10**11)  # up to year 5138 (datetime ends at 9999)
bodies = st.binary(max_size=2048)
keys = st.binary(min_size=1, max_size=64)


@PROPERTIES
@given(key=keys, webhook_id=webhook_ids, timestamp=timestamps, body=bodies)
def test_property_a_validly_signed_message_always_passes(key, webhook_id, timestamp, body):
    headers = headers_for(whsec(key), body, webhook_id, timestamp)
    assert verify(headers, body, (whsec(key),), now=timestamp) == webhook_id


@PROPERTIES
@given(key=keys, webhook_id=webhook_ids, timestamp=timestamps, text=st.text(max_size=1024))
def test_property_a_message_signed_by_the_reference_library_always_passes(key, webhook_id, timestamp, text):
    headers = reference_headers(whsec(key), text, webhook_id=webhook_id, timestamp=timestamp)
    assert verify(headers, text.encode(), (whsec(key),), now=timestamp) == webhook_id


@PROPERTIES
@given(key=keys, timestamp=timestamps, body=bodies, other=bodies)
def test_property_any_change_to_the_body_is_rejected(key, timestamp, body, other):
    assume(other != body)
    headers = headers_for(whsec(key), body, WEBHOOK_ID, timestamp)
    with pytest.raises(Unauthorized):
        verify(headers, other, (whsec(key),), now=timestamp)


@PROPERTIES
@given(key=keys, timestamp=timestamps, webhook_id=webhook_ids, other=webhook_ids)
def test_property_any_change_to_the_webhook_id_is_rejected(key, timestamp, webhook_id, other):
    assume(other != webhook_id)
    headers = {**headers_for(whsec(key), BODY, webhook_id, timestamp), "webhook-id": other}
    with pytest.raises(Unauthorized):
        verify(headers, BODY, (whsec(key),), now=timestamp)


@PROPERTIES
@given(key=keys, timestamp=timestamps, other=timestamps)
def test_property_any_change_to_the_timestamp_is_rejected_even_when_fresh(key, timestamp, other):
    assume(other != timestamp)
    headers = {**headers_for(whsec(key), BODY, WEBHOOK_ID, timestamp), "webhook-timestamp": str(other)}
    with pytest.raises(Unauthorized):
        verify(headers, BODY, (whsec(key),), now=other)


@PROPERTIES
@given(key=keys, timestamp=timestamps, body=bodies, bit=st.integers(min_value=0, max_value=255))
def test_property_any_bit_flipped_in_the_signature_is_rejected(key, timestamp, body, bit):
    headers = headers_for(whsec(key), body, WEBHOOK_ID, timestamp)
    digest = bytearray(signature_bytes(headers["webhook-signature"]))
    digest[bit // 8] ^= 1 << (bit % 8)
    headers["webhook-signature"] = "v1," + base64.b64encode(bytes(digest)).decode()
    with pytest.raises(Unauthorized):
        verify(headers, body, (whsec(key),), now=timestamp)


@PROPERTIES
@given(key=keys, other_key=keys, timestamp=timestamps, body=bodies)
def test_property_a_signature_by_another_key_is_rejected(key, other_key, timestamp, body):
    assume(other_key != key)
    headers = headers_for(whsec(other_key), body, WEBHOOK_ID, timestamp)
    with pytest.raises(Unauthorized):
        verify(headers, body, (whsec(key),), now=timestamp)


@PROPERTIES
@given(timestamp=timestamps, tolerance=st.integers(min_value=1, max_value=86_400), drift=st.integers(0, 10**9))
def test_property_the_timestamp_passes_exactly_when_within_the_tolerance(timestamp, tolerance, drift):
    headers = headers_for(SECRET, BODY, WEBHOOK_ID, timestamp)
    for now in (timestamp + drift, timestamp - drift):
        if drift <= tolerance:
            assert verify(headers, BODY, (SECRET,), tolerance_seconds=tolerance, now=now) == WEBHOOK_ID
        else:
            with pytest.raises(Unauthorized):
                verify(headers, BODY, (SECRET,), tolerance_seconds=tolerance, now=now)
