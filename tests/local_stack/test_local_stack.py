"""The local stack's own machinery that the delivery guarantees are proven with: faults as
`POST /_local/faults` takes them, the sandbox Clay table's auto-dedupe, and worker crashes that
stop an invocation right after one of its outbound calls, in every thread it runs; and the rule
that it never points at a real service unless asked (settings, secrets, the state file)."""

from __future__ import annotations

import contextvars
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from moto import mock_aws

from local_stack.__main__ import _running_stack
from local_stack.aws import LOCAL_ENV
from local_stack.chaos import WorkerKilled, dies_before_enqueue, doomed
from local_stack.real_services import ALLOW_VARIABLE, RealServiceRefused, outbound_settings, real_services
from local_stack.sandboxes import ClaySandbox, Fault
from local_stack.stack import LocalStack, Options, Urls
from local_stack.template import ROOT
from tests.conftest import fresh_runtime


# --- faults ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ({"destination": "ftp"}, "destination must be one of"),
        ({"destination": "clay", "mode": "crash"}, 'mode "crash" is for the destinations "worker" and "receiver"'),
        ({"destination": "worker", "mode": "down"}, 'mode "crash" is for the destinations "worker" and "receiver"'),
        ({"destination": "worker", "after": "lunch"}, 'after \\(worker crashes only\\) must be "any"'),
        ({"destination": "receiver", "after": "delivery"}, "worker crashes only"),
        ({"destination": "loops", "mode": "sometimes"}, "mode must be"),
        # A body that mixes the fields of two modes: which one did the person mean?
        ({"destination": "clay", "mode": "timeout", "status": 503}, "mode 'timeout' does not take 'status'"),
        ({"destination": "worker", "mode": "crash", "status": 503}, "mode 'crash' does not take 'status'"),
        ({"destination": "loops", "mode": "down", "delay": 5}, "mode 'down' does not take 'delay'"),
        ({"destination": "slack", "status": 500, "delay": 5}, "mode 'status' does not take 'delay'"),
        ({"destination": "worker", "after": "delivery", "delay": 1}, "mode 'crash' does not take 'delay'"),
        ({"destination": "clay", "stauts": 500}, "'stauts' \\(no fault has it\\)"),
    ],
)
def test_a_fault_that_makes_no_sense_is_refused_saying_why(spec, says):
    with pytest.raises(ValueError, match=says):
        Fault.from_request(spec)


def test_a_worker_crash_applies_to_as_many_invocations_as_asked_and_strikes_after_any_call_by_default():
    crash = Fault.from_request({"destination": "worker", "times": 2})
    assert (crash.mode, crash.after, crash.status) == ("crash", "any", None)
    assert [crash.take(), crash.take(), crash.take()] == [True, True, False]


def test_a_fault_without_times_or_seconds_applies_once():
    fault = Fault.from_request({"destination": "slack", "status": 500})
    assert [fault.take(), fault.take()] == [True, False]


# --- the sandbox Clay table's auto-dedupe ------------------------------------------------------------
def post_row(clay: ClaySandbox, row: dict) -> dict:
    answer = clay.receive("POST", ["clay", "webhooks", "leads-1"], {}, json.dumps(row).encode())
    assert answer.status == 200
    return answer.note


def test_a_row_whose_dedupe_value_was_seen_is_removed_but_its_submission_counts():
    clay = ClaySandbox()
    assert post_row(clay, {"email": "a@x.io", "relay_event_id": "e1"}) == {"row_created": True}
    assert post_row(clay, {"email": "a@x.io", "relay_event_id": "e1"}) == {"row_created": False, "deduplicated": True}
    assert post_row(clay, {"email": "a@x.io", "relay_event_id": "e2"}) == {"row_created": True}
    assert (clay.rows["leads-1"], clay.submissions["leads-1"]) == (2, 3)


@pytest.mark.parametrize("value", ["", None, "x" * 201])
def test_blank_and_over_200_character_values_are_not_compared(value):
    clay = ClaySandbox()
    for _ in range(2):
        assert post_row(clay, {"relay_event_id": value}) == {"row_created": True}


