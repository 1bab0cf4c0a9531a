"""The relay's signature (`x-relay-signature: t=<unix>,v1=<hex>`): what a sender signs, what a
stale, malformed or old-form header is told, and that keys are read only for a fresh, complete one.
The properties (every valid signature passes, every change is refused) are in
tests/contract/test_signature_properties.py; the attacks through the handler in test_attacks.py."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from clay_relay import relay_signature
from clay_relay.errors import Unauthorized

BODY = b'{"email":"ada@example.com","icp_score":91}'
NOW = 1_767_225_600


def keys_never_read() -> tuple[str, ...]:
    raise AssertionError("no key may be read for this header")


def test_a_sender_signs_the_timestamp_and_the_raw_body():
    expected = hmac.new(b"k1", f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert relay_signature.sign("k1", BODY, NOW) == f"t={NOW},v1={expected}"


def test_a_signature_passes_with_any_active_key_and_says_it_is_not_the_old_form():
    header = relay_signature.sign("k2", BODY, NOW)
    assert relay_signature.verify(header, BODY, lambda: ("k1", "k2"), now=NOW + 300) is False


@pytest.mark.parametrize("offset", [-301, 301, -86_400])
def test_a_stale_or_future_signature_is_refused_without_reading_a_key(offset):
    header = relay_signature.sign("k1", BODY, NOW)
    with pytest.raises(Unauthorized, match="too old or too far in the future"):
        relay_signature.verify(header, BODY, keys_never_read, now=NOW - offset)


@pytest.mark.parametrize(
    "header",
    ["sha256=" + hmac.new(b"k1", BODY, hashlib.sha256).hexdigest(), hmac.new(b"k1", BODY, hashlib.sha256).hexdigest()],
    ids=["sha256=<hex>", "bare hex"],
)
def test_the_old_body_only_form_is_refused_naming_the_scheme_unless_accepted(header):
    with pytest.raises(Unauthorized) as refused:
        relay_signature.verify(header, BODY, keys_never_read, now=NOW)
    assert "t=<unix seconds>,v1=" in str(refused.value)
    assert relay_signature.verify(header, BODY, lambda: ("k1",), accept_body_only=True, now=NOW) is True


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        (f"t={NOW}", "no v1 entry"),
        (f"t={NOW},v1=", "no v1 entry"),
        (f"t={NOW},t={NOW},v1=00", "not one unix timestamp"),
        ("t=1.7e9,v1=00", "not one unix timestamp"),
        ("t=١٧٦٧٢٢٥٦٠٠,v1=00", "not one unix timestamp"),
    ],
)
def test_a_malformed_header_is_refused_saying_why_without_reading_a_key(header, problem):
    with pytest.raises(Unauthorized, match=problem):
        relay_signature.verify(header, BODY, keys_never_read, now=NOW)
