"""POST /directus/{source} (DirectusTriggerFunction), driven with API Gateway HTTP API v2 events:
authenticate first (no DynamoDB or SQS call for a rejected request), then validate, map and queue,
answering 202 fast; every rejection is a JSON body with the status that fits."""

from __future__ import annotations

import json

import pytest

from clay_relay.jobs import parse_job
from clay_relay.store import Claim, RelayTable
from tests.invocations import call_handler, http_api_event, load_handler
from tests.queues import receive, received_records, run_worker, sqs_record

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

TOKEN = "directus-token-current"

CREATE = {
    "event": "leads.items.create",
    "payload": {"email": "ada@example.com", "first_name": "Ada", "company": "Acme"},
    "key": 1,
    "collection": "leads",
}


@pytest.fixture
def handler(aws):
    """A fresh copy of the function's module (a new Lambda execution environment)."""
    return load_handler("directus_trigger")


def http_event(
    body: object = CREATE,
    *,
    source: str = "leads",
    method: str = "POST",
    token: str | None = TOKEN,
    content_type: str | None = "application/json",
    base64_encoded: bool = False,
) -> dict:
    """An API Gateway HTTP API (payload format 2.0) event, as the `ANY /directus/{source}` route sends it."""
    raw = body if isinstance(body, bytes) else body.encode() if isinstance(body, str) else json.dumps(body).encode()
    headers = {"user-agent": "axios/1.18.1", "accept": "application/json, text/plain, */*"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    if content_type is not None:
        headers["content-type"] = content_type
    return http_api_event(
        f"/directus/{source}",
        raw,
        method=method,
        headers=headers,
        route_key="ANY /directus/{source}",
        path_parameters={"source": source},
        base64_encoded=base64_encoded,
    )


call = call_handler


def queued(aws) -> list:
    return [parse_job(m["Body"]) for m in receive(aws.ref("DeliveryQueue"))]


# --- accepted --------------------------------------------------------------------------------------
def test_create_is_accepted_with_its_event_id_and_queued_as_a_row(handler, aws):
    status, body = call(handler, http_event(CREATE))
    assert status == 202
    assert body["accepted"] is True and body["duplicate"] is False
    [job] = queued(aws)
    assert body["event_id"] == job.event_id
    assert body["rows"] == [{"event_id": job.event_id, "duplicate": False}]
    assert job.target == "leads" and job.origin == "directus/leads"
    assert job.row == {
        "email": "ada@example.com",
        "first_name": "Ada",
        "company_name": "Acme",
        "directus_event": "leads.items.create",
        "directus_collection": "leads",
        "directus_id": 1,
    }


def test_second_token_of_a_rotation_is_accepted(handler, aws):
    status, _ = call(handler, http_event(CREATE, token="directus-token-next"))
    assert status == 202


def test_batch_update_queues_one_row_per_key(handler, aws):
    body = {"event": "leads.items.update", "payload": {"job_title": "CTO"}, "keys": [1, "2", 3], "collection": "leads"}
    status, answer = call(handler, http_event(body))
    assert status == 202
    jobs = queued(aws)
    assert sorted(str(job.row["directus_id"]) for job in jobs) == ["1", "2", "3"]
    assert {row["event_id"] for row in answer["rows"]} == {job.event_id for job in jobs}


def test_an_update_of_a_thousand_items_is_queued_in_a_few_requests_and_answered_with_its_count(handler, aws, aws_calls):
    """Directus' updateMany sends every key in one request and never retries it: a request per 10
    rows would outlast the receiver's 10 s, so the rows travel in bundles; the answer gives their
    count rather than a receipt per row."""
    keys = list(range(1, 1_001))
    body = {"event": "leads.items.update", "payload": {"job_title": "CTO"}, "keys": keys, "collection": "leads"}
    status, answer = call(handler, http_event(body))

    assert status == 202 and answer["row_count"] == 1_000 and "rows" not in answer
    sends = aws_calls.sqs_calls("send_message_batch")
    assert len(sends) <= 5 and aws_calls.names("dynamodb") == []
    bundles = [parse_job(entry["MessageBody"]) for send in sends for entry in send["Entries"]]
    assert all(job.kind == "clay_row_bundle" for job in bundles)
    rows = [row for bundle in bundles for row in bundle.rows]
    assert [row.row["directus_id"] for row in rows] == keys
    assert len({row.event_id for row in rows}) == 1_000


@pytest.mark.parametrize(("count", "listed"), [(100, True), (101, False)])
def test_an_answer_lists_each_row_up_to_a_hundred_and_past_that_only_counts_them(handler, aws, count, listed):
    body = {
        "event": "leads.items.update",
        "payload": {"job_title": "CTO"},
        "keys": list(range(count)),
        "collection": "leads",
    }
    status, answer = call(handler, http_event(body))
    assert status == 202
    assert (len(answer["rows"]) == count) if listed else (answer["row_count"] == count and "rows" not in answer)


def test_an_update_of_more_than_a_thousand_items_is_413_saying_the_limit_and_the_count_before_anything_is_queued(
    handler, aws_calls
):
    """10,000 keys in a 70 KB request became 10,000 jobs and a 660 KB answer."""
    body = {
        "event": "leads.items.update",
        "payload": {"job_title": "CTO"},
        "keys": list(range(10_000)),
        "collection": "leads",
    }
    status, answer = call(handler, http_event(body))

    assert_error(status, answer, 413, "payload_too_large")
    assert "10,000 items" in answer["message"] and "at most 1,000" in answer["message"]
    assert answer["fields"] == [{"field": "keys", "problem": "10,000 items; at most 1,000"}]
    assert aws_calls.sqs == [] and aws_calls.dynamodb == []
    assert len(json.dumps(answer)) < 1_000


def test_an_update_of_more_than_a_thousand_items_that_would_be_skipped_anyway_is_answered_skipped(handler, aws_calls):
    body = {
        "event": "leads.items.update",
        "payload": {"status": "archived"},
        "keys": list(range(5_000)),
        "collection": "leads",
    }
    status, answer = call(handler, http_event(body))
    assert status == 202 and answer["skipped"] == "no mapped field changed"
    assert aws_calls.sqs == []


def test_rows_that_together_pass_ten_megabytes_are_413_saying_the_limit_and_the_size(handler, aws_calls):
    """1,000 keys and a 99,000-character field: a 104 KB request that queued 99.5 MB for Clay."""
    body = {
        "event": "leads.items.update",
        "payload": {"job_title": "x" * 99_000},
        "keys": list(range(1, 1_001)),
        "collection": "leads",
    }
    status, answer = call(handler, http_event(body))

    assert_error(status, answer, 413, "payload_too_large")
    assert "1,000 Clay rows would take about 99," in answer["message"]
    assert "at most 10,000,000 bytes" in answer["message"]
    assert aws_calls.sqs == [] and aws_calls.dynamodb == []


def test_the_largest_event_the_bounds_accept_is_queued_whole(handler, aws, aws_calls):
    """A thousand rows of 9.9 KB: just under 10 MB of rows, queued in bundles of under 256 KB."""
    body = {
        "event": "leads.items.update",
        "payload": {"job_title": "x" * 9_800},
        "keys": list(range(1, 1_001)),
        "collection": "leads",
    }
    status, answer = call(handler, http_event(body))

    assert status == 202 and answer["row_count"] == 1_000
    entries = [entry for send in aws_calls.sqs_calls("send_message_batch") for entry in send["Entries"]]
    bundles = [parse_job(entry["MessageBody"]) for entry in entries]
    assert sum(len(bundle.rows) for bundle in bundles) == 1_000
    assert all(len(entry["MessageBody"].encode()) <= 262_144 for entry in entries)
    assert sum(len(entry["MessageBody"].encode()) for entry in entries) < 11_000_000


def test_rows_too_big_to_share_one_queue_request_are_sent_in_several(handler, aws, aws_calls):
    """SQS takes at most 256 KiB per batch request: three rows of 90 KB cannot go together."""
    body = {
        "event": "leads.items.update",
        "payload": {"job_title": "x" * 90_000},
        "keys": [1, 2, 3],
        "collection": "leads",
    }
    status, _ = call(handler, http_event(body))

    assert status == 202
    sends = aws_calls.sqs_calls("send_message_batch")
    assert [len(send["Entries"]) for send in sends] == [2, 1]
    assert len(queued(aws)) == 3


def test_the_worker_queues_the_rows_of_a_bundle_one_by_one_and_each_is_sent_once(handler, aws):
    body = {
        "event": "leads.items.update",
        "payload": {"job_title": "CTO"},
        "keys": list(range(150)),
        "collection": "leads",
    }
    status, answer = call(handler, http_event(body))
    assert status == 202 and answer["row_count"] == 150
    queue = aws.ref("DeliveryQueue")
    [bundle] = received_records(queue, 1)
    bundled = {row.event_id for row in parse_job(bundle["body"]).rows}

    assert run_worker([bundle]) == set()
    assert run_worker([bundle]) == set()  # a redelivered bundle queues its rows again...
    rows = [parse_job(m["Body"]) for _ in range(40) for m in receive(queue)]
    assert len(rows) == 300
    assert {row.event_id for row in rows} == bundled and len(bundled) == 150
    # ...and the worker's claims still let each row through once.
    assert sum(RelayTable().claim(row.event_id, row.job_id, 60) is Claim.OWNED for row in rows) == 150


def test_base64_encoded_body_is_accepted(handler, aws):
    status, _ = call(handler, http_event(CREATE, base64_encoded=True))
    assert status == 202
    assert len(queued(aws)) == 1


def test_json_content_type_with_charset_is_accepted(handler, aws):
    status, _ = call(handler, http_event(CREATE, content_type="application/json; charset=utf-8"))
    assert status == 202


def test_skipped_event_is_answered_202_and_nothing_is_queued(handler, aws):
    body = {"event": "leads.items.update", "payload": {"status": "archived"}, "keys": ["4"], "collection": "leads"}
    status, answer = call(handler, http_event(body))
    assert status == 202
    assert answer["skipped"] == "no mapped field changed"
    assert answer["duplicate"] is False
    assert queued(aws) == []


def test_same_event_after_the_worker_claimed_it_is_a_duplicate_and_not_queued(handler, aws, http_stub, put_secret):
    put_secret("clay-webhooks-leads", [{"url": http_stub.url("/clay/webhooks/leads-1"), "token": "t"}])
    _, first = call(handler, http_event(CREATE))
    assert first["duplicate"] is False
    queue = aws.ref("DeliveryQueue")
    from clay_relay.worker import handle_batch

    response = handle_batch({"Records": [sqs_record(m, queue) for m in receive(queue)]}, None)
    assert response["batchItemFailures"] == []
    assert len(http_stub.received) == 1

    status, again = call(handler, http_event(CREATE))
    assert status == 202
    assert again["duplicate"] is True
    assert again["event_id"] == first["event_id"]
    assert queued(aws) == []


# --- rejected --------------------------------------------------------------------------------------
def assert_error(status: int, body: dict, expected_status: int, code: str) -> None:
    assert status == expected_status
    assert body["error"] == code
    assert isinstance(body["message"], str) and body["message"]


@pytest.mark.parametrize(
    "token", [None, "wrong-token", "", "directus-token-current-old"], ids=["missing", "wrong", "empty", "suffixed"]
)
def test_bad_or_missing_token_is_401_without_any_dynamodb_or_sqs_call(handler, aws_calls, token):
    status, body = call(handler, http_event(CREATE, token=token))
    assert_error(status, body, 401, "unauthorized")
    assert aws_calls.names() == []


def test_missing_tokens_secret_is_401_without_any_dynamodb_or_sqs_call(handler, aws_calls, use_config):
    use_config(lambda c: c["directus_sources"]["leads"].update(tokens_secret="not-provisioned"))
    status, body = call(handler, http_event(CREATE))
    assert_error(status, body, 401, "unauthorized")
    assert aws_calls.names() == []


@pytest.mark.parametrize("stored", [",,,", " , \n ,", "[]", '["", " "]'])
def test_a_tokens_secret_of_only_separators_is_401_for_the_caller_and_an_error_naming_it_for_the_operator(
    handler, aws_calls, put_secret, logs, stored
):
    put_secret("directus-tokens", stored)
    status, body = call(handler, http_event(CREATE, token=","))
    assert_error(status, body, 401, "unauthorized")
    assert body["message"] == "authentication is not configured"
    assert aws_calls.names() == []
    [error] = [line for line in logs.lines if line["level"] == "ERROR"]
    assert error["secret"] == "directus-tokens"
    assert "holds no token" in error["reason"] and "separated by commas" in error["reason"]


def test_unauthenticated_invalid_body_is_401_not_400(handler, aws_calls):
    status, body = call(handler, http_event(b"{not json", token="wrong-token"))
    assert_error(status, body, 401, "unauthorized")
    assert aws_calls.names() == []


def test_unknown_source_is_404(handler, aws_calls):
    status, body = call(handler, http_event(CREATE, source="prospects"))
    assert_error(status, body, 404, "not_found")
    assert "'prospects'" in body["message"]
    assert aws_calls.names() == []


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_other_methods_are_405(handler, aws, method):
    status, body = call(handler, http_event(None if method == "GET" else CREATE, method=method))
    assert_error(status, body, 405, "method_not_allowed")


def test_body_over_max_body_bytes_is_413(handler, aws, relay_env):
    relay_env(MAX_BODY_BYTES=2048)
    big = {**CREATE, "payload": {"email": "ada@example.com", "notes": "x" * 3000}}
    status, body = call(handler, http_event(big))
    assert_error(status, body, 413, "payload_too_large")
    assert "2048" in body["message"]
    assert queued(aws) == []


def test_row_over_the_clay_row_limit_is_413(handler, aws, use_config):
    use_config(lambda c: c["clay_targets"]["leads"].update(max_row_bytes=1000))
    big = {**CREATE, "payload": {"email": "ada@example.com", "company": "A" * 1500}}
    status, body = call(handler, http_event(big))
    assert_error(status, body, 413, "payload_too_large")
    assert queued(aws) == []


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_non_json_content_type_is_415(handler, aws, content_type):
    status, body = call(handler, http_event(CREATE, content_type=content_type))
    assert_error(status, body, 415, "unsupported_media_type")
    assert content_type in body["message"]


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b'{"title": "a "quoted" word"}', "not valid JSON"),  # a Directus custom body, pasted raw
        (b'[{"event": "leads.items.create"}]', "not a JSON array"),
        (b'"leads.items.create"', "not a JSON string"),
        (b"", "empty"),
        (b"\xff\xfe{}", "UTF-8"),
    ],
    ids=["unescaped quotes", "array", "string", "empty", "not utf-8"],
)
def test_body_that_is_not_a_json_object_is_400(handler, aws, raw, says):
    status, body = call(handler, http_event(raw, base64_encoded=True))
    assert_error(status, body, 400, "malformed_request")
    assert says in body["message"]
    assert queued(aws) == []