def test_without_a_dedupe_column_every_row_is_kept():
    clay = ClaySandbox(dedupe_column=None)
    for _ in range(2):
        assert post_row(clay, {"relay_event_id": "e1"}) == {"row_created": True}


# --- worker crashes ----------------------------------------------------------------------------------
@pytest.fixture
def aws_endpoint(monkeypatch):
    """Calls to this address count as AWS calls, all others as deliveries."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")


def test_an_invocation_dies_right_after_its_nth_call_and_makes_no_more(http_stub, aws_endpoint, monkeypatch):
    monkeypatch.setattr("local_stack.chaos.random.randint", lambda low, high: 3)
    url = http_stub.url("/hook")
    with pytest.raises(WorkerKilled, match="after 3 outbound calls"), doomed(batch_size=10):
        for _ in range(10):
            requests.post(url, json={}, timeout=5)
    assert len(http_stub.posted_to("/hook")) == 3, "the third call went out; nothing after it"


def test_a_crash_after_a_delivery_strikes_once_a_destination_answered(http_stub, aws_endpoint):
    with pytest.raises(WorkerKilled, match="after a delivery"), doomed(batch_size=10, after_delivery=True):
        requests.post(http_stub.url("/hook"), json={}, timeout=5)
        requests.post(http_stub.url("/hook"), json={}, timeout=5)
    assert len(http_stub.posted_to("/hook")) == 1


def test_once_dead_no_thread_of_the_invocation_sends_anything(http_stub, aws_endpoint):
    url = http_stub.url("/hook")

    def post_from_a_thread() -> BaseException | None:
        with ThreadPoolExecutor(1) as pool:  # with the invocation's context, as the worker's threads have it
            return pool.submit(contextvars.copy_context().run, requests.post, url, json={}, timeout=5).exception()

    with doomed(batch_size=1, after_delivery=True):
        assert isinstance(post_from_a_thread(), WorkerKilled), "the delivery went out, then the process died"
        assert isinstance(post_from_a_thread(), WorkerKilled)
        with pytest.raises(WorkerKilled):
            requests.post(url, json={}, timeout=5)
    assert len(http_stub.posted_to("/hook")) == 1


def test_calls_outside_a_doomed_invocation_are_untouched(http_stub, aws_endpoint):
    with doomed(batch_size=1, after_delivery=True):
        pass
    for _ in range(3):
        assert requests.post(http_stub.url("/hook"), json={}, timeout=5).status_code == 200


def test_a_receiver_dies_right_before_it_would_queue_the_job_and_not_before(http_stub, aws_endpoint):
    url = http_stub.url("/aws")
    with pytest.raises(WorkerKilled, match="after its duplicate check, before queueing"), dies_before_enqueue():
        requests.post(url, headers={"X-Amz-Target": "DynamoDB_20120810.BatchGetItem"}, timeout=5)
        requests.post(url, headers={"X-Amz-Target": "AmazonSQS.SendMessageBatch"}, timeout=5)
    assert len(http_stub.posted_to("/aws")) == 1, "the duplicate check went out, the job never did"


# --- never a real service unless asked ---------------------------------------------------------------
@pytest.fixture
def process_environment():
    """The local stack writes the functions' environment into this process's: put it back after."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
    fresh_runtime()


def provisioned_stack(tmp_path, secrets: str | None = None, **options) -> LocalStack:
    secrets_file = tmp_path / "local.env"
    secrets_file.write_text(secrets if secrets is not None else LOCAL_ENV.read_text())
    stack = LocalStack(Options(state_file=None, secrets_file=secrets_file, **options))
    with mock_aws():
        stack.provision("http://127.0.0.1:3001")
    return stack


def test_the_functions_and_the_state_file_point_at_the_sandbox_loops_not_the_real_one(tmp_path, process_environment):
    stack = provisioned_stack(tmp_path)
    assert stack.environment["LOOPS_API_BASE"] == "http://127.0.0.1:3001/loops/api"
    assert os.environ["LOOPS_API_BASE"] == "http://127.0.0.1:3001/loops/api"
    stack.options.state_file = tmp_path / "state.json"
    stack.urls = Urls(gateway="http://127.0.0.1:3000", sandboxes="http://127.0.0.1:3001", moto="http://127.0.0.1:5001")
    stack._write_state("http://127.0.0.1:5001")
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["environment"]["LOOPS_API_BASE"] == "http://127.0.0.1:3001/loops/api", "what invoke copies"
    endpoints = {name: state[name] for name in ("gateway", "sandboxes", "moto")}
    assert real_services({**outbound_settings(state["environment"]), **endpoints}) == []


