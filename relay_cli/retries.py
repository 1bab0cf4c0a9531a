"""HTTP requests tried again when the failure may pass: network failures and 408, 425, 429 and 5xx
answers, after an exponential backoff with jitter (or the longer `Retry-After`), up to MAX_ATTEMPTS.
Redirects are never followed (the token would go along): a 3xx is refused, naming where it pointed."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlsplit

import requests
from requests import Response

from clay_relay.backoff import exponential_seconds
from clay_relay.outbound import RETRYABLE_STATUS, redirect_reason, retry_after_seconds, session_without_redirects
from relay_cli import CommandError

MAX_ATTEMPTS = 8
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
MAX_RETRY_AFTER_SECONDS = 300.0
TIMEOUT_SECONDS = 30


class Unanswered(CommandError):
    """Every attempt failed: the message names the URL and the last failure."""


class Redirected(CommandError):
    """The server answered with a redirect, which is not followed: configure the final URL."""


def backoff(attempt: int) -> float:
    """Between half and all of 1, 2, 4 … 30 s."""
    return exponential_seconds(attempt, FIRST_BACKOFF_SECONDS, MAX_BACKOFF_SECONDS)


def retry_after(response: Response) -> float:
    """The answer's `Retry-After` (seconds or an HTTP date), at most MAX_RETRY_AFTER_SECONDS; 0 without one."""
    return min(MAX_RETRY_AFTER_SECONDS, retry_after_seconds(response.headers.get("Retry-After")) or 0.0)


class Retrying:
    """Sends requests through one session; `sleep` waits between attempts (Ctrl-C may cut it short)."""

    def __init__(self, *, attempts: int = MAX_ATTEMPTS, sleep: Callable[[float], None] = time.sleep):
        self.attempts = attempts
        self.sleep = sleep
        self.session = session_without_redirects()

    def request(self, method: str, url: str, *, reason: Callable[[Response], str], **kwargs) -> Response:
        """The first answer that is not worth retrying; `reason(answer)` says why one was."""
        last = ""
        for attempt in range(1, self.attempts + 1):
            try:
                response = self.session.request(method, url, timeout=TIMEOUT_SECONDS, allow_redirects=False, **kwargs)
            except requests.RequestException as error:
                last, wait = f"{type(error).__name__} ({urlsplit(url).netloc} unreachable?)", backoff(attempt)
            else:
                if 300 <= response.status_code < 400:
                    location = response.headers.get("Location")
                    raise Redirected(f"{method} {url}: {redirect_reason(response.status_code, location, url)}")
                if response.status_code not in RETRYABLE_STATUS:
                    return response
                last = f"HTTP {response.status_code} ({reason(response)})"
                wait = max(retry_after(response), backoff(attempt))
            if attempt < self.attempts:
                self.sleep(wait)
        raise Unanswered(f"{method} {url}: no usable answer after {self.attempts} attempts; last: {last}")
