"""The lead ledger, through the real handlers and worker against moto and the sandboxes: a lead's
timeline from the Directus event to its Loops action, found by email, Directus item or event id;
round trips that never came back are overdue until a late callback closes them; `relay forget`
removes everything; a failing ledger write never stops a delivery."""

from __future__ import annotations

import io
import json
import time
from contextlib import redirect_stdout
from unittest import mock

import pytest

from clay_relay.ledger import email_key
from clay_relay.ledger.timeline import NoSuchLead, overdue_leads, resolve, timeline
from clay_relay.store import RelayTable
from relay_cli.__main__ import main as relay_main
from tests.invocations import (
    LambdaContext,
    call_handler,
    directus_flow_event,
    http_api_event,
    load_handler,
    relay_stack,
)
from tests.queues import end_hiding, receive, sqs_record
from tests.queues import run_worker as worker_run
from tests.recorders import emf_metrics

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

CALLBACK_TOKEN = "clay-callback-token-1"
ADA = "Ada.Lovelace@Example.com"


@pytest.fixture
def relay(aws, destinations, put_secret):
    """The Directus and Clay callback functions, the Clay pool on the sandbox Clay."""
    put_secret("clay-webhooks-leads", [{"url": f"{destinations.base}/clay/webhooks/leads-1"}])
    put_secret("clay-callback-tokens", CALLBACK_TOKEN)
    return load_handler("directus_trigger"), load_handler("clay_callback")


def directus_event(handler, body: dict, headers: dict | None = None) -> dict:
    event = directus_flow_event(body, headers=headers)
    status, answer = call_handler(handler, event)
    assert status == 202, answer
    return answer


def enriched(handler, lead: dict) -> dict:
    event = http_api_event(
        "/clay/enriched",
        lead,
        headers={"authorization": f"Bearer {CALLBACK_TOKEN}", "content-type": "application/json"},
    )
    status, answer = call_handler(handler, event)
    assert status == 202, answer
    return answer


def drain(aws) -> None:
    """Runs the worker over what is visible on the delivery queue until it is empty."""
    queue = aws.ref("DeliveryQueue")
    for _ in range(10):
        messages = receive(queue)
        if not messages:
            return
        worker_run([sqs_record(message, queue) for message in messages])


def create(key: int, email: str = ADA) -> dict:
    return {
        "event": "leads.items.create",
        "collection": "leads",
        "key": key,
        "payload": {"email": email, "first_name": "Ada", "company": "Analytical Engines"},
    }


def stages(found) -> list[tuple[str, str]]:
    return [(line.stage, line.outcome) for line in found.stages]


def test_a_lead_is_traced_from_its_directus_event_to_its_loops_event(relay, aws, destinations):
    directus, callback = relay
    directus_event(directus, create(7))
    drain(aws)
    enriched(callback, {"email": ADA, "icp_score": 85, "directus_id": 7, "first_name": "Ada"})
    drain(aws)

    table = RelayTable()
    found = timeline(table, resolve(table, "ada.lovelace@example.com"), time.time())
    assert stages(found) == [
        ("directus.accepted", "accepted"),
        ("clay.delivered", "delivered"),
        ("clay.enriched", "enriched"),
        ("loops.event", "delivered"),
        # The sandbox Directus has no item 7: the write-back is refused, and the trace says so.
        ("directus.writeback", "failed"),
        ("dead_letter", "dead-lettered"),
    ]
    assert found.stages[-1].detail["destination"] == "directus" and "403" in found.stages[-1].detail["reason"]
    clay = next(line for line in found.stages if line.stage == "clay.delivered")
    assert clay.detail["target"] == "leads" and clay.detail["submission"] == 1 and clay.detail["webhook_id"]
    accepted = found.stages[0].detail
    assert accepted == {"source": "leads", "key": 7, "event": "leads.items.create"}
    loops = next(line for line in found.stages if line.stage == "loops.event")
    assert loops.detail["idempotency_key"] == loops.event_id  # what Loops' logs show
    enrichment = next(line for line in found.stages if line.stage == "clay.enriched")
    assert enrichment.detail["route"] == "outreach" and enrichment.detail["score"] == 85
    assert found.round_trip is None  # closed by the callback
    assert found.email == "ada.lovelace@example.com" and "directus#leads/7" in found.aliases


def test_a_lead_whose_clay_is_down_shows_its_row_parked_then_delivered(relay, aws, destinations):
    directus, _ = relay
    destinations.sandboxes.add_fault({"destination": "clay", "status": 503, "times": 1})
    directus_event(directus, create(7))
    drain(aws)
    table = RelayTable()
    found = timeline(table, resolve(table, ADA), time.time())
    parked = found.stages[-1]
    assert (parked.stage, parked.outcome) == ("clay.delivered", "parked")
    assert "503" in str(parked.detail["reason"])

    end_hiding(aws.ref("DeliveryQueue"))  # the probe's hiding ends: Clay is back
    drain(aws)
    found = timeline(table, resolve(table, ADA), time.time())
    assert ("clay.delivered", "delivered") in stages(found)


def test_the_same_lead_is_found_by_its_directus_item_and_by_an_event_id(relay, aws):
    directus, _ = relay
    answer = directus_event(directus, create(7))
    drain(aws)
    table = RelayTable()
    assert resolve(table, "directus:leads/7") == email_key(ADA)
    assert resolve(table, answer["event_id"]) == email_key(ADA)
    with pytest.raises(NoSuchLead):
        resolve(table, "0123456789abcdef0123456789abcdef")
    with pytest.raises(ValueError, match="directus:<collection>/<key>"):
        resolve(table, "directus:leads")