def test_invalid_base64_body_is_400(handler, aws):
    event = http_event(CREATE)
    event["isBase64Encoded"] = True
    event["body"] = "{{{not base64"
    status, body = call(handler, event)
    assert_error(status, body, 400, "malformed_request")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**CREATE, "key": True}, "key"),
        ({**CREATE, "payload": "title=Hi"}, "payload"),
        ({k: v for k, v in CREATE.items() if k != "event"}, "event"),
        ({**CREATE, "collection": "posts", "event": "posts.items.create"}, "collection"),
    ],
    ids=["bool key", "string payload", "no event", "other collection"],
)
def test_body_that_is_not_a_directus_item_event_is_422_with_fields(handler, aws, body, field):
    status, answer = call(handler, http_event(body))
    assert_error(status, answer, 422, "invalid_payload")
    assert answer["fields"]
    assert any(entry["field"].split(".")[0] == field and entry["problem"] for entry in answer["fields"])
    assert queued(aws) == []


def test_unknown_action_is_422_saying_so(handler, aws):
    status, answer = call(handler, http_event({**CREATE, "event": "leads.items.sort"}))
    assert_error(status, answer, 422, "invalid_payload")
    assert any("'leads.items.sort'" in entry["problem"] for entry in answer["fields"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**CREATE, "key": ".."}, "key"),
        ({**CREATE, "key": "leads/7"}, "key"),
        ({**CREATE, "event": "leads.items.update", "keys": [1, "."]}, "keys.1"),
        ({**CREATE, "event": "leads.items.delete", "payload": ["%2e%2e"], "keys": ["%2e%2e"]}, "keys.0"),
    ],
    ids=["dot-dot key", "key with a slash", "dot among keys", "encoded dots"],
)
def test_an_item_key_that_could_not_name_an_item_is_422_naming_it(handler, aws, body, field):
    """Keys come back as the lead's `directus_id`, the write-back's path segment: refused where they enter."""
    status, answer = call(handler, http_event(body))
    assert_error(status, answer, 422, "invalid_payload")
    assert [entry["field"] for entry in answer["fields"]] == [field]
    assert "not a Directus item key" in answer["fields"][0]["problem"]
    assert queued(aws) == []


