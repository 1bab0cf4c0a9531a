"""The delivery worker over real (moto) queues and a local HTTP server standing in for Clay: rows
are delivered once, failures come back later (exponential backoff, Retry-After), the hopeless
and the exhausted land in the dead-letter queue with their reason, and rows wait (never dropped)
when every Clay webhook URL is used up."""

from __future__ import annotations

import contextlib
import json
import random
import time
import uuid
from unittest import mock

import boto3
import pytest

from clay_relay.backoff import backoff_seconds
from clay_relay.clay import ClayWebhook
from clay_relay.config import DeliveryPolicy
from clay_relay.delivery_queue import DeliveryQueue
from clay_relay.jobs import ClayRowJob, parse_job
from clay_relay.pacing import Pacer
from clay_relay.runtime import get_runtime
from clay_relay.store import RelayTable
from clay_relay.worker import handle_batch
from tests.clay_relay.worker.conftest import CLAY_PATH, POOL_SECRET
from tests.destinations import Answer
from tests.queues import delayed_bodies, end_delays, make_visible_again, queue_attribute, receive, sqs_record


def sent_row(job: ClayRowJob) -> dict:
    """What Clay receives for a job: its row, with its event id in the idempotency column."""
    return {**job.row, "relay_event_id": job.event_id}


def row_job(n: int = 1, **overrides) -> ClayRowJob:
    fields = {
        "event_id": f"event-{n:04d}-{uuid.uuid4().hex[:8]}",
        "origin": "directus/leads",
        "target": "leads",
        "row": {"email": f"lead{n}@example.com", "company_name": "Acme", "directus_id": n},
    }
    return ClayRowJob(**{**fields, **overrides})


def received_batch(queue_url: str, expected: int) -> list[dict]:
    messages = receive(queue_url)
    assert len(messages) == expected
    return [sqs_record(message, queue_url) for message in messages]


def run_worker(records: list[dict]) -> set[str]:
    """The worker over one SQS batch; the message ids it reports as failed."""
    response = handle_batch({"Records": records}, None)
    return {item["itemIdentifier"] for item in response["batchItemFailures"]}


def deliver(queue_url: str, *jobs: ClayRowJob) -> tuple[set[str], list[dict]]:
    DeliveryQueue().enqueue(list(jobs))
    records = received_batch(queue_url, len(jobs))
    return run_worker(records), records


def record_of(records: list[dict], job: ClayRowJob) -> dict:
    [record] = [r for r in records if parse_job(r["body"]).job_id == job.job_id]
    return record


def dead_letters(dead_letter_url: str) -> list[dict]:
    return receive(dead_letter_url)


def attribute(message: dict, name: str) -> str:
    return message["MessageAttributes"][name]["StringValue"]


@contextlib.contextmanager
def freeze_clock(now: float):
    """The worker's wall clock (job ages) reads `now`."""
    with mock.patch("clay_relay.worker.batch.time", mock.Mock(time=lambda: now)):
        yield


# --- delivered -------------------------------------------------------------------------------------
def test_2xx_is_delivered_with_the_row_and_auth_header_and_not_reported_failed(clay, queues):
    job = row_job(1)
    failures, _ = deliver(queues[0], job)
    assert failures == set()
    [posted] = clay.posted_to(CLAY_PATH)
    assert posted.json() == sent_row(job)
    assert posted.headers["x-clay-webhook-auth"] == "clay-token-1"
    assert posted.headers["content-type"] == "application/json"
    assert dead_letters(queues[1]) == []
    assert RelayTable().submissions_used(ClayWebhook(clay.url(CLAY_PATH)).webhook_id) == 1


def test_url_without_token_is_called_without_the_auth_header(clay, queues, put_secret):
    put_secret(POOL_SECRET, [clay.url(CLAY_PATH)])
    failures, _ = deliver(queues[0], row_job(1))
    assert failures == set()
    [posted] = clay.posted_to(CLAY_PATH)
    assert "x-clay-webhook-auth" not in posted.headers


def test_same_event_under_two_job_ids_reaches_clay_once(clay, queues):
    first = row_job(1)
    second = first.model_copy(update={"job_id": uuid.uuid4().hex})
    failures, _ = deliver(queues[0], first, second)
    assert failures == set()
    assert len(clay.posted_to(CLAY_PATH)) == 1
    assert dead_letters(queues[1]) == []


