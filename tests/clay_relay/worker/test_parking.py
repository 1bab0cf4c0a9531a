"""Parking: while a destination is down its jobs wait hidden on the queue (one receive each, however long
the outage), one of them probes it every `probe_seconds`, and when a delivery goes well again the parked
jobs are released oldest first at the destination's rate: each delivered once, none lost, also when a
worker stops mid-release or the destination goes down again during the release."""

from __future__ import annotations

import time
from unittest import mock

import pytest

from clay_relay.delivery_queue import DeliveryQueue
from clay_relay.jobs import ClayRowJob
from clay_relay.runtime import get_runtime
from clay_relay.store import RelayTable
from clay_relay.worker import parking
from clay_relay.worker.lanes import lane_of
from tests.clay_relay.worker.conftest import CLAY_PATH
from tests.clay_relay.worker.test_worker import dead_letters, received_batch, row_job, run_worker
from tests.destinations import Answer
from tests.queues import make_visible_again, receive, sqs_record


def lane(job: ClayRowJob) -> str:
    return lane_of(job, get_runtime().config)


def visibility(aws_calls, records: list[dict]) -> dict[str, int]:
    """The last visibility timeout the worker gave each record's message (by message id)."""
    by_handle = {record["receiptHandle"]: record["messageId"] for record in records}
    given: dict[str, int] = {}
    for call in aws_calls.sqs_calls("change_message_visibility_batch"):
        for entry in call["Entries"]:
            if entry["ReceiptHandle"] in by_handle:
                given[by_handle[entry["ReceiptHandle"]]] = entry["VisibilityTimeout"]
    return given


def outage(queue_url: str, jobs: list[ClayRowJob]) -> list[dict]:
    """The jobs, queued and received in one batch while Clay answers 503: all parked."""
    DeliveryQueue().enqueue(jobs)
    records = received_batch(queue_url, len(jobs))
    assert run_worker(records) == {record["messageId"] for record in records}
    return sorted(records, key=lambda record: jobs.index(next(j for j in jobs if j.job_id in record["body"])))


def deliver_what_comes_back(queue_url: str, rounds: int = 10) -> None:
    """Run the worker over what is visible, batch after batch, until nothing is."""
    for _ in range(rounds):
        messages = receive(queue_url)
        if not messages:
            return
        run_worker([sqs_record(message, queue_url) for message in messages])


def delivered_ids(clay, *answers: Answer) -> list[int]:
    """The rows Clay took (answered 200), given the answers it gave in turn (the last one repeats)."""
    posts = clay.posted_to(CLAY_PATH)
    statuses = [answer.status for answer in answers] + [answers[-1].status] * len(posts)
    return sorted(post.json()["directus_id"] for post, status in zip(posts, statuses, strict=False) if status == 200)


def spaced_jobs(count: int) -> list[ClayRowJob]:
    """Rows accepted a second apart, oldest first."""
    first = row_job(0).accepted_at - count
    return [row_job(n, accepted_at=first + n) for n in range(1, count + 1)]


def test_an_outage_parks_the_lane_one_probe_and_the_rest_hidden_long(clay, queues, aws_calls):
    clay.answer(CLAY_PATH, Answer(503))
    jobs = [row_job(n) for n in range(1, 6)]
    records = outage(queues[0], jobs)

    assert len(clay.posted_to(CLAY_PATH)) == 1, "after the first 503 the lane's other jobs are not tried"
    hidden = visibility(aws_calls, records)
    policy = get_runtime().config.delivery
    assert hidden[records[0]["messageId"]] == policy.probe_seconds, "the oldest is the probe"
    assert {hidden[record["messageId"]] for record in records[1:]} == {policy.park_seconds}
    table = RelayTable()
    [down] = table.down_lanes()
    assert down.lane == lane(jobs[0]) and down.down_since and "503" in down.reason
    assert table.parked_count(lane(jobs[0])) == 5
    assert dead_letters(queues[1]) == []