def test_a_skipped_lead_shows_its_enrichment_and_the_skip(relay, aws):
    directus, callback = relay
    directus_event(directus, create(3, "grace@example.com"))
    drain(aws)
    enriched(callback, {"email": "grace@example.com", "icp_score": 20, "directus_id": 3})
    found = timeline(RelayTable(), email_key("grace@example.com"), time.time())
    assert stages(found)[-2:] == [("clay.enriched", "enriched"), ("route.skipped", "skipped")]


def test_a_lead_sent_to_clay_without_a_callback_is_overdue_until_a_late_callback_closes_it(relay, aws):
    directus, callback = relay
    directus_event(directus, create(9, "linus@example.com"))
    drain(aws)
    table = RelayTable()
    assert overdue_leads(table, time.time()) == []  # within the SLA (240 minutes)
    [late] = overdue_leads(table, time.time() + 241 * 60)
    assert (late.email, late.target, late.directus) == ("linus@example.com", "leads", ["leads/9"])
    assert timeline(table, email_key("linus@example.com"), time.time() + 241 * 60).round_trip["overdue"] is True

    enriched(callback, {"email": "linus@example.com", "icp_score": 60, "directus_id": 9})
    assert overdue_leads(table, time.time() + 241 * 60) == []


def test_the_overdue_check_publishes_how_many_leads_are_overdue(relay, aws, relay_env, capsys):
    directus, _ = relay
    relay_env(ENRICHMENT_SLA_SECONDS=1)
    directus_event(directus, create(11, "ken@example.com"))
    drain(aws)
    check = load_handler("enrichment_overdue")
    with mock.patch("clay_relay.ledger.overdue.time.time", return_value=time.time() + 5):
        answer = check({}, LambdaContext())
    assert answer == {"overdue": 1, "per_target": {"leads": 1}}
    published = [m for m in emf_metrics(capsys.readouterr().out) if m["name"] == "EnrichmentOverdue"]
    assert [(m["value"], m["dimensions"]["target"]) for m in published] == [([1.0], "leads")]


def test_relay_trace_and_leads_print_json_with_emails_masked_unless_revealed(relay, aws):
    directus, _ = relay
    directus_event(directus, create(12, "barbara@example.com"))
    drain(aws)
    stack = relay_stack(aws, local=True)
    with mock.patch("relay_cli.__main__.local_stack", return_value=stack):
        out = io.StringIO()
        with redirect_stdout(out):
            assert relay_main(["--local", "trace", "barbara@example.com", "--json"]) == 0
        traced = json.loads(out.getvalue())
        assert [s["stage"] for s in traced["stages"]] == ["directus.accepted", "clay.delivered"]
        assert traced["lead"]["email"] != "barbara@example.com" and "barbara" not in out.getvalue()
        out = io.StringIO()
        with redirect_stdout(out):
            assert relay_main(["--local", "trace", "barbara@example.com", "--json", "--reveal"]) == 0
        assert json.loads(out.getvalue())["lead"]["email"] == "barbara@example.com"
        assert relay_main(["--local", "trace", "nobody@example.com"]) == 1


def test_relay_forget_removes_the_ledger_and_the_dead_letters_of_the_lead(relay, aws, destinations):
    directus, callback = relay
    directus_event(directus, create(13, "mary@example.com"))
    drain(aws)
    enriched(callback, {"email": "mary@example.com", "icp_score": 95, "directus_id": 13})
    destinations.sandboxes.clear_faults()
    drain(aws)
    stack = relay_stack(aws, local=True)
    with mock.patch("relay_cli.__main__.local_stack", return_value=stack):
        out = io.StringIO()
        with redirect_stdout(out):
            assert relay_main(["--local", "--json", "forget", "Mary@Example.com"]) == 0
    report = json.loads(out.getvalue())
    assert report["ledger_items_removed"] >= 4
    table = RelayTable()
    with pytest.raises(NoSuchLead):
        timeline(table, email_key("mary@example.com"), time.time())
    assert resolve(table, "directus:leads/13") == "directus#leads/13"  # the link is gone too


def test_a_failing_ledger_write_never_stops_a_delivery(relay, aws, destinations, logs):
    directus, _ = relay
    directus_event(directus, create(21, "alan@example.com"))
    with mock.patch.object(RelayTable, "write_batch", side_effect=RuntimeError("DynamoDB is down")):
        drain(aws)
    assert [d for d in destinations.received("clay") if d.get("status") == 200]  # the row reached Clay
    assert receive(aws.ref("DeliveryQueue")) == []
    assert "could not write the ledger's round trips; delivery goes on" in logs.messages("WARNING")


def test_a_backfill_after_the_flow_is_the_same_create_and_makes_no_second_clay_row(relay, aws, destinations):
    """It did: the backfill's whole item and the Flow's submitted fields made two event ids, two rows."""
    directus, _ = relay
    directus_event(directus, create(1, "edsger@example.com"))
    drain(aws)
    backfilled = {**create(1, "edsger@example.com"), "payload": {"email": "edsger@example.com", "first_name": "E"}}
    assert directus_event(directus, backfilled, headers={"x-relay-origin": "backfill"})["duplicate"] is True
    drain(aws)
    found = timeline(RelayTable(), resolve(RelayTable(), "directus:leads/1"), time.time())
    assert stages(found) == [("directus.accepted", "accepted"), ("clay.delivered", "delivered")]
    assert [line.detail["submission"] for line in found.stages if line.stage == "clay.delivered"] == [1]
    assert len([d for d in destinations.received("clay") if d.get("status") == 200]) == 1
