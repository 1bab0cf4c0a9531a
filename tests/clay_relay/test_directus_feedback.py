"""Loops' suppression events written back into Directus, through the real Loops forwarder and
worker against moto and the sandbox Directus (or a local stub where Directus must answer oddly):
the lead's item is found by the ledger or by its email (case-insensitively), PATCHed once per
webhook-id, in event-time order (an older event never overwrites a newer state, even when the two
race), dead-lettered with Directus' message when Directus refuses, `unmatched` (counted, in the
trace, never dead-lettered) when no item is the lead's, and its Flow echo never becomes a Clay row."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from unittest import mock

import pytest

from clay_relay.ledger import email_hash, email_key
from clay_relay.ledger.timeline import NoSuchLead, timeline
from clay_relay.store import RelayTable
from local_stack.sandboxes import loops_event
from relay_cli.__main__ import main as relay_main
from tests.destinations import Answer
from tests.invocations import call_handler, directus_flow_event, load_handler, relay_stack
from tests.loops_requests import SECRET, signed_webhook
from tests.queues import make_visible_again, receive, sqs_record
from tests.queues import run_worker as worker_run
from tests.recorders import metric_names

STATUS_AT = {"email_status_at": "{event_time}"}
FEEDBACK = {
    "events": {
        "contact.unsubscribed": {"email_status": "unsubscribed", **STATUS_AT},
        "email.unsubscribed": {"email_status": "unsubscribed", **STATUS_AT},
        "email.hardBounced": {"email_status": "bounced", **STATUS_AT},
        "email.spamReported": {"email_status": "complained", **STATUS_AT},
        "contact.deleted": {"email_status": "deleted", **STATUS_AT},
        "email.resubscribed": {"email_status": "subscribed", **STATUS_AT},
    }
}
ADA = "ada.lovelace@example.com"
T = 1_800_000_000  # an event time (2027-01-15)


@pytest.fixture
def configure(aws, destinations, use_config, put_secret):
    def apply(feedback: dict | None = None) -> None:
        def edit(config: dict) -> None:
            config["loops_webhook"]["directus_feedback"] = FEEDBACK if feedback is None else feedback

        use_config(edit)
        put_secret("loops-webhook-secret", SECRET)

    return apply


@pytest.fixture
def loops(configure):
    configure()
    return load_handler("loops_forwarder")


def fire(handler, event_type: str, email: str = ADA, **fields) -> dict:
    status, answer = call_handler(handler, signed_webhook(loops_event(event_type, email=email, **fields)))
    assert status == 202, answer
    return answer


def drain(aws) -> list[dict]:
    """Runs the worker over what is visible on the delivery queue until it is empty; the messages."""
    queue, seen = aws.ref("DeliveryQueue"), []
    for _ in range(10):
        messages = receive(queue)
        if not messages:
            return seen
        seen += messages
        worker_run([sqs_record(message, queue) for message in messages])
    return seen


def seed(destinations, *items: dict) -> None:
    destinations.sandboxes.directus.seed("leads", list(items))


def item(destinations, key: int) -> dict:
    """The item's fields (without the date_updated each PATCH sets)."""
    fields = destinations.sandboxes.directus.items[("leads", str(key))]
    return {name: value for name, value in fields.items() if name != "date_updated"}


def patches(destinations) -> list[dict]:
    return [d for d in destinations.received("directus") if d["method"] == "PATCH"]


def stages(email: str = ADA) -> list[tuple[str, str]]:
    return [(line.stage, line.outcome) for line in timeline(RelayTable(), email_key(email), time.time()).stages]


def iso(at: int) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


# --- found and written ----------------------------------------------------------------------------------
def test_a_hard_bounce_sets_the_status_of_the_item_with_that_email_whatever_its_case(loops, aws, destinations):
    seed(destinations, {"id": 7, "email": "Ada.Lovelace@Example.com"}, {"id": 8, "email": "grace@example.com"})
    answer = fire(loops, "email.hardBounced", eventTime=T)
    assert answer["actions"] == ["directus_feedback"]
    drain(aws)

    assert item(destinations, 7) == {
        "id": 7,
        "email": "Ada.Lovelace@Example.com",
        **{
            "email_status": "bounced",
            "email_status_at": iso(T),
        },
    }
    assert "email_status" not in item(destinations, 8)
    [query] = [d for d in destinations.received("directus") if d["method"] == "GET"]
    assert "filter%5Bemail%5D%5B_icontains%5D=ada.lovelace%40example.com" in query["path"]
    [patch] = patches(destinations)
    assert patch["path"] == "/directus/items/leads/7"
    assert patch["headers"]["authorization"] == "Bearer directus-api-token"  # the write-back's API secret