def test_a_second_batch_parked_before_the_probe_is_due_brings_no_second_probe(clay, queues, aws_calls):
    clay.answer(CLAY_PATH, Answer(503))
    outage(queues[0], [row_job(1)])
    get_runtime().breaker.reset()  # another worker instance: it tries, fails, and parks
    later = outage(queues[0], [row_job(n) for n in range(2, 4)])
    assert set(visibility(aws_calls, later).values()) == {get_runtime().config.delivery.park_seconds}


def test_when_the_probe_goes_through_the_parked_jobs_are_released_oldest_first_at_the_rate(clay, queues, aws_calls):
    answers = (Answer(503), Answer(200))
    clay.answer(CLAY_PATH, *answers)
    jobs = spaced_jobs(15)
    records = outage(queues[0], jobs[:10]) + outage(queues[0], jobs[10:])
    probe = records[0]

    make_visible_again(queues[0], [probe])
    assert run_worker(received_batch(queues[0], 1)) == set()
    released = visibility(aws_calls, records[1:])
    rate = get_runtime().config.delivery.rates_per_second["clay"]
    assert [released[record["messageId"]] for record in records[1:]] == [int(i / rate) for i in range(14)]
    table = RelayTable()
    assert table.parked_count(lane(jobs[0])) == 0
    assert table.down_lanes() == []

    make_visible_again(queues[0], records[1:])  # their (staggered) hiding ends
    deliver_what_comes_back(queues[0])
    assert delivered_ids(clay, *answers) == list(range(1, 16)), "each once"
    assert len(clay.posted_to(CLAY_PATH)) == 16, "and no request more than the one 503"


def test_a_release_lets_go_of_a_minutes_worth_and_the_next_good_delivery_the_rest(clay, queues, monkeypatch):
    monkeypatch.setattr(parking, "RELEASE_SPAN_SECONDS", 0.6)  # six jobs at Clay's 10/s
    at_most = 6
    clay.answer(CLAY_PATH, Answer(503), Answer(200))
    records = outage(queues[0], spaced_jobs(9))
    table = RelayTable()
    make_visible_again(queues[0], records[:1])
    run_worker(received_batch(queues[0], 1))
    assert table.parked_count(lane(row_job(1))) == 8 - at_most
    [state] = table.down_lanes()
    assert state.more and state.down_since is None, "back up, with jobs still parked"


def test_past_its_retry_horizon_a_job_is_dead_lettered_not_parked(clay, queues, use_config):
    use_config(lambda config: config.setdefault("delivery", {}).update(retry_horizon_seconds=1))
    clay.answer(CLAY_PATH, Answer(503))
    old = row_job(1, accepted_at=row_job(1).accepted_at - 60)
    DeliveryQueue().enqueue([old])
    assert run_worker(received_batch(queues[0], 1)) == set()
    [letter] = dead_letters(queues[1])
    assert "gave up after 1 attempts" in letter["Body"] or "503" in letter["MessageAttributes"]["reason"]["StringValue"]
    assert RelayTable().parked_count(lane(old)) == 0


def test_another_destination_in_the_batch_is_not_parked(clay, queues, destinations):
    from tests.clay_relay.worker.test_destinations import loops_event

    clay.answer(CLAY_PATH, Answer(503))
    DeliveryQueue().enqueue([row_job(1), row_job(2), loops_event()])
    records = received_batch(queues[0], 3)
    failures = run_worker(records)
    assert len(failures) == 2
    assert [lane.lane for lane in RelayTable().down_lanes()] == [lane(row_job(1))]