def test_same_event_accepted_again_in_a_later_batch_is_not_delivered_again(clay, queues):
    first = row_job(1)
    deliver(queues[0], first)
    failures, _ = deliver(queues[0], first.model_copy(update={"job_id": uuid.uuid4().hex}))
    assert failures == set()
    assert len(clay.posted_to(CLAY_PATH)) == 1


def test_each_row_of_a_batch_is_delivered(clay, queues):
    jobs = [row_job(n) for n in range(1, 8)]
    failures, _ = deliver(queues[0], *jobs)
    assert failures == set()
    assert sorted(r.json()["directus_id"] for r in clay.posted_to(CLAY_PATH)) == list(range(1, 8))


# --- retried -------------------------------------------------------------------------------------
@pytest.fixture
def without_parking(use_config):
    """`delivery.park_when_down` off: each failed job backs off on its own (requested before aws_calls,
    which records the calls of the runtime this builds)."""
    use_config(lambda config: config.setdefault("delivery", {}).update(park_when_down=False))


def test_503_is_reported_failed_and_hidden_until_its_backoff_without_parking(without_parking, clay, queues, aws_calls):
    clay.answer(CLAY_PATH, Answer(503))
    job = row_job(1)
    failures, records = deliver(queues[0], job)
    assert failures == {records[0]["messageId"]}
    [change] = aws_calls.sqs_calls("change_message_visibility_batch")
    [entry] = change["Entries"]
    assert entry["ReceiptHandle"] == records[0]["receiptHandle"]
    assert 15 <= entry["VisibilityTimeout"] <= 30  # attempt 1: ceiling = min_backoff_seconds (30)
    assert dead_letters(queues[1]) == []


def test_retry_after_longer_than_the_backoff_is_honoured(clay, queues, aws_calls):
    clay.answer(CLAY_PATH, Answer(503, headers={"Retry-After": "600"}))
    failures, records = deliver(queues[0], row_job(1))
    assert failures == {records[0]["messageId"]}
    [change] = aws_calls.sqs_calls("change_message_visibility_batch")
    assert change["Entries"][0]["VisibilityTimeout"] == 600


def test_a_429_waits_out_its_retry_after_spread_so_that_the_deferred_do_not_return_at_once(clay, queues, aws_calls):
    clay.answer(CLAY_PATH, Answer(429, headers={"Retry-After": "600"}))
    failures, records = deliver(queues[0], row_job(1))
    assert failures == {records[0]["messageId"]}
    [change] = aws_calls.sqs_calls("change_message_visibility_batch")
    assert 600 <= change["Entries"][0]["VisibilityTimeout"] <= 1200


def test_redelivered_job_is_delivered_once_clay_recovers(clay, queues):
    clay.answer(CLAY_PATH, Answer(503), Answer(200))
    job = row_job(1)
    failures, records = deliver(queues[0], job)
    assert failures == {records[0]["messageId"]}
    make_visible_again(queues[0], records)
    [again] = received_batch(queues[0], 1)
    assert again["attributes"]["ApproximateReceiveCount"] == "2"
    assert run_worker([again]) == set()
    assert [r.json() for r in clay.posted_to(CLAY_PATH)] == [sent_row(job)] * 2, "same row, same idempotency key"


def test_only_the_failed_rows_of_a_batch_are_reported(clay, queues):
    clay.answer(CLAY_PATH, Answer(200), Answer(400), Answer(503))
    jobs = [row_job(n) for n in (1, 2, 3)]
    DeliveryQueue().enqueue(jobs)
    records = received_batch(queues[0], 3)
    failures = run_worker(records)
    by_answer = dict(zip((200, 400, 503), records, strict=True))  # records are delivered in order
    assert failures == {by_answer[503]["messageId"]}
    [letter] = dead_letters(queues[1])
    assert letter["Body"] == by_answer[400]["body"]


def test_unreached_clay_gives_its_submissions_back(aws, queues, put_secret, closed_port_url):
    put_secret(POOL_SECRET, [{"url": closed_port_url, "token": "t"}])
    failures, records = deliver(queues[0], row_job(1), row_job(2))
    assert failures == {r["messageId"] for r in records}
    assert RelayTable().submissions_used(ClayWebhook(closed_port_url).webhook_id) == 0


def test_unreadable_pool_secret_is_retried_not_dead_lettered(aws, queues, put_secret):
    put_secret(POOL_SECRET, "not json")
    failures, records = deliver(queues[0], row_job(1))
    assert failures == {records[0]["messageId"]}
    assert dead_letters(queues[1]) == []


