"""The sandbox Loops sends every one of Loops' 17 event types, shaped as Loops' OpenAPI describes
them and signed as Loops signs them; the sandbox Directus finds items by part of a field
(`_contains`, `_icontains`), as the Loops feedback's item query needs; the forward receiver keeps
each body as it came, to verify its signature over."""

from __future__ import annotations

import pytest

from clay_relay import standard_webhooks
from clay_relay.config import LOOPS_EVENT_TYPES
from local_stack.sandboxes import LoopsSandbox, forward_receive, loops_event
from local_stack.sandboxes.directus_query import list_items, query_object
from tests.loops_requests import SECRET

# What each type carries besides the envelope and contactIdentity (Loops' OpenAPI `webhooks`).
REQUIRED = {
    "contact.created": {"contact"},
    "contact.deleted": set(),
    "contact.unsubscribed": set(),
    "contact.mailingList.subscribed": {"mailingList"},
    "contact.mailingList.unsubscribed": {"mailingList"},
    "campaign.email.sent": {"campaignId", "campaignName", "email", "mailingLists"},
    "loop.email.sent": {"loopId", "loopName", "email", "mailingLists"},
    "transactional.email.sent": {"transactionalId", "transactionalName", "email"},
    **{
        name: {"email", "sourceType"}
        for name in LOOPS_EVENT_TYPES
        if name.startswith("email.")  # delivered, opened, clicked, bounces, spam, (re)subscribes
    },
}


@pytest.mark.parametrize("event_type", [name for name in LOOPS_EVENT_TYPES if name != "testing.testEvent"])
def test_every_event_type_has_the_envelope_the_contact_identity_and_its_own_fields(event_type):
    event = loops_event(event_type, email="ada@example.com")
    assert (event["eventName"], event["webhookSchemaVersion"]) == (event_type, "1.0.0")
    assert isinstance(event["eventTime"], int)
    assert event["contactIdentity"]["email"] == "ada@example.com" and event["contactIdentity"]["userId"] is None
    assert REQUIRED[event_type] <= set(event)
    if "email" in REQUIRED[event_type]:
        assert {"id", "emailMessageId", "subject"} <= set(event["email"])
    if "sourceType" in event:
        id_field = {"campaign": "campaignId", "loop": "loopId", "transactional": "transactionalId"}[event["sourceType"]]
        assert event[id_field]


def test_the_test_event_is_only_the_envelope_and_its_message():
    assert set(loops_event("testing.testEvent")) == {"eventName", "eventTime", "webhookSchemaVersion", "message"}


def test_every_event_of_one_address_names_the_same_contact():
    assert (
        loops_event("email.delivered", email="ada@example.com")["contactIdentity"]["id"]
        == loops_event("contact.unsubscribed", email="Ada@Example.com")["contactIdentity"]["id"]
    )


def test_fields_given_replace_the_built_ones_and_the_source_type_picks_its_id():
    event = loops_event("email.hardBounced", email="ada@example.com", eventTime=1, sourceType="loop", loopId="wf1")
    assert (event["eventTime"], event["sourceType"], event["loopId"]) == (1, "loop", "wf1")
    assert "campaignId" not in event


@pytest.mark.parametrize(
    ("event_type", "fields", "says"),
    [
        ("email.bounced", {}, "no Loops event type"),
        ("email.opened", {"sourceType": "transactional"}, "has no sourceType"),
        ("email.delivered", {"sourceType": "sms"}, "has no sourceType"),
    ],
)
def test_an_event_loops_never_sends_is_refused(event_type, fields, says):
    with pytest.raises(ValueError, match=says):
        loops_event(event_type, **fields)


def test_the_sandbox_fires_an_event_of_the_type_asked_for_signed_as_loops_signs(http_stub):
    loops = LoopsSandbox(webhook_url=http_stub.answer("/loops/webhook"), webhook_secret=SECRET)
    sent = loops.fire_webhook({"type": "email.hardBounced", "email": "ada@example.com", "sourceType": "loop"})
    [received] = http_stub.received
    webhook_id = standard_webhooks.verify(received.headers, received.body, (SECRET,))
    assert webhook_id == sent["webhook_id"] and sent["status"] == 200
    assert received.json()["eventName"] == "email.hardBounced" and received.json()["sourceType"] == "loop"
    assert received.json()["contactIdentity"]["email"] == "ada@example.com"


@pytest.mark.parametrize("request_body", [{"type": "email.read"}, {"type": 3}, {"type": "email.opened", "email": 3}])
def test_the_sandbox_refuses_to_fire_what_loops_never_sends(http_stub, request_body):
    loops = LoopsSandbox(webhook_url=http_stub.answer("/loops/webhook"), webhook_secret=SECRET)
    with pytest.raises(ValueError):
        loops.fire_webhook(request_body)
    assert http_stub.received == []


def test_directus_finds_items_by_part_of_a_field_with_or_without_case():
    items = [{"id": 1, "email": "Ada@Example.com"}, {"id": 2, "email": "grace@example.com"}, {"id": 3, "email": None}]
    found = list_items(items, query_object("filter[email][_icontains]=ada@example.com&fields=id"))
    assert found == {"data": [{"id": 1}]}
    assert list_items(items, query_object("filter[email][_contains]=ada@example.com"))["data"] == []
    assert [i["id"] for i in list_items(items, query_object("filter[email][_contains]=example"))["data"]] == [2]


def test_the_forward_receiver_keeps_the_body_as_it_came():
    answer = forward_receive("POST", ["forward", "zapier"], {}, b'{"a":  1}')
    assert (answer.status, answer.note) == (200, {"raw": '{"a":  1}'})
    assert forward_receive("GET", ["forward", "zapier"], {}, b"").status == 404