@pytest.mark.parametrize(
    ("event_type", "status"),
    [
        ("contact.unsubscribed", "unsubscribed"),
        ("email.unsubscribed", "unsubscribed"),
        ("email.spamReported", "complained"),
        ("contact.deleted", "deleted"),
        ("email.resubscribed", "subscribed"),
    ],
)
def test_each_configured_event_type_sets_its_own_values(loops, aws, destinations, event_type, status):
    seed(destinations, {"id": 3, "email": ADA})
    fire(loops, event_type, eventTime=T)
    drain(aws)
    assert item(destinations, 3)["email_status"] == status


def test_an_event_type_the_feedback_does_not_name_writes_nothing(loops, aws, destinations):
    seed(destinations, {"id": 3, "email": ADA})
    answer = fire(loops, "email.delivered")
    assert "actions" not in answer  # kept in the ledger only
    drain(aws)
    assert destinations.received("directus") == []


def test_every_item_of_the_lead_is_written(loops, aws, destinations):
    seed(destinations, {"id": 1, "email": ADA}, {"id": 2, "email": ADA.upper()}, {"id": 3, "email": "x" + ADA})
    fire(loops, "email.spamReported", eventTime=T)
    drain(aws)
    assert [p["path"] for p in patches(destinations)] == ["/directus/items/leads/1", "/directus/items/leads/2"]
    assert "email_status" not in item(destinations, 3)


def test_the_same_webhook_id_delivered_twice_is_written_once(loops, aws, destinations):
    seed(destinations, {"id": 7, "email": ADA})
    body = loops_event("email.hardBounced", email=ADA, eventTime=T)
    first = signed_webhook(body, webhook_id="msg_bounce_1")
    again = signed_webhook(body, webhook_id="msg_bounce_1", timestamp=int(time.time()) + 1)
    call_handler(loops, first)
    drain(aws)
    status, answer = call_handler(loops, again)
    assert (status, answer["duplicate"]) == (202, True)
    drain(aws)
    assert len(patches(destinations)) == 1


# --- event-time order -------------------------------------------------------------------------------------
def test_an_unsubscribe_arriving_after_a_later_resubscribe_leaves_the_lead_subscribed(loops, aws, destinations):
    seed(destinations, {"id": 7, "email": ADA})
    fire(loops, "email.resubscribed", eventTime=T + 60)
    drain(aws)
    fire(loops, "contact.unsubscribed", eventTime=T)
    drain(aws)

    assert item(destinations, 7)["email_status"] == "subscribed"
    assert item(destinations, 7)["email_status_at"] == iso(T + 60)
    assert len(patches(destinations)) == 1  # the older event wrote nothing
    assert ("directus.feedback", "superseded") in stages()
    assert receive(aws.ref("DeadLetterQueue")) == []


def test_a_later_event_after_an_earlier_one_is_written(loops, aws, destinations):
    seed(destinations, {"id": 7, "email": ADA})
    fire(loops, "contact.unsubscribed", eventTime=T)
    drain(aws)
    fire(loops, "email.resubscribed", eventTime=T + 60)
    drain(aws)
    assert item(destinations, 7)["email_status"] == "subscribed"


@pytest.mark.parametrize("first", ["email.hardBounced", "contact.unsubscribed"])
def test_of_two_events_of_the_same_second_the_one_listed_later_in_the_configuration_wins(
    loops, aws, destinations, first
):
    # Loops sends contact.unsubscribed with every email.hardBounced, at the same time.
    seed(destinations, {"id": 7, "email": ADA})
    second = {"email.hardBounced": "contact.unsubscribed", "contact.unsubscribed": "email.hardBounced"}[first]
    fire(loops, first, eventTime=T)
    drain(aws)
    fire(loops, second, eventTime=T)
    drain(aws)
    assert item(destinations, 7)["email_status"] == "bounced"


