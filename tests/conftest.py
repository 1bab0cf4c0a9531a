"""Shared fixtures. AWS is moto (in-process); the table, queues and secrets come from
template.yaml through the local stack's provisioning, so the schema lives in one place."""

from __future__ import annotations

import os

# Before any clay_relay import: fake credentials, no X-Ray, quiet metrics.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_SERVICE_NAME": "clay-relay",
        "POWERTOOLS_METRICS_NAMESPACE": "ClayRelay",
        "POWERTOOLS_DEV": "0",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)

from pathlib import Path

import pytest
from moto import mock_aws

from local_stack.aws import Provisioned, provision
from local_stack.template import Template, load_template

ROOT = Path(__file__).resolve().parent.parent

TEST_SECRETS = {
    "DIRECTUS_TOKENS": "directus-token-current,directus-token-next",
    "CLAY_WEBHOOKS_LEADS": '[{"url": "http://127.0.0.1:9/clay/webhooks/leads-1", "token": "clay-token-1"}]',
}


def fresh_runtime() -> None:
    """A new execution environment: the next invocation builds its runtime (settings, config,
    clients, secrets cache, pacer, breaker) from the environment as it is now."""
    from clay_relay.runtime import use_runtime

    use_runtime(None)


@pytest.fixture
def aws(monkeypatch) -> Provisioned:
    """moto with the template's table, queues and secrets; the functions' environment set."""
    with mock_aws():
        provisioned = provision(Template(load_template(), "test"), TEST_SECRETS)
        for key, value in provisioned.environment.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("SECRETS_CACHE_SECONDS", "0")
        fresh_runtime()
        yield provisioned
        fresh_runtime()
