"""Full rows: a Directus update (which carries only the changed fields) reaches Clay as its item is now,
every mapped field read from Directus' items API by the worker, one request per batch and collection;
an item deleted before the read is skipped and recorded; Directus failing is retried, refusing is
dead-lettered with its message; `on_update: changed` keeps sending the changed fields only."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from clay_relay import item_state
from clay_relay.ledger import email_key
from clay_relay.ledger.timeline import timeline
from clay_relay.store import RelayTable
from tests.clay_relay.worker.conftest import CLAY_PATH
from tests.destinations import Answer
from tests.invocations import call_handler, directus_flow_event, load_handler
from tests.queues import receive, received_records, run_worker

ADA = {"id": 7, "email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace", "company": "Acme"}
MAPPED = ["email", "first_name", "last_name", "company", "website", "job_title"]  # the shipped leads source


@pytest.fixture
def directus(destinations):
    """The sandbox Directus (the relay's directus-api secret points at it), holding Ada as item 7."""
    destinations.sandboxes.directus.seed("leads", [dict(ADA)])
    return destinations


@pytest.fixture
def flow(aws):
    """What a Directus Flow does: POST /directus/leads with the event (the receiver's answer)."""
    handler = load_handler("directus_trigger")

    def post(body: dict) -> dict:
        event = directus_flow_event(body)
        status, answer = call_handler(handler, event)
        assert status == 202, answer
        return answer

    return post


def update(payload: dict, *keys: object) -> dict:
    return {"event": "leads.items.update", "payload": payload, "keys": list(keys or ["7"]), "collection": "leads"}


def work(aws, expected: int) -> set[str]:
    """The worker over what the receiver queued: the messages it reports failed (they come back)."""
    return run_worker(received_records(aws.ref("DeliveryQueue"), expected))


def directus_reads(directus) -> list[dict]:
    return [d for d in directus.received("directus") if d["method"] == "GET"]


def test_an_update_reaches_clay_with_every_mapped_field_of_the_item_including_its_email(aws, clay, directus, flow):
    """The Flow's update carries only `job_title`: Clay got a row it could not enrich (no email, no
    name, no company), and added it as a new row."""
    directus.sandboxes.directus.items["leads", "7"]["job_title"] = "CTO"
    answered = flow(update({"job_title": "CTO"}))
    assert work(aws, 1) == set()

    [posted] = clay.posted_to(CLAY_PATH)
    row = posted.json()
    assert row == {
        "email": "ada@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "company_name": "Acme",
        "company_domain": None,
        "job_title": "CTO",
        "directus_event": "leads.items.update",
        "directus_collection": "leads",
        "directus_id": "7",
        "relay_event_id": row["relay_event_id"],
    }
    columns = {k: v for k, v in row.items() if not k.startswith(("directus_", "relay_"))}
    assert row["relay_event_id"] == item_state.update_event_id("directus/leads", "leads", "7", columns)
    assert row["relay_event_id"] != answered["event_id"], "the row is the item's state, not the event's"
    trace = timeline(RelayTable(), email_key("ada@example.com"), time.time())
    accepted = next(line for line in trace.stages if line.stage == "directus.accepted")
    assert accepted.event_id == answered["event_id"], "the ledger keeps the event it was accepted with"


def test_one_directus_read_per_batch_and_collection_limited_to_the_mapped_fields(aws, clay, directus, flow):
    directus.sandboxes.directus.seed("leads", [{"id": 8, "email": "grace@example.com"}, {"id": 9, "email": "kay@x.io"}])
    flow(update({"company": "Initech"}, 7, "8", 9))
    assert work(aws, 3) == set()

    [read] = directus_reads(directus)
    query = parse_qs(urlsplit(read["path"]).query)
    assert urlsplit(read["path"]).path == "/directus/items/leads"
    assert json.loads(query["filter"][0]) == {"id": {"_in": ["7", "8", "9"]}}
    assert query["fields"] == [",".join(["id", *MAPPED])]
    assert read["headers"]["authorization"] == "Bearer directus-api-token"
    assert sorted(p.json()["email"] for p in clay.posted_to(CLAY_PATH)) == [
        "ada@example.com",
        "grace@example.com",
        "kay@x.io",
    ]


def test_two_updates_that_leave_the_item_in_one_state_make_one_row(aws, clay, directus, flow):
    directus.sandboxes.directus.items["leads", "7"].update(job_title="CTO", company="Initech")
    flow(update({"job_title": "CTO"}))
    flow(update({"company": "Initech"}))
    assert work(aws, 2) == set()
    [posted] = clay.posted_to(CLAY_PATH)
    assert (posted.json()["job_title"], posted.json()["company_name"]) == ("CTO", "Initech")


def test_an_item_deleted_before_the_read_is_not_sent_and_its_ledger_says_so(aws, clay, directus, flow):
    flow(update({"email": "gone@example.com"}, "41"))
    assert work(aws, 1) == set(), "settled: nothing will ever make the row"
    assert clay.posted_to(CLAY_PATH) == []
    assert receive(aws.ref("DeliveryQueue")) == [] and receive(aws.ref("DeadLetterQueue")) == []
    trace = timeline(RelayTable(), email_key("gone@example.com"), time.time())
    assert [(line.stage, line.outcome) for line in trace.stages][-1] == ("directus.gone", "gone")


def test_directus_failing_is_retried_and_nothing_is_sent_meanwhile(aws, clay, directus, flow):
    directus.sandboxes.add_fault({"destination": "directus", "status": 503, "times": 1})
    flow(update({"job_title": "CTO"}))
    records = received_records(aws.ref("DeliveryQueue"), 1)
    assert run_worker(records) == {records[0]["messageId"]}, "it comes back after a backoff"
    assert clay.posted_to(CLAY_PATH) == []
    assert receive(aws.ref("DeadLetterQueue")) == []


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (401, "INVALID_CREDENTIALS", "Invalid user credentials."),
        (403, "FORBIDDEN", "You don't have permission to access this."),
    ],
)
def test_directus_refusing_the_read_dead_letters_the_row_with_its_message(
    aws, clay, http_stub, put_secret, flow, status, code, message
):
    refusal = {"errors": [{"message": message, "extensions": {"code": code}}]}
    http_stub.answer("/directus/items/leads", Answer(status, body=json.dumps(refusal).encode()))
    put_secret("directus-api", {"url": http_stub.url("/directus"), "token": "t"})
    flow(update({"job_title": "CTO"}))
    assert work(aws, 1) == set()
    [letter] = receive(aws.ref("DeadLetterQueue"))
    reason = letter["MessageAttributes"]["reason"]["StringValue"]
    assert f"HTTP {status} ({code}: {message})" in reason
    assert "secret 'directus-api' must be able to read it" in reason
    assert clay.posted_to(CLAY_PATH) == []


