"""What one relayed event costs in AWS requests, counted end to end (receiver + queue source +
worker) over a burst, as design.md asks: ≤ 1.2 DynamoDB writes and ≤ 1.3 SQS requests per event, plus
the Clay spend guard's one conditional update per batch and target (issue 16 allows it +0.1: 1.3).
Counts are deterministic (no timing involved), so they are asserted; the figures are printed."""

from __future__ import annotations

import json
from collections import Counter

import boto3
import pytest

from clay_relay.runtime import get_runtime
from local_stack.functions import LocalFunction
from local_stack.gateway import api_gateway_event
from local_stack.poller import QueuePoller
from local_stack.sandboxes import Sandboxes
from local_stack.template import Template, load_template

DYNAMODB_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
SQS_REQUESTS = {
    "SendMessage",
    "SendMessageBatch",
    "ReceiveMessage",
    "DeleteMessage",
    "DeleteMessageBatch",
    "ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch",
}


@pytest.fixture
def clay(aws):
    sandboxes = Sandboxes()
    sandboxes.clay.rate = 1e9  # this counts requests; pacing is not under test here
    url = sandboxes.start("127.0.0.1", 0)
    boto3.client("secretsmanager").put_secret_value(
        SecretId="test/clay-webhooks-leads",
        SecretString=json.dumps([{"url": f"{url}/clay/webhooks/leads-1", "token": "t"}]),
    )
    yield sandboxes
    sandboxes.stop()


def test_a_relayed_directus_event_costs_at_most_1_3_dynamodb_writes_and_1_3_sqs_requests(aws, clay):
    calls: Counter = Counter()
    get_runtime().aws.session.register(
        "before-call", lambda model, **_: calls.update([f"{model.service_model.service_name}:{model.name}"])
    )
    functions = Template(load_template(), "test").functions()
    receiver = LocalFunction(functions["DirectusTriggerFunction"])
    worker = QueuePoller(LocalFunction(functions["DeliveryWorkerFunction"]), aws.ref("DeliveryQueue"), "arn")
    route = functions["DirectusTriggerFunction"].routes[0]
    events = 200
    for key in range(events):
        body = {"event": "leads.items.create", "collection": "leads", "key": key, "payload": {"email": f"l{key}@x.io"}}
        headers = {"authorization": "Bearer directus-token-current", "content-type": "application/json"}
        event = api_gateway_event(
            route, "POST", "/directus/leads", headers, json.dumps(body).encode(), {"source": "leads"}, "127.0.0.1"
        )
        assert receiver.invoke(event)["statusCode"] == 202

    sqs = get_runtime().aws.client("sqs")  # the event source mapping's receives and deletes are counted too
    while worker.poll_once(sqs):  # the event source mapping, batch after batch, until the queue is empty
        pass

    assert sum(1 for d in clay.deliveries.all() if d["status"] == 200) == events
    writes = sum(n for call, n in calls.items() if call.split(":")[1] in DYNAMODB_WRITES and "dynamodb" in call)
    reads = sum(
        n for call, n in calls.items() if call.startswith("dynamodb:") and call.split(":")[1] not in DYNAMODB_WRITES
    )
    sqs_requests = sum(n for call, n in calls.items() if call.startswith("sqs:") and call.split(":")[1] in SQS_REQUESTS)
    print(
        f"\nper relayed event over {events} events: {writes / events:.2f} DynamoDB writes, "
        f"{reads / events:.2f} DynamoDB reads, {sqs_requests / events:.2f} SQS requests  {dict(calls)}"
    )
    assert writes / events <= 1.2 + 0.1  # claims, quota, round trips (1.2) + the spend guard's budget count
    assert reads / events <= 2.1  # the receiver's duplicate check, the persons' round trips, the budgets
    assert sqs_requests / events <= 1.3
