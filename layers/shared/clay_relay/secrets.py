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
import time
from functools import cache

from botocore.exceptions import BotoCoreError, ClientError

from clay_relay import aws_clients
from clay_relay.observability import logger
from clay_relay.settings import get_settings

PLACEHOLDER = "REPLACE_ME"  # what template.yaml puts in secrets only you can fill


class SecretUnavailable(RuntimeError):
    """The secret is missing, unreadable or empty. Callers fail closed."""


@cache
def _secretsmanager():
    return aws_clients.client("secretsmanager")


_values: dict[str, tuple[float, str | None]] = {}  # full name → (monotonic time read, SecretString)


def _cached(full_name: str, *, max_age: float, refresh: bool) -> str | None:
    read_at, value = _values.get(full_name, (None, None))
    if refresh or read_at is None or time.monotonic() - read_at >= max_age:
        value = _secretsmanager().get_secret_value(SecretId=full_name).get("SecretString")
        _values[full_name] = (time.monotonic(), value)
    return value


def read_secret(name: str, *, refresh: bool = False) -> str:
    settings = get_settings()
    full_name = settings.secrets_prefix + name
    try:
        value = _cached(full_name, max_age=settings.secrets_cache_seconds, refresh=refresh)
    except (BotoCoreError, ClientError) as error:
        reason = error.response["Error"].get("Code") if isinstance(error, ClientError) else type(error).__name__
        logger.error("secret unavailable", extra={"secret": full_name, "reason": reason})
        raise SecretUnavailable(f"secret {full_name!r} is unavailable") from None
    if not isinstance(value, str) or not value.strip():
        raise SecretUnavailable(f"secret {full_name!r} is empty")
    if value.startswith(PLACEHOLDER):
        raise SecretUnavailable(f"secret {full_name!r} still holds the placeholder the template put there")
    return value


def read_tokens(name: str) -> tuple[str, ...]:
    """Active tokens, several at once during a rotation: a JSON list, or tokens separated by
    commas, spaces or new lines."""
    return parse_tokens(read_secret(name), name)


def parse_tokens(value: str, name: str) -> tuple[str, ...]:
    """The tokens of a secret's value (see read_tokens)."""
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
        raise SecretUnavailable(f"secret {name!r} holds no token")
    return tokens


def read_json(name: str, *, refresh: bool = False) -> object:
    try:
        return json.loads(read_secret(name, refresh=refresh))
    except ValueError:
        raise SecretUnavailable(f"secret {name!r} is not valid JSON") from None