# --- dead-lettered -------------------------------------------------------------------------------
def test_503_after_the_retry_horizon_is_dead_lettered_with_reason_and_attempts(clay, queues, use_config):
    use_config(lambda c: c["delivery"].update(retry_horizon_seconds=3600))
    clay.answer(CLAY_PATH, Answer(503, body=b"upstream busy"))
    job = row_job(1, accepted_at=time.time() - 3000)
    failures, records = deliver(queues[0], job)
    assert failures == {records[0]["messageId"]}, "within the horizon: retried"
    make_visible_again(queues[0], records)
    [last] = received_batch(queues[0], 1)
    assert last["attributes"]["ApproximateReceiveCount"] == "2"

    with freeze_clock(job.accepted_at + 3600):
        assert run_worker([last]) == set()
    [letter] = dead_letters(queues[1])
    assert parse_job(letter["Body"]) == job
    reason = attribute(letter, "reason")
    assert "503" in reason and "2 attempts in 1.0 h" in reason and "upstream busy" in reason
    assert attribute(letter, "attempts") == "2"
    assert attribute(letter, "destination") == "clay"
    assert attribute(letter, "origin") == "directus/leads"
    assert len(clay.posted_to(CLAY_PATH)) == 2


def test_400_is_dead_lettered_at_once_with_the_reason(clay, queues):
    clay.answer(CLAY_PATH, Answer(400, body=b'{"error":"row rejected"}'))
    job = row_job(1)
    failures, _ = deliver(queues[0], job)
    assert failures == set()
    [letter] = dead_letters(queues[1])
    assert parse_job(letter["Body"]) == job
    assert "400" in attribute(letter, "reason") and "row rejected" in attribute(letter, "reason")
    assert attribute(letter, "attempts") == "1"
    assert len(clay.posted_to(CLAY_PATH)) == 1


@pytest.mark.parametrize("body", ["not a job", '{"kind": "clay_row"}', '{"kind": "loops_event", "event_id": "x"}'])
def test_unreadable_body_is_dead_lettered_untouched(clay, queues, body):
    boto3.client("sqs").send_message(QueueUrl=queues[0], MessageBody=body)
    records = received_batch(queues[0], 1)
    assert run_worker(records) == set()
    [letter] = dead_letters(queues[1])
    assert letter["Body"] == body
    assert "unreadable job" in attribute(letter, "reason")
    assert clay.received == []


def test_row_for_an_unconfigured_target_is_dead_lettered(clay, queues):
    failures, _ = deliver(queues[0], row_job(1, target="prospects"))
    assert failures == set()
    [letter] = dead_letters(queues[1])
    assert "'prospects'" in attribute(letter, "reason")
    assert clay.received == []


# --- held for quota ------------------------------------------------------------------------------
def test_row_is_held_and_requeued_when_the_pool_is_used_up(clay, queues):
    webhook = ClayWebhook(clay.url(CLAY_PATH))
    RelayTable().reserve_submissions(webhook.webhook_id, 50_000, 50_000, "leads")
    job = row_job(1)
    failures, _ = deliver(queues[0], job)
    assert failures == set()  # the original is done with: a copy waits on the queue
    assert clay.received == []
    assert dead_letters(queues[1]) == []
    assert queue_attribute(queues[0], "ApproximateNumberOfMessagesDelayed") == 1
    [copy] = [parse_job(body) for body in delayed_bodies(queues[0])]
    assert copy.holds == 1
    assert (copy.event_id, copy.job_id, copy.row) == (job.event_id, job.job_id, job.row)


def test_held_row_is_delivered_when_it_comes_back_after_a_url_was_added(clay, queues, put_secret):
    used_up = clay.url(CLAY_PATH)
    RelayTable().reserve_submissions(ClayWebhook(used_up).webhook_id, 50_000, 50_000, "leads")
    job = row_job(1, holds=1)
    put_secret(POOL_SECRET, [{"url": used_up, "token": "clay-token-1"}, {"url": clay.url("/clay/webhooks/leads-2")}])
    failures, _ = deliver(queues[0], job)
    assert failures == set()
    assert clay.posted_to(CLAY_PATH) == []
    assert [r.json() for r in clay.posted_to("/clay/webhooks/leads-2")] == [sent_row(job)]


def use_up(clay) -> None:
    RelayTable().reserve_submissions(ClayWebhook(clay.url(CLAY_PATH)).webhook_id, 50_000, 50_000, "leads")


