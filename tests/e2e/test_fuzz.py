"""Fuzzing: schemathesis sends generated requests to every route of a running local stack (a stack
of its own, so that what it accepts cannot disturb the other end-to-end tests' deliveries), with
valid credentials, and checks every answer against the contract the stack serves at
`GET /_local/openapi.json` (openapi.yaml): never a 5xx, a documented status, JSON, the documented
body; any other method is a 405 naming the allowed one.

Positive and negative data (bodies that match the request schemas and bodies that break them),
schemathesis' coverage phase (boundaries, missing and wrong-typed fields and headers, unexpected
methods) and its fuzzing phase. Requests with credentials are authenticated as their senders do:
the tokens as configured; Loops webhooks signed (Standard Webhooks, by the `standardwebhooks`
reference implementation) over the exact bytes that go out, with a fresh timestamp. Cases in
which schemathesis drops or spoils a credential are sent as they are (and must be a 401).

The number of requests is in the pytest output (a warning), and with the failures in
`.local-stack/fuzz-summary.json`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
import warnings
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)
from standardwebhooks.webhooks import Webhook

from local_stack.process import StackFailed, stack_process
from tests.e2e.conftest import E2E_CONFIG, LOOPS_WEBHOOK_SECRET, TOKEN, RunningStack

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = ROOT / ".local-stack" / "fuzz-summary.json"
CLAY_CALLBACK_TOKEN = "local-clay-callback-token"  # E2E_SECRETS' CLAY_CALLBACK_TOKENS
MIN_REQUESTS = 1000
MAX_EXAMPLES = 120  # fuzzing-phase cases per operation and generation mode
SIGN_ME = "sign-me"  # what the configuration puts in the webhook headers; replaced by real ones when sent
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    unsupported_method,
]

# The e2e configuration, whose deliveries wait: no destination is set up (the placeholder, an empty
# Clay pool), and a job that found none comes back only after 15 minutes. The worker takes each
# accepted job once and leaves the fuzzing the machine.
FUZZ_CONFIG = {
    **E2E_CONFIG,
    "delivery": {"min_backoff_seconds": 900, "max_backoff_seconds": 3600, "hold_seconds": 900},
}
FUZZ_SECRETS = f"""
DIRECTUS_TOKENS={TOKEN}
CLAY_CALLBACK_TOKENS={CLAY_CALLBACK_TOKEN}
CLAY_CALLBACK_HMAC_KEYS=fuzz-signing-key
LOOPS_WEBHOOK_SECRET={LOOPS_WEBHOOK_SECRET}
CLAY_WEBHOOKS_LEADS=[]
CLAY_WEBHOOKS_QUOTA=[]
CLAY_WEBHOOKS_LOOPS_CONTACTS=[]
LOOPS_API_KEY=REPLACE_ME
SLACK_WEBHOOK_URL=REPLACE_ME
ZAPIER_WEBHOOK_URL=REPLACE_ME
DIRECTUS_API=REPLACE_ME
"""

CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "database": "none"},
        # API Gateway's HTTP API serves these methods (and HEAD); it has no QUERY.
        "phases": {
            "coverage": {"unexpected-methods": ["GET", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"]},
            "stateful": {"enabled": False},
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


class StandardWebhooksSigner(requests.auth.AuthBase):
    """Signs a Loops webhook over the body exactly as it goes out (after serialisation), when
    schemathesis left the configured credentials in place; every other request goes as it is."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if request.headers.get("webhook-signature") != SIGN_ME:
            return request
        body = request.body or b""
        body = body.encode() if isinstance(body, str) else body
        webhook_id = request.headers["webhook-id"] = f"msg_{uuid.uuid4().hex}"
        timestamp = int(time.time())
        request.headers["webhook-timestamp"] = str(timestamp)
        try:
            signature = Webhook(LOOPS_WEBHOOK_SECRET).sign(
                webhook_id, datetime.fromtimestamp(timestamp, tz=UTC), body.decode("utf-8")
            )
        except UnicodeDecodeError:  # the reference implementation signs only text
            key = base64.b64decode(LOOPS_WEBHOOK_SECRET.removeprefix("whsec_"))
            digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
            signature = "v1," + base64.b64encode(digest).decode()
        request.headers["webhook-signature"] = signature
        return request


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory):
    """A local stack of its own (one delivery worker): what the fuzzing gets accepted is delivered
    to its own sandboxes."""
    try:
        with stack_process(tmp_path_factory.mktemp("fuzz-stack"), FUZZ_CONFIG, FUZZ_SECRETS, "--workers", "1") as running:
            yield RunningStack(**vars(running))
    except StackFailed as error:
        pytest.fail(str(error))


class Tally:
    def __init__(self):
        self.requests = 0
        self.call_seconds = 0.0
        self.times: Counter[str] = Counter()
        self.sizes: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        self.started = time.monotonic()


TALLY = Tally()
schema = schemathesis.openapi.from_path(ROOT / "openapi.yaml", config=CONFIG)


@schema.parametrize()
def test_every_answer_keeps_the_contract(case, fuzz_stack):
    t0 = time.monotonic()
    response = case.call(base_url=fuzz_stack.gateway, auth=StandardWebhooksSigner(), timeout=30)
    TALLY.requests += 1
    TALLY.call_seconds += time.monotonic() - t0
    key = f"{response.request.method} {case.operation.path} {response.status_code}"
    TALLY.statuses[key] += 1
    TALLY.times[key] += response.elapsed
    TALLY.sizes[key] += len(response.request.body or b"")
    case.validate_response(response, checks=CHECKS)


def test_enough_requests_were_sent():
    seconds = round(time.monotonic() - TALLY.started, 1)
    SUMMARY.parent.mkdir(exist_ok=True)
    SUMMARY.write_text(
        json.dumps({"requests": TALLY.requests, "seconds": seconds, "answers": dict(TALLY.statuses)}, indent=2)
    )
    warnings.warn(f"fuzzing sent {TALLY.requests} requests in {seconds} s ({TALLY.call_seconds:.1f} s calling): { {k: (n, round(TALLY.times[k] / n * 1000), TALLY.sizes[k] // n) for k, n in TALLY.statuses.items() if "POST" in k} }", stacklevel=1)
    assert TALLY.requests >= MIN_REQUESTS
