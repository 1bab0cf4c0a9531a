"""No email address reaches the logs in clear text, whoever logs it and wherever it sits."""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from clay_relay.observability import logger, mask_email

ADDRESSES = ["jane.doe@mail.acme.com", "ada+leads@example.co.uk", "x_y-z%1@sub.domain.io", "JOHN@EXAMPLE.COM"]


def test_email_in_a_log_message_is_masked(logs):
    logger.info("new lead jane.doe@mail.acme.com from the form")
    [line] = logs.lines
    assert "jane.doe@mail.acme.com" not in logs.text
    assert "jane.doe" not in line["message"]
    assert line["message"] == "new lead j***@acme.com from the form"


def test_email_in_extra_fields_is_masked(logs):
    logger.info("lead accepted", extra={"email": "ada+leads@example.co.uk", "row": {"contact": "JOHN@EXAMPLE.COM"}})
    [line] = logs.lines
    assert "ada+leads" not in logs.text and "JOHN@" not in logs.text
    assert line["email"] == "a***@co.uk"
    assert line["row"]["contact"] == "J***@EXAMPLE.COM"


def test_email_in_a_logged_exception_is_masked(logs):
    try:
        raise ValueError("clay refused x_y-z%1@sub.domain.io")
    except ValueError:
        logger.exception("delivery failed")
    assert "x_y-z%1@" not in logs.text
    assert "x***@domain.io" in logs.text


def test_every_level_is_masked(logs):
    for log in (logger.info, logger.warning, logger.error):
        log("for jane.doe@mail.acme.com")
    assert len(logs.lines) == 3
    assert "jane.doe@" not in logs.text


@pytest.mark.parametrize("address", ADDRESSES)
def test_masked_address_keeps_only_the_first_letter_and_the_domain(address):
    masked = mask_email(f"to {address}.")
    assert address not in masked
    local, domain = address.split("@")
    assert masked.startswith(f"to {local[0]}***@")
    assert ".".join(domain.split(".")[-2:]) in masked


def test_text_without_an_email_is_unchanged():
    text = "event 3f2a at 12:00 for @acme (score 85%)"
    assert mask_email(text) == text


def test_several_addresses_in_one_text_are_all_masked():
    assert mask_email("a.b@x.io, c.d@y.io") == "a***@x.io, c***@y.io"


# --- every form an address takes (issue 20): internationalised, quoted, address literals, one label ---
FORMS = {
    "Jürgen.Müller@bücher.de": "J***@bücher.de",
    '"john doe"@example.com': "j***@example.com",
    '"john@doe"@example.com': "j***@example.com",
    "user@[127.0.0.1]": "u***@[…]",
    "user@[IPv6:2001:db8::1]": "u***@[…]",
    "ops@localhost": "o***@localhost",
    "José@example.com": "J***@example.com",  # a combining accent
    "用户@例子.广告": "用***@例子.广告",
}


@pytest.mark.parametrize(("address", "masked"), FORMS.items(), ids=list(FORMS))
def test_every_form_of_address_is_masked(address, masked):
    assert mask_email(f"invalid email {address}, retried") == f"invalid email {masked}, retried"


@pytest.mark.parametrize("address", FORMS)
def test_every_form_is_masked_in_the_logs_wherever_it_sits(logs, address):
    class Contact:
        def __str__(self) -> str:
            return f"Contact({address})"

    try:
        raise ValueError(f"loops refused {address}")
    except ValueError:
        logger.exception(f"lead {address}", extra={"email": address, "row": {"to": [address]}, "who": Contact()})
    assert address not in logs.text
    assert json.dumps(address, ensure_ascii=False)[1:-1] not in logs.text, "nor in its JSON-escaped form"
    [line] = logs.lines
    assert line["email"] == FORMS[address] and line["row"]["to"] == [FORMS[address]]


_ATEXT = string.ascii_letters + string.digits + "!#$%&'*+/=?^_`{|}~-"
_LETTERS = st.characters(categories=["Lu", "Ll", "Lo"], min_codepoint=0x80)
_ATOM = st.text(st.one_of(st.sampled_from(_ATEXT), _LETTERS), min_size=1, max_size=12)
_DOT_ATOM = st.lists(_ATOM, min_size=1, max_size=3).map(".".join)
_QUOTED = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters='"\\'), min_size=1, max_size=20
)
_LABEL = st.text(st.one_of(st.sampled_from(string.ascii_letters + string.digits), _LETTERS), min_size=1, max_size=12)
_DOMAIN = st.one_of(
    st.lists(_LABEL, min_size=1, max_size=4).map(".".join),
    st.ip_addresses(v=4).map(lambda ip: f"[{ip}]"),
    st.ip_addresses(v=6).map(lambda ip: f"[IPv6:{ip}]"),
)
ADDRESS = st.tuples(st.one_of(_DOT_ATOM, _QUOTED.map(lambda q: f'"{q}"')), _DOMAIN).map("@".join)
CONTEXTS = ["X", "to X.", "<X>", "(X)", "'X'", "lead X from the form", "X, X", 'Loops said {"email":"X"}', "…X…"]


@settings(max_examples=300, deadline=None)
@given(address=ADDRESS, context=st.sampled_from(CONTEXTS))
def test_no_generated_address_survives_masking_in_any_context(address, context):
    local, domain = address.rsplit("@", 1)
    local = local.strip('"')
    # A local part of asterisks alone reads like the mask itself (`*@a` masks to `***@a`).
    assume(local.strip("*"))
    text = context.replace("X", address)
    masked = mask_email(text)
    assert address not in masked
    if len(local) >= 4:
        assume(local not in context and local not in domain)
        assert local not in masked, "the local part is gone, not only the whole address"
