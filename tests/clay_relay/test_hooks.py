"""Slack's and Zapier's incoming webhooks, whose URL is itself the secret: the hot-lead message
built from the configured template, and what each answer of theirs means for delivery."""

from __future__ import annotations

import pytest

from clay_relay import hooks
from clay_relay.config import SlackSettings
from clay_relay.leads import parse_lead
from tests.destinations import SLACK_PATH, ZAPIER_PATH

EVENT_ID = "5a1e0f2b9c3d"
GRACE = {
    "email": "grace@example.com",
    "first_name": "Grace",
    "last_name": "Hopper",
    "job_title": "VP Engineering",
    "company_name": "Compiler Co",
    "industry": "Software",
    "employee_count": "1,200",
    "icp_score": "95",
}


def message(template: str | None = None, **cells) -> str:
    settings = SlackSettings() if template is None else SlackSettings(message=template)
    return hooks.hot_lead_message(parse_lead({**GRACE, **cells}), settings)


# --- the message -------------------------------------------------------------------------------------
def test_the_default_message_names_the_lead_their_role_company_and_score():
    assert message() == ":fire: Hot lead: Grace Hopper, VP Engineering at Compiler Co (ICP 95)"


def test_a_custom_message_may_use_any_lead_field():
    text = message("{email} · {industry} · {employee_count} people · {linkedin_url}")
    assert text == "grace@example.com · Software · 1200 people · ?"


def test_missing_fields_and_unknown_placeholders_show_a_question_mark():
    text = message("{first_name} {last_name} ({job_title}) {favourite_colour}", last_name="", job_title=None)
    assert text == "Grace ? (?) ?"


@pytest.mark.parametrize(("score", "shown"), [("95", "95"), (90.0, "90"), ("92.5", "92.5"), ("100%", "100")])
def test_the_score_is_shown_without_needless_decimals(score, shown):
    assert message("ICP {icp_score}", icp_score=score) == f"ICP {shown}"


def test_lead_values_are_escaped_so_that_they_cannot_ping_the_channel_or_add_links():
    text = message("{first_name} at {company_name}", first_name="<!channel>", company_name="A&B <https://x.example|Co>")
    assert text == "&lt;!channel&gt; at A&amp;B &lt;https://x.example|Co&gt;"


# --- posting -----------------------------------------------------------------------------------------
def test_slack_answering_ok_in_plain_text_is_delivered(destinations):
    outcome = hooks.post_to_hook("slack-webhook-url", {"text": "Hot lead: Grace Hopper"}, event_id=EVENT_ID)
    assert (outcome.delivered, outcome.status) == (True, 200)
    [sent] = destinations.received("slack")
    assert sent["path"] == SLACK_PATH
    assert sent["body"] == {"text": "Hot lead: Grace Hopper"}
    assert sent["headers"]["content-type"] == "application/json"


def test_slack_refusing_an_empty_message_is_not_retried(destinations):
    outcome = hooks.post_to_hook("slack-webhook-url", {"text": ""}, event_id=EVENT_ID)
    assert (outcome.delivered, outcome.retryable, outcome.status) == (False, False, 400)
    assert "no_text" in outcome.reason


def test_zapier_answering_success_is_delivered(destinations):
    outcome = hooks.post_to_hook(
        "zapier-webhook-url", {"email": "grace@example.com", "route": "outreach"}, event_id=EVENT_ID
    )
    assert (outcome.delivered, outcome.status) == (True, 200)
    [sent] = destinations.received("zapier")
    assert sent["path"] == ZAPIER_PATH
    assert sent["body"] == {"email": "grace@example.com", "route": "outreach"}


def test_a_url_secret_with_surrounding_whitespace_still_works(destinations, put_secret):
    put_secret("slack-webhook-url", f"  {destinations.base}{SLACK_PATH}\n")
    assert hooks.post_to_hook("slack-webhook-url", {"text": "hi"}, event_id=EVENT_ID).delivered


@pytest.mark.parametrize("status", [429, 503])
def test_a_busy_or_failing_hook_is_retried(destinations, status):
    destinations.sandboxes.add_fault({"destination": "slack", "status": status})
    outcome = hooks.post_to_hook("slack-webhook-url", {"text": "hi"}, event_id=EVENT_ID)
    assert (outcome.delivered, outcome.retryable, outcome.status) == (False, True, status)


@pytest.mark.parametrize("secret", ["slack-webhook-url", "zapier-webhook-url"])
def test_a_hook_url_still_holding_the_placeholder_is_retried_without_posting(destinations, put_secret, secret):
    put_secret(secret, "REPLACE_ME")
    outcome = hooks.post_to_hook(secret, {"text": "hi"}, event_id=EVENT_ID)
    assert (outcome.delivered, outcome.retryable, outcome.reached) == (False, True, False)
    assert "placeholder" in outcome.reason
    assert destinations.sandboxes.deliveries.all() == []
