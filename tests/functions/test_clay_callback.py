"""POST /clay/enriched (ClayCallbackFunction), driven with API Gateway HTTP API v2 events: Clay's
HTTP API column sends an enriched lead; the relay authenticates it (token, or an HMAC signature
over the raw body) before anything else, validates and routes it, queues one job per action and
answers 202 with what it will do, which Clay shows in the cell. Every rejection is a JSON body."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

from clay_relay.jobs import parse_job
from tests.invocations import call_handler, http_api_event, load_handler
from tests.queues import receive, received_records, run_worker

TOKEN = "clay-callback-token-1"
SIGNING_KEY = "relay-signing-key-1"
OUTREACH = {
    "email": "alan.turing@example.com",
    "first_name": "Alan",
    "last_name": "Turing",
    "company_name": "Compiler Co",
    "job_title": "VP Engineering",
    "employee_count": "1,200",
    "industry": "Software",
    "icp_score": "84",
}
HOT = {**OUTREACH, "email": "grace.hopper@example.com", "first_name": "Grace", "icp_score": 95, "directus_id": 7}
NURTURE = {**OUTREACH, "email": "edsger@example.com", "icp_score": "65"}
SKIP = {**OUTREACH, "email": "carl.cold@example.com", "icp_score": 20}


@pytest.fixture
def handler(aws, put_secret):
    """A fresh copy of the function (a new Lambda execution environment); the callback's tokens
    secret holds TOKEN and a second token (a rotation)."""
    put_secret("clay-callback-tokens", f"{TOKEN},clay-callback-token-2")
    return load_handler("clay_callback")


def lead_event(
    body: object = OUTREACH,
    *,
    token: str | None = TOKEN,
    header: str = "authorization",
    method: str = "POST",
    content_type: str | None = "application/json",
    extra_headers: dict[str, str] | None = None,
) -> dict:
    """What API Gateway hands the function for Clay's request (`ANY /clay/enriched`)."""
    headers = {"user-agent": "Clay/1.0", "accept": "*/*", **(extra_headers or {})}
    if token is not None:
        headers[header] = f"Bearer {token}" if header == "authorization" else token
    if content_type is not None:
        headers["content-type"] = content_type
    return http_api_event("/clay/enriched", body, method=method, headers=headers)


