"""Directus item events become Clay rows through the running local stack, once each, reliably."""

from __future__ import annotations

import json
import uuid

import pytest
import requests

from tests.e2e.conftest import RunningStack, start_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> RunningStack:
    """This file's own stack: it replays the event files as they are (item 1, Ada), which on a stack
    shared with other files may have gone to Clay already (one row per item, and per person)."""
    yield from start_stack(tmp_path_factory.mktemp("directus-to-clay"))


def unique_email() -> str:
    return f"lead-{uuid.uuid4().hex[:10]}@example.com"


def unique_key() -> str:
    """An item's key no other test uses: a create is one event per item, whatever its payload."""
    return f"item-{uuid.uuid4().hex[:12]}"


def create_event(email: str, key: int | str | None = None, **fields) -> dict:
    return {
        "event": "leads.items.create",
        "collection": "leads",
        "key": key if key is not None else unique_key(),
        "payload": {"email": email, "first_name": "Ada", "status": "new", **fields},
    }


def rows_for(stack: RunningStack, email: str) -> list[dict]:
    return [d for d in stack.deliveries(destination="clay", status=200) if (d["body"] or {}).get("email") == email]


def test_a_created_item_becomes_one_mapped_row_in_the_clay_table(stack):
    email, key = unique_email(), unique_key()
    answer = stack.post_directus(create_event(email, key=key, company="Analytical Engines"))

    assert answer.status_code == 202
    assert answer.json()["duplicate"] is False and answer.json()["event_id"]
    rows = stack.wait_for(lambda: rows_for(stack, email))
    assert len(rows) == 1
    row = rows[0]
    assert row["path"] == "/clay/webhooks/leads-1"
    assert row["headers"]["x-clay-webhook-auth"] == "clay-e2e-1"
    assert row["body"] == {
        "email": email,
        "first_name": "Ada",
        "company_name": "Analytical Engines",
        "directus_event": "leads.items.create",
        "directus_collection": "leads",
        "directus_id": key,
        "relay_event_id": answer.json()["event_id"],
    }, "unmapped fields (status) are left out, mapped ones renamed; the event id is the row's dedupe key"


def test_the_same_event_twice_yields_one_row(stack):
    email = unique_email()
    key = unique_key()
    first = stack.post_directus(create_event(email, key=key))
    assert first.status_code == 202
    stack.wait_for(lambda: rows_for(stack, email))
    second = stack.post_directus(create_event(email, key=key))

    assert second.status_code == 202
    assert second.json()["duplicate"] is True
    assert second.json()["event_id"] == first.json()["event_id"]
    stack.wait_for(lambda: False, timeout=2)  # give a wrongly queued copy time to arrive
    assert len(rows_for(stack, email)) == 1


def test_identical_events_sent_concurrently_still_yield_one_row(stack):
    from concurrent.futures import ThreadPoolExecutor

    email, key = unique_email(), unique_key()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: stack.post_directus(create_event(email, key=key)), range(8)))

    assert {a.status_code for a in answers} == {202}
    stack.wait_for(lambda: rows_for(stack, email))
    stack.wait_for(lambda: False, timeout=3)
    assert len(rows_for(stack, email)) == 1


def _by_event(stack: RunningStack, event: str) -> list[dict]:
    return [d for d in stack.deliveries(destination="clay", status=200) if d["body"].get("directus_event") == event]


def seed(stack: RunningStack, *items: dict) -> None:
    """Items as the sandbox Directus holds them (no Flow fires): what the worker reads an update's row from."""
    answer = requests.post(f"{stack.gateway}/_local/directus/items/leads", json=list(items), timeout=10)
    assert answer.status_code == 201, answer.text


ADA_NOW = {
    "id": 1,
    "email": "ada.lovelace@example.com",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "company": "Analytical Engines Group",
    "website": "analytical-engines.example",
    "job_title": "Chief Scientist",
}


def test_replaying_the_event_files_yields_the_mapped_rows(stack):
    status, body = stack.replay("directus/create")
    assert status == 202 and body["accepted"] is True
    created = stack.wait_for(lambda: rows_for(stack, "ada.lovelace@example.com"))
    assert created[0]["body"]["job_title"] == "Head of Research"
    assert created[0]["body"]["company_domain"] == "analytical-engines.example"

    seed(stack, ADA_NOW)  # the update the event file tells of, made in Directus
    status, update = stack.replay("directus/update")
    assert status == 202
    updated = stack.wait_for(
        lambda: [d for d in _by_event(stack, "leads.items.update") if d["body"].get("job_title") == "Chief Scientist"]
    )
    assert updated[0]["body"] == {
        "email": "ada.lovelace@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "company_name": "Analytical Engines Group",
        "company_domain": "analytical-engines.example",
        "job_title": "Chief Scientist",
        "directus_event": "leads.items.update",
        "directus_collection": "leads",
        "directus_id": "1",
        "relay_event_id": updated[0]["headers"]["x-relay-event-id"],
    }, "an update carries the item as it is now: every mapped field, read from Directus"
    assert updated[0]["body"]["relay_event_id"] != update["event_id"], "the item's state, not the event, is the row"

    status, delete = stack.replay("directus/delete")
    assert status == 202
    deleted = stack.wait_for(lambda: _by_event(stack, "leads.items.delete"))
    assert deleted[0]["body"] == {
        "directus_event": "leads.items.delete",
        "directus_collection": "leads",
        "directus_id": "1",
        "relay_event_id": delete["event_id"],
    }


