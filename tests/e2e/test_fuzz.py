"""Fuzzing: schemathesis sends generated requests to every route of a running local stack and
checks every answer against the relay's contract, openapi.yaml (which the stack serves at
`GET /_local/openapi.json`): never a 5xx, a documented status with a JSON body of the documented
shape and headers, and for any other method a 405 with `Allow`.

It runs schemathesis' examples, coverage (boundaries; missing, wrong-typed and extra fields and
headers; other content types and methods) and fuzzing phases, with bodies that match the request
schemas and bodies that break them. Requests carry valid credentials, as their senders send them:
the Bearer tokens of the stack's secrets, and for Loops webhooks a Standard Webhooks signature
(by the `standardwebhooks` reference implementation) over the exact bytes that go out, with a
fresh timestamp. The cases in which schemathesis leaves a credential out or spoils it go as they
are (401).

The stack is one of its own (the e2e configuration, one delivery worker): what the fuzzing gets
accepted cannot reach the other end-to-end tests' sandboxes or quotas.

How many requests it sent, and what was answered, is printed as a warning at the end of the run
and written to `.local-stack/fuzz-summary.json`. `FUZZ_EXAMPLES=<n>` changes how many cases each
operation gets per phase and mode (default 180, about 1,400 requests); `FUZZ_STRICT=1` also
checks that the request schemas are exact (schema-valid bodies accepted, schema-violating ones
refused, except at `/loops/webhook`, which answers any authentic event 202).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
import uuid
import warnings
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
import schemathesis
import yaml
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)
from standardwebhooks.webhooks import Webhook

from clay_relay.directus import event_action
from local_stack.process import StackFailed, stack_process
from tests.e2e.conftest import E2E_CONFIG, E2E_DELIVERY, LOOPS_WEBHOOK_SECRET, TOKEN, RunningStack

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "openapi.yaml"
SUMMARY = ROOT / ".local-stack" / "fuzz-summary.json"
MIN_REQUESTS = 1000
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "180"))  # cases per operation, phase and generation mode
STRICT = os.environ.get("FUZZ_STRICT") == "1"
# Items per Directus event: enough to be queued in bundles (over 100), few enough that the rows of
# a few dozen accepted events keep the stack busy for seconds, not minutes.
MAX_ITEMS = 150
CLAY_CALLBACK_TOKEN = "fuzz-clay-callback-token"
SIGN_ME = "sign-me"  # the webhook headers' configured value: signed for real when the request goes out

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    unsupported_method,
]

# Deliveries leave the queue at once: moto's SQS takes time in proportion to the messages a queue
# holds for every SendMessage, so a queue that keeps what the fuzzing gets accepted would slow the
# receivers down to hundreds of milliseconds a request. Clay rows go to the sandbox Clay without a
# rate limit; the other destinations hold the template's placeholder, so their jobs are
# dead-lettered once their 1-second retry horizon has passed.
FUZZ_CONFIG = {
    **E2E_CONFIG,
    "delivery": {
        **E2E_DELIVERY,
        "retry_horizon_seconds": 1,
        "max_backoff_seconds": 1,
        "hold_seconds": 1,
        "rates_per_second": {"clay": 100_000},
    },
}
FUZZ_SECRETS = f"""
DIRECTUS_TOKENS={TOKEN}
CLAY_CALLBACK_TOKENS={CLAY_CALLBACK_TOKEN}
CLAY_CALLBACK_HMAC_KEYS=fuzz-signing-key
LOOPS_WEBHOOK_SECRET={LOOPS_WEBHOOK_SECRET}
CLAY_WEBHOOKS_LEADS=[{{"url": "{{sandbox}}/clay/webhooks/fuzz-leads"}}]
CLAY_WEBHOOKS_QUOTA=[{{"url": "{{sandbox}}/clay/webhooks/fuzz-quota"}}]
CLAY_WEBHOOKS_LOOPS_CONTACTS=[{{"url": "{{sandbox}}/clay/webhooks/fuzz-loops-contacts"}}]
LOOPS_API_KEY=REPLACE_ME
SLACK_WEBHOOK_URL=REPLACE_ME
ZAPIER_WEBHOOK_URL=REPLACE_ME
DIRECTUS_API=REPLACE_ME
"""
STACK_OPTIONS = ("--workers", "1", "--clay-rate", "100000", "--clay-limit", "1000000")

CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {"mode": "all", "max-examples": EXAMPLES, "database": "none"},
        # Generation may be slow on a busy machine: that is no finding about the relay.
        "suppress-health-check": ["all"],
        # API Gateway's HTTP API routes these methods (and HEAD, answered the same) to the functions.
        "phases": {
            "coverage": {"unexpected-methods": ["GET", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"]},
            "stateful": {"enabled": False},
        },
        # Mostly the Directus source and collection the stack has, so that what varies is the rest.
        "dictionaries": {"sources": {"values": ["leads"]}, "collections": {"values": ["leads"]}},
        "parameters": {
            "path.source": {"dictionary": "sources", "probability": 0.9},
            "body.collection": {"dictionary": "collections", "probability": 0.9},
        },
        "auth": {
            "openapi": {
                "directusToken": {"bearer": TOKEN},
                "clayCallbackToken": {"bearer": CLAY_CALLBACK_TOKEN},
                "loopsForwardingToken": {"bearer": CLAY_CALLBACK_TOKEN},
                "webhookId": {"api_key": SIGN_ME},
                "webhookTimestamp": {"api_key": SIGN_ME},
                "webhookSignature": {"api_key": SIGN_ME},
            }
        },
    }
)
schema = schemathesis.openapi.from_path(CONTRACT, config=CONFIG)


class StandardWebhooksSigner(requests.auth.AuthBase):
    """Signs a Loops webhook over its body exactly as it goes out (serialised), with a fresh id and
    timestamp, when schemathesis left the configured credentials in place; any other request goes
    as it is."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if request.headers.get("webhook-signature") != SIGN_ME:
            return request
        body = request.body or b""
        body = body.encode() if isinstance(body, str) else body
        webhook_id = f"msg_{uuid.uuid4().hex}"
        timestamp = int(time.time())
        try:
            signature = Webhook(LOOPS_WEBHOOK_SECRET).sign(
                webhook_id, datetime.fromtimestamp(timestamp, tz=UTC), body.decode("utf-8")
            )
        except UnicodeDecodeError:  # the reference implementation signs only text: the same HMAC by hand
            key = base64.b64decode(LOOPS_WEBHOOK_SECRET.removeprefix("whsec_"))
            digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
            signature = "v1," + base64.b64encode(digest).decode()
        request.headers.update(
            {"webhook-id": webhook_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}
        )
        return request


