"""A lead's whole round trip on one machine (`make run ARGS="--clay-enrich"`): an item created in the
sandbox Directus becomes a Clay row, the sandbox Clay's HTTP API column sends it back enriched, and
the lead ends in Loops. With `--enrichment-sla` the scheduled functions run every few seconds."""

from __future__ import annotations

import json

import pytest
import requests

from local_stack.sandboxes import icp_score_for
from tests.e2e.conftest import RunningStack, start_stack

DIRECTUS_API_TOKEN = "e2e-directus-api-token"  # the sandbox Directus' token (E2E_SECRETS' DIRECTUS_API)


@pytest.fixture(scope="module")
def enriching_stack(tmp_path_factory) -> RunningStack:
    yield from start_stack(
        tmp_path_factory.mktemp("enriching-stack"),
        extra_args=("--clay-enrich", "--clay-enrich-delay", "1", "--enrichment-sla", "2"),
    )


def create_lead(stack: RunningStack, fields: dict) -> dict:
    """As a Directus user would: the item is stored and the sandbox's Flow calls the relay."""
    answer = requests.post(
        f"{stack.sandboxes}/directus/items/leads",
        json=fields,
        headers={"Authorization": f"Bearer {DIRECTUS_API_TOKEN}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def loops_requests_for(stack: RunningStack, email: str) -> list[dict]:
    return [
        d
        for d in stack.deliveries(destination="loops")
        if d["status"] == 200 and isinstance(d["body"], dict) and d["body"].get("email") == email
    ]


def test_an_item_created_in_directus_is_enriched_by_clay_and_ends_in_loops(enriching_stack):
    stack = enriching_stack
    item = create_lead(stack, {"email": "ada@example.com", "first_name": "Ada", "company": "Analytical Engines"})

    sent = stack.wait_for(lambda: loops_requests_for(stack, "ada@example.com"), timeout=60)
    assert sent, "the lead reached Loops"
    assert sent[0]["path"].endswith("/v1/events/send") and sent[0]["body"]["eventName"] == "clay_outreach"
    assert sent[0]["body"]["eventProperties"]["icpScore"] == icp_score_for("ada@example.com") == 91

    (row,) = [d for d in stack.deliveries(destination="clay") if d["body"]["email"] == "ada@example.com"]
    assert row["row_created"] is True
    (callback,) = [d for d in stack.deliveries(destination="clay_callback") if d["body"]["email"] == "ada@example.com"]
    assert callback["status"] == 202 and callback["answer"]["route"] == "outreach"
    assert callback["body"] == {
        "email": "ada@example.com",
        "directus_id": item["id"],
        "first_name": "Ada",
        "company_name": "Analytical Engines",
        "icp_score": 91,
    }
    assert callback["headers"]["authorization"] == "Bearer local-clay-callback-token"


def test_a_nurture_lead_becomes_a_loops_contact(enriching_stack):
    stack = enriching_stack
    create_lead(stack, {"email": "grace@example.com", "first_name": "Grace"})

    sent = stack.wait_for(lambda: loops_requests_for(stack, "grace@example.com"), timeout=60)
    assert sent and sent[0]["path"].endswith("/v1/contacts/update")
    assert sent[0]["body"]["mailingLists"] == {"nurture-list": True}


def test_the_scheduled_functions_run_every_half_of_the_enrichment_sla(enriching_stack):
    def runs() -> list[str]:
        lines = enriching_stack.log_file.read_text(errors="replace").splitlines()
        return [line for line in lines if line.startswith("[scheduler] EnrichmentOverdueFunction run ")]

    assert "[scheduler] EnrichmentOverdueFunction every 1 s (ScheduleV2 OverdueCheck)" in (
        enriching_stack.log_file.read_text(errors="replace")
    )
    assert len(enriching_stack.wait_for(lambda: len(runs()) >= 2 and runs(), timeout=60)) >= 2
    assert all("failed" not in line for line in runs()), json.dumps(runs())


def relay_json(stack: RunningStack, capsys, *argv: str) -> dict:
    capsys.readouterr()
    assert stack.relay(*argv, "--json") == 0
    return json.loads(capsys.readouterr().out)


def test_relay_trace_shows_every_stage_from_directus_to_loops(enriching_stack, capsys):
    stack = enriching_stack
    item = create_lead(stack, {"email": "Margaret@Example.com", "first_name": "Margaret"})
    stack.wait_for(lambda: loops_requests_for(stack, "margaret@example.com"), timeout=60)

    def traced() -> dict | None:
        found = relay_json(stack, capsys, "trace", "margaret@example.com", "--reveal")
        stages = [s["stage"] for s in found["stages"]]
        return found if "loops.contact" in stages and "directus.writeback" in stages else None

    found = stack.wait_for(traced, timeout=60)
    stages = [s["stage"] for s in found["stages"]]
    assert stages[:3] == ["directus.accepted", "clay.delivered", "clay.enriched"]
    assert {"loops.contact", "directus.writeback"} <= set(stages[3:])
    assert found["lead"]["email"] == "margaret@example.com" and found["lead"]["round_trip"] is None
    assert f"directus#leads/{item['id']}" in found["lead"]["aliases"]
    by_stage = {s["stage"]: s for s in found["stages"]}
    assert by_stage["clay.delivered"]["outcome"] == "delivered"
    assert by_stage["clay.enriched"]["detail"]["route"] == "nurture"
    assert by_stage["loops.contact"]["outcome"] == "delivered"
    # The same lead by its Directus item; masked without --reveal.
    by_item = relay_json(stack, capsys, "trace", f"directus:leads/{item['id']}")
    assert [s["stage"] for s in by_item["stages"]] == stages
    assert "margaret@example.com" not in json.dumps(by_item)
    assert stack.relay("trace", "nobody-ever@example.com") == 1


@pytest.fixture(scope="module")
def silent_clay_stack(tmp_path_factory) -> RunningStack:
    """Clay never calls back (no --clay-enrich), and the enrichment SLA is 2 s."""
    yield from start_stack(tmp_path_factory.mktemp("silent-clay-stack"), extra_args=("--enrichment-sla", "2"))


def test_leads_clay_never_enriched_are_listed_as_overdue(silent_clay_stack, capsys):
    stack = silent_clay_stack
    item = create_lead(stack, {"email": "kathleen@example.com", "first_name": "Kathleen"})

    def overdue() -> list[dict]:
        rows = relay_json(stack, capsys, "leads", "--overdue", "--reveal")["overdue"]
        return [row for row in rows if row["email"] == "kathleen@example.com"]

    (lead,) = stack.wait_for(overdue, timeout=60)
    assert lead["target"] == "leads" and lead["directus"] == [f"leads/{item['id']}"]
    assert lead["clay_url"] and lead["overdue_seconds"] >= 0
    logged = "lead went to Clay and never came back enriched"
    stack.wait_for(lambda: logged in stack.log_file.read_text(errors="replace"), timeout=60)
    assert "kathleen@example.com" not in stack.log_file.read_text(errors="replace")  # the check masks emails