def test_invoking_the_function_in_process_uses_the_running_stack(stack):
    answer = stack.invoke("DirectusTriggerFunction", "directus/create")
    assert answer["statusCode"] == 202
    assert stack.wait_for(lambda: rows_for(stack, "ada.lovelace@example.com"))


def test_a_batch_update_becomes_one_row_per_item(stack):
    seed(stack, *({"id": key, "email": f"vp{key}@example.com", "job_title": "VP Engineering"} for key in (2, 3, 4)))
    status, body = stack.replay("directus/batch-update")

    assert status == 202
    assert len(body["rows"]) == 3

    def vp_rows():
        return [d for d in _by_event(stack, "leads.items.update") if d["body"].get("job_title") == "VP Engineering"]

    rows = stack.wait_for(lambda: len(vp_rows()) == 3 and vp_rows())
    assert sorted(str(r["body"]["directus_id"]) for r in rows) == ["2", "3", "4"]


def test_bad_token_and_malformed_bodies_are_rejected_with_json_errors(stack):
    status, body = stack.replay("directus/bad-token")
    assert status == 401 and body["error"] == "unauthorized"

    status, body = stack.replay("directus/malformed")
    assert status == 400 and body["error"] == "malformed_request" and "JSON" in body["message"]

    answer = requests.get(f"{stack.gateway}/directus/leads", timeout=5)
    assert answer.status_code == 405 and answer.json()["error"] == "method_not_allowed"
    answer = stack.post_directus(create_event(unique_email()), source="nowhere")
    assert answer.status_code == 404 and answer.json()["error"] == "not_found"


def test_clay_errors_are_retried_until_the_row_is_delivered(stack):
    email = unique_email()
    requests.post(f"{stack.gateway}/_local/faults", json={"destination": "clay", "status": 503, "times": 2}, timeout=5)

    assert stack.post_directus(create_event(email)).status_code == 202
    rows = stack.wait_for(lambda: rows_for(stack, email), timeout=30)
    assert len(rows) == 1
    attempts = [d for d in stack.deliveries(destination="clay") if d.get("fault") == "status"]
    assert len(attempts) >= 2


def test_a_clay_timeout_is_retried(stack):
    email = unique_email()
    requests.post(
        f"{stack.gateway}/_local/faults",
        json={"destination": "clay", "mode": "timeout", "times": 1, "delay": 3},
        timeout=5,
    )

    assert stack.post_directus(create_event(email)).status_code == 202
    assert stack.wait_for(lambda: rows_for(stack, email), timeout=30)


def test_a_row_clay_keeps_refusing_past_the_retry_horizon_ends_in_the_dead_letter_queue_with_the_reason(stack):
    email = unique_email()
    # Longer than the e2e configuration's 5 s horizon.
    requests.post(
        f"{stack.gateway}/_local/faults", json={"destination": "clay", "status": 502, "seconds": 8}, timeout=5
    )
    answer = stack.post_directus(create_event(email))
    assert answer.status_code == 202
    event_id = answer.json()["event_id"]
    sqs = stack.aws("sqs")
    dlq = sqs.get_queue_url(QueueName="clay-relay-local-dead-letters")["QueueUrl"]

    def dead_letter():
        messages = sqs.receive_message(
            QueueUrl=dlq, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=0
        ).get("Messages", [])
        return [m for m in messages if json.loads(m["Body"])["event_id"] == event_id]

    letters = stack.wait_for(dead_letter, timeout=40, interval=0.5)
    requests.delete(f"{stack.gateway}/_local/faults", timeout=5)
    assert letters, "the row was dead-lettered"
    attributes = letters[0]["MessageAttributes"]
    reason = attributes["reason"]["StringValue"]
    assert reason.startswith("gave up after ") and "502" in reason
    assert int(attributes["attempts"]["StringValue"]) >= 2
    assert attributes["destination"]["StringValue"] == "clay"
    assert not rows_for(stack, email)


def test_one_request_is_followed_across_functions_by_the_event_id_it_was_answered(stack, capsys):
    """Without any tracer in the functions (the default tracing mode): the receiver answers the
    event id, the worker logs it and sends it to Clay, and `relay trace` finds the lead by it."""
    email = unique_email()
    answer = stack.post_directus(create_event(email, key=43))

    assert answer.status_code == 202
    event_id = answer.headers["X-Relay-Event-Id"]
    assert event_id == answer.json()["event_id"]
    (row,) = stack.wait_for(lambda: rows_for(stack, email))
    assert row["headers"]["x-relay-event-id"] == event_id

    def worker_logged() -> list[dict]:
        logged = []
        for line in stack.log_file.read_text(errors="replace").splitlines():
            if event_id in line and "{" in line:
                try:
                    logged.append(json.loads(line[line.index("{") :]))
                except ValueError:
                    continue
        return [entry for entry in logged if entry.get("message") == "delivered"]

    (delivered,) = stack.wait_for(worker_logged)
    assert delivered["event_id"] == event_id and delivered["destination"] == "clay"

    capsys.readouterr()
    assert stack.relay("trace", event_id, "--json") == 0
    stages = json.loads(capsys.readouterr().out)["stages"]
    assert event_id in {stage["event_id"] for stage in stages}
