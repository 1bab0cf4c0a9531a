"""Sandbox stand-ins for the outside world, behaving like the real services where it matters.

Clay    `POST /clay/webhooks/<id>` (one URL per table webhook): checks the `x-clay-webhook-auth`
        token when the URL has one (401), accepts JSON objects (400) of at most 100 KB (413),
        limits the workspace to `rate` records/s with bursts of `burst` (429 + Retry-After), counts
        submissions per URL and, past `submission_limit`, does what Clay may do: silently drop the
        row (200, no row: `over_limit="drop"`, the default) or refuse it (`"reject"`). Like a table
        with auto-dedupe on `dedupe_column`, a row whose value there was seen before is removed
        (the oldest row stays; blank values and values over 200 characters are not compared); the
        submission still counts.
Loops   `POST /loops/api/v1/events/send`, `PUT /loops/api/v1/contacts/update`: Bearer API key
        (401), required fields and the 500-character value limit (400 with a message), 10
        requests/s (429), `x-ratelimit-limit`/`x-ratelimit-remaining` on every answer,
        `Idempotency-Key` (409 when reused within 24 h).
Slack   `POST /slack/webhooks/<id>`: `ok`, or 400 `no_text`.
Zapier  `POST /zapier/hooks/<id>`: `{"status": "success"}`.
Directus `POST /directus/items/<collection>` (create), `PATCH /directus/items/<collection>/<id>`:
        static token (401), 403 for an unknown item, `{"data": item}`; then, like a Flow with an
        event hook, fires `items.create`/`items.update` (payload = the fields written) at the relay.
        `GET /directus/items/<collection>/<id>` reads one item; `GET /directus/items/<collection>`
        lists them with Directus' query semantics: `limit` (default 100, -1 for all), `offset`,
        `page` (from 1; wins over offset), `sort` (`id`, `-id`, any field, comma-separated),
        `filter` on top-level fields (`filter[id][_gt]=5` or JSON `filter={"_and": [...]}`;
        operators `_eq _neq _gt _gte _lt _lte _in _nin _null _nnull`, `_and`/`_or`), `fields`
        (`*` or names) and `meta` (`filter_count`, `total_count`, `*`): `{"data": [...], "meta":
        {...}}`, or 400 `INVALID_QUERY`. `seed()` (the gateway's `POST /_local/directus/items/…`)
        stores items that existed before the relay, without firing the Flow.
Every request received is logged (`deliveries`); injected faults answer first. The fault
destinations `worker` and `receiver` (mode `crash`) kill function invocations instead (`chaos`).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, urlsplit

import requests
from standardwebhooks.webhooks import Webhook

from local_stack.serving import BackgroundServer

CLAY_MAX_BODY = 100_000


class DeliveryLog:
    """Every request the sandboxes received, in order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[dict] = []

    def record(
        self, destination: str, method: str, path: str, headers: dict, body: bytes, status: int, **extra
    ) -> None:
        try:
            parsed: object = json.loads(body) if body else None
        except ValueError:
            parsed = body.decode("utf-8", "replace")
        entry = {
            "destination": destination,
            "method": method,
            "path": path,
            "headers": headers,
            "body": parsed,
            "status": status,
            "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            **extra,
        }
        with self._lock:
            self._entries.append(entry)

    def all(self) -> list[dict]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


@dataclass
class Fault:
    destination: str
    status: int | None = None  # answer this status
    mode: str = "status"  # "status", "timeout" (answer after `delay` s), "down" (close the connection)
    times: int | None = None  # how many requests it applies to (None: until `until`)
    until: float | None = None  # monotonic deadline
    delay: float = 15.0
    after: str = "any"  # a worker crash: after a random outbound call, or right after a "delivery"

    @classmethod
    def from_request(cls, spec: dict) -> Fault:
        destination = spec.get("destination")
        if destination not in ("clay", "loops", "slack", "zapier", "directus", "worker", "receiver"):
            raise ValueError("destination must be one of clay, loops, slack, zapier, directus, worker, receiver")
        crashes = destination in ("worker", "receiver")
        mode = spec.get("mode", "crash" if crashes else "status")
        if crashes != (mode == "crash"):
            raise ValueError(
                'mode "crash" is for the destinations "worker" and "receiver", and the only mode they have'
            )
        if mode not in ("status", "timeout", "down", "rate_limit", "crash"):
            raise ValueError("mode must be status, timeout, down, rate_limit or crash")
        status = None if mode == "crash" else spec.get("status", 429 if mode == "rate_limit" else 503)
        after = spec.get("after", "any")
        if after not in ("any", "delivery") or (after != "any" and destination != "worker"):
            raise ValueError('after (worker crashes only) must be "any" (a random outbound call) or "delivery"')
        times, seconds = spec.get("times"), spec.get("seconds")
        if times is None and seconds is None:
            times = 1
        return cls(
            destination=destination,
            status=None if status is None else int(status),
            mode="status" if mode == "rate_limit" else mode,
            times=int(times) if times is not None else None,
            until=time.monotonic() + float(seconds) if seconds is not None else None,
            delay=float(spec.get("delay", 15.0)),
            after=after,
        )

    def take(self) -> bool:
        if self.until is not None and time.monotonic() > self.until:
            return False
        if self.times is not None:
            if self.times <= 0:
                return False
            self.times -= 1
        return True