def test_a_row_held_past_the_hold_horizon_is_dead_lettered_saying_it_waited_for_clay_quota(clay, queues, use_config):
    use_config(lambda c: c["delivery"].update(hold_horizon_seconds=3600))
    use_up(clay)
    job = row_job(1, accepted_at=time.time() - 3599, holds=37)
    with freeze_clock(job.accepted_at + 3600):
        failures, _ = deliver(queues[0], job)
    assert failures == set()
    [letter] = dead_letters(queues[1])
    assert parse_job(letter["Body"]) == job
    reason = attribute(letter, "reason")
    assert reason.startswith("waited 1.0 h for Clay quota (held 37 times; hold_horizon_seconds is 3600)")
    assert "Clay target 'leads' is used up" in reason and "relay clay add-webhook leads" in reason
    assert (attribute(letter, "destination"), attribute(letter, "origin")) == ("clay", "directus/leads")
    assert queue_attribute(queues[0], "ApproximateNumberOfMessagesDelayed") == 0, "not held again"
    assert clay.received == []


def test_a_row_keeps_waiting_for_quota_within_the_hold_horizon_even_past_the_retry_horizon(clay, queues, use_config):
    use_config(lambda c: c["delivery"].update(retry_horizon_seconds=60, hold_horizon_seconds=3600))
    use_up(clay)
    job = row_job(1, accepted_at=time.time() - 3000, holds=12)
    failures, _ = deliver(queues[0], job)
    assert failures == set()
    assert dead_letters(queues[1]) == []
    [copy] = [parse_job(body) for body in delayed_bodies(queues[0])]
    assert copy.holds == 13