def signed(raw: bytes, key: str = SIGNING_KEY, timestamp: int | None = None) -> str:
    """`x-relay-signature` as a signing sender makes it: `t=<unix>,v1=<hex HMAC of "{t}.{body}">`."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},v1=" + hmac.new(key.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()


def signed_body_only(raw: bytes, key: str = SIGNING_KEY) -> str:
    """The old form, over the body alone: no timestamp, so a captured request replays forever."""
    return "sha256=" + hmac.new(key.encode(), raw, hashlib.sha256).hexdigest()


def queued(aws) -> list:
    return [parse_job(m["Body"]) for m in receive(aws.ref("DeliveryQueue"))]


def assert_error(status: int, body: dict, expected_status: int, code: str) -> None:
    assert status == expected_status
    assert body["error"] == code
    assert isinstance(body["message"], str) and body["message"]


# --- accepted ----------------------------------------------------------------------------------------
def test_an_outreach_lead_is_answered_202_with_its_route_and_queued_as_a_loops_event(handler, aws):
    status, body = call_handler(handler, lead_event(OUTREACH))
    assert status == 202
    assert set(body) == {"accepted", "route", "hot", "actions", "event_id", "duplicate"}
    assert body["accepted"] is True
    assert (body["route"], body["hot"], body["actions"], body["duplicate"]) == (
        "outreach",
        False,
        ["loops_event"],
        False,
    )
    [job] = queued(aws)
    assert job.kind == "loops_event"
    assert job.payload["email"] == "alan.turing@example.com"
    assert job.payload["eventProperties"]["employeeCount"] == 1200
    assert isinstance(body["event_id"], str) and body["event_id"]


def test_a_hot_lead_of_directus_gets_loops_slack_and_a_write_back(handler, aws):
    status, body = call_handler(handler, lead_event(HOT))
    assert status == 202
    assert (body["route"], body["hot"]) == ("outreach", True)
    assert body["actions"] == ["loops_event", "slack_message", "directus_patch"]
    assert sorted(job.kind for job in queued(aws)) == sorted(body["actions"])


def test_a_nurture_lead_is_queued_as_a_loops_contact(handler, aws):
    status, body = call_handler(handler, lead_event(NURTURE))
    assert status == 202
    assert (body["route"], body["hot"], body["actions"]) == ("nurture", False, ["loops_contact"])
    [job] = queued(aws)
    assert job.kind == "loops_contact" and job.payload["icpScore"] == 65


def test_a_skipped_lead_is_answered_202_with_no_action_and_only_its_ledger_entry(handler, aws_calls):
    status, body = call_handler(handler, lead_event(SKIP))
    assert status == 202
    assert (body["route"], body["hot"], body["actions"], body["duplicate"]) == ("skip", False, [], False)
    assert aws_calls.names() == ["update_item"]  # its clay.enriched stage (route: skip), which closes its round trip
    assert aws_calls.dynamodb[0][1]["Key"]["pk"]["S"].startswith("trip#")


def test_the_second_token_of_a_rotation_is_accepted(handler, aws):
    status, _ = call_handler(handler, lead_event(token="clay-callback-token-2"))
    assert status == 202


def test_a_token_without_the_bearer_scheme_is_accepted(handler, aws):
    event = lead_event(token=None, extra_headers={"authorization": TOKEN})
    status, _ = call_handler(handler, event)
    assert status == 202


def test_a_json_content_type_with_a_charset_or_none_at_all_is_accepted(handler, aws):
    assert call_handler(handler, lead_event(content_type="application/json; charset=utf-8"))[0] == 202
    assert call_handler(handler, lead_event(NURTURE, content_type=None))[0] == 202


# --- duplicates --------------------------------------------------------------------------------------
def test_the_same_lead_after_the_worker_claimed_its_jobs_is_a_duplicate_and_not_queued_again(
    handler, aws, destinations
):
    destinations.sandboxes.directus.items[("leads", "7")] = {"id": 7}
    _, first = call_handler(handler, lead_event(HOT))
    assert first["duplicate"] is False
    queue = aws.ref("DeliveryQueue")
    assert run_worker(received_records(queue, 3)) == set()

    status, again = call_handler(handler, lead_event(HOT))
    assert status == 202
    assert again["duplicate"] is True
    assert again["event_id"] == first["event_id"]
    assert again["actions"] == first["actions"]
    assert queued(aws) == []


def test_the_same_lead_with_its_score_as_a_string_and_its_email_in_capitals_is_a_duplicate(handler, aws, destinations):
    call_handler(handler, lead_event(OUTREACH))
    run_worker(received_records(aws.ref("DeliveryQueue"), 1))
    same = {**OUTREACH, "icp_score": 84, "email": " Alan.Turing@Example.com "}
    _, again = call_handler(handler, lead_event(same))
    assert again["duplicate"] is True


def test_a_lead_whose_content_changed_is_not_a_duplicate(handler, aws, destinations):
    call_handler(handler, lead_event(OUTREACH))
    run_worker(received_records(aws.ref("DeliveryQueue"), 1))
    _, changed = call_handler(handler, lead_event({**OUTREACH, "job_title": "CTO"}))
    assert changed["duplicate"] is False


def test_the_same_lead_sent_twice_before_the_worker_ran_reaches_loops_once(handler, aws, destinations):
    _, first = call_handler(handler, lead_event(OUTREACH))
    _, second = call_handler(handler, lead_event(OUTREACH))
    assert first["event_id"] == second["event_id"]
    assert run_worker(received_records(aws.ref("DeliveryQueue"), 2)) == set()
    assert [d["status"] for d in destinations.received("loops")] == [200]


# --- authentication ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "token", [None, "wrong-token", f"{TOKEN},clay-callback-token-2"], ids=["missing", "wrong", "the raw secret"]
)
def test_a_missing_or_wrong_token_is_401_without_any_dynamodb_or_sqs_call(handler, aws_calls, token):
    status, body = call_handler(handler, lead_event(token=token))
    assert_error(status, body, 401, "unauthorized")
    assert aws_calls.names() == []


def test_an_unauthenticated_invalid_body_is_401_not_400(handler, aws_calls):
    status, body = call_handler(handler, lead_event(b"{not json", token="wrong-token"))
    assert_error(status, body, 401, "unauthorized")
    assert aws_calls.names() == []


def test_the_token_header_is_configurable(handler, aws, use_config):
    use_config(lambda c: c["clay_callback"].update(token_header="x-api-key"))
    assert call_handler(handler, lead_event(token=TOKEN, header="x-api-key"))[0] == 202
    status, body = call_handler(handler, lead_event(token=TOKEN, header="authorization"))
    assert_error(status, body, 401, "unauthorized")


@pytest.fixture
def signing(use_config, put_secret):
    """The route also accepts senders that sign: hmac_secret holds two keys (a rotation)."""
    use_config(lambda c: c["clay_callback"].update(hmac_secret="clay-callback-signing"))
    put_secret("clay-callback-signing", f"{SIGNING_KEY}\nrelay-signing-key-2")


def raw_lead(body: dict = OUTREACH) -> bytes:
    return json.dumps(body, indent=1).encode()  # as some sender wrote it: spaces and new lines


@pytest.mark.parametrize("key", [SIGNING_KEY, "relay-signing-key-2"])
def test_a_valid_signature_over_the_raw_body_is_accepted_without_a_token(handler, aws, signing, key):
    raw = raw_lead()
    event = lead_event(raw, token=None, extra_headers={"x-relay-signature": signed(raw, key)})
    status, body = call_handler(handler, event)
    assert status == 202
    assert body["route"] == "outreach"


@pytest.mark.parametrize("form", ["sha256=<hex>", "bare hex"])
def test_the_old_body_only_signature_passes_only_while_the_migration_aid_is_on(handler, aws, signing, use_config, form):
    raw = raw_lead()
    old = signed_body_only(raw) if form == "sha256=<hex>" else signed_body_only(raw).removeprefix("sha256=")
    event = lead_event(raw, token=None, extra_headers={"x-relay-signature": old})
    status, body = call_handler(handler, event)
    assert_error(status, body, 401, "unauthorized")
    use_config(lambda c: c["clay_callback"].update(hmac_secret="clay-callback-signing", hmac_accept_body_only=True))
    assert call_handler(handler, event)[0] == 202


def test_a_signature_made_more_than_five_minutes_ago_is_401(handler, aws_calls, signing):
    raw = raw_lead()
    stale = signed(raw, timestamp=int(time.time()) - 301)
    status, body = call_handler(handler, lead_event(raw, token=TOKEN, extra_headers={"x-relay-signature": stale}))
    assert_error(status, body, 401, "unauthorized")
    assert aws_calls.names() == []


def test_a_signature_over_the_same_json_serialised_differently_is_401(handler, aws_calls, signing):
    raw = raw_lead()
    compact = json.dumps(json.loads(raw), separators=(",", ":")).encode()
    event = lead_event(raw, token=None, extra_headers={"x-relay-signature": signed(compact)})
    status, body = call_handler(handler, event)
    assert_error(status, body, 401, "unauthorized")
    assert aws_calls.names() == []


@pytest.mark.parametrize(
    "signature",
    ["sha256=", "t=1767225600,v1=", signed(b"another body"), signed(raw_lead(), "a-guessed-key")],
    ids=["empty old-form digest", "empty digest", "another body", "another key"],
)
def test_a_bad_signature_is_401_even_with_a_valid_token_and_without_any_dynamodb_or_sqs_call(
    handler, aws_calls, signing, signature
):
    event = lead_event(raw_lead(), token=TOKEN, extra_headers={"x-relay-signature": signature})
    status, body = call_handler(handler, event)
    assert_error(status, body, 401, "unauthorized")
    assert aws_calls.names() == []


def test_a_signature_is_not_enough_when_the_route_has_no_signing_keys(handler, aws_calls, put_secret):
    put_secret("clay-callback-signing", SIGNING_KEY)  # exists, but relay.json names no hmac_secret
    raw = raw_lead()
    status, body = call_handler(handler, lead_event(raw, token=None, extra_headers={"x-relay-signature": signed(raw)}))
    assert_error(status, body, 401, "unauthorized")
    assert aws_calls.names() == []


def test_a_signing_route_still_accepts_the_static_token(handler, aws, signing):
    assert call_handler(handler, lead_event(raw_lead(), token=TOKEN))[0] == 202


def test_an_unreadable_signing_secret_is_401(handler, aws_calls, use_config):
    use_config(lambda c: c["clay_callback"].update(hmac_secret="not-provisioned"))
    raw = raw_lead()
    status, body = call_handler(handler, lead_event(raw, token=TOKEN, extra_headers={"x-relay-signature": signed(raw)}))
    assert_error(status, body, 401, "unauthorized")
    assert aws_calls.names() == []


# --- rejected ----------------------------------------------------------------------------------------
def test_the_route_is_404_when_relay_json_has_no_clay_callback(handler, aws_calls, use_config):
    use_config(lambda c: c.update(clay_callback=None))
    status, body = call_handler(handler, lead_event())
    assert_error(status, body, 404, "not_found")
    assert "clay_callback" in body["message"]
    assert aws_calls.names() == []


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_other_methods_are_405(handler, aws, method):
    status, body = call_handler(handler, lead_event(None if method == "GET" else OUTREACH, method=method))
    assert_error(status, body, 405, "method_not_allowed")


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b'{"email": "a@b.co", "icp_score": 85', "not valid JSON"),
        (b'[{"email": "a@b.co", "icp_score": 85}]', "not a JSON array"),
        (b"", "empty"),
    ],
    ids=["truncated", "array", "empty"],
)
def test_a_body_that_is_not_a_json_object_is_400(handler, aws, raw, says):
    status, body = call_handler(handler, lead_event(raw))
    assert_error(status, body, 400, "malformed_request")
    assert says in body["message"]
    assert queued(aws) == []


def test_a_text_plain_body_is_415(handler, aws):
    status, body = call_handler(handler, lead_event(content_type="text/plain"))
    assert_error(status, body, 415, "unsupported_media_type")
    assert "text/plain" in body["message"]
    assert queued(aws) == []


def test_a_body_over_max_body_bytes_is_413(handler, aws, relay_env):
    relay_env(MAX_BODY_BYTES=2048)
    status, body = call_handler(handler, lead_event({**OUTREACH, "personalized_opener": "x" * 3000}))
    assert_error(status, body, 413, "payload_too_large")
    assert "2048" in body["message"]
    assert queued(aws) == []


@pytest.mark.parametrize(
    ("lead", "fields"),
    [
        ({k: v for k, v in OUTREACH.items() if k != "email"}, {"email"}),
        ({**OUTREACH, "email": "alan at example"}, {"email"}),
        ({**OUTREACH, "icp_score": "high"}, {"icp_score"}),
        ({**OUTREACH, "icp_score": 120}, {"icp_score"}),
        ({**OUTREACH, "employee_count": "lots"}, {"employee_count"}),
        ({"email": "nope", "icp_score": "?"}, {"email", "icp_score"}),
    ],
    ids=["no email", "invalid email", "word score", "score 120", "bad count", "both"],
)
def test_a_body_that_is_not_an_enriched_lead_is_422_naming_the_fields(handler, aws, lead, fields):
    status, body = call_handler(handler, lead_event(lead))
    assert_error(status, body, 422, "invalid_payload")
    assert {entry["field"] for entry in body["fields"]} == fields
    assert all(entry["problem"] for entry in body["fields"])
    assert queued(aws) == []


def test_the_422_for_an_empty_email_says_a_lead_needs_one(handler, aws):
    _, body = call_handler(handler, lead_event({**OUTREACH, "email": "  "}))
    assert body["fields"] == [{"field": "email", "problem": "a lead needs an email address"}]


@pytest.mark.parametrize(
    "directus_id", [".", "..", "../..", "leads/7", "%2e%2e", "7?x=1", "7#x", " . ", "x" * 65, 2**63, True, 7.5, [7]]
)
def test_a_directus_id_that_is_not_a_safe_item_key_is_422_naming_it_and_nothing_is_queued(handler, aws, directus_id):
    """It becomes a segment of the write-back's path: `..` would PATCH /items/ instead of the item."""
    status, body = call_handler(handler, lead_event({**HOT, "directus_id": directus_id}))
    assert_error(status, body, 422, "invalid_payload")
    [problem] = body["fields"]
    assert problem["field"] == "directus_id"
    assert "whole number" in problem["problem"] and "letters, digits" in problem["problem"]
    assert queued(aws) == []