@pytest.mark.parametrize(
    ("options", "secrets", "named"),
    [
        ({"environment": {"LOOPS_API_BASE": "https://app.loops.so/api"}}, None, "LOOPS_API_BASE → app.loops.so"),
        ({}, "SLACK_WEBHOOK_URL=https://hooks.slack.com/services/T0/B0/x\n", "slack-webhook-url → hooks.slack.com"),
        ({}, 'CLAY_WEBHOOKS_LEADS=[{"url": "https://api.clay.com/v3/sources/webhook/x"}]\n', "→ api.clay.com"),
    ],
    ids=["real Loops", "real Slack", "real Clay"],
)
def test_a_local_stack_pointed_at_a_real_service_refuses_to_start_unless_asked(
    tmp_path, process_environment, monkeypatch, options, secrets, named
):
    monkeypatch.delenv(ALLOW_VARIABLE, raising=False)
    with pytest.raises(RealServiceRefused, match=named) as refused:
        provisioned_stack(tmp_path, secrets, **options)
    assert "--allow-real-services" in str(refused.value)
    assert "/services/T0/B0/x" not in str(refused.value), "the host is named, never the secret URL"

    provisioned_stack(tmp_path, secrets, **options, allow_real_services=True)
    monkeypatch.setenv(ALLOW_VARIABLE, "1")
    provisioned_stack(tmp_path, secrets, **options)


def old_state(tmp_path, gateway: str, loops_api_base: str = "https://app.loops.so/api") -> Path:
    """A state file as a stack before this check wrote it: the template's environment, real Loops included."""
    path = tmp_path / "state.json"
    environment = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "LOOPS_API_BASE": loops_api_base, "RELAY_TABLE": "t"}
    path.write_text(json.dumps({"gateway": gateway, "sandboxes": gateway, "moto": gateway, "environment": environment}))
    return path


