"""The delivery queue as the tests see it: messages received from moto's SQS, SQS Lambda event
records built from them as the event source builds them, one worker run over a batch."""

from __future__ import annotations

import boto3

from local_stack import poller

ACCOUNT_ID = "123456789012"


REGION = "us-east-1"


def queue_arn(queue_url: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{queue_url.rsplit('/', 1)[-1]}"


def receive(queue_url: str, *, max_messages: int = 10) -> list[dict]:
    """Messages now visible on the queue (ReceiveMessage, all attributes)."""
    answer = boto3.client("sqs").receive_message(
        QueueUrl=queue_url,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
        MaxNumberOfMessages=max_messages,
    )
    return answer.get("Messages", [])


def sqs_record(message: dict, queue_url: str) -> dict:
    """An SQS Lambda event record built from a real ReceiveMessage answer, as the local stack's
    event source builds it."""
    return poller.sqs_record(message, queue_arn(queue_url))


def delayed_bodies(queue_url: str) -> list[str]:
    """Bodies of messages sent with a delay and still hidden. SQS has no API to peek at those, so
    this reads moto's backend."""
    from moto.sqs.models import sqs_backends

    queue = sqs_backends[ACCOUNT_ID][REGION].queues[queue_url.rsplit("/", 1)[-1]]
    return [message.body for message in queue._messages if message.delayed]


def _moto_messages(queue_url: str) -> list:
    from moto.sqs.models import sqs_backends

    return list(sqs_backends[ACCOUNT_ID][REGION].queues[queue_url.rsplit("/", 1)[-1]]._messages)


def delays(queue_url: str) -> list[tuple[str, int]]:
    """(body, seconds it was sent with a delay for) of the messages still delayed, in sending order."""
    return [
        (message.body, round((message.delayed_until - message.sent_timestamp) / 1000))
        for message in _moto_messages(queue_url)
        if message.delayed
    ]


def end_delays(queue_url: str) -> None:
    """What SQS does when the delay of a delayed message is over: it can be received."""
    for message in _moto_messages(queue_url):
        message.delayed_until = 0


def end_hiding(queue_url: str) -> None:
    """What SQS does when every hidden message's visibility timeout is over (a retry's backoff, a
    parked job's hiding): they can be received again. By then the worker's cool-down is over too."""
    from clay_relay.runtime import get_runtime

    get_runtime().breaker.reset()
    for message in _moto_messages(queue_url):
        message.visible_at = 0.0


def received_records(queue_url: str, expected: int) -> list[dict]:
    """The `expected` messages now visible on the queue, as the SQS records of one worker batch."""
    messages = receive(queue_url)
    assert len(messages) == expected
    return [sqs_record(message, queue_url) for message in messages]


def run_worker(records: list[dict], context: object = None) -> set[str]:
    """The delivery worker over one SQS batch; the message ids it reports as failed."""
    from clay_relay.worker import handle_batch

    response = handle_batch({"Records": records}, context)
    return {item["itemIdentifier"] for item in response["batchItemFailures"]}


def make_visible_again(queue_url: str, records: list[dict]) -> None:
    """What SQS does when a message's visibility timeout ends (or the Lambda that received it
    died): it can be received again, as a redelivery. By then the worker's cool-down for a
    destination that failed is over too."""
    from clay_relay.runtime import get_runtime

    get_runtime().breaker.reset()
    sqs = boto3.client("sqs")
    for record in records:
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=0)


def message_attribute(message: dict, name: str) -> str:
    return message["MessageAttributes"][name]["StringValue"]


def queue_attribute(queue_url: str, name: str) -> int:
    answer = boto3.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=[name])
    return int(answer["Attributes"][name])
