"""What an HTTP answer means for delivery, against a real local HTTP server: delivered, worth
retrying (and when), never going to work, or never reached."""

from __future__ import annotations

import email.utils
import time

import pytest

from clay_relay.outbound import EVENT_ID_HEADER, USER_AGENT, Outcome, post_json, retry_after_seconds
from tests.destinations import Answer

ROW = {"email": "ada@example.com", "company_name": "Acme", "n": 1, "note": "café"}
EVENT_ID = "3f2a9c0d5e6b7a8f"


def post(url: str, headers: dict | None = None) -> Outcome:
    return post_json(url, ROW, headers, event_id=EVENT_ID)


@pytest.fixture
def outbound(function_env, relay_env):
    relay_env(OUTBOUND_TIMEOUT_SECONDS="0.5")


def test_2xx_is_delivered_and_the_json_and_headers_arrive_as_sent(outbound, http_stub):
    url = http_stub.answer("/hook", Answer(200))
    outcome = post(url, {"x-clay-webhook-auth": "clay-token-1"})
    assert (outcome.delivered, outcome.retryable, outcome.status, outcome.reached) == (True, False, 200, True)
    assert outcome.reason == "HTTP 200"
    [received] = http_stub.posted_to("/hook")
    assert received.json() == ROW
    assert received.headers["content-type"] == "application/json"
    assert received.headers["x-clay-webhook-auth"] == "clay-token-1"
    assert received.headers["user-agent"] == USER_AGENT
    assert received.headers[EVENT_ID_HEADER.lower()] == EVENT_ID, "the destination can name the event"


def test_any_2xx_is_delivered(outbound, http_stub):
    url = http_stub.answer("/accepted", Answer(202, body=b""))
    assert post(url).delivered


def test_400_is_not_retryable_and_says_what_the_destination_answered(outbound, http_stub):
    url = http_stub.answer("/hook", Answer(400, body=b'{"error":  "unknown\\ncolumn"}'))
    outcome = post(url)
    assert (outcome.delivered, outcome.retryable, outcome.status, outcome.reached) == (False, False, 400, True)
    assert outcome.reason.startswith("HTTP 400: ")
    assert "unknown" in outcome.reason and "\n" not in outcome.reason
    assert outcome.retry_after is None


def test_long_error_body_is_cut_in_the_reason(outbound, http_stub):
    url = http_stub.answer("/hook", Answer(422, body=b"x" * 5000))
    outcome = post(url)
    assert not outcome.retryable
    assert len(outcome.reason) < 300


def test_429_is_retryable_after_the_seconds_the_destination_asked(outbound, http_stub):
    url = http_stub.answer("/hook", Answer(429, headers={"Retry-After": "7"}))
    outcome = post(url)
    assert (outcome.delivered, outcome.retryable, outcome.status, outcome.retry_after) == (False, True, 429, 7.0)


def test_retry_after_as_an_http_date_is_turned_into_seconds(outbound, http_stub):
    moment = email.utils.formatdate(time.time() + 120, usegmt=True)
    url = http_stub.answer("/hook", Answer(503, headers={"Retry-After": moment}))
    outcome = post(url)
    assert outcome.retryable
    assert 100 < outcome.retry_after <= 120


def test_a_success_that_used_up_the_rate_limit_rests_for_one_request_at_that_limit(outbound, http_stub):
    url = http_stub.answer("/hook", Answer(200, headers={"x-ratelimit-limit": "10", "x-ratelimit-remaining": "0"}))
    outcome = post(url)
    assert outcome.delivered and not outcome.throttled
    assert outcome.retry_after == pytest.approx(0.1)


def test_a_success_with_rate_limit_left_does_not_slow_down(outbound, http_stub):
    url = http_stub.answer("/hook", Answer(200, headers={"x-ratelimit-limit": "10", "x-ratelimit-remaining": "3"}))
    assert post(url).retry_after is None


def test_a_429_is_throttling_not_unavailability(outbound, http_stub):
    outcome = post(http_stub.answer("/hook", Answer(429)))
    assert outcome.throttled and not outcome.unavailable


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_means_the_destination_is_unavailable(outbound, http_stub, status):
    outcome = post(http_stub.answer("/hook", Answer(status)))
    assert outcome.unavailable and not outcome.throttled


def test_a_permanent_4xx_is_neither_throttling_nor_unavailability(outbound, http_stub):
    outcome = post(http_stub.answer("/hook", Answer(400)))
    assert not outcome.unavailable and not outcome.throttled


def test_exhausted_rate_limit_without_retry_after_waits_a_second(outbound, http_stub):
    url = http_stub.answer("/hook", Answer(429, headers={"x-ratelimit-remaining": "0"}))
    assert post(url).retry_after == 1.0


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504])
def test_temporary_failures_are_retryable(outbound, http_stub, status):
    outcome = post(http_stub.answer("/hook", Answer(status, body=b"")))
    assert (outcome.delivered, outcome.retryable, outcome.status, outcome.reached) == (False, True, status, True)
    assert outcome.reason == f"HTTP {status}"
    assert outcome.retry_after is None


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 413, 422])
def test_permanent_failures_are_not_retryable(outbound, http_stub, status):
    outcome = post(http_stub.answer("/hook", Answer(status)))
    assert (outcome.delivered, outcome.retryable, outcome.status) == (False, False, status)


@pytest.mark.parametrize(
    ("location", "named"),
    [
        ("https://attacker.example:8443/collect?token=x", "to attacker.example:8443"),
        ("/v2/hook", "to 127.0.0.1:"),  # relative: the same host
        (None, "without a Location"),
        ("http://[::1", "to an unreadable Location"),
    ],
    ids=["absolute", "relative", "none", "unreadable"],
)
def test_a_redirect_is_a_permanent_failure_that_names_where_it_pointed(outbound, http_stub, location, named):
    headers = {"Location": location} if location else {}
    url = http_stub.answer("/hook", Answer(307, headers=headers))
    outcome = post(url)
    assert (outcome.delivered, outcome.retryable, outcome.status, outcome.reached) == (False, False, 307, True)
    assert outcome.reason.startswith(f"redirect refused: HTTP 307 {named}")
    assert "token" not in outcome.reason and "collect" not in outcome.reason
    assert [r.path for r in http_stub.received] == ["/hook"], "the redirect was not followed"


def test_answer_slower_than_the_timeout_is_retryable_and_may_have_reached(outbound, http_stub):
    url = http_stub.answer("/slow", Answer(200, slow=True))
    outcome = post(url)
    assert (outcome.delivered, outcome.retryable, outcome.reached) == (False, True, True)
    assert outcome.status is None
    assert "timed out" in outcome.reason
    assert len(http_stub.posted_to("/slow")) == 1


def test_refused_connection_is_retryable_and_certainly_not_reached(outbound, closed_port_url):
    outcome = post(closed_port_url)
    assert (outcome.delivered, outcome.retryable, outcome.reached) == (False, True, False)
    assert outcome.unavailable
    assert outcome.status is None
    assert outcome.reason == "connection failed"


def test_unsendable_url_is_not_retryable(outbound):
    outcome = post("ftp://127.0.0.1/hook")
    assert (outcome.delivered, outcome.retryable, outcome.reached) == (False, False, False)
    assert outcome.reason == "destination URL refused: only https:// URLs are allowed"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("7", 7.0), (" 120 ", 120.0), ("0", 0.0), (None, None), ("", None), ("soon", None), ("-5", None)],
)
def test_retry_after_seconds_reads_delta_seconds(value, seconds):
    assert retry_after_seconds(value) == seconds


def test_retry_after_in_the_past_means_now():
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
