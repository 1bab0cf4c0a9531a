"""Secrets by name, read from AWS Secrets Manager at run time and cached for
`SECRETS_CACHE_SECONDS` (a rotated secret is picked up within that time, or at once by a caller
that saw it fail and asks for `refresh`).

Not Powertools' parameters utility: importing it imports boto3 (and s3transfer), about 90 ms of
every cold start; this is the part of it the relay uses, on the relay's botocore client.

A name in the configuration (`directus-tokens`) is looked up as `SECRETS_PREFIX + name`
(`clay-relay/directus-tokens` for a stack named clay-relay), which is also what the functions'
IAM policy allows, and nothing else.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from clay_relay.observability import logger

PLACEHOLDER = "REPLACE_ME"  # what template.yaml puts in secrets only you can fill


class SecretUnavailable(RuntimeError):
    """The secret is missing, unreadable or empty. Callers fail closed."""


class Secrets:
    """The secrets of one runtime (see clay_relay.runtime), with their cache."""

    def __init__(self, client: Callable[[], Any], *, prefix: str = "", max_age_seconds: float = 300):
        self._client = client
        self.prefix = prefix
        self.max_age_seconds = max_age_seconds
        self._values: dict[str, tuple[float, str | None]] = {}  # full name → (monotonic time read, SecretString)
        self._lock = threading.Lock()

    def _cached(self, full_name: str, *, refresh: bool) -> str | None:
        with self._lock:
            read_at, value = self._values.get(full_name, (None, None))
        if refresh or read_at is None or time.monotonic() - read_at >= self.max_age_seconds:
            value = self._client().get_secret_value(SecretId=full_name).get("SecretString")
            with self._lock:
                self._values[full_name] = (time.monotonic(), value)
        return value

    def read(self, name: str, *, refresh: bool = False) -> str:
        full_name = self.prefix + name
        try:
            value = self._cached(full_name, refresh=refresh)
        except (BotoCoreError, ClientError) as error:
            reason = error.response["Error"].get("Code") if isinstance(error, ClientError) else type(error).__name__
            logger.error("secret unavailable", extra={"secret": full_name, "reason": reason})
            raise SecretUnavailable(f"secret {full_name!r} is unavailable") from None
        if not isinstance(value, str) or not value.strip():
            raise SecretUnavailable(f"secret {full_name!r} is empty")
        if value.startswith(PLACEHOLDER):
            raise SecretUnavailable(f"secret {full_name!r} still holds the placeholder the template put there")
        return value

    def tokens(self, name: str) -> tuple[str, ...]:
        """Active tokens, several at once during a rotation: a JSON list, or tokens separated by
        commas, spaces or new lines."""
        return parse_tokens(self.read(name), name)

    def json(self, name: str, *, refresh: bool = False) -> object:
        try:
            return json.loads(self.read(name, refresh=refresh))
        except ValueError:
            raise SecretUnavailable(f"secret {name!r} is not valid JSON") from None


def parse_tokens(value: str, name: str) -> tuple[str, ...]:
    """The tokens of a secret's value (see Secrets.tokens)."""
    value = value.strip()
    if value.startswith("["):
        try:
            tokens = json.loads(value)
        except ValueError:
            raise SecretUnavailable(f"secret {name!r} is not a valid JSON list") from None
    else:
        tokens = re.split(r"[\s,]+", value)
    tokens = tuple(t.strip() for t in tokens if isinstance(t, str) and t.strip())
    if not tokens:
        raise SecretUnavailable(
            f"secret {name!r} holds no token (only separators, or a JSON list without one): "
            "give one or more, separated by commas, spaces or new lines, or as a JSON list"
        )
    return tokens


def _current() -> Secrets:
    from clay_relay.runtime import get_runtime

    return get_runtime().secrets


def read_secret(name: str, *, refresh: bool = False) -> str:
    """The current runtime's secret `name` (see Secrets.read)."""
    return _current().read(name, refresh=refresh)


def read_tokens(name: str) -> tuple[str, ...]:
    return _current().tokens(name)


def read_json(name: str, *, refresh: bool = False) -> object:
    return _current().json(name, refresh=refresh)