@dataclass
class Answer:
    status: int
    body: object  # dict → JSON, str → text/plain
    headers: dict = field(default_factory=dict)
    note: dict = field(default_factory=dict)  # extra fields for the delivery log
    then: Callable[[], None] | None = None  # runs after the answer was sent


def _json_object(body: bytes) -> dict | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


@dataclass
class ClaySandbox:
    submission_limit: int = 50_000
    over_limit: str = "drop"
    rate: float = 10.0
    burst: int = 20
    dedupe_column: str | None = "relay_event_id"  # the table's auto-dedupe column (None: off)
    tokens: dict[str, str] = field(default_factory=dict)  # webhook id → expected token
    submissions: Counter = field(default_factory=Counter)  # webhook id → submissions received
    rows: Counter = field(default_factory=Counter)  # webhook id → rows kept
    _dedupe_values: set = field(default_factory=set)
    _bucket: float = 0.0
    _last: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._bucket = float(self.burst)

    def _take_rate_token(self) -> bool:
        now = time.monotonic()
        self._bucket = min(self.burst, self._bucket + (now - self._last) * self.rate)
        self._last = now
        if self._bucket < 1:
            return False
        self._bucket -= 1
        return True

    def receive(self, method: str, parts: list[str], headers: dict, body: bytes) -> Answer:
        if method != "POST" or len(parts) != 3 or parts[1] != "webhooks":
            return Answer(404, {"error": "Not found"})
        webhook_id = parts[2]
        expected = self.tokens.get(webhook_id)
        if expected is not None and headers.get("x-clay-webhook-auth") != expected:
            return Answer(401, {"error": "Unauthorized"})
        if len(body) > CLAY_MAX_BODY:
            return Answer(413, {"error": "Payload too large"})
        row = _json_object(body)
        if row is None:
            return Answer(400, {"error": "Body must be a JSON object"})
        with self._lock:
            if not self._take_rate_token():
                return Answer(429, {"error": "Too many requests"}, {"Retry-After": "1"})
            self.submissions[webhook_id] += 1
            if self.submissions[webhook_id] > self.submission_limit:
                if self.over_limit == "reject":
                    return Answer(403, {"error": "Webhook submission limit reached"}, note={"row_created": False})
                return Answer(200, {"status": "ok"}, note={"row_created": False})
            if self._duplicate(row):
                return Answer(200, {"status": "ok"}, note={"row_created": False, "deduplicated": True})
            self.rows[webhook_id] += 1
        return Answer(200, {"status": "ok"}, note={"row_created": True})

    def _duplicate(self, row: dict) -> bool:
        value = row.get(self.dedupe_column) if self.dedupe_column else None
        if value is None or value == "" or len(str(value)) > 200:
            return False
        if str(value) in self._dedupe_values:
            return True
        self._dedupe_values.add(str(value))
        return False


LOOPS_MAX_VALUE = 500


def _too_long(value: object) -> str | None:
    if isinstance(value, dict):
        return next((f"{k}" for k, v in value.items() if _too_long(v)), None)
    if isinstance(value, str) and len(value) > LOOPS_MAX_VALUE:
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
        """Sends `event` to the relay as Loops would: Standard Webhooks signed (by the reference
        implementation), a new webhook-id, the current timestamp."""
        if not (self.webhook_url and self.webhook_secret):
            raise ValueError("the Loops webhook is not configured (LOOPS_WEBHOOK_SECRET in local.env)")
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
        payload = _json_object(body)
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