def test_a_row_held_again_and_again_ends_in_the_dead_letter_queue_once_its_hold_horizon_passes(
    clay, queues, use_config
):
    use_config(lambda c: c["delivery"].update(hold_horizon_seconds=5, hold_seconds=1))
    use_up(clay)
    job = row_job(1)
    DeliveryQueue().enqueue([job])
    for seconds_later in (0, 2, 4, 6):  # the worker sees the row again every 2 s
        with freeze_clock(job.accepted_at + seconds_later):
            end_delays(queues[0])
            [message] = receive(queues[0])
            assert run_worker([sqs_record(message, queues[0])]) == set()
        if seconds_later < 5:
            assert [parse_job(body).holds for body in delayed_bodies(queues[0])] == [seconds_later // 2 + 1]
    assert delayed_bodies(queues[0]) == [], "past the horizon: not held again"
    [letter] = dead_letters(queues[1])
    assert attribute(letter, "reason").startswith("waited 6 s for Clay quota (held 3 times;")
    assert clay.received == []


# --- backoff -------------------------------------------------------------------------------------
DEFAULT = DeliveryPolicy()  # 30 s doubling up to 3600 s


@pytest.mark.parametrize(
    ("attempts", "ceiling"),
    [(1, 30), (2, 60), (3, 120), (4, 240), (5, 480), (6, 960), (7, 1920), (8, 3600), (16, 3600), (90, 3600)],
)
def test_backoff_grows_exponentially_with_jitter_up_to_max_backoff(attempts, ceiling):
    random.seed(attempts)
    delays = [backoff_seconds(attempts, DEFAULT) for _ in range(300)]
    assert all(ceiling // 2 <= d <= ceiling for d in delays)
    assert max(delays) - min(delays) > ceiling / 4  # jittered, not one fixed delay


def test_backoff_respects_a_smaller_max_backoff():
    policy = DeliveryPolicy(min_backoff_seconds=10, max_backoff_seconds=50)
    assert all(backoff_seconds(a, policy) <= 50 for a in range(1, 40) for _ in range(20))


def test_backoff_is_never_sooner_than_retry_after():
    random.seed(7)
    assert all(backoff_seconds(1, DEFAULT, retry_after=600) == 600 for _ in range(50))
    assert all(15 <= backoff_seconds(1, DEFAULT, retry_after=1) <= 30 for _ in range(50))


def test_backoff_is_never_sooner_than_a_fractional_retry_after():
    assert backoff_seconds(1, DeliveryPolicy(min_backoff_seconds=0), retry_after=7.4) >= 7.4


def test_message_for_dead_letter_keeps_the_original_job_json(clay, queues):
    clay.answer(CLAY_PATH, Answer(404))
    job = row_job(1, row={"email": "zoë@example.com", "nested": {"a": [1, 2]}})
    deliver(queues[0], job)
    [letter] = dead_letters(queues[1])
    assert json.loads(letter["Body"])["row"] == job.row


# --- pacing lanes ----------------------------------------------------------------------------------
def test_tables_of_two_clay_workspaces_are_paced_apart_and_tables_of_one_workspace_together(
    clay, queues, use_config, put_secret, monkeypatch
):
    use_config(
        lambda c: c["clay_targets"].update(
            prospects={"webhooks_secret": "clay-webhooks-prospects", "workspace": "agency"},
            accounts={"webhooks_secret": POOL_SECRET},  # the default workspace, like `leads`
        )
    )
    put_secret("clay-webhooks-prospects", [{"url": clay.url("/clay/webhooks/prospects-1")}])
    lanes: list[str] = []

    class RecordingPacer(Pacer):
        def wait(self, lane: str, rate_per_second: float, workers: int) -> None:
            lanes.append(lane)
            super().wait(lane, rate_per_second, workers)

    get_runtime().pacer = RecordingPacer()
    failures, _ = deliver(queues[0], row_job(1), row_job(2, target="prospects"), row_job(3, target="accounts"))

    assert failures == set()
    assert sorted(lanes) == ["clay:agency", "clay:default", "clay:default"]
    assert len(clay.posted_to("/clay/webhooks/prospects-1")) == 1


# --- a URL Clay says is used up ----------------------------------------------------------------------
def test_a_url_clay_answers_as_used_up_is_counted_used_up_and_the_row_goes_to_the_next_url(clay, queues, put_secret):
    """The relay's count says 49,999 left; Clay says the URL takes no more: trust Clay, move on."""
    second = clay.url("/clay/webhooks/leads-2")
    put_secret(POOL_SECRET, [{"url": clay.url(CLAY_PATH), "token": "clay-token-1"}, {"url": second}])
    clay.answer(CLAY_PATH, Answer(403, body=b'{"error": "Webhook submission limit reached"}'))
    job = row_job(1)
    failures, records = deliver(queues[0], job)
    assert failures == {records[0]["messageId"]}  # back soon, not a failure of the row
    assert dead_letters(queues[1]) == []
    first_id = ClayWebhook(clay.url(CLAY_PATH)).webhook_id
    assert RelayTable().submissions_used(first_id) == 50_000, "counted as used up"
    make_visible_again(queues[0], records)
    assert run_worker(received_batch(queues[0], 1)) == set()
    assert [r.json() for r in clay.posted_to("/clay/webhooks/leads-2")] == [sent_row(job)]
    assert len(clay.posted_to(CLAY_PATH)) == 1, "the used-up URL is skipped from then on"
    assert run_worker_on(queues[0], row_job(2)) == set()
    assert len(clay.posted_to(CLAY_PATH)) == 1 and len(clay.posted_to("/clay/webhooks/leads-2")) == 2


def test_a_table_that_clay_answers_as_full_is_skipped_too_and_other_refusals_are_not_taken_for_it(
    clay, queues, put_secret
):
    put_secret(POOL_SECRET, [{"url": clay.url(CLAY_PATH)}, {"url": clay.url("/clay/webhooks/leads-2")}])
    clay.answer(CLAY_PATH, Answer(403, body=b'{"error": "Forbidden"}'), Answer(422, body=b'{"error": "Table is full"}'))
    failures, _ = deliver(queues[0], row_job(1))
    assert failures == set()
    assert "Forbidden" in attribute(dead_letters(queues[1])[0], "reason"), "a plain 403 is the row's own failure"
    assert RelayTable().submissions_used(ClayWebhook(clay.url(CLAY_PATH)).webhook_id) == 1
    deliver(queues[0], row_job(2))
    assert RelayTable().submissions_used(ClayWebhook(clay.url(CLAY_PATH)).webhook_id) == 50_000


def run_worker_on(queue_url: str, job: ClayRowJob) -> set[str]:
    return deliver(queue_url, job)[0]


def test_a_row_clay_refused_as_used_up_is_counted_once_against_its_targets_budget(clay, queues, put_secret, use_config):
    from clay_relay.spend.usage import target_spend

    config = use_config(lambda c: c["clay_targets"]["leads"].update(budget={"rows_per_day": 10}))
    put_secret(POOL_SECRET, [{"url": clay.url(CLAY_PATH)}, {"url": clay.url("/clay/webhooks/leads-2")}])
    clay.answer(CLAY_PATH, Answer(403, body=b'{"error": "Webhook submission limit reached"}'))
    _, records = deliver(queues[0], row_job(1))
    make_visible_again(queues[0], records)
    assert run_worker(received_batch(queues[0], 1)) == set()
    spend = target_spend(RelayTable(), "leads", config.clay_targets["leads"], time.time())
    assert spend.sent_today == 1, "the refused try gave its row back; the one that went counts"
