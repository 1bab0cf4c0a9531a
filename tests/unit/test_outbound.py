"""What an HTTP answer means for delivery, against a real local HTTP server: delivered, worth
retrying (and when), never going to work, or never reached."""

from __future__ import annotations

import email.utils
import time

import pytest

from clay_relay.outbound import USER_AGENT, post_json, retry_after_seconds
from tests.unit.relay_helpers import Answer

ROW = {"email": "ada@example.com", "company_name": "Acme", "n": 1, "note": "café"}


@pytest.fixture
def outbound(function_env, relay_env):
    relay_env(OUTBOUND_TIMEOUT_SECONDS="0.5")


def test_2xx_is_delivered_and_the_json_and_headers_arrive_as_sent(outbound, http_stub):
    url = http_stub.answer("/hook", Answer(200))
    outcome = post_json(url, ROW, {"x-clay-webhook-auth": "clay-token-1"})
    assert (outcome.delivered, outcome.retryable, outcome.status, outcome.reached) == (True, False, 200, True)
    assert outcome.reason == "HTTP 200"
    [received] = http_stub.posted_to("/hook")
    assert received.json() == ROW
    assert received.headers["content-type"] == "application/json"
    assert received.headers["x-clay-webhook-auth"] == "clay-token-1"
    assert received.headers["user-agent"] == USER_AGENT


def test_any_2xx_is_delivered(outbound, http_stub):
    url = http_stub.answer("/accepted", Answer(202, body=b""))
    assert post_json(url, ROW).delivered


def test_400_is_not_retryable_and_says_what_the_destination_answered(outbound, http_stub):
    url = http_stub.answer("/hook", Answer(400, body=b'{"error":  "unknown\\ncolumn"}'))
    outcome = post_json(url, ROW)
    assert (outcome.delivered, outcome.retryable, outcome.status, outcome.reached) == (False, False, 400, True)
    assert outcome.reason.startswith("HTTP 400: ")
    assert "unknown" in outcome.reason and "\n" not in outcome.reason
    assert outcome.retry_after is None


def test_long_error_body_is_cut_in_the_reason(outbound, http_stub):
    url = http_stub.answer("/hook", Answer(422, body=b"x" * 5000))
    outcome = post_json(url, ROW)
    assert not outcome.retryable
    assert len(outcome.reason) < 300


def test_429_is_retryable_after_the_seconds_the_destination_asked(outbound, http_stub):
    url = http_stub.answer("/hook", Answer(429, headers={"Retry-After": "7"}))
    outcome = post_json(url, ROW)
    assert (outcome.delivered, outcome.retryable, outcome.status, outcome.retry_after) == (False, True, 429, 7.0)


def test_retry_after_as_an_http_date_is_turned_into_seconds(outbound, http_stub):
    moment = email.utils.formatdate(time.time() + 120, usegmt=True)
    url = http_stub.answer("/hook", Answer(503, headers={"Retry-After": moment}))
    outcome = post_json(url, ROW)
    assert outcome.retryable
    assert 100 < outcome.retry_after <= 120


def test_exhausted_rate_limit_without_retry_after_waits_a_second(outbound, http_stub):
    url = http_stub.answer("/hook", Answer(429, headers={"x-ratelimit-remaining": "0"}))
    assert post_json(url, ROW).retry_after == 1.0


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504])
def test_temporary_failures_are_retryable(outbound, http_stub, status):
    outcome = post_json(http_stub.answer("/hook", Answer(status, body=b"")), ROW)
    assert (outcome.delivered, outcome.retryable, outcome.status, outcome.reached) == (False, True, status, True)
    assert outcome.reason == f"HTTP {status}"
    assert outcome.retry_after is None


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 413, 422])
def test_permanent_failures_are_not_retryable(outbound, http_stub, status):
    outcome = post_json(http_stub.answer("/hook", Answer(status)), ROW)
    assert (outcome.delivered, outcome.retryable, outcome.status) == (False, False, status)


def test_answer_slower_than_the_timeout_is_retryable_and_may_have_reached(outbound, http_stub):
    url = http_stub.answer("/slow", Answer(200, slow=True))
    outcome = post_json(url, ROW)
    assert (outcome.delivered, outcome.retryable, outcome.reached) == (False, True, True)
    assert outcome.status is None
    assert "timed out" in outcome.reason
    assert len(http_stub.posted_to("/slow")) == 1


def test_refused_connection_is_retryable_and_certainly_not_reached(outbound, closed_port_url):
    outcome = post_json(closed_port_url, ROW)
    assert (outcome.delivered, outcome.retryable, outcome.reached) == (False, True, False)
    assert outcome.status is None
    assert outcome.reason == "connection failed"


def test_unsendable_url_is_not_retryable(outbound):
    outcome = post_json("ftp://127.0.0.1/hook", ROW)
    assert (outcome.delivered, outcome.retryable) == (False, False)
    assert "not sendable" in outcome.reason


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("7", 7.0), (" 120 ", 120.0), ("0", 0.0), (None, None), ("", None), ("soon", None), ("-5", None)],
)
def test_retry_after_seconds_reads_delta_seconds(value, seconds):
    assert retry_after_seconds(value) == seconds


def test_retry_after_in_the_past_means_now():
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
