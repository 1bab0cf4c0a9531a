"""Clay's HTTP API enrichment column (`python -m local_stack run --clay-enrich`): `delay` seconds
after the sandbox Clay table keeps a row, the column POSTs that row's enrichment to the relay's
`/clay/enriched` with the static header a Clay column sends (no signature: Clay cannot sign).

It calls once: Clay's HTTP API column does not retry. What the relay answered, or why the call
failed, is what Clay shows in the cell: here an entry of the delivery log (destination
`clay_callback`) and, for a failure, a line on the stack's output. The wait is scheduled on the
column's own thread, never on the sandbox's request thread.

The enrichment sent: the row's `email`; its Directus key (the `directus_key` column, else
`directus_id`); `first_name`, `last_name` and `company_name` (or `company`) when the row has them;
and an ICP score: the row's own `icp_score` when it has one, else `icp_score_for(email)`.
A row without an email is not called for (a column's "Only run if" the email is filled).
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

from local_stack.sandboxes.deliveries import DeliveryLog

CALL_TIMEOUT_SECONDS = 30.0


def icp_score_for(email: str) -> int:
    """The sandbox's deterministic ICP score of a lead (0-100): the same email, the same score."""
    return int(hashlib.sha256(email.lower().encode()).hexdigest()[:8], 16) % 101


def token_header(header: str, token: str) -> dict[str, str]:
    """The static header a Clay column carries for the relay's `clay_callback.token_header`."""
    return {"Authorization": f"Bearer {token}"} if header.lower() == "authorization" else {header: token}


def _filled(value: object) -> bool:
    return value is not None and value != ""


def enrichment_of(row: dict) -> dict | None:
    """What the column sends for a row (None: the row has no email, the column does not run)."""
    email = row.get("email")
    if not isinstance(email, str) or not email.strip():
        return None
    body: dict = {"email": email}
    directus_key = row.get("directus_key") if _filled(row.get("directus_key")) else row.get("directus_id")
    if _filled(directus_key):
        body["directus_id"] = directus_key
    for name, columns in (
        ("first_name", ("first_name",)),
        ("last_name", ("last_name",)),
        ("company_name", ("company_name", "company")),
    ):
        value = next((row[c] for c in columns if _filled(row.get(c))), None)
        if value is not None:
            body[name] = value
    body["icp_score"] = row["icp_score"] if _filled(row.get("icp_score")) else icp_score_for(email)
    return body


@dataclass(order=True)
class _Call:
    due: float
    sequence: int
    webhook_id: str = field(compare=False)
    row_number: int = field(compare=False)
    body: dict = field(compare=False)


@dataclass
class HttpApiColumn:
    """The column of the sandbox Clay table that calls the relay; `url` and `headers` are set when
    the relay's gateway is up (LocalStack.connect_clay_column)."""

    deliveries: DeliveryLog
    delay: float = 3.0
    url: str | None = None  # the relay's /clay/enriched
    headers: dict[str, str] = field(default_factory=dict)  # e.g. {"Authorization": "Bearer <token>"}
    timeout: float = CALL_TIMEOUT_SECONDS
    log: Callable[[str], None] = lambda line: print(line, flush=True)
    _due: list[_Call] = field(default_factory=list)
    _sequence: itertools.count = field(default_factory=itertools.count)
    _wake: threading.Condition = field(default_factory=threading.Condition)
    _thread: threading.Thread | None = None
    _stopped: bool = False

    def schedule(self, webhook_id: str, row_number: int, row: dict) -> bool:
        """Queue the call for a row the table kept; returns at once. False: the column does not run."""
        body = enrichment_of(row)
        if body is None:
            self.log(f"[clay] {webhook_id} row {row_number} has no email: its enrichment column does not run")
            return False
        with self._wake:
            if self._stopped:
                return False
            heapq.heappush(
                self._due, _Call(time.monotonic() + self.delay, next(self._sequence), webhook_id, row_number, body)
            )
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="clay-enrichment-column", daemon=True)
                self._thread.start()
            self._wake.notify()
        return True

    @property
    def pending(self) -> int:
        with self._wake:
            return len(self._due)

    def stop(self) -> None:
        """Calls not yet due are dropped (the table is gone); one in flight finishes."""
        with self._wake:
            self._stopped = True
            self._due.clear()
            self._wake.notify()
        if self._thread:
            self._thread.join(timeout=self.timeout + 1)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopped and (not self._due or self._due[0].due > time.monotonic()):
                    self._wake.wait(self._due[0].due - time.monotonic() if self._due else None)
                if self._stopped:
                    return
                call = heapq.heappop(self._due)
            self.call(call.webhook_id, call.row_number, call.body)

    def call(self, webhook_id: str, row_number: int, body: dict) -> int:
        """One POST to the relay, never retried; logged like the cell shows it. Its HTTP status (0: no answer)."""
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "clay-sandbox-http-api-column", **self.headers}
        status, answer, error = 0, None, None
        if not self.url:
            error = "the column has no URL (the relay's gateway is not up)"
        else:
            try:
                response = requests.post(
                    self.url, data=data, headers=headers, timeout=self.timeout, allow_redirects=False
                )
                status = response.status_code
                try:
                    answer = response.json()
                except ValueError:
                    answer = response.text
            except requests.RequestException as failure:
                error = f"{type(failure).__name__}: {failure}"
        self.deliveries.record(
            "clay_callback",
            "POST",
            urlsplit(self.url or "").path,
            {k.lower(): v for k, v in headers.items()},
            data,
            status,
            url=self.url,
            webhook=webhook_id,
            row=row_number,
            answer=answer,
            **({"error": error} if error else {}),
        )
        if error or status >= 300:
            why = error or f"HTTP {status} {json.dumps(answer) if not isinstance(answer, str) else answer[:200]}"
            self.log(f"[clay] {webhook_id} row {row_number}: enrichment column call failed, not retried: {why}")
        return status
