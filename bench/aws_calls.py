"""AWS requests per relayed event, counted end to end for every flow (receiver + the event source
mapping's receive/delete + worker), and what a million relayed events cost at AWS list prices.

Each flow runs in-process against moto (its table, queues and secrets provisioned from
template.yaml) and the sandboxes (Clay, Loops, Slack, Directus stand-ins): `--events` requests go
through the receiver, then the delivery queue is drained batch by batch as the event source
mapping does (10 messages per batch). Every call made through the relay's botocore session, and
the queue source's own, is counted. A relayed event is one job delivered to one destination (a Clay
callback for a hot lead makes several). Counts do not depend on timing: they are the same on every
machine.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from moto import mock_aws
from standardwebhooks.webhooks import Webhook

from local_stack.aws import FAKE_CREDENTIALS, provision, read_local_env
from local_stack.functions import LocalFunction
from local_stack.gateway import api_gateway_event
from local_stack.poller import QueuePoller
from local_stack.sandboxes import Sandboxes, loops_event
from local_stack.template import Template, load_template
from tests.conftest import fresh_runtime  # the same reset the tests use between environments

DYNAMODB_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
STACK = "clay-relay-bench"

# us-east-1 list prices (design.md), per request / unit / GB-s.
PRICES = {
    "http_api_request": 1.00e-6,
    "lambda_request": 0.20e-6,
    "lambda_gb_second_arm64": 0.0000133334,
    "dynamodb_write_unit": 0.625e-6,
    "dynamodb_read_unit": 0.125e-6,
    "sqs_request": 0.40e-6,
}


@dataclass
class Flow:
    name: str
    function: str
    method: str
    path: str
    path_parameters: dict[str, str]
    request: Callable[[int, str, dict[str, str]], tuple[dict[str, str], bytes]]
    prepare: Callable[[Sandboxes, int, str], None] | None = None  # e.g. the Directus items the events are about
    relayed: tuple[str, str] | None = None  # (destination, method) of the requests that count as relayed events


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "content-type": "application/json"}


def _directus(n: int, run: str, secrets: dict[str, str]) -> tuple[dict[str, str], bytes]:
    body = {
        "event": "leads.items.create",
        "collection": "leads",
        "key": f"{run}-{n}",
        "payload": {"email": f"d{n}@x.io"},
    }
    return _bearer(secrets["directus-tokens"].split(",")[0]), json.dumps(body).encode()


def _lead(n: int, run: str, secrets: dict[str, str]) -> tuple[dict[str, str], bytes]:
    body = {
        "email": f"c{n}-{run}@example.com",
        "first_name": "Grace",
        "company_name": f"Compiler {n}",
        "icp_score": (95, 85, 60, 20)[n % 4],  # hot outreach, outreach, nurture, skipped
    }
    return _bearer(secrets["clay-callback-tokens"]), json.dumps(body).encode()


def _forward(n: int, run: str, secrets: dict[str, str]) -> tuple[dict[str, str], bytes]:
    body = {"email": f"f{n}-{run}@example.com", "eventName": "trial_started"}
    return _bearer(secrets["clay-callback-tokens"]), json.dumps(body).encode()


def _loops_webhook(n: int, run: str, secrets: dict[str, str]) -> tuple[dict[str, str], bytes]:
    body = {
        "eventName": "contact.created",
        "eventTime": int(time.time()),
        "webhookSchemaVersion": "1.0.0",
        "contact": {"id": f"c-{run}-{n}", "email": f"w{n}-{run}@example.com", "firstName": "Lin"},
    }
    return _signed(body, secrets)


def _loops_email(event_type: str) -> Callable[[int, str, dict[str, str]], tuple[dict[str, str], bytes]]:
    """Loops' `event_type` about lead n of the run (the sandbox Loops' shape of it)."""

    def request(n: int, run: str, secrets: dict[str, str]) -> tuple[dict[str, str], bytes]:
        return _signed(loops_event(event_type, email=f"b{n}-{run}@example.com"), secrets)

    return request


def _directus_items(sandboxes: Sandboxes, events: int, run: str) -> None:
    sandboxes.directus.seed("leads", [{"email": f"b{n}-{run}@example.com"} for n in range(events)])


def _signed(event: dict, secrets: dict[str, str]) -> tuple[dict[str, str], bytes]:
    body = json.dumps(event)
    webhook_id, now = f"msg_{uuid.uuid4().hex}", datetime.now(UTC)
    headers = {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secrets["loops-webhook-secret"]).sign(webhook_id, now, body),
    }
    return headers, body.encode()


FLOWS = [
    Flow("directus → clay", "DirectusTriggerFunction", "POST", "/directus/leads", {"source": "leads"}, _directus),
    Flow(
        "loops webhook → clay", "LoopsForwarderFunction", "POST", "/loops/webhook", {"route": "webhook"}, _loops_webhook
    ),
    Flow("clay → loops event", "LoopsForwarderFunction", "POST", "/loops/events", {"route": "events"}, _forward),
    Flow("clay callback → loops/slack/directus", "ClayCallbackFunction", "POST", "/clay/enriched", {}, _lead),
]
# Loops events besides Clay rows (issue 17), per Loops event: reported apart from the relayed flows.
LOOPS_FEEDBACK_FLOWS = [
    Flow(
        "loops hard bounce → directus feedback",
        "LoopsForwarderFunction",
        "POST",
        "/loops/webhook",
        {"route": "webhook"},
        _loops_email("email.hardBounced"),
        prepare=_directus_items,
        relayed=("directus", "PATCH"),
    ),
    Flow(
        "loops email outcome kept in the trace",
        "LoopsForwarderFunction",
        "POST",
        "/loops/webhook",
        {"route": "webhook"},
        _loops_email("email.delivered"),
    ),
    Flow(
        "loops email outcome not kept",
        "LoopsForwarderFunction",
        "POST",
        "/loops/webhook",
        {"route": "webhook"},
        _loops_email("email.opened"),
    ),
]


@contextmanager
def _stack() -> Iterator[tuple[dict, Sandboxes, dict[str, str]]]:
    """moto (in-process) with the template's resources, the sandboxes, the functions' environment."""
    saved = dict(os.environ)
    sandboxes = Sandboxes()
    sandboxes.clay.rate = 1e9  # requests are counted here, not paced
    url = sandboxes.start("127.0.0.1", 0)
    os.environ.update(FAKE_CREDENTIALS)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    try:
        with mock_aws():
            provisioned = provision(Template(load_template(), STACK), read_local_env(sandbox_url=url))
            os.environ.update(provisioned.environment)
            os.environ.update(
                {
                    "LOOPS_API_BASE": f"{url}/loops/api",
                    "ALLOW_LOCAL_DESTINATIONS": "1",
                    "POWERTOOLS_TRACE_DISABLED": "1",
                    "POWERTOOLS_METRICS_DISABLED": "1",
                    "POWERTOOLS_LOG_LEVEL": "ERROR",
                }
            )
            yield provisioned.resolver.refs, sandboxes, provisioned.secrets
    finally:
        sandboxes.stop()
        os.environ.clear()
        os.environ.update(saved)


def count_flow(flow: Flow, events: int) -> dict:
    from clay_relay.runtime import get_runtime  # after the environment is set

    with _stack() as (refs, sandboxes, secrets):
        fresh_runtime()
        calls: Counter = Counter()
        items_read = Counter()
        session = get_runtime().aws.session
        session.register(
            "before-call", lambda model, **_: calls.update([(model.service_model.service_name, model.name)])
        )
        session.register(
            "before-parameter-build.dynamodb",
            lambda params, model, **_: items_read.update(
                {"items": sum(len(r["Keys"]) for r in params["RequestItems"].values())}
                if model.name == "BatchGetItem"
                else {"items": 1 if model.name in ("GetItem", "Query") else 0}
            ),
        )
        functions = Template(load_template(), STACK).functions()
        receiver = LocalFunction(functions[flow.function])
        worker = QueuePoller(LocalFunction(functions["DeliveryWorkerFunction"]), refs["DeliveryQueue"], "arn")
        route = next(r for r in functions[flow.function].routes if r.match(flow.method, flow.path) is not None)
        run, accepted_requests = uuid.uuid4().hex[:8], 0
        if flow.prepare:
            flow.prepare(sandboxes, events, run)
        for n in range(events):
            headers, body = flow.request(n, run, secrets)
            event = api_gateway_event(route, flow.method, flow.path, headers, body, flow.path_parameters, "127.0.0.1")
            answer = receiver.invoke(event)
            if answer["statusCode"] != 202:
                raise RuntimeError(f"{flow.name}: the receiver answered {answer['statusCode']}: {answer['body']}")
            accepted_requests += 1
        receiver_calls = Counter(calls)
        sqs = get_runtime().aws.client("sqs")  # the event source mapping's requests are billed too
        batches = 0
        while worker.poll_once(sqs):
            batches += 1
        delivered = sum(
            1
            for d in sandboxes.deliveries.all()
            if 200 <= d["status"] < 300 and (flow.relayed is None or (d["destination"], d["method"]) == flow.relayed)
        )
        dead = int(
            sqs.get_queue_attributes(QueueUrl=refs["DeadLetterQueue"], AttributeNames=["ApproximateNumberOfMessages"])[
                "Attributes"
            ]["ApproximateNumberOfMessages"]
        )
    jobs = delivered or accepted_requests  # a flow that relays nothing (an event kept, or ignored): per request
    writes = sum(n for (service, op), n in calls.items() if service == "dynamodb" and op in DYNAMODB_WRITES)
    # The only writes a receiver makes: the enrichment callback closing the lead's round trip in the
    # ledger (one per lead, the allowance on top of the per-event figure).
    closing = sum(n for (service, op), n in receiver_calls.items() if service == "dynamodb" and op in DYNAMODB_WRITES)
    reads = items_read["items"]  # items (of up to 4 KB: a read unit each when strongly consistent)
    # Minus the final empty receive (the event source mapping's long polls are a fixed cost, not
    # per event) and the dead-letter check above.
    sqs_requests = sum(n for (service, _), n in calls.items() if service == "sqs") - 2
    return {
        "requests": accepted_requests,
        "relayed_events": delivered,
        "per": "relayed event" if delivered else "request",
        "dead_lettered": dead,
        "worker_invocations": batches,
        "dynamodb_writes_per_event": (writes - closing) / jobs,
        "dynamodb_writes_per_event_with_round_trip_close": writes / jobs,
        "round_trip_close_writes_per_lead": closing / accepted_requests,
        "dynamodb_items_read_per_event": reads / jobs,
        "sqs_requests_per_event": sqs_requests / jobs,
        "receiver_calls": {f"{s}:{op}": n for (s, op), n in sorted(receiver_calls.items())},
        "all_calls": {f"{s}:{op}": n for (s, op), n in sorted(calls.items())},
    }


def cost_per_million(flow: dict, *, receiver_ms: float, worker_ms_per_event: float, memory_mb: int) -> dict:
    """Dollars per million relayed events of one flow (or requests, for a flow that relays nothing), by AWS part."""
    relayed = flow["relayed_events"] or flow["requests"]
    per_event = flow["requests"] / relayed
    invocations = per_event + flow["worker_invocations"] / relayed
    gb_seconds = (per_event * receiver_ms + worker_ms_per_event) / 1000 * memory_mb / 1024
    parts = {
        "api_gateway": per_event * PRICES["http_api_request"],
        "lambda_requests": invocations * PRICES["lambda_request"],
        "lambda_duration": gb_seconds * PRICES["lambda_gb_second_arm64"],
        "dynamodb_writes": flow["dynamodb_writes_per_event_with_round_trip_close"] * PRICES["dynamodb_write_unit"],
        # Reads are eventually consistent: half a read unit per item of up to 4 KB.
        "dynamodb_reads": flow["dynamodb_items_read_per_event"] * 0.5 * PRICES["dynamodb_read_unit"],
        "sqs": flow["sqs_requests_per_event"] * PRICES["sqs_request"],
    }
    parts = {name: value * 1e6 for name, value in parts.items()}
    return {"total": sum(parts.values()), **parts}


if __name__ == "__main__":
    for flow in FLOWS + LOOPS_FEEDBACK_FLOWS:
        print(flow.name, json.dumps(count_flow(flow, 40), indent=2))