@pytest.mark.parametrize("directus_id", [7, "7", "lead_7-b", "550e8400-e29b-41d4-a716-446655440000", 2**63 - 1])
def test_integer_and_safe_string_directus_ids_are_written_back(handler, aws, directus_id):
    status, _ = call_handler(handler, lead_event({**HOT, "directus_id": directus_id}))
    assert status == 202
    [patch] = [job for job in queued(aws) if job.kind == "directus_patch"]
    assert patch.item_id == str(directus_id)


def test_a_queue_failure_is_503_that_clay_may_retry(handler, aws, monkeypatch):
    from clay_relay import delivery_queue

    def refuse(*args, **kwargs):
        raise delivery_queue.QueueError("SQS refused 1 message(s)")

    monkeypatch.setattr(delivery_queue.DeliveryQueue, "enqueue", refuse)
    status, body = call_handler(handler, lead_event())
    assert_error(status, body, 503, "temporarily_unavailable")


def test_a_slack_message_that_formats_a_field_is_refused_when_the_configuration_loads(use_config):
    """`{employee_count:,}` would fail for a lead without that field: the relay refuses the
    configuration (naming the setting) instead of failing on some leads."""
    from clay_relay.config import ConfigError

    with pytest.raises(ConfigError, match=r"clay_callback\.slack\.message"):
        use_config(lambda c: c["clay_callback"]["slack"].update(message="{first_name}: {employee_count:,} employees"))