def test_a_newer_event_that_raced_an_older_one_is_written_again_after_it(loops, aws, destinations):
    """Two workers, the same moment: the newer event's marks land while the older one's PATCH is
    on its way, and Directus applies the older PATCH last. The older event's re-check writes the
    newer values again."""
    seed(destinations, {"id": 7, "email": ADA})
    fire(loops, "contact.unsubscribed", eventTime=T)
    table = RelayTable()
    real_update_if = RelayTable.update_if

    def newer_event_lands_meanwhile(self, pk, *args):
        applied = real_update_if(self, pk, *args)
        # The resubscribe (a minute later) claimed the fields and was written before this PATCH.
        real_update_if(
            table,
            pk,
            "SET #m = :m, #v = :v",
            "attribute_exists(pk)",
            {"#m": "mark.email_status", "#v": "value.email_status"},
            {":m": {"N": str((T + 60) * 1000 + 5)}, ":v": {"S": json.dumps("subscribed")}},
        )
        item(destinations, 7)["email_status"] = "subscribed"
        return applied

    with mock.patch.object(RelayTable, "update_if", newer_event_lands_meanwhile):
        drain(aws)

    assert item(destinations, 7)["email_status"] == "subscribed"
    assert [p["body"] for p in patches(destinations)] == [
        {"email_status": "unsubscribed", "email_status_at": iso(T)},
        {"email_status": "subscribed"},
    ]


# --- the lead ledger finds the item -----------------------------------------------------------------------
@pytest.fixture
def flow(aws, destinations, put_secret):
    """The Directus Flow of the `leads` source, and the Clay pool on the sandbox Clay."""
    put_secret("clay-webhooks-leads", [{"url": f"{destinations.base}/clay/webhooks/leads-1"}])
    handler = load_handler("directus_trigger")

    def created(key: int, email: str) -> None:
        body = {"event": "leads.items.create", "collection": "leads", "key": key, "payload": {"email": email}}
        event = directus_flow_event(body)
        assert call_handler(handler, event)[0] == 202

    return created


def test_an_item_the_ledger_knows_is_written_without_asking_directus(loops, flow, aws, destinations):
    flow(42, ADA)
    drain(aws)
    seed(destinations, {"id": 42, "email": "someone.else@example.com"})  # its email changed since
    fire(loops, "email.hardBounced", eventTime=T)
    drain(aws)
    assert item(destinations, 42)["email_status"] == "bounced"
    assert [d["method"] for d in destinations.received("directus")] == ["PATCH"]  # no query


def test_an_item_the_ledger_knows_but_directus_no_longer_has_is_looked_up_by_email(loops, flow, aws, destinations):
    flow(42, ADA)
    drain(aws)
    seed(destinations, {"id": 43, "email": ADA})  # item 42 was deleted, the lead re-entered as 43
    fire(loops, "email.hardBounced", eventTime=T)
    drain(aws)
    assert item(destinations, 43)["email_status"] == "bounced"
    assert [(d["method"], d["status"]) for d in destinations.received("directus")] == [
        ("PATCH", 403),
        ("GET", 200),
        ("PATCH", 200),
    ]


def test_the_feedback_is_in_the_leads_trace_with_the_email_it_is_about(loops, flow, aws, destinations):
    flow(42, ADA)
    drain(aws)
    seed(destinations, {"id": 42, "email": ADA})
    fire(loops, "email.hardBounced", eventTime=T, sourceType="loop")
    drain(aws)
    found = timeline(RelayTable(), email_key(ADA), time.time())
    assert [(line.stage, line.outcome) for line in found.stages][-2:] == [
        ("loops.email_hard_bounced", "hard-bounced"),
        ("directus.feedback", "delivered"),
    ]
    bounced, feedback = found.stages[-2:]
    assert bounced.detail["type"] == "email.hardBounced" and bounced.detail["source"] == "loop"
    assert bounced.detail["workflow_id"] and bounced.detail["subject"] == "Welcome aboard"
    assert feedback.detail["collection"] == "leads" and "email_status=bounced" in feedback.detail["fields"]


