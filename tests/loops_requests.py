"""Helpers of the Loops tests: Standard Webhooks secrets, messages signed by the reference
implementation (the `standardwebhooks` package, an independent peer), Loops webhook bodies as
Loops sends them, API Gateway events of the `ANY /loops/{route}` route, and the EMF metrics
Powertools prints."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from standardwebhooks.webhooks import Webhook

from tests.invocations import http_api_event

ROOT = Path(__file__).resolve().parents[1]


SAMPLE_EVENTS = ROOT / "events" / "loops"


def whsec(key: bytes) -> str:
    """A Standard Webhooks secret: `whsec_` and the base64 of the key."""
    return "whsec_" + base64.b64encode(key).decode()


SECRET = whsec(b"loops-signing-key-current-0001!!")  # 32-byte keys, as Loops hands out


OTHER_SECRET = whsec(b"loops-signing-key-next-00000002!")


UNRELATED_SECRET = whsec(b"somebody-else-signing-key-0003!!")


CLAY_TOKEN = "local-clay-callback-token"  # what events/loops/*-from-clay.json send


CLAY_TOKEN_NEXT = "clay-callback-token-next"


def local_env(name: str) -> str:
    """A value of the project's local.env."""
    for line in (ROOT / "local.env").read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == name:
            return value.strip()
    raise KeyError(name)


def sample_event(name: str) -> dict:
    """events/loops/<name>.json, the API Gateway events shipped for `sam local invoke`."""
    return json.loads((SAMPLE_EVENTS / f"{name}.json").read_text(encoding="utf-8"))


def new_webhook_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def reference_headers(secret: str, body: str | bytes, *, webhook_id: str, timestamp: int | None = None) -> dict:
    """The three Standard Webhooks headers, signed by the reference implementation."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    signature = Webhook(secret).sign(webhook_id, datetime.fromtimestamp(timestamp, tz=UTC), text)
    return {"webhook-id": webhook_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}


CONTACT = {
    "id": "cm4contact0001",
    "email": "grace.hopper@example.com",
    "firstName": "Grace",
    "lastName": "Hopper",
    "source": "API",
    "subscribed": True,
    "userGroup": "",
    "userId": None,
    "mailingLists": {"cm4list0001": True},
    "optInStatus": "accepted",
    "companyName": "Compiler Co",
}


IDENTITY = {"id": "cm4contact0001", "email": "grace.hopper@example.com", "userId": None}


def contact_created(contact: dict | None = None, **envelope: object) -> dict:
    body = {
        "eventName": "contact.created",
        "eventTime": 1734425918,
        "webhookSchemaVersion": "1.0.0",
        "contactIdentity": IDENTITY,
        "contact": CONTACT if contact is None else contact,
    }
    return {**body, **envelope}


def loops_event_body(event_name: str, **fields: object) -> dict:
    """Any other Loops webhook: the envelope, contactIdentity and the event's own fields."""
    body = {
        "eventName": event_name,
        "eventTime": 1734425999,
        "webhookSchemaVersion": "1.0.0",
        "contactIdentity": IDENTITY,
    }
    return {**body, **fields}


def loops_request(
    route: str,
    body: object = None,
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    base64_encoded: bool = False,
) -> dict:
    return http_api_event(
        f"/loops/{route}",
        body,
        method=method,
        headers={"content-type": "application/json", **(headers or {})},
        route_key="ANY /loops/{route}",
        path_parameters={"route": route},
        base64_encoded=base64_encoded,
    )


def signed_webhook(
    body: dict | str,
    secret: str = SECRET,
    *,
    webhook_id: str | None = None,
    timestamp: int | None = None,
    base64_encoded: bool = False,
) -> dict:
    """POST /loops/webhook as Loops sends it: the raw JSON, signed by the reference implementation."""
    raw = body if isinstance(body, str) else json.dumps(body)
    headers = reference_headers(secret, raw, webhook_id=webhook_id or new_webhook_id(), timestamp=timestamp)
    return loops_request(
        "webhook", raw, headers={"user-agent": "Loops-Webhooks/1.0", **headers}, base64_encoded=base64_encoded
    )


def clay_request(route: str, body: object, token: str | None = CLAY_TOKEN) -> dict:
    """POST /loops/contacts or /loops/events as Clay's HTTP API column sends it."""
    headers = {"user-agent": "Clay/1.0"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return loops_request(route, body, headers=headers)
