"""The only module that talks HTTP to the outside world, and the one place that decides what an
answer means for delivery: delivered, worth retrying (and when), or never going to work.

Only URLs that `destination_urls` allows are called (`https://` to public hosts). Redirects are
never followed: no destination of the relay needs one, and following it would post the lead (and
headers such as `x-clay-webhook-auth`, which requests keeps across hosts) wherever the `Location`
says. A 3xx is a permanent failure whose reason names the redirect."""

from __future__ import annotations

import email.utils
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from clay_relay.destination_urls import refusal
from clay_relay.jobs import EVENT_ID_HEADER  # on every request: the destination's logs can name the event
from clay_relay.runtime import get_runtime

if TYPE_CHECKING:
    import requests

RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}
USER_AGENT = "clay-relay/1.0"


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    retryable: bool
    reason: str
    status: int | None = None
    retry_after: float | None = None
    reached: bool = True  # False when the request certainly never reached the destination
    note: str | None = None  # delivered, but not as planned (e.g. Directus feedback `unmatched`): for the ledger

    @property
    def throttled(self) -> bool:
        """The destination is rate limiting us: slow down; the job itself is fine."""
        return self.status == 429

    @property
    def unavailable(self) -> bool:
        """The destination is down or failing (timeout, connection failure, 5xx): leave it alone a while."""
        return not self.delivered and self.retryable and (self.status is None or self.status >= 500)


def session_without_redirects() -> requests.Session:
    """A requests session that never follows a redirect, whatever a caller asks (it does not even
    read the Location: requests would, and raise on a malformed one). The relay's and `relay`'s."""
    import requests

    class NoRedirectSession(requests.Session):
        def get_redirect_target(self, resp: requests.Response) -> None:
            return None

    return NoRedirectSession()


def new_session() -> requests.Session:
    """The session of a runtime (clay_relay.runtime builds it on the first request out)."""
    from clay_relay.tracing import tracer

    tracer.instrument_requests()
    session = session_without_redirects()
    session.headers["User-Agent"] = USER_AGENT
    return session


def retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After` as delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def redirect_reason(status: int, location: str | None, url: str) -> str:
    """What a refused redirect is called in a dead letter: its status and the host it pointed to
    (only the host: a Location's path or query may hold a token)."""
    if not location:
        where = "without a Location"
    else:
        try:
            target = urlsplit(urljoin(url, location))
            host, port = target.hostname, target.port
        except ValueError:
            host, port = None, None
        where = f"to {host[:100]}{f':{port}' if port else ''}" if host else "to an unreadable Location"
    return f"redirect refused: HTTP {status} {where} (the relay follows no redirects: configure the final URL)"


def classify(response: requests.Response) -> Outcome:
    status = response.status_code
    if 300 <= status < 400:
        reason = redirect_reason(status, response.headers.get("Location"), response.url)
        return Outcome(delivered=False, retryable=False, reason=reason, status=status)
    exhausted = response.headers.get("x-ratelimit-remaining") == "0"
    if 200 <= status < 300:
        # Delivered, and the destination's window is full: nothing more to it for one request's
        # share of its limit (at our own pace that costs nothing; it slows us down when someone
        # else shares the limit).
        return Outcome(
            delivered=True,
            retryable=False,
            reason=f"HTTP {status}",
            status=status,
            retry_after=_one_share(response.headers.get("x-ratelimit-limit")) if exhausted else None,
        )
    excerpt = " ".join(response.text[:200].split())
    reason = f"HTTP {status}: {excerpt}" if excerpt else f"HTTP {status}"
    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
    if retry_after is None and exhausted:
        retry_after = 1.0
    return Outcome(
        delivered=False,
        retryable=status in RETRYABLE_STATUS,
        reason=reason,
        status=status,
        retry_after=retry_after,
    )


def _one_share(limit: str | None) -> float:
    """Seconds per request at the destination's advertised limit per second (a second if unknown)."""
    try:
        per_second = float(limit or 1)
    except ValueError:
        per_second = 1.0
    return 1 / per_second if per_second >= 1 else 1.0


def post_json(url: str, payload: object, headers: dict[str, str] | None = None, *, event_id: str) -> Outcome:
    return send_json("POST", url, payload, headers, event_id=event_id)


def send_json(
    method: str, url: str, payload: object, headers: dict[str, str] | None = None, *, event_id: str
) -> Outcome:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return send_body(method, url, body, {"Content-Type": "application/json", **(headers or {})}, event_id=event_id)


def send_body(method: str, url: str, body: bytes, headers: dict[str, str], *, event_id: str) -> Outcome:
    """`body` exactly as given (a signed body must reach the destination byte for byte)."""
    return _exchange(method, url, body, headers, event_id)[0]


def fetch_json(url: str, headers: dict[str, str], *, event_id: str) -> tuple[Outcome, Any]:
    """GET `url`: the outcome and the answer's JSON, a refusal's too (None when there was no answer,
    or it is not JSON)."""
    outcome, response = _exchange("GET", url, None, {"Accept": "application/json", **headers}, event_id)
    if response is None:
        return outcome, None
    try:
        return outcome, response.json()
    except ValueError:
        return outcome, None


def _exchange(
    method: str, url: str, body: bytes | None, headers: dict[str, str], event_id: str
) -> tuple[Outcome, requests.Response | None]:
    runtime = get_runtime()
    if problem := refusal(url, local=runtime.settings.allow_local_destinations):
        # Never sent; dead-lettered at once (the dead-letters alarm tells the operator), replayed once fixed.
        refused = f"destination URL refused: {problem}"
        return Outcome(delivered=False, retryable=False, reason=refused, reached=False), None
    session = runtime.http
    import requests

    try:
        response = session.request(
            method,
            url,
            data=body,
            headers={EVENT_ID_HEADER: event_id, **headers},
            timeout=runtime.settings.outbound_timeout_seconds,
            allow_redirects=False,
        )
    except requests.exceptions.ConnectTimeout:
        return Outcome(delivered=False, retryable=True, reason="connect timeout", reached=False), None
    except requests.exceptions.ReadTimeout:
        return Outcome(delivered=False, retryable=True, reason="timed out waiting for the answer"), None
    except requests.exceptions.ConnectionError as error:
        reached = "NewConnectionError" not in repr(error) and "NameResolution" not in repr(error)
        return Outcome(delivered=False, retryable=True, reason="connection failed", reached=reached), None
    except requests.exceptions.RequestException as error:
        return Outcome(delivered=False, retryable=False, reason=f"request not sendable: {type(error).__name__}"), None
    return classify(response), response