def slack_receive(method: str, parts: list[str], headers: dict, body: bytes) -> Answer:
    payload = _json_object(body)
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


class _InvalidQuery(ValueError):
    """A list query Directus would refuse with 400 INVALID_QUERY."""


_FILTER_OPERATORS = ("_eq", "_neq", "_gt", "_gte", "_lt", "_lte", "_in", "_nin", "_null", "_nnull")


def _query_object(query: str) -> dict:
    """The query string as Directus' `qs` parses it: `filter[id][_gt]=5` → {"filter": {"id": {"_gt": "5"}}},
    `fields[]=a&fields[]=b` → {"fields": ["a", "b"]}, `x[0]=…` → a list."""
    parsed: dict = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        head, _, rest = name.partition("[")
        path = [head] + (rest.rstrip("]").split("][") if rest else [])
        node = parsed
        for part, next_part in itertools.pairwise(path):
            node = node.setdefault(part, [] if next_part == "" else {}) if isinstance(node, dict) else None
            if not isinstance(node, dict | list):
                raise _InvalidQuery(f'"{name}" mixes a value and an object')
        last = path[-1]
        if isinstance(node, list):
            node.append(value)
        elif last in node and not isinstance(node[last], dict):
            node[last] = [*node[last], value] if isinstance(node[last], list) else [node[last], value]
        else:
            node[last] = value
    return _lists_from_indexes(parsed)


def _lists_from_indexes(value: object) -> object:
    if not isinstance(value, dict):
        return value
    value = {k: _lists_from_indexes(v) for k, v in value.items()}
    if value and all(k.isdigit() for k in value):
        return [value[k] for k in sorted(value, key=int)]
    return value


def _integer(query: dict, name: str, minimum: int) -> int | None:
    if name not in query:
        return None
    try:
        number = int(str(query[name]))
    except ValueError:
        raise _InvalidQuery(f'"{name}" must be a number') from None
    if number < minimum:
        raise _InvalidQuery(f'"{name}" must be greater than or equal to {minimum}')
    return number


def _like(value: object, example: object) -> object:
    """A filter value from the query string (always text) as the field's type, as Directus casts it."""
    if isinstance(value, str) and isinstance(example, bool):
        return {"true": True, "false": False}.get(value, value)
    if isinstance(value, str) and isinstance(example, int | float):
        try:
            return int(value) if isinstance(example, int) else float(value)
        except ValueError:
            return value
    if isinstance(value, int | float) and not isinstance(value, bool) and isinstance(example, str):
        return str(value)
    return value


def _compare(op: str, actual: object, expected: object) -> bool:
    if op in ("_null", "_nnull"):
        wanted = expected in (True, "true", "1", 1, "")
        return (actual is None) == (wanted if op == "_null" else not wanted)
    if op in ("_in", "_nin"):
        values = expected if isinstance(expected, list) else str(expected).split(",")
        found = any(_like(v, actual) == actual for v in values)
        return found if op == "_in" else not found
    expected = _like(expected, actual)
    if op == "_eq":
        return actual == expected
    if op == "_neq":
        return actual != expected
    if actual is None or isinstance(actual, bool) != isinstance(expected, bool):
        return False
    try:
        return {
            "_gt": actual > expected,  # type: ignore[operator]
            "_gte": actual >= expected,  # type: ignore[operator]
            "_lt": actual < expected,  # type: ignore[operator]
            "_lte": actual <= expected,  # type: ignore[operator]
        }[op]
    except TypeError:  # a number against text: no match, like SQL's failed cast
        return False


def _check_filter(rule: object) -> None:
    if not isinstance(rule, dict):
        raise _InvalidQuery("Invalid filter object")
    for key, condition in rule.items():
        if key in ("_and", "_or"):
            if not isinstance(condition, list):
                raise _InvalidQuery(f'"{key}" has to be an array of filters')
            for nested in condition:
                _check_filter(nested)
        elif key.startswith("_"):
            raise _InvalidQuery(f'"{key}" is not a logical operator')
        elif isinstance(condition, dict):
            for op, value in condition.items():
                if op not in _FILTER_OPERATORS:
                    raise _InvalidQuery(f'Invalid filter operator "{op}"')
                if op in ("_in", "_nin") and not (isinstance(value, list) and value) and not isinstance(value, str):
                    raise _InvalidQuery(f'"{op}" has to be an array of values')
                if op not in ("_in", "_nin") and not (value is None or isinstance(value, str | int | float | bool)):
                    raise _InvalidQuery(f'The filter value for "{op}" has to be a string, number, or boolean')
                if value == "" and op not in ("_null", "_nnull"):
                    raise _InvalidQuery(f'You can\'t filter for an empty string in "{op}"')


