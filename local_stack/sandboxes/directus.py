"""Directus: `POST /directus/items/<collection>` (create), `PATCH /directus/items/<collection>/<id>`:
static token (401), 403 for an unknown item, `{"data": item}`; then, like a Flow with an event hook,
fires `items.create`/`items.update` (payload = the fields written) at the relay. Like a real Flow's
"Request URL" operation it never retries: an answer other than 2xx, or none, drops the event, and
the delivery log (`/_local/deliveries`, destination `directus_flow`) says so (`dropped`).
Items keep `date_created` (set on create) and `date_updated` (set on each update), as a collection
with Directus' optional system fields does (`undated` collections have neither).
`GET /directus/items/<collection>/<id>` reads one item; `GET /directus/items/<collection>` lists
them with Directus' query semantics (see directus_query, filters on the dates included):
`{"data": [...], "meta": {...}}`, or 400 `INVALID_QUERY`. `GET /directus/fields/<collection>` gives
each field with its default value (`defaults`). `seed()` (the gateway's `POST /_local/directus/items/…`)
stores items that existed before the relay, without firing the Flow (their dates are what they hold).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests

from local_stack.sandboxes.answers import Answer, json_object
from local_stack.sandboxes.directus_query import InvalidQuery, list_items, query_object


@dataclass
class DirectusSandbox:
    token: str | None = None
    flows: dict[str, tuple[str, str]] = field(default_factory=dict)  # collection → (relay URL, token)
    items: dict[tuple[str, str], dict] = field(default_factory=dict)
    undated: set[str] = field(default_factory=set)  # collections without date_created / date_updated
    defaults: dict[str, dict] = field(default_factory=dict)  # collection → field → its default value
    log: Callable[..., None] | None = None  # the delivery log's record (the Flow's requests)
    _next_ids: dict[str, int] = field(default_factory=dict)  # collection → its next auto-increment id
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @staticmethod
    def _error(status: int, code: str, message: str, **extensions) -> Answer:
        return Answer(status, {"errors": [{"message": message, "extensions": {"code": code, **extensions}}]})

    def receive(self, method: str, parts: list[str], headers: dict, body: bytes, query: str = "") -> Answer:
        if self.token and headers.get("authorization") != f"Bearer {self.token}":
            return self._error(401, "INVALID_CREDENTIALS", "Invalid user credentials.")
        if method == "GET" and len(parts) == 3 and parts[1] == "fields":
            defaults = self.defaults.get(parts[2], {})
            return Answer(200, {"data": [{"field": k, "schema": {"default_value": v}} for k, v in defaults.items()]})
        if len(parts) not in (3, 4) or parts[1] != "items":
            return self._error(404, "ROUTE_NOT_FOUND", "Route doesn't exist.")
        collection = parts[2]
        if method == "GET" and len(parts) == 3:
            try:
                return Answer(200, self.query(collection, query_object(query)))
            except InvalidQuery as error:
                return self._error(400, "INVALID_QUERY", f"Invalid query. {error}.", reason=str(error))
        fields = json_object(body) if method in ("POST", "PATCH") else {}
        if fields is None:
            return self._error(400, "INVALID_PAYLOAD", "Invalid payload. JSON object expected.")
        with self._lock:
            if method == "POST" and len(parts) == 3:
                key = self._next_ids.get(collection, 1)
                self._next_ids[collection] = key + 1
                item = self.items[(collection, str(key))] = {**self.defaults.get(collection, {}), "id": key, **fields}
                if collection not in self.undated:
                    item.update(date_created=now(), date_updated=None)
                return Answer(200, {"data": item}, then=self._flow(collection, "create", fields, key=key))
            item = self.items.get((collection, parts[3])) if len(parts) == 4 else None
            if item is None:
                return self._error(403, "FORBIDDEN", "You don't have permission to access this.")
            if method == "GET":
                return Answer(200, {"data": item})
            if method == "PATCH":
                item.update(fields)
                if collection not in self.undated:
                    item["date_updated"] = now()
                return Answer(200, {"data": item}, then=self._flow(collection, "update", fields, keys=[parts[3]]))
        return self._error(405, "METHOD_NOT_ALLOWED", "Method not allowed.")

    def seed(self, collection: str, items: list[dict]) -> list[dict]:
        """Stores items as if they existed before the relay was set up: no Flow fires. An item
        without an `id` gets the next one."""
        if not collection:
            raise ValueError("name the collection")
        if not all(isinstance(item, dict) for item in items):
            raise ValueError("items must be JSON objects")
        stored = []
        with self._lock:
            for fields in items:
                key = fields.get("id")
                if key is None:
                    key = self._next_ids.get(collection, 1)
                if not isinstance(key, int | str) or isinstance(key, bool):
                    raise ValueError("an item's id must be an integer or a string")
                if isinstance(key, int):
                    self._next_ids[collection] = max(self._next_ids.get(collection, 1), key + 1)
                item = self.items[(collection, str(key))] = {**fields, "id": key}
                stored.append(dict(item))
        return stored

    def query(self, collection: str, query: dict) -> dict:
        """`GET /items/<collection>` with Directus' query parameters (see directus_query)."""
        with self._lock:
            every = [dict(item) for (name, _), item in self.items.items() if name == collection]
        return list_items(every, query)

    def _flow(self, collection: str, action: str, fields: dict, **key) -> Callable[[], None] | None:
        """What a Flow (event hook → Webhook / Request URL, body {{$trigger}}) does after the write."""
        if collection not in self.flows:
            return None
        url, token = self.flows[collection]
        trigger = {"event": f"{collection}.items.{action}", "payload": fields, **key, "collection": collection}

        def fire() -> None:
            headers = {
                "Authorization": f"Bearer {token}",
                "User-Agent": "axios/1.18.1",
                "Accept": "application/json, text/plain, */*",
            }
            try:
                status = requests.post(url, json=trigger, timeout=30, headers=headers).status_code
            except requests.RequestException:
                status = 0  # refused, or no answer
            if self.log is not None:  # Directus logs a failure in the flow's run log, and never retries
                body, dropped = json.dumps(trigger).encode(), not 200 <= status < 300
                self.log("directus_flow", "POST", urlsplit(url).path, headers, body, status, dropped=dropped)

        return fire


def now() -> str:
    """A time as Directus answers a timestamp field: `2026-12-06T17:08:20.230Z`."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
