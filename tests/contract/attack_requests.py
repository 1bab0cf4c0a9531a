"""Requests of the attack and property tests (tests/contract/test_attacks.py,
test_signature_properties.py): valid requests to every HTTP route as their senders make them
(Standard Webhooks signed by the `standardwebhooks` reference implementation, an independent peer),
ways to spoil them, and one moto stack per test module whose AWS calls are counted."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
from botocore.client import BaseClient
from moto import mock_aws

from local_stack.aws import Provisioned, provision
from local_stack.template import Template, load_template
from tests.conftest import TEST_SECRETS, fresh_runtime
from tests.invocations import LambdaContext, default_config, http_api_event, load_handler
from tests.loops_requests import CLAY_TOKEN, SECRET, contact_created, new_webhook_id, reference_headers

DIRECTUS_TOKEN = "directus-token-current"  # tests/conftest.py's TEST_SECRETS
HMAC_KEY = "clay-signing-key-0001"
MAX_BODY = 262_144  # MAX_BODY_BYTES' default (template.yaml)

DIRECTUS_EVENT = {
    "event": "leads.items.create",
    "payload": {"email": "ada@example.com", "first_name": "Ada", "company": "Acme"},
    "key": 1,
    "collection": "leads",
}
LEAD = {"email": "alan.turing@example.com", "first_name": "Alan", "employee_count": "1,200", "icp_score": "84"}
LOOPS_CONTACT = {"email": "alan.turing@example.com", "firstName": "Alan"}
LOOPS_EVENT = {"email": "alan.turing@example.com", "eventName": "demo_requested"}

ROUTES = ("directus", "clay", "loops-webhook", "loops-contacts", "loops-events")
BEARER_ROUTES = ("directus", "clay", "loops-contacts", "loops-events")
VALID_BODY = {
    "directus": DIRECTUS_EVENT,
    "clay": LEAD,
    "loops-webhook": contact_created(),
    "loops-contacts": LOOPS_CONTACT,
    "loops-events": LOOPS_EVENT,
}
FUNCTION_OF_PATH = {"directus": "directus_trigger", "clay": "clay_callback", "loops": "loops_forwarder"}


# --- requests ---------------------------------------------------------------------------------------
def raw(body: object) -> bytes:
    return body if isinstance(body, bytes) else body.encode() if isinstance(body, str) else json.dumps(body).encode()


def peer_signature(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks' v1 signature over bytes that are no UTF-8 text (the reference library
    signs only text): HMAC-SHA256 with the secret's base64-decoded key over `id.timestamp.body`."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def webhook_headers(body: bytes, secret: str = SECRET, *, webhook_id: str | None = None, timestamp=None) -> dict:
    webhook_id = webhook_id or new_webhook_id()
    timestamp = int(time.time()) if timestamp is None else timestamp
    try:
        return reference_headers(secret, body.decode("utf-8"), webhook_id=webhook_id, timestamp=timestamp)
    except UnicodeDecodeError:
        signature = peer_signature(secret, webhook_id, timestamp, body)
        return {"webhook-id": webhook_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}


def request(
    route: str,
    body: object = None,
    *,
    method: str = "POST",
    headers: dict[str, str | None] | None = None,
    base64_encoded: bool = False,
    signed: bool = True,
) -> dict:
    """A valid request to `route` (authenticated as its sender does) with `body` (the route's valid
    body by default) and `headers` changed (None removes one)."""
    body = VALID_BODY[route] if body is None else body
    data = raw(body)
    sent: dict[str, str] = {"content-type": "application/json"}
    if route == "loops-webhook":
        if signed:
            sent.update(webhook_headers(data))
    elif route == "directus":
        sent["authorization"] = f"Bearer {DIRECTUS_TOKEN}"
    else:
        sent["authorization"] = f"Bearer {CLAY_TOKEN}"
    for name, value in (headers or {}).items():
        sent.pop(name.lower(), None)
        if value is not None:
            sent[name] = value
    if route == "directus":
        path, route_key, parameters = "/directus/leads", "ANY /directus/{source}", {"source": "leads"}
    elif route == "clay":
        path, route_key, parameters = "/clay/enriched", "ANY /clay/enriched", {}
    else:
        name = route.removeprefix("loops-")
        path, route_key, parameters = f"/loops/{name}", "ANY /loops/{route}", {"route": name}
    event = http_api_event(
        path,
        data,
        method=method,
        route_key=route_key,
        path_parameters=parameters,
        base64_encoded=base64_encoded,
    )
    # Header names exactly as given: API Gateway lower-cases them, other front ends may not.
    event["headers"] = {**{k: v for k, v in event["headers"].items() if k in ("host", "content-length")}, **sent}
    return event


def with_headers(event: dict, **changes: str | None) -> dict:
    """The event with headers changed after it was built (`webhook_id` for `webhook-id`)."""
    for name, value in changes.items():
        name = name.replace("_", "-")
        event["headers"].pop(name, None)
        if value is not None:
            event["headers"][name] = value
    return event


def recased(event: dict, case: Callable[[str], str]) -> dict:
    event["headers"] = {case(name): value for name, value in event["headers"].items()}
    return event


def flip_bit(text: str, position: int) -> str:
    """`text` with one bit of the character at `position` flipped (staying printable ASCII)."""
    position %= len(text)
    char = text[position]
    flipped = chr(ord(char) ^ 1) if ord(char) ^ 1 > 32 else chr(ord(char) ^ 2)
    return text[:position] + flipped + text[position + 1 :]


def flip_signature_bit(signature: str, bit: int) -> str:
    """A `v1,<base64>` signature whose HMAC has one bit flipped."""
    digest = bytearray(base64.b64decode(signature.removeprefix("v1,")))
    digest[bit // 8] ^= 1 << (bit % 8)
    return "v1," + base64.b64encode(bytes(digest)).decode()


def hmac_digest(body: bytes, key: str = HMAC_KEY, timestamp: int | None = None) -> str:
    """The hex HMAC-SHA256 a signing sender computes: over `{t}.{body}`, or over the body alone
    (the old, replayable form) when `timestamp` is None."""
    signed = body if timestamp is None else f"{timestamp}.".encode() + body
    return hmac.new(key.encode(), signed, hashlib.sha256).hexdigest()


def hmac_signature(body: bytes, key: str = HMAC_KEY, *, timestamp: int | None = None) -> str:
    """`x-relay-signature` as a signing sender sends it: `t=<unix>,v1=<hex>`, signed now by default."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},v1={hmac_digest(body, key, timestamp)}"


