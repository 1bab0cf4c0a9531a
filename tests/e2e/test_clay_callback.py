"""Clay's enriched leads are acted on exactly once, by ICP score: Loops outreach event, Loops
nurture contact, skip; Slack for hot leads; Zapier; write-back into Directus without a loop."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.e2e.conftest import RunningStack


def sent_to(stack: RunningStack, destination: str, email: str | None = None, path: str | None = None) -> list[dict]:
    found = [d for d in stack.deliveries(destination=destination) if d["status"] in (200, 204)]
    if path:
        found = [d for d in found if d["path"].endswith(path)]
    if email:
        found = [d for d in found if email in json.dumps(d["body"])]
    return found


def settle(stack: RunningStack, seconds: float = 2.0) -> None:
    stack.wait_for(lambda: False, timeout=seconds)


def test_a_hot_lead_starts_outreach_in_loops_and_is_announced_in_slack(stack):
    status, body = stack.replay("clay/hot")

    assert status == 202
    assert body["route"] == "outreach" and body["hot"] is True and body["duplicate"] is False
    assert set(body["actions"]) == {"loops_event", "slack_message", "zapier_post", "directus_patch"}
    events = stack.wait_for(lambda: sent_to(stack, "loops", "grace.hopper@example.com", "/v1/events/send"))
    assert events[0]["body"]["eventName"] == "clay_outreach"
    assert events[0]["body"]["eventProperties"]["icpScore"] == 95
    assert events[0]["headers"]["idempotency-key"]
    slack = stack.wait_for(lambda: sent_to(stack, "slack", "Grace Hopper"))
    assert slack[0]["body"]["text"] == "Hot lead: Grace Hopper, VP Engineering at Compiler Co (ICP 95)"
    assert stack.wait_for(lambda: sent_to(stack, "zapier", "grace.hopper@example.com"))
    settle(stack)
    assert len(sent_to(stack, "loops", "grace.hopper@example.com")) == 1
    assert len(sent_to(stack, "slack", "Grace Hopper")) == 1


def test_an_outreach_lead_gets_a_loops_event_and_no_slack_message(stack):
    status, body = stack.replay("clay/outreach")

    assert status == 202 and body["route"] == "outreach" and body["hot"] is False
    assert stack.wait_for(lambda: sent_to(stack, "loops", "alan.turing@example.com", "/v1/events/send"))
    settle(stack)
    assert not sent_to(stack, "slack", "Alan Turing")


def test_a_nurture_lead_joins_the_nurture_list_in_loops(stack):
    status, body = stack.replay("clay/nurture")

    assert status == 202 and body["route"] == "nurture" and body["actions"] == ["loops_contact", "zapier_post"]
    contacts = stack.wait_for(lambda: sent_to(stack, "loops", "edsger.dijkstra@example.com", "/v1/contacts/update"))
    assert contacts[0]["method"] == "PUT"
    assert contacts[0]["body"]["mailingLists"] == {"nurture-list": True}
    assert contacts[0]["body"]["firstName"] == "Edsger"


def test_a_low_score_lead_is_skipped_and_nothing_is_sent(stack):
    status, body = stack.replay("clay/skip")

    assert status == 202 and body["route"] == "skip" and body["actions"] == []
    settle(stack)
    assert not [d for d in stack.deliveries() if "carl.cold@example.com" in json.dumps(d["body"])]


def test_numbers_as_strings_and_messy_cells_are_coerced(stack):
    status, body = stack.replay("clay/numbers-as-strings")

    assert status == 202 and body["route"] == "outreach"
    events = stack.wait_for(lambda: sent_to(stack, "loops", "barbara.liskov@example.com", "/v1/events/send"))
    properties = events[0]["body"]["eventProperties"]
    assert events[0]["body"]["email"] == "barbara.liskov@example.com"
    assert properties["icpScore"] == 88 and properties["employeeCount"] == 1250
    assert "industry" not in properties and "personalizedOpener" not in properties, "empty cells are left out"


def test_leads_that_cannot_be_leads_and_bad_tokens_are_rejected_with_clear_json(stack):
    status, body = stack.replay("clay/missing-email")
    assert status == 422
    assert body["fields"] == [{"field": "email", "problem": "a lead needs an email address"}]

    status, body = stack.replay("clay/bad-token")
    assert status == 401 and body["error"] == "unauthorized"

    answer = stack.post_lead({"email": "x@example.com", "icp_score": "very high"})
    assert answer.status_code == 422 and answer.json()["fields"][0]["field"] == "icp_score"


def test_a_lead_signed_with_a_timestamped_hmac_is_accepted_and_a_bad_or_body_only_signature_is_not(stack):
    email = f"signed-{uuid.uuid4().hex[:8]}@example.com"
    raw = json.dumps({"email": email, "icp_score": 55}).encode()
    timestamp = int(time.time())
    good = hmac.new(b"e2e-signing-key", f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()
    body_only = hmac.new(b"e2e-signing-key", raw, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json"}

    def post(data: bytes, signature: str) -> requests.Response:
        return requests.post(
            f"{stack.gateway}/clay/enriched", data=data, timeout=10, headers={**headers, "x-relay-signature": signature}
        )

    accepted = post(raw, f"t={timestamp},v1={good}")
    forged = post(raw + b" ", f"t={timestamp},v1={good}")
    replayable = post(raw, f"sha256={body_only}")

    assert accepted.status_code == 202 and accepted.json()["route"] == "nurture"
    assert forged.status_code == 401
    assert replayable.status_code == 401


def test_fifty_identical_callbacks_at_once_make_one_loops_event(stack):
    email = f"burst-{uuid.uuid4().hex[:8]}@example.com"
    lead = {"email": email, "first_name": "Burst", "icp_score": "85"}
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda _: stack.post_lead(lead), range(50)))

    assert {a.status_code for a in answers} == {202}
    assert len({a.json()["event_id"] for a in answers}) == 1
    assert stack.wait_for(lambda: sent_to(stack, "loops", email, "/v1/events/send"), timeout=30)
    settle(stack, 4)
    assert len(sent_to(stack, "loops", email, "/v1/events/send")) == 1


def test_the_write_back_reaches_directus_without_a_second_clay_row_while_a_user_edit_makes_one(stack):
    directus = f"{stack.sandboxes}/directus/items/leads"
    auth = {"Authorization": "Bearer e2e-directus-api-token"}
    email = f"loop-{uuid.uuid4().hex[:8]}@example.com"
    item = requests.post(directus, json={"email": email, "first_name": "Lin"}, headers=auth, timeout=10).json()["data"]

    def clay_rows():
        return [
            d
            for d in stack.deliveries(destination="clay", status=200)
            if d["body"].get("directus_id") in (item["id"], str(item["id"]))
        ]

    assert stack.wait_for(lambda: len(clay_rows()) == 1), "creating the item made its Clay row"
    lead = {"email": email, "first_name": "Lin", "icp_score": 70, "industry": "Robotics", "directus_id": item["id"]}
    assert stack.post_lead(lead).json()["actions"] == ["loops_contact", "zapier_post", "directus_patch"]
    patches = stack.wait_for(lambda: sent_to(stack, "directus", path=f"/items/leads/{item['id']}"))
    assert patches[0]["method"] == "PATCH"
    assert patches[0]["body"] == {"icp_score": 70, "industry": "Robotics"}
    settle(stack, 3)  # the sandbox Directus has fired items.update back at the relay by now
    assert len(clay_rows()) == 1, "the write-back's echo made no second row"

    requests.patch(f"{directus}/{item['id']}", json={"first_name": "Lynn", "industry": "AI"}, headers=auth, timeout=10)
    assert stack.wait_for(lambda: len(clay_rows()) == 2), "a user's edit still goes to Clay"
    assert clay_rows()[-1]["body"]["first_name"] == "Lynn"