class Tally:
    """What the fuzzing sent and was answered, for the summary."""

    def __init__(self) -> None:
        self.answers: Counter[str] = Counter()
        self.started = time.monotonic()

    @property
    def requests(self) -> int:
        return sum(self.answers.values())


TALLY = Tally()


class FuzzReport(UserWarning):
    """The fuzzing's summary line, shown in pytest's warnings summary."""


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory) -> RunningStack:
    folder = tmp_path_factory.mktemp("fuzz-stack")
    try:
        with stack_process(folder, FUZZ_CONFIG, FUZZ_SECRETS, *STACK_OPTIONS) as running:
            TALLY.started = time.monotonic()
            yield RunningStack(**vars(running))
    except StackFailed as error:
        pytest.fail(str(error))


def test_the_stack_serves_the_contract_with_itself_as_server(fuzz_stack):
    answer = requests.get(f"{fuzz_stack.gateway}/_local/openapi.json", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json"
    served = answer.json()
    assert served["servers"] == [{"url": fuzz_stack.gateway, "description": "this local stack"}]
    assert {**served, "servers": None} == {**yaml.safe_load(CONTRACT.read_text(encoding="utf-8")), "servers": None}


@schema.parametrize()
def test_every_answer_keeps_the_contract(case, fuzz_stack):
    keys = case.body.get("keys") if isinstance(case.body, dict) else None
    if isinstance(keys, list) and len(keys) > MAX_ITEMS:
        case.body["keys"] = keys[:MAX_ITEMS]
    response = case.call(base_url=fuzz_stack.gateway, auth=StandardWebhooksSigner(), timeout=30)
    TALLY.answers[f"{response.request.method} {case.operation.path} {response.status_code}"] += 1
    case.validate_response(response, checks=CHECKS + strict_checks(case))


def strict_checks(case) -> list:
    if not STRICT:
        return []
    body = case.body if isinstance(case.body, dict) else {}
    checks = [] if case.operation.path == "/loops/webhook" else [negative_data_rejection]
    # Another Directus collection than the source's is a 422 by configuration, and an event name of
    # another collection than the body's by the body itself, neither of which a schema can say.
    directus = case.operation.path.startswith("/directus/")
    if not (directus and (body.get("collection") != "leads" or not _event_of_collection(body))):
        checks.append(positive_data_acceptance)
    return checks


def _event_of_collection(body: dict) -> bool:
    event, collection = body.get("event"), body.get("collection")
    return isinstance(event, str) and isinstance(collection, str) and event_action(event, collection) is not None


def test_enough_requests_were_sent_and_every_route_accepted_some():
    seconds = round(time.monotonic() - TALLY.started)
    summary = {"requests": TALLY.requests, "seconds": seconds, "answers": dict(sorted(TALLY.answers.items()))}
    SUMMARY.parent.mkdir(exist_ok=True)
    SUMMARY.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    by_status = Counter(key.rsplit(" ", 1)[1] for key in TALLY.answers.elements())
    warnings.warn(
        FuzzReport(f"fuzzing: {TALLY.requests} requests in {seconds} s, answered {dict(sorted(by_status.items()))}"),
        stacklevel=1,
    )
    assert TALLY.requests >= MIN_REQUESTS, summary
    for operation in schema.get_all_operations():
        path = operation.ok().path
        assert TALLY.answers[f"POST {path} 202"] > 0, f"nothing sent to {path} was accepted: {summary}"
