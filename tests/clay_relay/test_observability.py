"""No email address reaches the logs in clear text, whoever logs it and wherever it sits."""

from __future__ import annotations

import pytest

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
