"""The virtual SQS of bench/recovery.py keeps SQS's rules that the relay's retries and parking rely on
(receipt handles, visibility, delays, receive counts, redrive): the recovery figures are only as true
as it is."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from bench.simulated_lambda import VirtualClock
from bench.virtual_sqs import VirtualSqs

QUEUE, DEAD_LETTERS = "https://sqs.bench/delivery", "https://sqs.bench/dead-letters"


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(1_000_000.0)


@pytest.fixture
def sqs(clock):
    queues = VirtualSqs(clock.time)
    queues.create_queue(DEAD_LETTERS, 360)
    queues.create_queue(QUEUE, 360, dead_letter_url=DEAD_LETTERS, max_receive=3)
    return queues.client("test")


def send(sqs, body: str = "job", delay: int = 0) -> None:
    sqs.send_message_batch(QueueUrl=QUEUE, Entries=[{"Id": "0", "MessageBody": body, "DelaySeconds": delay}])


def receive(sqs) -> list[dict]:
    return sqs.receive_message(QueueUrl=QUEUE, MaxNumberOfMessages=10).get("Messages", [])


def test_a_received_message_is_hidden_for_the_visibility_timeout_and_comes_back_counted(sqs, clock):
    send(sqs)
    first = receive(sqs)
    assert receive(sqs) == []
    clock.sleep(360)
    again = receive(sqs)
    assert [m["Attributes"]["ApproximateReceiveCount"] for m in first + again] == ["1", "2"]
    assert again[0]["ReceiptHandle"] != first[0]["ReceiptHandle"]
    assert again[0]["Attributes"]["ApproximateFirstReceiveTimestamp"] == str(int(1_000_000.0 * 1000))


def test_a_delayed_message_is_not_received_before_its_delay(sqs, clock):
    send(sqs, delay=30)
    clock.sleep(29)
    assert receive(sqs) == []
    clock.sleep(1)
    assert len(receive(sqs)) == 1


def test_only_the_latest_receipt_handle_changes_or_deletes_a_message(sqs, clock):
    send(sqs)
    old = receive(sqs)[0]["ReceiptHandle"]
    clock.sleep(360)
    new = receive(sqs)[0]["ReceiptHandle"]
    refused = sqs.change_message_visibility_batch(
        QueueUrl=QUEUE, Entries=[{"Id": "0", "ReceiptHandle": old, "VisibilityTimeout": 0}]
    )
    assert refused["Failed"][0]["Code"] == "ReceiptHandleIsInvalid"
    sqs.delete_message_batch(QueueUrl=QUEUE, Entries=[{"Id": "0", "ReceiptHandle": old}])  # succeeds, deletes nothing
    sqs.change_message_visibility_batch(
        QueueUrl=QUEUE, Entries=[{"Id": "0", "ReceiptHandle": new, "VisibilityTimeout": 0}]
    )
    assert len(receive(sqs)) == 1


def test_a_visible_message_cannot_be_hidden_and_none_stays_hidden_past_twelve_hours(sqs, clock):
    send(sqs)
    handle = receive(sqs)[0]["ReceiptHandle"]
    sqs.change_message_visibility(QueueUrl=QUEUE, ReceiptHandle=handle, VisibilityTimeout=43_200)
    clock.sleep(43_000)
    with pytest.raises(ClientError, match="InvalidParameterValue"):
        sqs.change_message_visibility(QueueUrl=QUEUE, ReceiptHandle=handle, VisibilityTimeout=300)
    clock.sleep(400)  # visible again
    with pytest.raises(ClientError, match="MessageNotInflight"):
        sqs.change_message_visibility(QueueUrl=QUEUE, ReceiptHandle=handle, VisibilityTimeout=300)


def test_a_message_received_more_than_max_receive_count_times_moves_to_the_dead_letter_queue(sqs, clock):
    send(sqs)
    for _ in range(3):
        assert len(receive(sqs)) == 1
        clock.sleep(360)
    assert receive(sqs) == []
    moved = sqs.receive_message(QueueUrl=DEAD_LETTERS, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in moved] == ["job"]