def test_queue_failure_is_503_that_the_sender_may_retry(handler, aws, monkeypatch):
    from clay_relay import delivery_queue

    def refuse(*args, **kwargs):
        raise delivery_queue.QueueError("SQS refused 1 message(s)")

    monkeypatch.setattr(delivery_queue.DeliveryQueue, "enqueue", refuse)
    status, body = call(handler, http_event(CREATE))
    assert_error(status, body, 503, "temporarily_unavailable")


def test_broken_configuration_is_503_that_the_sender_may_retry(handler, aws, relay_env, tmp_path):
    broken = tmp_path / "relay.json"
    broken.write_text('{"directus_sources": {"leads": {"clay_target": "nowhere"}}}')
    relay_env(RELAY_CONFIG_PATH=broken)
    status, body = call(handler, http_event(CREATE))
    assert_error(status, body, 503, "temporarily_unavailable")
    assert "misconfigured" in body["message"]


def test_incomplete_function_environment_is_503_that_the_sender_may_retry(handler, aws, monkeypatch, relay_env):
    monkeypatch.delenv("DELIVERY_QUEUE_URL")
    relay_env()
    status, body = call(handler, http_event(CREATE))
    assert_error(status, body, 503, "temporarily_unavailable")


def test_misconfiguration_is_never_answered_with_a_stack_trace(handler, aws, relay_env, tmp_path):
    broken = tmp_path / "relay.json"
    broken.write_text('{"directus_sources": {"leads": {"clay_target": "nowhere"}}}')
    relay_env(RELAY_CONFIG_PATH=broken)
    status, body = call(handler, http_event(CREATE))
    assert status >= 500
    assert set(body) == {"error", "message"}
    assert "nowhere" not in body["message"] and "Traceback" not in body["message"]
