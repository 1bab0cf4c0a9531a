"""Loops' API as the relay calls it, against local_stack's Loops sandbox (Bearer key, required
fields, the 500-character limit, 10 requests/s, Idempotency-Key): what each answer means for
delivery. 200 delivered; 409 on events/send is this very event sent before (delivered); 429 and
5xx are worth retrying; 400 and 401 are not, and carry Loops' message."""

from __future__ import annotations

import time

import pytest

from clay_relay import loops
from clay_relay.config import LoopsApi, LoopsSettings
from clay_relay.jobs import LoopsContactJob, LoopsEventJob
from clay_relay.leads import parse_lead
from tests.conftest import fresh_runtime
from tests.destinations import LOOPS_API_KEY

API = LoopsApi()  # the API key's secret: loops-api-key
SETTINGS = LoopsSettings()
EVENT = {"email": "ada@example.com", "eventName": "clay_outreach", "eventProperties": {"icpScore": 85}}
CONTACT = {"email": "ada@example.com", "source": "clay-relay", "firstName": "Ada", "mailingLists": {"list-1": True}}


def event_job(payload: dict | None = None, event_id: str = "0123456789abcdef0123456789abcdef") -> LoopsEventJob:
    return LoopsEventJob(event_id=event_id, origin="clay/enriched", payload=EVENT if payload is None else payload)


def contact_job(payload: dict | None = None) -> LoopsContactJob:
    return LoopsContactJob(event_id="fedcba9876543210", origin="clay/enriched", payload=payload or CONTACT)


def requests_to(destinations, route: str) -> list[dict]:
    return [d for d in destinations.received("loops") if d["path"].endswith(route)]


# --- payloads ----------------------------------------------------------------------------------------
def test_contact_properties_use_loops_names_and_leave_out_missing_values():
    lead = parse_lead({"email": "a@b.co", "icp_score": "70", "first_name": "Ada", "employee_count": "1,200"})
    assert loops.contact_properties(lead) == {"firstName": "Ada", "employeeCount": 1200, "icpScore": 70}


def test_an_event_carries_names_at_top_level_and_every_property_in_event_properties():
    lead = parse_lead({"email": "a@b.co", "icp_score": 90, "first_name": "Ada", "personalized_opener": "Hi"})
    payload = loops.event_payload(lead, LoopsSettings(outreach_event_name="outreach_v2"))
    assert payload == {
        "email": "a@b.co",
        "eventName": "outreach_v2",
        "firstName": "Ada",
        "eventProperties": {"firstName": "Ada", "icpScore": 90, "personalizedOpener": "Hi"},
    }


@pytest.mark.parametrize(("length", "sent"), [(499, 499), (500, 500), (501, 500), (5000, 500)])
def test_text_values_are_fitted_to_loops_500_character_limit(length, sent):
    lead = parse_lead({"email": "a@b.co", "icp_score": 90, "personalized_opener": "x" * length})
    opener = loops.event_payload(lead, SETTINGS)["eventProperties"]["personalizedOpener"]
    assert len(opener) == sent
    assert opener.endswith("…") is (length > 500)


@pytest.mark.parametrize(
    ("opener", "sent"),
    [("x" * 499 + "\U0001f600", "x" * 499 + "…"), ("\U0001f600" * 300, "\U0001f600" * 249 + "…")],
    ids=["499 characters and an emoji", "300 emoji"],
)
def test_text_is_fitted_in_utf_16_code_units_as_loops_counts_never_halving_an_emoji(opener, sent):
    lead = parse_lead({"email": "a@b.co", "icp_score": 90, "personalized_opener": opener})
    fitted = loops.event_payload(lead, SETTINGS)["eventProperties"]["personalizedOpener"]
    assert fitted == sent
    assert len(fitted.encode("utf-16-le")) // 2 <= 500


def test_an_emoji_opener_fitted_to_the_limit_is_accepted_by_loops(destinations):
    lead = parse_lead({"email": "a@b.co", "icp_score": 90, "personalized_opener": "\U0001f600" * 300})
    outcome = loops.send_event(event_job(loops.event_payload(lead, SETTINGS)), API)
    assert outcome.delivered, outcome.reason


def test_a_fitted_payload_is_accepted_by_loops(destinations):
    lead = parse_lead({"email": "a@b.co", "icp_score": 90, "personalized_opener": "x" * 4000})
    outcome = loops.send_event(event_job(loops.event_payload(lead, SETTINGS)), API)
    assert outcome.delivered, outcome.reason


