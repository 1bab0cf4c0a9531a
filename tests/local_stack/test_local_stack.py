"""The local stack's own machinery that the delivery guarantees are proven with: faults as
`POST /_local/faults` takes them, the sandbox Clay table's auto-dedupe, and worker crashes that
stop an invocation right after one of its outbound calls, in every thread it runs."""

from __future__ import annotations

import contextvars
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from local_stack.chaos import WorkerKilled, dies_before_enqueue, doomed
from local_stack.sandboxes import ClaySandbox, Fault


# --- faults ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ({"destination": "ftp"}, "destination must be one of"),
        ({"destination": "clay", "mode": "crash"}, 'mode "crash" is for the destinations "worker" and "receiver"'),
        ({"destination": "worker", "mode": "down"}, 'mode "crash" is for the destinations "worker" and "receiver"'),
        ({"destination": "worker", "after": "lunch"}, 'after \\(worker crashes only\\) must be "any"'),
        ({"destination": "receiver", "after": "delivery"}, "worker crashes only"),
        ({"destination": "loops", "mode": "sometimes"}, "mode must be"),
    ],
)
def test_a_fault_that_makes_no_sense_is_refused_saying_why(spec, says):
    with pytest.raises(ValueError, match=says):
        Fault.from_request(spec)


def test_a_worker_crash_applies_to_as_many_invocations_as_asked_and_strikes_after_any_call_by_default():
    crash = Fault.from_request({"destination": "worker", "times": 2})
    assert (crash.mode, crash.after, crash.status) == ("crash", "any", None)
    assert [crash.take(), crash.take(), crash.take()] == [True, True, False]


def test_a_fault_without_times_or_seconds_applies_once():
    fault = Fault.from_request({"destination": "slack", "status": 500})
    assert [fault.take(), fault.take()] == [True, False]


# --- the sandbox Clay table's auto-dedupe ------------------------------------------------------------
def post_row(clay: ClaySandbox, row: dict) -> dict:
    answer = clay.receive("POST", ["clay", "webhooks", "leads-1"], {}, json.dumps(row).encode())
    assert answer.status == 200
    return answer.note


def test_a_row_whose_dedupe_value_was_seen_is_removed_but_its_submission_counts():
    clay = ClaySandbox()
    assert post_row(clay, {"email": "a@x.io", "relay_event_id": "e1"}) == {"row_created": True}
    assert post_row(clay, {"email": "a@x.io", "relay_event_id": "e1"}) == {"row_created": False, "deduplicated": True}
    assert post_row(clay, {"email": "a@x.io", "relay_event_id": "e2"}) == {"row_created": True}
    assert (clay.rows["leads-1"], clay.submissions["leads-1"]) == (2, 3)


@pytest.mark.parametrize("value", ["", None, "x" * 201])
def test_blank_and_over_200_character_values_are_not_compared(value):
    clay = ClaySandbox()
    for _ in range(2):
        assert post_row(clay, {"relay_event_id": value}) == {"row_created": True}


def test_without_a_dedupe_column_every_row_is_kept():
    clay = ClaySandbox(dedupe_column=None)
    for _ in range(2):
        assert post_row(clay, {"relay_event_id": "e1"}) == {"row_created": True}


# --- worker crashes ----------------------------------------------------------------------------------
@pytest.fixture
def aws_endpoint(monkeypatch):
    """Calls to this address count as AWS calls, all others as deliveries."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")


def test_an_invocation_dies_right_after_its_nth_call_and_makes_no_more(http_stub, aws_endpoint, monkeypatch):
    monkeypatch.setattr("local_stack.chaos.random.randint", lambda low, high: 3)
    url = http_stub.url("/hook")
    with pytest.raises(WorkerKilled, match="after 3 outbound calls"), doomed(batch_size=10):
        for _ in range(10):
            requests.post(url, json={}, timeout=5)
    assert len(http_stub.posted_to("/hook")) == 3, "the third call went out; nothing after it"


def test_a_crash_after_a_delivery_strikes_once_a_destination_answered(http_stub, aws_endpoint):
    with pytest.raises(WorkerKilled, match="after a delivery"), doomed(batch_size=10, after_delivery=True):
        requests.post(http_stub.url("/hook"), json={}, timeout=5)
        requests.post(http_stub.url("/hook"), json={}, timeout=5)
    assert len(http_stub.posted_to("/hook")) == 1


def test_once_dead_no_thread_of_the_invocation_sends_anything(http_stub, aws_endpoint):
    url = http_stub.url("/hook")

    def post_from_a_thread() -> BaseException | None:
        with ThreadPoolExecutor(1) as pool:  # with the invocation's context, as the worker's threads have it
            return pool.submit(contextvars.copy_context().run, requests.post, url, json={}, timeout=5).exception()

    with doomed(batch_size=1, after_delivery=True):
        assert isinstance(post_from_a_thread(), WorkerKilled), "the delivery went out, then the process died"
        assert isinstance(post_from_a_thread(), WorkerKilled)
        with pytest.raises(WorkerKilled):
            requests.post(url, json={}, timeout=5)
    assert len(http_stub.posted_to("/hook")) == 1


def test_calls_outside_a_doomed_invocation_are_untouched(http_stub, aws_endpoint):
    with doomed(batch_size=1, after_delivery=True):
        pass
    for _ in range(3):
        assert requests.post(http_stub.url("/hook"), json={}, timeout=5).status_code == 200


def test_a_receiver_dies_right_before_it_would_queue_the_job_and_not_before(http_stub, aws_endpoint):
    url = http_stub.url("/aws")
    with pytest.raises(WorkerKilled, match="after its duplicate check, before queueing"), dies_before_enqueue():
        requests.post(url, headers={"X-Amz-Target": "DynamoDB_20120810.BatchGetItem"}, timeout=5)
        requests.post(url, headers={"X-Amz-Target": "AmazonSQS.SendMessageBatch"}, timeout=5)
    assert len(http_stub.posted_to("/aws")) == 1, "the duplicate check went out, the job never did"
