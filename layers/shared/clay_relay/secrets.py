"""Secrets by name, read from AWS Secrets Manager at run time and cached (Powertools parameters).

A name in the configuration (`directus-tokens`) is looked up as `SECRETS_PREFIX + name`
(`clay-relay/directus-tokens` for a stack named clay-relay), which is also what the functions'
IAM policy allows, and nothing else.
"""

from __future__ import annotations

import json
import re
from functools import cache

import boto3
from aws_lambda_powertools.utilities import parameters

from clay_relay.observability import logger
from clay_relay.settings import get_settings

PLACEHOLDER = "REPLACE_ME"  # what template.yaml puts in secrets only you can fill


class SecretUnavailable(RuntimeError):
    """The secret is missing, unreadable or empty. Callers fail closed."""


@cache
def _provider() -> parameters.SecretsProvider:
    """Its client comes from boto3's default session, like DynamoDB's and SQS': botocore loads its
    data once per cold start instead of once per session."""
    return parameters.SecretsProvider(boto3_client=boto3.client("secretsmanager"))


def read_secret(name: str, *, refresh: bool = False) -> str:
    settings = get_settings()
    full_name = settings.secrets_prefix + name
    try:
        value = _provider().get(full_name, max_age=settings.secrets_cache_seconds, force_fetch=refresh)
    except parameters.exceptions.GetParameterError as error:
        logger.error("secret unavailable", extra={"secret": full_name, "reason": type(error.__cause__).__name__})
        raise SecretUnavailable(f"secret {full_name!r} is unavailable") from None
    if not isinstance(value, str) or not value.strip():
        raise SecretUnavailable(f"secret {full_name!r} is empty")
    if value.startswith(PLACEHOLDER):
        raise SecretUnavailable(f"secret {full_name!r} still holds the placeholder the template put there")
    return value


def read_tokens(name: str) -> tuple[str, ...]:
    """Active tokens, several at once during a rotation: a JSON list, or tokens separated by
    commas, spaces or new lines."""
    value = read_secret(name).strip()
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
