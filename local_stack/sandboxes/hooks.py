"""Slack `POST /slack/webhooks/<id>` (`ok`, or 400 `no_text`), Zapier `POST /zapier/hooks/<id>`
(`{"status": "success"}`) and `POST /forward/<name>`, a receiver of the Loops events the relay
forwards (`{"ok": true}`; the delivery log keeps its `raw` body, to verify the signature over):
incoming webhooks that keep nothing."""

from __future__ import annotations

import uuid

from local_stack.sandboxes.answers import Answer, json_object


def slack_receive(method: str, parts: list[str], headers: dict, body: bytes) -> Answer:
    payload = json_object(body)
    if method != "POST" or len(parts) != 3:
        return Answer(404, "no_service")
    if payload is None:
        return Answer(400, "invalid_payload")
    if not (payload.get("text") or payload.get("blocks")):
        return Answer(400, "no_text")
    return Answer(200, "ok")


def zapier_receive(method: str, parts: list[str], headers: dict, body: bytes) -> Answer:
    if method != "POST" or len(parts) != 3:
        return Answer(404, {"status": "error", "message": "hook not found"})
    return Answer(200, {"id": uuid.uuid4().hex, "request_id": uuid.uuid4().hex, "status": "success"})


def forward_receive(method: str, parts: list[str], headers: dict, body: bytes) -> Answer:
    if method != "POST" or len(parts) != 2:
        return Answer(404, {"error": "no such endpoint"})
    return Answer(200, {"ok": True}, note={"raw": body.decode("utf-8", "replace")})
