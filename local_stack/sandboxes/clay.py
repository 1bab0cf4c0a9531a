"""Clay: `POST /clay/webhooks/<id>` (one URL per table webhook). Checks the `x-clay-webhook-auth`
token when the URL has one (401), accepts JSON objects (400) of at most 100 KB (413), limits the
workspace to `rate` records/s with bursts of `burst` (429 + Retry-After), counts submissions per URL
and, past `submission_limit`, does what Clay may do: silently drop the row (200, no row:
`over_limit="drop"`, the default) or refuse it (`"reject"`). Like a table with auto-dedupe on
`dedupe_column`, a row whose value there was seen before is removed (the oldest row stays; blank
values and values over 200 characters are not compared); the submission still counts. With an
enrichment `column` (`--clay-enrich`, see clay_column), every row the table keeps is enriched and
sent back to the relay a few seconds later; rows dropped or refused never reached the table.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from local_stack.sandboxes.answers import Answer, json_object
from local_stack.sandboxes.clay_column import HttpApiColumn

CLAY_MAX_BODY = 100_000


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
    column: HttpApiColumn | None = None  # the table's HTTP API column calling the relay back
    clock: Callable[[], float] = time.monotonic  # what its rate limit counts seconds by (a benchmark's virtual clock)
    _dedupe_values: set = field(default_factory=set)
    _bucket: float = 0.0
    _last: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._bucket = float(self.burst)
        self._last = self.clock()

    def _take_rate_token(self) -> bool:
        now = self.clock()
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
        row = json_object(body)
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
            row_number = self.rows[webhook_id]
        if self.column is not None:
            self.column.schedule(webhook_id, row_number, row)
        return Answer(200, {"status": "ok"}, note={"row_created": True})

    def _duplicate(self, row: dict) -> bool:
        value = row.get(self.dedupe_column) if self.dedupe_column else None
        if value is None or value == "" or len(str(value)) > 200:
            return False
        if str(value) in self._dedupe_values:
            return True
        self._dedupe_values.add(str(value))
        return False
