"""Loops: `POST /loops/api/v1/events/send`, `PUT /loops/api/v1/contacts/update`. Bearer API key
(401), required fields and the 500-character value limit counted as JavaScript counts (UTF-16 code
units; 400 with a message), 10 requests/s (429),
`x-ratelimit-limit`/`x-ratelimit-remaining` on every answer, `Idempotency-Key` (409 when reused
within 24 h). `fire_webhook` sends the relay a signed webhook of any of Loops' 17 event types
(built by loops_events), as Loops does.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

import requests
from standardwebhooks.webhooks import Webhook

from local_stack.sandboxes.answers import Answer, json_object
from local_stack.sandboxes.loops_events import loops_event

LOOPS_MAX_VALUE = 500


def _js_length(text: str) -> int:
    """JavaScript's `string.length`, which Loops' limit counts: UTF-16 code units ("😀" is 2)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _too_long(value: object) -> str | None:
    if isinstance(value, dict):
        return next((f"{k}" for k, v in value.items() if _too_long(v)), None)
    if isinstance(value, list):
        return next(("value" for v in value if _too_long(v)), None)
    if isinstance(value, str) and _js_length(value) > LOOPS_MAX_VALUE:
        return "value"
    return None


@dataclass
class LoopsSandbox:
    api_key: str | None = None
    webhook_url: str | None = None  # the relay's /loops/webhook, where this "Loops" sends its webhooks
    webhook_secret: str | None = None  # whsec_… signing secret of that endpoint
    limit_per_second: int = 10
    contacts: dict = field(default_factory=dict)  # email → contact
    events: list = field(default_factory=list)
    _recent: deque = field(default_factory=deque)  # monotonic times of the last second's requests
    _keys: dict = field(default_factory=dict)  # Idempotency-Key → time used
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def receive(self, method: str, parts: list[str], headers: dict, body: bytes) -> Answer:
        with self._lock:
            now = time.monotonic()
            while self._recent and now - self._recent[0] >= 1.0:
                self._recent.popleft()
            limited = len(self._recent) >= self.limit_per_second
            if not limited:
                self._recent.append(now)
            remaining = max(0, self.limit_per_second - len(self._recent))
            answer = self._answer(method, "/".join(parts[2:]), headers, body) if not limited else None
        if answer is None:
            answer = Answer(429, {"success": False, "message": "Too many requests. Limit is 10 per second."})
        answer.headers.update(
            {"x-ratelimit-limit": str(self.limit_per_second), "x-ratelimit-remaining": str(remaining)}
        )
        return answer

    def fire_webhook(self, event: dict) -> dict:
        """Sends an event to the relay as Loops would: Standard Webhooks signed (by the reference
        implementation), a new webhook-id, the current timestamp. `{"type": "email.hardBounced",
        "email": "ada@example.com", ...}` builds that type's event (other keys replace its fields);
        without `type`, `event` is a contact.created body whose missing envelope is filled in."""
        if not (self.webhook_url and self.webhook_secret):
            raise ValueError("the Loops webhook is not configured (LOOPS_WEBHOOK_SECRET in local.env)")
        if "type" in event:
            fields = dict(event)
            event_type, email = fields.pop("type"), fields.pop("email", None)
            if not isinstance(event_type, str) or not isinstance(email, str | None):
                raise ValueError('"type" is an event type and "email" the lead\'s address')
            event = loops_event(event_type, email=email, contact_id=fields.pop("contactId", None), **fields)
        else:
            event = {
                "eventName": "contact.created",
                "eventTime": int(time.time()),
                "webhookSchemaVersion": "1.0.0",
                **event,
            }
        body = json.dumps(event)
        webhook_id = f"msg_{uuid.uuid4().hex}"
        now = datetime.now(UTC)
        signature = Webhook(self.webhook_secret).sign(webhook_id, now, body)
        answer = requests.post(
            self.webhook_url,
            data=body.encode(),
            timeout=30,
            headers={
                "Content-Type": "application/json",
                "webhook-id": webhook_id,
                "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": signature,
            },
        )
        try:
            relay_answer: object = answer.json()
        except ValueError:
            relay_answer = answer.text
        return {"webhook_id": webhook_id, "event": event, "status": answer.status_code, "answer": relay_answer}

    def _answer(self, method: str, route: str, headers: dict, body: bytes) -> Answer:
        def fail(status: int, message: str) -> Answer:
            return Answer(status, {"success": False, "message": message})

        if self.api_key and headers.get("authorization") != f"Bearer {self.api_key}":
            return fail(401, "Invalid API key")
        payload = json_object(body)
        if payload is None:
            return fail(400, "Invalid JSON body")
        if field_name := _too_long(payload):
            return fail(400, f"Value of {field_name} is too long (max {LOOPS_MAX_VALUE} characters)")
        if not (payload.get("email") or payload.get("userId")):
            return fail(400, "An email or userId is required")
        if (method, route) == ("POST", "v1/events/send"):
            if not payload.get("eventName"):
                return fail(400, "eventName is required")
            key = headers.get("idempotency-key")
            if key is not None:
                if len(key) > 100:
                    return fail(400, "Idempotency-Key must be 100 characters or fewer")
                used = self._keys.get(key)
                if used is not None and time.monotonic() - used < 86_400:
                    return fail(409, "Idempotency key has already been used")
                self._keys[key] = time.monotonic()
            self.events.append(payload)
            return Answer(200, {"success": True})
        if (method, route) == ("PUT", "v1/contacts/update"):
            identity = payload.get("email") or payload.get("userId")
            contact = self.contacts.setdefault(identity, {"id": uuid.uuid4().hex[:24]})
            contact.update(payload)
            return Answer(200, {"success": True, "id": contact["id"]})
        return fail(404, "Not found")
