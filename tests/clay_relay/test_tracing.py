"""Tracing modes (template parameter `Tracing` → RELAY_TRACING): what each does in the functions,
what a bad one says, and that the default imports no tracing SDK at all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from clay_relay.settings import TRACING_MODES, Settings, SettingsError
from clay_relay.tracing import InProcessNothing, RelayTracer, XRaySdk, backend_for
from tests.invocations import LambdaContext, call_handler, http_api_event, load_handler

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = {"RELAY_TABLE": "relay", "DELIVERY_QUEUE_URL": "queue", "DEAD_LETTER_QUEUE_URL": "dlq"}


def test_the_default_mode_is_lambda_s_own_segment_without_a_tracer_in_the_functions():
    assert Settings.from_environment(REQUIRED).tracing == "lambda"


@pytest.mark.parametrize("mode", TRACING_MODES)
def test_every_mode_of_the_template_parameter_is_read_from_relay_tracing(mode):
    assert Settings.from_environment({**REQUIRED, "RELAY_TRACING": mode}).tracing == mode


@pytest.mark.parametrize("mode", ["otel", "XRAY", "active", "none"])
def test_an_unknown_mode_fails_naming_the_variable_and_the_template_parameter(mode):
    with pytest.raises(SettingsError) as raised:
        Settings.from_environment({**REQUIRED, "RELAY_TRACING": mode})
    message = str(raised.value)
    assert "RELAY_TRACING" in message and "`Tracing`" in message and repr(mode) in message
    assert "lambda, off, xray" in message, "the message says what would do"


@pytest.mark.parametrize(("mode", "backend"), [("off", InProcessNothing), ("lambda", InProcessNothing)])
def test_off_and_lambda_leave_handlers_and_methods_as_they_are(mode, backend):
    chosen = backend_for(mode)
    assert isinstance(chosen, backend)

    def handler(event, context):
        return event

    assert chosen.lambda_handler(handler) is handler
    assert chosen.method(handler) is handler


def test_xray_wraps_the_handler_in_powertools_tracer():
    chosen = backend_for("xray")
    assert isinstance(chosen, XRaySdk)

    def handler(event, context):
        return {"seen": event}

    traced = chosen.lambda_handler(handler)
    assert traced is not handler
    assert traced({"a": 1}, LambdaContext()) == {"seen": {"a": 1}}


def test_the_tracer_follows_the_runtime_s_backend_and_wraps_once_per_backend():
    wrapped: list[object] = []

    class Counting(InProcessNothing):
        def lambda_handler(self, handler):
            wrapped.append(handler)
            return handler

    current = Counting()
    relay_tracer = RelayTracer(lambda: current)

    @relay_tracer.capture_lambda_handler
    def handler(event, context):
        return event["n"]

    assert [handler({"n": n}, None) for n in range(3)] == [0, 1, 2]
    assert len(wrapped) == 1, "wrapped at the first invocation, not at every one"
    current = Counting()  # a fresh runtime (a test's, or a new execution environment)
    handler({"n": 3}, None)
    assert len(wrapped) == 2


def test_with_invalid_settings_the_handler_runs_untraced_and_meets_them_itself():
    def invalid():
        raise SettingsError("invalid function environment: RELAY_TRACING: ...")

    relay_tracer = RelayTracer(invalid)

    @relay_tracer.capture_lambda_handler
    def handler(event, context):
        return "ran"

    assert handler({}, None) == "ran"


def test_a_receiver_with_an_unknown_mode_answers_503_and_logs_the_parameter(relay_env, logs):
    relay_env(**REQUIRED, RELAY_TRACING="otel")
    handler = load_handler("directus_trigger")
    status, body = call_handler(handler, http_api_event("/directus/leads", {"event": "x"}))
    assert status == 503
    assert body["error"] == "temporarily_unavailable"
    [problem] = [line["problem"] for line in logs.lines if line["message"] == "relay is misconfigured"]
    assert "RELAY_TRACING" in problem and "`Tracing`" in problem


def test_the_worker_with_an_unknown_mode_fails_its_batch_naming_the_parameter(relay_env):
    """Its messages come back to the queue (and end in the dead-letter queue if it is never fixed)."""
    relay_env(**REQUIRED, RELAY_TRACING="X-Ray")
    handler = load_handler("delivery_worker")
    with pytest.raises(SettingsError, match=r"RELAY_TRACING.*`Tracing`"):
        handler({"Records": []}, LambdaContext())


# Importing a handler and serving a request, in a fresh interpreter: which modules got imported.
IMPORTS = """
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import app
from clay_relay.outbound import new_session
class Context:
    function_name, memory_limit_in_mb, aws_request_id = "DirectusTriggerFunction", 256, "r"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:DirectusTriggerFunction"
answer = app.lambda_handler({"version": "2.0", "routeKey": "$default", "rawPath": "/directus/leads",
    "rawQueryString": "", "headers": {}, "isBase64Encoded": False, "body": "",
    "requestContext": {"http": {"method": "GET", "path": "/directus/leads", "sourceIp": "127.0.0.1"},
                       "requestId": "r", "stage": "$default"}}, Context())
new_session()  # the worker's outbound session: requests is patched here when tracing with the SDK
print(json.dumps({"status": answer["statusCode"],
                  "xray_sdk": sorted(m for m in sys.modules if m.startswith("aws_xray_sdk"))[:3]}))
"""


def served_in_a_fresh_interpreter(mode: str) -> dict:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "POWERTOOLS_TRACE"))},
        **REQUIRED,
        "RELAY_TRACING": mode,
        "AWS_LAMBDA_FUNCTION_NAME": "DirectusTriggerFunction",  # Powertools traces only inside Lambda
        "_X_AMZN_TRACE_ID": "Root=1-6742e1a0-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=0",
        "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
    }
    done = subprocess.run(
        [sys.executable, "-c", IMPORTS, str(ROOT / "functions" / "directus_trigger"), str(ROOT / "layers" / "shared")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("mode", ["lambda", "off"])
def test_without_the_sdk_mode_serving_a_request_imports_no_x_ray_sdk(mode):
    served = served_in_a_fresh_interpreter(mode)
    assert served["status"] == 405
    assert served["xray_sdk"] == []


def test_the_xray_mode_does_load_the_sdk():
    """The control of the test above: the same script does see the SDK when it is used."""
    assert served_in_a_fresh_interpreter("xray")["xray_sdk"] != []
