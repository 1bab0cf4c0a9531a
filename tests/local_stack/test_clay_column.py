"""The sandbox Clay table's HTTP API column (`--clay-enrich`): each row the table keeps is sent back
to the relay's /clay/enriched once, with the row's email, Directus key, names, company and a
deterministic ICP score; failures show in the delivery log and are never retried."""

from __future__ import annotations

import json
import time

import pytest

from local_stack.sandboxes import ClaySandbox, DeliveryLog, HttpApiColumn, icp_score_for
from local_stack.sandboxes.clay_column import enrichment_of, token_header
from tests.destinations import Answer

CALLBACK = "/clay/enriched"
TOKEN_HEADER = {"Authorization": "Bearer callback-token"}


def wait_for(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while not (value := predicate()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return value


@pytest.fixture
def column(http_stub):
    """A column calling the stub relay at once (no delay)."""
    column = HttpApiColumn(
        DeliveryLog(), delay=0, url=http_stub.url(CALLBACK), headers=TOKEN_HEADER, log=lambda _: None
    )
    yield column
    column.stop()


def keep_row(clay: ClaySandbox, row: dict, webhook: str = "leads-1") -> dict:
    answer = clay.receive("POST", ["clay", "webhooks", webhook], {}, json.dumps(row).encode())
    assert answer.status in (200, 403)
    return answer.note


def callbacks(column: HttpApiColumn) -> list[dict]:
    return [entry for entry in column.deliveries.all() if entry["destination"] == "clay_callback"]


# --- what the column sends --------------------------------------------------------------------------
def test_a_kept_row_is_sent_to_the_relay_with_its_token_email_directus_key_names_company_and_score(http_stub, column):
    clay = ClaySandbox(column=column)
    row = {
        "email": "Ada@Example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "company_name": "Analytical Engines",
        "job_title": "Countess",
        "directus_id": 7,
        "relay_event_id": "e1",
    }
    assert keep_row(clay, row) == {"row_created": True}

    (call,) = wait_for(lambda: http_stub.posted_to(CALLBACK))
    assert call.headers["authorization"] == "Bearer callback-token"
    assert call.headers["content-type"] == "application/json"
    assert call.json() == {
        "email": "Ada@Example.com",
        "directus_id": 7,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "company_name": "Analytical Engines",
        "icp_score": 91,
    }
    entry = wait_for(lambda: callbacks(column))[0]
    assert (entry["path"], entry["status"], entry["webhook"], entry["row"]) == (CALLBACK, 200, "leads-1", 1)
    assert entry["answer"] == {"ok": True}, "what the relay answered is what Clay's cell shows"


@pytest.mark.parametrize(
    ("email", "score"),
    [("ada@example.com", 91), ("linus@example.com", 89), ("grace@example.com", 58), ("alan@example.com", 9)],
)
def test_the_score_is_the_documented_hash_of_the_lowercased_email(email, score):
    assert icp_score_for(email) == score == icp_score_for(email.upper())
    assert enrichment_of({"email": email})["icp_score"] == score


def test_a_row_with_its_own_icp_score_keeps_it():
    assert enrichment_of({"email": "ada@example.com", "icp_score": "42"})["icp_score"] == "42"
    assert enrichment_of({"email": "ada@example.com", "icp_score": ""})["icp_score"] == 91


def test_the_directus_key_column_wins_over_directus_id_and_company_stands_in_for_company_name():
    body = enrichment_of(
        {"email": "a@x.io", "directus_key": "12", "directus_id": 3, "company": "Acme", "last_name": ""}
    )
    assert body == {
        "email": "a@x.io",
        "directus_id": "12",
        "company_name": "Acme",
        "icp_score": icp_score_for("a@x.io"),
    }


def test_the_token_goes_in_the_header_the_relay_expects_as_a_clay_column_would_send_it():
    assert token_header("authorization", "t0k") == {"Authorization": "Bearer t0k"}
    assert token_header("x-api-key", "t0k") == {"x-api-key": "t0k"}


def test_a_row_without_an_email_is_not_called_for(column):
    clay = ClaySandbox(column=column)
    keep_row(clay, {"first_name": "Nobody", "relay_event_id": "e1"})
    assert column.pending == 0 and not callbacks(column)


# --- when it calls, and when not ---------------------------------------------------------------------
def test_the_wait_is_scheduled_and_the_table_answers_at_once(http_stub):
    column = HttpApiColumn(DeliveryLog(), delay=3600, url=http_stub.url(CALLBACK), log=lambda _: None)
    clay = ClaySandbox(column=column)
    try:
        assert keep_row(clay, {"email": "a@x.io", "relay_event_id": "e1"}) == {"row_created": True}
        assert column.pending == 1 and not http_stub.posted_to(CALLBACK)
    finally:
        column.stop()
    assert column.pending == 0, "stopping drops the calls not yet due"


@pytest.mark.parametrize("over_limit", ["drop", "reject"])
def test_rows_past_the_submission_limit_never_reached_the_table_and_are_not_enriched(http_stub, over_limit):
    column = HttpApiColumn(DeliveryLog(), delay=3600, url=http_stub.url(CALLBACK), log=lambda _: None)
    clay = ClaySandbox(submission_limit=1, over_limit=over_limit, column=column)
    try:
        assert keep_row(clay, {"email": "kept@x.io", "relay_event_id": "e1"}) == {"row_created": True}
        assert keep_row(clay, {"email": "dropped@x.io", "relay_event_id": "e2"}) == {"row_created": False}
        assert column.pending == 1
    finally:
        column.stop()


def test_a_row_removed_by_the_tables_auto_dedupe_is_not_enriched_again(http_stub):
    column = HttpApiColumn(DeliveryLog(), delay=3600, url=http_stub.url(CALLBACK), log=lambda _: None)
    clay = ClaySandbox(column=column)
    try:
        keep_row(clay, {"email": "a@x.io", "relay_event_id": "e1"})
        assert keep_row(clay, {"email": "a@x.io", "relay_event_id": "e1"})["deduplicated"] is True
        assert column.pending == 1
    finally:
        column.stop()


# --- failures ----------------------------------------------------------------------------------------
def test_a_refused_call_is_logged_with_the_relays_answer_and_never_retried(http_stub):
    lines: list[str] = []
    column = HttpApiColumn(DeliveryLog(), delay=0, url=http_stub.url(CALLBACK), headers=TOKEN_HEADER, log=lines.append)
    http_stub.answer(CALLBACK, Answer(401, body=b'{"error":"unauthorized"}'), Answer(200))
    clay = ClaySandbox(column=column)
    try:
        keep_row(clay, {"email": "first@x.io", "relay_event_id": "e1"})
        assert wait_for(lambda: len(callbacks(column)) == 1)
        keep_row(clay, {"email": "second@x.io", "relay_event_id": "e2"})  # answered 200
        assert wait_for(lambda: len(callbacks(column)) == 2)
    finally:
        column.stop()

    sent = [call.json()["email"] for call in http_stub.posted_to(CALLBACK)]
    assert sent == ["first@x.io", "second@x.io"], "the refused row was called for once, and not again"
    assert column.pending == 0
    failed, succeeded = callbacks(column)
    assert (failed["status"], failed["answer"]) == (401, {"error": "unauthorized"})
    assert succeeded["status"] == 200
    assert any("leads-1 row 1" in line and "not retried" in line and "401" in line for line in lines)


def test_a_relay_that_cannot_be_reached_is_logged_with_the_error_and_never_retried(closed_port_url):
    lines: list[str] = []
    column = HttpApiColumn(DeliveryLog(), delay=0, url=closed_port_url, log=lines.append)
    try:
        assert column.call("leads-1", 1, {"email": "a@x.io", "icp_score": 1}) == 0
    finally:
        column.stop()
    (entry,) = callbacks(column)
    assert entry["status"] == 0 and "ConnectionError" in entry["error"]
    assert column.pending == 0 and any("not retried" in line for line in lines)