def _matches(item: dict, rule: dict) -> bool:
    for key, condition in rule.items():
        if key == "_and":
            if not all(_matches(item, nested) for nested in condition):
                return False
        elif key == "_or":
            if not any(_matches(item, nested) for nested in condition):
                return False
        elif isinstance(condition, dict):
            if not all(_compare(op, item.get(key), value) for op, value in condition.items()):
                return False
        elif not _compare("_eq", item.get(key), condition):
            return False
    return True


def _sort_key(value: object) -> tuple:
    if value is None:
        return (0, 0)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (1, value)
    return (2, str(value))


@dataclass
class DirectusSandbox:
    token: str | None = None
    flows: dict[str, tuple[str, str]] = field(default_factory=dict)  # collection → (relay URL, token)
    items: dict[tuple[str, str], dict] = field(default_factory=dict)
    _next_ids: dict[str, int] = field(default_factory=dict)  # collection → its next auto-increment id
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @staticmethod
    def _error(status: int, code: str, message: str, **extensions) -> Answer:
        return Answer(status, {"errors": [{"message": message, "extensions": {"code": code, **extensions}}]})

    def receive(self, method: str, parts: list[str], headers: dict, body: bytes, query: str = "") -> Answer:
        if self.token and headers.get("authorization") != f"Bearer {self.token}":
            return self._error(401, "INVALID_CREDENTIALS", "Invalid user credentials.")
        if len(parts) not in (3, 4) or parts[1] != "items":
            return self._error(404, "ROUTE_NOT_FOUND", "Route doesn't exist.")
        collection = parts[2]
        if method == "GET" and len(parts) == 3:
            try:
                return Answer(200, self.query(collection, _query_object(query)))
            except _InvalidQuery as error:
                return self._error(400, "INVALID_QUERY", f"Invalid query. {error}.", reason=str(error))
        fields = _json_object(body) if method in ("POST", "PATCH") else {}
        if fields is None:
            return self._error(400, "INVALID_PAYLOAD", "Invalid payload. JSON object expected.")
        with self._lock:
            if method == "POST" and len(parts) == 3:
                key = self._next_ids.get(collection, 1)
                self._next_ids[collection] = key + 1
                item = self.items[(collection, str(key))] = {"id": key, **fields}
                return Answer(200, {"data": item}, then=self._flow(collection, "create", fields, key=key))
            item = self.items.get((collection, parts[3])) if len(parts) == 4 else None
            if item is None:
                return self._error(403, "FORBIDDEN", "You don't have permission to access this.")
            if method == "GET":
                return Answer(200, {"data": item})
            if method == "PATCH":
                item.update(fields)
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
        """`GET /items/<collection>` with Directus' query parameters (see the module docstring)."""
        limit = _integer(query, "limit", -1)
        offset = _integer(query, "offset", 0) or 0
        page = _integer(query, "page", 0)
        rule = query.get("filter") or {}
        if isinstance(rule, str):
            try:
                rule = json.loads(rule)
            except ValueError:
                raise _InvalidQuery("Invalid JSON for filter object") from None
        _check_filter(rule)
        meta = query.get("meta") or []
        meta = meta.split(",") if isinstance(meta, str) else meta
        meta = ["total_count", "filter_count"] if meta == ["*"] else meta
        if any(name not in ("total_count", "filter_count") for name in meta):
            raise _InvalidQuery('"meta" must be one of [total_count, filter_count, *]')
        with self._lock:
            every = [dict(item) for (name, _), item in self.items.items() if name == collection]
        found = [item for item in every if _matches(item, rule)]
        sort = query.get("sort") or []
        for name in reversed(sort.split(",") if isinstance(sort, str) else sort):
            name = name.strip()
            column = name.lstrip("-")
            found.sort(key=lambda item: _sort_key(item.get(column)), reverse=name.startswith("-"))
        limit = 100 if limit is None else limit
        if page and limit > 0:
            offset = limit * (page - 1)
        window = found[offset:] if limit == -1 else found[offset : offset + limit]
        fields = query.get("fields") or "*"
        fields = [f.strip() for f in (fields.split(",") if isinstance(fields, str) else fields)]
        if "*" not in fields:
            names = {f.split(".")[0] for f in fields}
            window = [{k: v for k, v in item.items() if k in names} for item in window]
        answer: dict = {"data": window}
        if meta:
            counts = {"total_count": len(every), "filter_count": len(found)}
            answer["meta"] = {name: counts[name] for name in meta}
        return answer

    def _flow(self, collection: str, action: str, fields: dict, **key) -> Callable[[], None] | None:
        """What a Flow (event hook → Webhook / Request URL, body {{$trigger}}) does after the write."""
        if collection not in self.flows:
            return None
        url, token = self.flows[collection]
        trigger = {"event": f"{collection}.items.{action}", "payload": fields, **key, "collection": collection}

        def fire() -> None:
            try:
                requests.post(
                    url,
                    json=trigger,
                    timeout=30,
                    headers={
                        "Authorization": f"Bearer {token}",
                        "User-Agent": "axios/1.18.1",
                        "Accept": "application/json, text/plain, */*",
                    },
                )
            except requests.RequestException:
                pass  # Directus logs the failure in the flow's run log and never retries

        return fire