# --- zero loss with parking in play ------------------------------------------------------------------
def test_a_worker_stopping_mid_release_loses_nothing_and_sends_no_parked_job_twice(clay, queues, monkeypatch):
    answers = (Answer(503), Answer(200))
    clay.answer(CLAY_PATH, *answers)
    records = outage(queues[0], [row_job(n) for n in range(1, 8)])

    class Stopped(BaseException):
        """The Lambda instance dies (timeout, out of memory): nothing after this runs."""

    def die(*args, **kwargs):
        raise Stopped

    monkeypatch.setattr(RelayTable, "unpark", die)
    make_visible_again(queues[0], records[:1])
    with pytest.raises(Stopped):
        run_worker(received_batch(queues[0], 1))
    monkeypatch.undo()

    # Lambda deletes nothing of a batch whose worker died: its probe comes back, and is sent again as
    # any job of a batch that died after its request (the same relay_event_id: Clay's idempotency column).
    make_visible_again(queues[0], records)
    deliver_what_comes_back(queues[0])
    assert delivered_ids(clay, *answers) == [1, *range(1, 8)]
    assert dead_letters(queues[1]) == []


def test_a_release_racing_a_new_outage_parks_again_and_delivers_each_once(clay, queues):
    # The probe goes through, the released jobs meet a new outage, then Clay is back.
    answers = (Answer(503), Answer(200), Answer(503), Answer(200))
    clay.answer(CLAY_PATH, *answers)
    records = outage(queues[0], [row_job(n) for n in range(1, 7)])
    make_visible_again(queues[0], records[:1])
    run_worker(received_batch(queues[0], 1))
    make_visible_again(queues[0], records[1:])
    failures = run_worker(received_batch(queues[0], 5))
    assert len(failures) == 5, "parked again"
    assert RelayTable().parked_count(lane(row_job(1))) == 5

    make_visible_again(queues[0], records[1:])  # a probe and the hiding of the others end
    deliver_what_comes_back(queues[0])
    assert delivered_ids(clay, *answers) == list(range(1, 7))
    assert RelayTable().down_lanes() == []
    assert dead_letters(queues[1]) == []


def test_parking_that_cannot_be_recorded_leaves_the_jobs_their_backoff(clay, queues, aws_calls, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("DynamoDB unavailable")

    monkeypatch.setattr(RelayTable, "mark_down", broken)
    clay.answer(CLAY_PATH, Answer(503))
    records = outage(queues[0], [row_job(1), row_job(2)])
    policy = get_runtime().config.delivery
    for seconds in visibility(aws_calls, records).values():
        assert 1 <= seconds <= policy.min_backoff_seconds, "back after a backoff, as without parking"


# --- the probe ends otherwise ------------------------------------------------------------------------
def test_a_probe_refused_with_a_4xx_shows_the_lane_is_up_and_releases_the_rest(clay, queues, aws_calls):
    clay.answer(CLAY_PATH, Answer(503), Answer(400), Answer(200))
    records = outage(queues[0], spaced_jobs(4))
    make_visible_again(queues[0], records[:1])
    assert run_worker(received_batch(queues[0], 1)) == set()
    assert len(dead_letters(queues[1])) == 1, "the probe itself is hopeless"
    assert [visibility(aws_calls, records)[record["messageId"]] for record in records[1:]] == [0, 0, 0]
    assert RelayTable().down_lanes() == []


def test_a_probe_that_turns_out_a_duplicate_passes_the_probe_to_the_oldest_parked_job(clay, queues, aws_calls):
    clay.answer(CLAY_PATH, Answer(503))
    jobs = spaced_jobs(3)
    records = outage(queues[0], jobs)
    table = RelayTable()
    table.delete([f"event#{jobs[0].event_id}"])  # another copy of its event took it meanwhile
    table.claim(jobs[0].event_id, "another-copy", 3600)
    make_visible_again(queues[0], records[:1])
    due = time.time() + get_runtime().config.delivery.probe_seconds  # it comes back when its probe is due
    with mock.patch("clay_relay.worker.parking.time", mock.Mock(time=lambda: due)):
        assert run_worker(received_batch(queues[0], 1)) == set()
    assert len(clay.posted_to(CLAY_PATH)) == 1, "the duplicate tried nothing"
    hidden = visibility(aws_calls, records)
    assert hidden[records[1]["messageId"]] == 0, "the next oldest tries the lane now"
    assert hidden[records[2]["messageId"]] == get_runtime().config.delivery.park_seconds
    assert [lane.lane for lane in table.down_lanes()] == [lane(jobs[0])]