# --- answers -----------------------------------------------------------------------------------------
def test_an_event_is_posted_with_the_api_key_and_the_event_id_as_idempotency_key(destinations):
    outcome = loops.send_event(event_job(), API)
    assert (outcome.delivered, outcome.status) == (True, 200)
    [sent] = requests_to(destinations, "/v1/events/send")
    assert sent["method"] == "POST"
    assert sent["path"] == "/loops/api/v1/events/send"
    assert sent["headers"]["authorization"] == f"Bearer {LOOPS_API_KEY}"
    assert sent["headers"]["idempotency-key"] == "0123456789abcdef0123456789abcdef"
    assert sent["headers"]["content-type"] == "application/json"
    assert sent["body"] == EVENT
    assert destinations.sandboxes.loops.events == [EVENT]


def test_a_contact_is_put_with_the_api_key_and_lands_in_loops(destinations):
    outcome = loops.update_contact(contact_job(), API)
    assert (outcome.delivered, outcome.status) == (True, 200)
    [sent] = requests_to(destinations, "/v1/contacts/update")
    assert sent["method"] == "PUT"
    assert sent["headers"]["authorization"] == f"Bearer {LOOPS_API_KEY}"
    assert destinations.sandboxes.loops.contacts["ada@example.com"]["mailingLists"] == {"list-1": True}


def test_the_same_event_sent_again_is_answered_409_and_counts_as_delivered(destinations):
    assert loops.send_event(event_job(), API).delivered
    again = loops.send_event(event_job(), API)
    assert (again.delivered, again.retryable, again.status) == (True, False, 409)
    assert [d["status"] for d in requests_to(destinations, "/v1/events/send")] == [200, 409]
    assert len(destinations.sandboxes.loops.events) == 1


def test_a_409_on_a_contact_update_is_not_taken_for_delivered(destinations):
    destinations.sandboxes.add_fault({"destination": "loops", "status": 409})
    outcome = loops.update_contact(contact_job(), API)
    assert outcome.delivered is False


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({**EVENT, "eventProperties": {"personalizedOpener": "x" * 600}}, "too long (max 500 characters)"),
        ({"eventName": "clay_outreach"}, "An email or userId is required"),
        ({"email": "ada@example.com"}, "eventName is required"),
    ],
    ids=["value over 500", "no email", "no event name"],
)
def test_a_400_is_not_retried_and_carries_loops_message(destinations, payload, message):
    outcome = loops.send_event(event_job(payload), API)
    assert (outcome.delivered, outcome.retryable, outcome.status) == (False, False, 400)
    assert message in outcome.reason


def test_a_wrong_api_key_is_401_not_retried(destinations, put_secret):
    put_secret("loops-api-key", "revoked-key")
    outcome = loops.update_contact(contact_job(), API)
    assert (outcome.delivered, outcome.retryable, outcome.status) == (False, False, 401)
    assert "Invalid API key" in outcome.reason


def test_the_api_key_is_read_without_surrounding_whitespace(destinations, put_secret):
    put_secret("loops-api-key", f"  {LOOPS_API_KEY}\n")
    assert loops.update_contact(contact_job(), API).delivered


def test_the_eleventh_request_within_a_second_is_429_retried_after_the_rate_limit_headers(destinations):
    sandbox = destinations.sandboxes.loops
    assert sandbox.limit_per_second == 10
    # Ten requests in the current second, as a burst leaves them (stamped ahead so that no slow
    # test run can let them age out: no timing involved).
    sandbox._recent.extend([time.monotonic() + 60] * 10)
    outcome = loops.send_event(event_job(), API)
    assert (outcome.delivered, outcome.retryable, outcome.status) == (False, True, 429)
    assert outcome.retry_after == 1.0  # x-ratelimit-remaining: 0, and no Retry-After
    assert sandbox.events == []


@pytest.mark.parametrize("status", [500, 503])
def test_a_5xx_is_retried(destinations, status):
    destinations.sandboxes.add_fault({"destination": "loops", "status": status})
    outcome = loops.send_event(event_job(), API)
    assert (outcome.delivered, outcome.retryable, outcome.status) == (False, True, status)


def test_the_placeholder_api_key_is_retried_without_calling_loops(destinations, put_secret):
    put_secret("loops-api-key", "REPLACE_ME")
    outcome = loops.send_event(event_job(), API)
    assert (outcome.delivered, outcome.retryable, outcome.reached) == (False, True, False)
    assert "placeholder" in outcome.reason
    assert destinations.received("loops") == []


def test_the_api_base_may_end_with_a_slash(destinations, monkeypatch):
    monkeypatch.setenv("LOOPS_API_BASE", f"{destinations.base}/loops/api/")
    fresh_runtime()
    assert loops.send_event(event_job(), API).delivered
    [sent] = destinations.received("loops")
    assert sent["path"] == "/loops/api/v1/events/send"
