"""Fixtures of every test package. AWS is moto (in-process); the table, queues and secrets come from
template.yaml through the local stack's provisioning, so the schema lives in one place. Outside
destinations are local HTTP servers (tests.destinations) and the local stack's sandboxes."""

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
        "ALLOW_LOCAL_DESTINATIONS": "1",  # the destinations are local servers (tests that refuse them unset it)
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)

import copy
import io
import json
import socket
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from local_stack.aws import Provisioned, provision
from local_stack.sandboxes import ClaySandbox, DirectusSandbox, LoopsSandbox, Sandboxes
from local_stack.template import Template, load_template
from tests.destinations import DIRECTUS_API_TOKEN, LOOPS_API_KEY, SLACK_PATH, ZAPIER_PATH, Destinations, StubServer
from tests.directus_relay import CLAY_PATH, DirectusRelay
from tests.invocations import default_config
from tests.recorders import AwsCalls, CapturedLogs, RecordingClient

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
        monkeypatch.setenv("ALLOW_LOCAL_DESTINATIONS", "1")  # the template's "false": its destinations are local here
        fresh_runtime()
        yield provisioned
        fresh_runtime()


@pytest.fixture
def relay_env(monkeypatch):
    """Set environment variables of the function, then forget everything built from the old ones."""

    def apply(**variables: object) -> None:
        for name, value in variables.items():
            monkeypatch.setenv(name, str(value))
        fresh_runtime()

    return apply


@pytest.fixture
def function_env(monkeypatch):
    """The minimal environment of a function, for tests that need settings but no AWS."""
    monkeypatch.setenv("RELAY_TABLE", "unit-table")
    monkeypatch.setenv("DELIVERY_QUEUE_URL", "https://sqs.invalid/delivery")
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", "https://sqs.invalid/dead-letters")
    fresh_runtime()
    yield
    fresh_runtime()


@pytest.fixture
def use_config(tmp_path, relay_env):
    """Point RELAY_CONFIG_PATH at a copy of relay.json changed by `edit(config_dict)`; returns it loaded."""

    def apply(edit=None):
        config = copy.deepcopy(default_config())
        if edit is not None:
            edit(config)
        path = tmp_path / "relay.json"
        path.write_text(json.dumps(config), encoding="utf-8")
        relay_env(RELAY_CONFIG_PATH=path)
        from clay_relay.config import load_config

        return load_config(path)

    return apply


@pytest.fixture
def put_secret(aws):
    """Give a secret (by its relay.json name) a new value in moto's Secrets Manager."""
    client = boto3.client("secretsmanager")
    prefix = aws.environment.get("SECRETS_PREFIX", "")

    def put(name: str, value: object) -> None:
        text = value if isinstance(value, str) else json.dumps(value)
        try:
            client.put_secret_value(SecretId=prefix + name, SecretString=text)
        except client.exceptions.ResourceNotFoundException:
            client.create_secret(Name=prefix + name, SecretString=text)

    return put


@pytest.fixture
def logs(monkeypatch) -> CapturedLogs:
    """What the relay's Powertools logger writes, exactly as it would reach CloudWatch. (Its
    handler keeps the stdout of import time, which capsys does not replace, so swap its stream.)"""
    from clay_relay.observability import logger

    buffer = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", buffer)
    return CapturedLogs(buffer)


@pytest.fixture
def aws_calls(aws) -> AwsCalls:
    """Every DynamoDB and SQS call the relay makes from now on (the runtime's clients are wrapped)."""
    from clay_relay.runtime import get_runtime

    calls = AwsCalls()
    clients = get_runtime().aws
    clients.client("dynamodb")
    clients.client("sqs")
    clients._clients["dynamodb"] = RecordingClient(clients._clients["dynamodb"], calls.dynamodb)
    clients._clients["sqs"] = RecordingClient(clients._clients["sqs"], calls.sqs)
    return calls


@pytest.fixture
def http_stub():
    stub = StubServer().start()
    yield stub
    stub.stop()


@pytest.fixture
def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: connecting is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/clay/webhooks/gone"


@pytest.fixture(scope="session")
def _sandbox_server():
    """One sandbox server for the session (stopping one costs half a second); tests reset it."""
    sandboxes = Sandboxes()
    base = sandboxes.start("127.0.0.1", 0)
    yield sandboxes, base
    sandboxes.stop()


@pytest.fixture
def destinations(aws, monkeypatch, put_secret, _sandbox_server) -> Destinations:
    """local_stack's Loops, Slack, Zapier and Directus sandboxes (fresh state, nothing received),
    with the relay's secrets (Loops API key, Slack and Zapier URLs, Directus API) and
    LOOPS_API_BASE pointing at them."""
    sandboxes, base = _sandbox_server
    sandboxes.clear_faults()
    sandboxes.deliveries.clear()
    sandboxes.clay = ClaySandbox()
    sandboxes.loops = LoopsSandbox(api_key=LOOPS_API_KEY)
    sandboxes.directus = DirectusSandbox(token=DIRECTUS_API_TOKEN, log=sandboxes.deliveries.record)
    monkeypatch.setenv("LOOPS_API_BASE", f"{base}/loops/api")
    fresh_runtime()
    put_secret("loops-api-key", LOOPS_API_KEY)
    put_secret("slack-webhook-url", base + SLACK_PATH)
    put_secret("zapier-webhook-url", base + ZAPIER_PATH)
    put_secret("directus-api", {"url": f"{base}/directus", "token": DIRECTUS_API_TOKEN})
    yield Destinations(sandboxes, base)
    sandboxes.clear_faults()


@pytest.fixture
def relay(aws, destinations, http_stub, put_secret, relay_env) -> DirectusRelay:
    """The relay with the sandbox Directus (its Flow not wired) and a stub Clay; sweeps look at every
    change at once (no settle)."""
    relay_env(RECONCILE_SETTLE_SECONDS=0)
    put_secret("clay-webhooks-leads", [{"url": http_stub.url(CLAY_PATH), "token": "clay-token-1"}])
    return DirectusRelay(aws, destinations, http_stub)