def test_a_redirect_from_directus_is_refused_and_never_followed(aws, clay, http_stub, put_secret, flow):
    elsewhere = http_stub.answer("/elsewhere", Answer(200))
    http_stub.answer("/directus/items/leads", Answer(302, headers={"Location": elsewhere}))
    put_secret("directus-api", {"url": http_stub.url("/directus"), "token": "t"})
    flow(update({"job_title": "CTO"}))
    assert work(aws, 1) == set()
    assert http_stub.posted_to("/elsewhere") == []
    [letter] = receive(aws.ref("DeadLetterQueue"))
    assert "redirect refused: HTTP 302" in letter["MessageAttributes"]["reason"]["StringValue"]


def test_with_on_update_changed_only_the_changed_fields_go_and_directus_is_not_read(
    aws, clay, directus, use_config, flow
):
    use_config(lambda c: c["directus_sources"]["leads"].update(on_update="changed"))
    answered = flow(update({"job_title": "CTO"}))
    assert work(aws, 1) == set()
    [posted] = clay.posted_to(CLAY_PATH)
    assert posted.json() == {
        "job_title": "CTO",
        "directus_event": "leads.items.update",
        "directus_collection": "leads",
        "directus_id": "7",
        "relay_event_id": answered["event_id"],
    }
    assert directus_reads(directus) == []


def test_a_create_goes_as_the_flow_sent_it_without_reading_directus(aws, clay, directus, flow):
    create = {"event": "leads.items.create", "key": 7, "collection": "leads", "payload": {"email": "ada@example.com"}}
    answered = flow(create)
    assert work(aws, 1) == set()
    [posted] = clay.posted_to(CLAY_PATH)
    assert (
        posted.json()["relay_event_id"]
        == answered["event_id"]
        == item_state.create_event_id("directus/leads", "leads", 7)
    )
    assert directus_reads(directus) == []
    claim = RelayTable().get(f"event#{answered['event_id']}")
    assert item_state.recorded_columns(claim) == {"email": item_state.value_hash("ada@example.com")}


def test_the_claim_of_a_full_row_keeps_every_mapped_column(aws, clay, directus, flow):
    flow(update({"job_title": "CTO"}))
    assert work(aws, 1) == set()
    [posted] = clay.posted_to(CLAY_PATH)
    claim = RelayTable().get(f"event#{posted.json()['relay_event_id']}")
    recorded = item_state.recorded_columns(claim)
    assert set(recorded) == {"email", "first_name", "last_name", "company_name", "company_domain", "job_title"}


def test_an_item_too_big_for_a_clay_row_is_dead_lettered_not_sent(aws, clay, directus, flow):
    directus.sandboxes.directus.items["leads", "7"]["company"] = "x" * 100_001
    flow(update({"job_title": "CTO"}))
    assert work(aws, 1) == set()
    [letter] = receive(aws.ref("DeadLetterQueue"))
    assert "Clay accepts at most 100000" in letter["MessageAttributes"]["reason"]["StringValue"]
    assert clay.posted_to(CLAY_PATH) == []