def test_invoke_refuses_a_running_stack_whose_state_points_at_the_real_loops(tmp_path, http_stub):
    state = old_state(tmp_path, http_stub.url("").rstrip("/"))
    command = [sys.executable, "-m", "local_stack", "invoke", "DirectusTriggerFunction", "events/directus/create.json"]
    environment = {k: v for k, v in os.environ.items() if k != ALLOW_VARIABLE}
    result = subprocess.run(  # nosec B603 - this interpreter, fixed arguments
        [*command, "--state-file", str(state)], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2, result.stderr
    assert "LOOPS_API_BASE → app.loops.so" in result.stderr and "--allow-real-services" in result.stderr
    assert result.stdout == "", "nothing was invoked"


def test_a_state_file_is_refused_before_any_request_when_its_gateway_is_not_this_machine(tmp_path, monkeypatch):
    monkeypatch.delenv(ALLOW_VARIABLE, raising=False)
    state = old_state(tmp_path, "http://198.51.100.7:3000", loops_api_base="http://127.0.0.1:3001/loops/api")
    with pytest.raises(RealServiceRefused, match=r"gateway → 198\.51\.100\.7"):
        _running_stack(state)


def test_a_stale_state_file_of_a_stack_that_no_longer_runs_is_ignored(tmp_path, closed_port_url, monkeypatch):
    monkeypatch.delenv(ALLOW_VARIABLE, raising=False)
    assert _running_stack(old_state(tmp_path, closed_port_url.rsplit("/clay", 1)[0])) is None


def test_a_running_stack_pointed_at_a_real_service_is_used_only_when_asked(tmp_path, http_stub, monkeypatch):
    monkeypatch.delenv(ALLOW_VARIABLE, raising=False)
    state = old_state(tmp_path, http_stub.url("").rstrip("/"))
    with pytest.raises(RealServiceRefused, match=r"LOOPS_API_BASE → app\.loops\.so"):
        _running_stack(state)
    assert (
        _running_stack(state, allow_real_services=True)["environment"]["LOOPS_API_BASE"] == "https://app.loops.so/api"
    )


# --- the banner's crash fault kills, visibly --------------------------------------------------------
def test_a_crash_fault_kills_the_next_worker_invocation_even_one_that_makes_few_calls_and_says_so(capsys):
    """The banner's `{"destination": "worker", "mode": "crash", "times": 1}` dooms the next batch: an
    invocation that returns before its random call dies as it returns, its batch unacknowledged."""
    from types import SimpleNamespace
    from unittest import mock

    from local_stack.poller import QueuePoller

    class MakesNoCall:
        spec = SimpleNamespace(name="DeliveryWorkerFunction")

        def invoke(self, event):
            return {"batchItemFailures": []}

    crash = Fault.from_request({"destination": "worker", "mode": "crash", "times": 1})
    poller = QueuePoller(MakesNoCall(), "queue-url", "queue-arn", crash_next=lambda: crash if crash.take() else None)
    sqs = mock.Mock()
    message = {"MessageId": "m-1", "ReceiptHandle": "r-1", "Body": "{}"}
    poller._deliver(sqs, [message])
    assert poller.killed == 1
    sqs.delete_message_batch.assert_not_called()
    printed = capsys.readouterr().out
    assert "[worker] killed mid-batch after its last outbound call (0), before its batch was acknowledged" in printed
    assert "comes back after the queue's visibility timeout" in printed
    poller._deliver(sqs, [message])  # the fault was for one invocation: the next one acknowledges
    assert poller.killed == 1
    sqs.delete_message_batch.assert_called_once()


# --- make replay of a file it cannot send ------------------------------------------------------------
@pytest.mark.parametrize(
    ("event", "says"),
    [
        ("events/no-such-event.json", "no such event file: events/no-such-event.json"),
        ("events/worker/clay-row.json", "is an SQS event for DeliveryWorkerFunction, not an HTTP request: make invoke"),
        ("events/scheduled/enrichment-overdue.json", "is an EventBridge Scheduler event, not an HTTP request"),
        ("README.md", "README.md is not JSON"),
    ],
)
def test_replaying_a_file_that_is_no_http_request_answers_one_line_not_a_traceback(event, says):
    result = subprocess.run(
        [sys.executable, "-m", "local_stack", "replay", event, "--url", "http://127.0.0.1:9"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("python -m local_stack replay: ")
    assert says in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_a_secrets_file_whose_directus_api_points_elsewhere_makes_the_relay_use_that_directus(
    tmp_path, process_environment, capsys, monkeypatch
):
    """Full rows, the sweep and the write-back read and write that Directus; its Flows are yours to add
    (the stack prints what to paste); a Directus beyond this machine only when asked, like any service."""
    real = LOCAL_ENV.read_text().replace(
        'DIRECTUS_API={"url": "{sandbox}/directus", "token": "local-directus-api-token"}',
        'DIRECTUS_API={"url": "http://127.0.0.1:8055", "token": "my-static-token"}',
    )
    stack = provisioned_stack(tmp_path, real)
    assert stack.real_directus() == "http://127.0.0.1:8055"
    stack.connect_directus_flows("http://127.0.0.1:3000")
    printed = capsys.readouterr().out
    assert "the relay reads and writes the Directus at http://127.0.0.1:8055" in printed
    assert "POST http://127.0.0.1:3000/directus/leads, body {{$trigger}}" in printed
    assert stack.sandboxes.directus.flows == {}, "the sandbox Directus is not the relay's"
    assert "my-static-token" not in printed

    sandbox = provisioned_stack(tmp_path)
    assert sandbox.real_directus() is None
    sandbox.connect_directus_flows("http://127.0.0.1:3000")
    assert sandbox.sandboxes.directus.flows["leads"][0] == "http://127.0.0.1:3000/directus/leads"

    monkeypatch.delenv(ALLOW_VARIABLE, raising=False)
    remote = real.replace("http://127.0.0.1:8055", "https://cms.example.com")
    with pytest.raises(RealServiceRefused, match=r"directus-api → cms\.example\.com"):
        provisioned_stack(tmp_path, remote)
    assert provisioned_stack(tmp_path, remote, allow_real_services=True).real_directus() == "https://cms.example.com"
