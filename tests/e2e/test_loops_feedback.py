"""The Loops feedback loop on the running local stack (issue 17's done-when): the sandbox Loops sends
signed events of any type; a hard bounce sets the status of the lead's item in the sandbox Directus
(and its Flow's echo never becomes a Clay row); an unsubscribe older than a resubscribe leaves the
lead subscribed; the forward endpoint gets the event with a signature the `standardwebhooks`
library verifies; `relay --local trace` shows the email stages."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime

import requests
from standardwebhooks.webhooks import Webhook

from tests.e2e.conftest import FORWARD_SECRET, RunningStack

DIRECTUS_AUTH = {"Authorization": "Bearer e2e-directus-api-token"}


def fire(stack: RunningStack, event_type: str, email: str, **fields) -> dict:
    """The sandbox Loops sends a signed `event_type` event about `email` to the relay."""
    sent = requests.post(
        f"{stack.gateway}/_local/loops/webhook", json={"type": event_type, "email": email, **fields}, timeout=10
    ).json()
    assert sent["status"] == 202, sent
    return sent


def new_item(stack: RunningStack, email: str) -> dict:
    """A lead that was in Directus before the relay (seeded: no Flow fires)."""
    answer = requests.post(f"{stack.gateway}/_local/directus/items/leads", json=[{"email": email}], timeout=10)
    return answer.json()["data"][0]


def item(stack: RunningStack, key: object) -> dict:
    """The item as a person sees it in the sandbox Directus (GET /items/leads/<id>)."""
    return requests.get(f"{stack.sandboxes}/directus/items/leads/{key}", headers=DIRECTUS_AUTH, timeout=10).json()[
        "data"
    ]


def trace(stack: RunningStack, capsys, email: str) -> list[tuple[str, str]]:
    capsys.readouterr()
    if stack.relay("--json", "trace", email) != 0:
        return []
    return [(s["stage"], s["outcome"]) for s in json.loads(capsys.readouterr().out)["stages"]]


def test_a_signed_hard_bounce_sets_the_items_status_to_bounced_and_its_echo_makes_no_clay_row(stack):
    started = datetime.now(UTC).isoformat(timespec="milliseconds")
    email = f"Bounce-{uuid.uuid4().hex[:8]}@Example.com"  # as typed into the CMS
    lead = new_item(stack, email)
    fire(stack, "email.hardBounced", email.lower())

    bounced = stack.wait_for(lambda: item(stack, lead["id"]).get("email_status") == "bounced", timeout=30)
    assert bounced, item(stack, lead["id"])
    assert item(stack, lead["id"])["email_status_at"].endswith("Z")

    # A user's edit afterwards is a Clay row; the Flow's echo of the feedback before it was not.
    name = f"Bo-{uuid.uuid4().hex[:6]}"
    requests.patch(
        f"{stack.sandboxes}/directus/items/leads/{lead['id']}",
        json={"first_name": name},
        headers=DIRECTUS_AUTH,
        timeout=10,
    )

    def rows() -> list[dict]:
        return [
            d
            for d in stack.deliveries(destination="clay", status=200)
            if d["at"] >= started and d["body"].get("directus_id") in (lead["id"], str(lead["id"]))
        ]

    assert stack.wait_for(lambda: rows(), timeout=30)
    assert [row["body"].get("first_name") for row in rows()] == [name]


def test_an_unsubscribe_arriving_after_a_later_resubscribe_leaves_the_lead_subscribed(stack, capsys):
    email = f"resub-{uuid.uuid4().hex[:8]}@example.com"
    lead = new_item(stack, email)
    now = int(time.time())
    fire(stack, "email.resubscribed", email, eventTime=now)
    assert stack.wait_for(lambda: item(stack, lead["id"]).get("email_status") == "subscribed", timeout=30)

    fire(stack, "contact.unsubscribed", email, eventTime=now - 60)  # Loops' older event, delivered late

    assert stack.wait_for(lambda: ("directus.feedback", "superseded") in trace(stack, capsys, email), timeout=30)
    assert item(stack, lead["id"])["email_status"] == "subscribed"


def test_an_email_no_directus_item_has_is_unmatched_not_dead_lettered(stack, capsys):
    email = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    fire(stack, "email.spamReported", email)
    assert stack.wait_for(lambda: ("directus.feedback", "unmatched") in trace(stack, capsys, email), timeout=30)


def test_the_forward_endpoint_gets_the_event_with_a_signature_the_reference_library_verifies(stack):
    email = f"fwd-{uuid.uuid4().hex[:8]}@example.com"
    sent = fire(stack, "email.delivered", email)

    def forwarded() -> list[dict]:
        return [
            d
            for d in stack.deliveries(destination="forward", path="/forward/archive")
            if d["headers"].get("webhook-id") == sent["webhook_id"]
        ]

    [delivery] = stack.wait_for(forwarded, timeout=30)
    headers = {name: delivery["headers"][name] for name in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    assert Webhook(FORWARD_SECRET).verify(delivery["raw"], headers) == sent["event"]


def test_relay_trace_shows_the_email_stages(stack, capsys):
    email = f"trace-{uuid.uuid4().hex[:8]}@example.com"
    new_item(stack, email)
    for event_type in ("campaign.email.sent", "email.delivered", "email.hardBounced"):
        fire(stack, event_type, email)
    expected = [
        ("loops.email_sent", "sent"),
        ("loops.email_delivered", "delivered"),
        ("loops.email_hard_bounced", "hard-bounced"),
        ("directus.feedback", "delivered"),
    ]
    assert stack.wait_for(lambda: all(stage in trace(stack, capsys, email) for stage in expected), timeout=30), trace(
        stack, capsys, email
    )
    capsys.readouterr()
    assert stack.relay("trace", email) == 0
    printed = capsys.readouterr().out
    assert "loops.email_hard_bounced" in printed and "campaign_id=" in printed and email not in printed