# --- unmatched, refused, retried --------------------------------------------------------------------------
def test_an_email_no_item_has_is_unmatched_counted_and_in_the_trace_not_dead_lettered(loops, aws, destinations, capsys):
    seed(destinations, {"id": 1, "email": "grace@example.com"})
    capsys.readouterr()
    fire(loops, "email.hardBounced", eventTime=T)
    drain(aws)
    assert patches(destinations) == []
    assert receive(aws.ref("DeadLetterQueue")) == []
    assert "LoopsFeedbackUnmatched" in metric_names(capsys.readouterr().out)
    assert stages()[-1] == ("directus.feedback", "unmatched")


def stub_directus(http_stub, put_secret, patch_answers: list[Answer]) -> None:
    http_stub.answer("/items/leads", Answer(200, body=json.dumps({"data": [{"id": 7, "email": ADA}]}).encode()))
    http_stub.answer("/items/leads/7", *patch_answers)
    put_secret("directus-api", {"url": http_stub.url(""), "token": "t"})


def test_a_patch_directus_refuses_is_dead_lettered_with_directus_message(loops, aws, http_stub, put_secret):
    refusal = {"errors": [{"message": 'Field "email_status" doesn\'t exist.', "extensions": {"code": "INVALID"}}]}
    stub_directus(http_stub, put_secret, [Answer(400, body=json.dumps(refusal).encode())])
    fire(loops, "email.hardBounced", eventTime=T)
    drain(aws)
    [letter] = receive(aws.ref("DeadLetterQueue"))
    reason = letter["MessageAttributes"]["reason"]["StringValue"]
    assert "directus answered HTTP 400" in reason and 'Field \\"email_status\\" doesn' in reason


def test_a_patch_that_failed_is_retried_and_then_written(loops, aws, http_stub, put_secret):
    stub_directus(http_stub, put_secret, [Answer(503), Answer(200)])
    fire(loops, "email.hardBounced", eventTime=T)
    messages = receive(aws.ref("DeliveryQueue"))
    records = [sqs_record(message, aws.ref("DeliveryQueue")) for message in messages]
    assert worker_run(records) == {messages[0]["MessageId"]}  # comes back later
    make_visible_again(aws.ref("DeliveryQueue"), records)
    drain(aws)
    sent = [r for r in http_stub.received if r.method == "PATCH"]
    assert [r.json()["email_status"] for r in sent] == ["bounced", "bounced"]  # its own mark let it through
    assert receive(aws.ref("DeadLetterQueue")) == []


# --- never echoed back to Clay ------------------------------------------------------------------------------
def test_the_update_directus_fires_for_the_feedback_is_an_echo_not_a_clay_row(configure, flow, aws, use_config):
    def every_field_to_clay(config: dict) -> None:  # without the echo check, the update would be a row
        config["loops_webhook"]["directus_feedback"] = FEEDBACK
        config["directus_sources"]["leads"]["fields"] = None

    use_config(every_field_to_clay)
    handler = load_handler("directus_trigger")
    body = {
        "event": "leads.items.update",
        "collection": "leads",
        "keys": ["7"],
        "payload": {"email_status": "bounced", "email_status_at": iso(T)},
    }
    event = directus_flow_event(body)
    status, answer = call_handler(handler, event)
    assert (status, answer["skipped"]) == (202, "echo of the relay's own write-back (only enrichment fields changed)")
    assert receive(aws.ref("DeliveryQueue")) == []


# --- erasure ---------------------------------------------------------------------------------------------
def test_relay_forget_removes_the_leads_feedback_state_too(loops, aws, destinations):
    seed(destinations, {"id": 7, "email": ADA})
    fire(loops, "email.hardBounced", eventTime=T)
    drain(aws)
    state = f"feedback#{email_hash(ADA)}"
    assert RelayTable().get(state) is not None
    with mock.patch("relay_cli.__main__.local_stack", return_value=relay_stack(aws, local=True)):
        assert relay_main(["--local", "--json", "forget", ADA]) == 0
    assert RelayTable().get(state) is None
    with pytest.raises(NoSuchLead):
        timeline(RelayTable(), email_key(ADA), time.time())