def body_only_signature(body: bytes, key: str = HMAC_KEY) -> str:
    """The old `sha256=<hex>` over the body alone, which carries no timestamp (replayable)."""
    return "sha256=" + hmac_digest(body, key)


def signed_by_hmac(body: object = LEAD, *, signature: Callable[[bytes], str] = hmac_signature, **headers) -> dict:
    """POST /clay/enriched from a sender that signs the raw body instead of sending a token."""
    data = raw(body)
    return request("clay", data, headers={"authorization": None, "x-relay-signature": signature(data), **headers})


def nested(levels: int) -> object:
    """Arrays nested `levels` deep."""
    value: object = 1
    for _ in range(levels):
        value = [value]
    return value


# --- one moto stack per test module, every AWS call counted ---------------------------------------------
SECRETS = {
    "clay-callback-tokens": f"{CLAY_TOKEN},clay-callback-token-next",
    "clay-callback-hmac-keys": HMAC_KEY,
    "loops-webhook-secret": SECRET,
}
# Every secret as the stack starts: the template's (tests/conftest.py's TEST_SECRETS) and these.
ORIGINAL_SECRETS = {**{name.lower().replace("_", "-"): value for name, value in TEST_SECRETS.items()}, **SECRETS}

Answer = tuple[int, dict, str]  # status, headers, raw body