class Sandboxes:
    def __init__(self, clay: ClaySandbox | None = None):
        self.clay = clay or ClaySandbox()
        self.loops = LoopsSandbox()
        self.directus = DirectusSandbox()
        self.deliveries = DeliveryLog()
        self.faults: list[Fault] = []
        self._faults_lock = threading.Lock()
        self._server = BackgroundServer(type("Handler", (_SandboxHandler,), {"owner": self}), "sandboxes")

    def service(self, destination: str) -> Callable[[str, list[str], dict, bytes], Answer] | None:
        return {
            "clay": self.clay.receive,
            "loops": self.loops.receive,
            "slack": slack_receive,
            "zapier": zapier_receive,
            "directus": self.directus.receive,
        }.get(destination)

    def add_fault(self, spec: dict) -> Fault:
        fault = Fault.from_request(spec)
        with self._faults_lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._faults_lock:
            self.faults.clear()

    def active_fault(self, destination: str) -> Fault | None:
        with self._faults_lock:
            for fault in self.faults:
                if fault.destination == destination and fault.take():
                    return fault
        return None

    def start(self, host: str = "127.0.0.1", port: int = 3001) -> str:
        return self._server.start(host, port)

    def stop(self) -> None:
        self._server.stop()


class _SandboxHandler(BaseHTTPRequestHandler):
    owner: Sandboxes
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # the delivery log is the record
        pass

    def _send(self, answer: Answer) -> None:
        if isinstance(answer.body, str):
            data, content_type = answer.body.encode(), "text/plain; charset=utf-8"
        else:
            data, content_type = json.dumps(answer.body).encode(), "application/json"
        self.send_response(answer.status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in answer.headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        parts = self.path.split("?")[0].strip("/").split("/")
        service = self.owner.service(parts[0])
        if service is None:
            self._send(Answer(404, {"error": "no sandbox at this path"}))
            return
        if self._injected_fault(parts[0], headers, body):
            return
        if parts[0] == "directus":  # the only sandbox whose answer depends on the query string
            answer = service(self.command, parts, headers, body, query=urlsplit(self.path).query)
        else:
            answer = service(self.command, parts, headers, body)
        self.owner.deliveries.record(parts[0], self.command, self.path, headers, body, answer.status, **answer.note)
        self._send(answer)
        if answer.then:
            threading.Thread(target=answer.then, daemon=True).start()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def _injected_fault(self, destination: str, headers: dict, body: bytes) -> bool:
        fault = self.owner.active_fault(destination)
        if fault is None:
            return False
        record = self.owner.deliveries.record
        if fault.mode == "down":
            record(destination, self.command, self.path, headers, body, 0, fault="down")
            self.close_connection = True
            self.connection.shutdown(2)
            return True
        if fault.mode == "timeout":
            record(destination, self.command, self.path, headers, body, 0, fault="timeout")
            time.sleep(fault.delay)
            self.close_connection = True
            return True
        record(destination, self.command, self.path, headers, body, fault.status, fault="status")
        extra = {"Retry-After": "1"} if fault.status == 429 else {}
        if destination == "loops" and fault.status == 429:
            extra = {"x-ratelimit-limit": "10", "x-ratelimit-remaining": "0"}
        self._send(Answer(fault.status, {"error": f"injected fault {fault.status}"}, extra))
        return True