def store_secret(full_name: str, value: str | None) -> None:
    """Give a secret (by its full name) a value; None deletes it."""
    client = boto3.client("secretsmanager")
    if value is None:
        client.delete_secret(SecretId=full_name, ForceDeleteWithoutRecovery=True)
        return
    try:
        client.put_secret_value(SecretId=full_name, SecretString=value)
    except client.exceptions.ResourceNotFoundException:
        client.create_secret(Name=full_name, SecretString=value)


@dataclass
class RelayStack:
    """moto with the template's resources and every route configured (the Clay callback also
    accepting HMAC signatures); `aws_calls` lists every AWS API call made through botocore since
    the last request was sent (any client, any session): (service, operation)."""

    provisioned: Provisioned
    aws_calls: list[tuple[str, str]] = field(default_factory=list)

    @property
    def secrets_prefix(self) -> str:
        return self.provisioned.environment["SECRETS_PREFIX"]

    def sender(self) -> Callable[[dict], Answer]:
        """`send(event)`: the answer of a fresh copy of the route's function (a new execution
        environment, loaded on first use)."""
        handlers: dict[str, Callable] = {}

        def send(event: dict) -> Answer:
            function = FUNCTION_OF_PATH[event["rawPath"].split("/")[1]]
            handler = handlers.get(function) or handlers.setdefault(function, load_handler(function))
            self.aws_calls.clear()
            answer = handler(event, LambdaContext())
            return answer["statusCode"], answer["headers"], answer["body"]

        return send


@contextmanager
def relay_stack(config_dir: Path) -> Iterator[RelayStack]:
    """A RelayStack for a whole test module: provisioning is most of a request's cost in moto."""
    config = default_config()
    config["clay_callback"]["hmac_secret"] = "clay-callback-hmac-keys"
    config_path = config_dir / "relay.json"
    config_path.write_text(json.dumps(config), encoding="utf-8")
    with mock_aws(), pytest.MonkeyPatch.context() as patch:
        stack = RelayStack(provision(Template(load_template(), "test"), TEST_SECRETS))
        for key, value in {**stack.provisioned.environment, "SECRETS_CACHE_SECONDS": "0"}.items():
            patch.setenv(key, value)
        patch.setenv("ALLOW_LOCAL_DESTINATIONS", "1")  # the template's "false": its destinations are local here
        patch.setenv("RELAY_CONFIG_PATH", str(config_path))
        for name, value in SECRETS.items():
            store_secret(stack.secrets_prefix + name, value)
        real_call = BaseClient._make_api_call

        def counted(client, operation_name, api_params):
            stack.aws_calls.append((client.meta.service_model.service_name, operation_name))
            return real_call(client, operation_name, api_params)

        patch.setattr(BaseClient, "_make_api_call", counted)
        fresh_runtime()
        yield stack
    fresh_runtime()


# --- what the answers must be ----------------------------------------------------------------------------
def assert_rejected(answer: Answer, status: int, error: str) -> dict:
    """A JSON error body with the status and code, and nothing else (no stack trace)."""
    code, headers, text = answer
    assert code == status, text
    assert headers["Content-Type"] == "application/json"
    assert "Traceback" not in text and 'File "' not in text
    body = json.loads(text)
    assert set(body) <= {"error", "message", "fields"}
    assert body["error"] == error
    assert isinstance(body["message"], str) and body["message"]
    return body


def assert_accepted(answer: Answer) -> dict:
    code, headers, text = answer
    assert code == 202, text
    assert headers["Content-Type"] == "application/json"
    body = json.loads(text)
    assert body["accepted"] is True
    return body


def assert_aws_calls(calls: list[tuple[str, str]], *, secret_read: bool) -> None:
    """No DynamoDB or SQS call; a read of the secret that decides the request only when it carried
    something to check against one."""
    allowed = {("secretsmanager", "GetSecretValue")} if secret_read else set()
    assert set(calls) <= allowed, calls
