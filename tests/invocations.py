"""Calling the relay as Lambda does: handlers loaded from their code folders, API Gateway HTTP API
events and a Lambda context, relay.json as shipped, and the `relay` command's view of the moto stack."""

from __future__ import annotations

import base64
import importlib.util
import itertools
import json
import time
import uuid
from pathlib import Path

from clay_relay.settings import DEFAULT_CONFIG_PATH
from relay_cli.stack import Stack
from tests.queues import REGION


def relay_stack(aws, *, api_url: str = "http://127.0.0.1:9", **fields) -> Stack:
    """The `relay` command's view of the moto stack (AWS answered in-process by moto)."""
    return Stack(
        name="test",
        region=REGION,
        api_url=api_url,
        queue_url=aws.ref("DeliveryQueue"),
        dead_letter_url=aws.ref("DeadLetterQueue"),
        table_name=aws.environment["RELAY_TABLE"],
        secrets_prefix=aws.environment.get("SECRETS_PREFIX", ""),
        **fields,
    )


def default_config() -> dict:
    """relay.json as shipped, as a dict (a fresh copy each call)."""
    return json.loads(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))


FUNCTIONS = Path(__file__).resolve().parents[1] / "functions"


_loaded = itertools.count(1)


def load_handler(function: str):
    """`lambda_handler` of a fresh copy of functions/<function>/app.py, under a module name of its
    own (a new Lambda execution environment)."""
    spec = importlib.util.spec_from_file_location(f"{function}_app_{next(_loaded)}", FUNCTIONS / function / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lambda_handler


class LambdaContext:
    function_name = "test-Function"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test-Function"
    aws_request_id = "00000000-0000-0000-0000-000000000002"
    log_group_name = "/aws/lambda/test-Function"
    log_stream_name = "unit"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def http_api_event(
    path: str,
    body: object = None,
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    route_key: str | None = None,
    path_parameters: dict[str, str] | None = None,
    base64_encoded: bool = False,
) -> dict:
    """An API Gateway HTTP API (payload format 2.0) event. `body`: bytes as sent, a str, or an
    object sent as JSON; header names are lower-cased, as API Gateway does."""
    if body is None:
        raw = b""
    elif isinstance(body, bytes):
        raw = body
    else:
        raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    sent = {"host": "relay.example.com", **{k.lower(): v for k, v in (headers or {}).items()}}
    if raw:
        sent["content-length"] = str(len(raw))
    route_key = route_key or f"ANY {path}"
    event = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": sent,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "unit",
            "domainName": "relay.example.com",
            "domainPrefix": "relay",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.9",
                "userAgent": sent.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "timeEpoch": int(time.time() * 1000),
        },
        "pathParameters": path_parameters or {},
        "isBase64Encoded": base64_encoded,
    }
    if raw:
        event["body"] = base64.b64encode(raw).decode() if base64_encoded else raw.decode("utf-8", "surrogateescape")
    return event


def directus_flow_event(body: object, *, source: str = "leads", headers: dict[str, str] | None = None) -> dict:
    """What a Directus Flow's Request URL operation sends to `POST /directus/<source>` (with the test
    secrets' token: tests/conftest.py's TEST_SECRETS)."""
    return http_api_event(
        f"/directus/{source}",
        body,
        headers={
            "authorization": "Bearer directus-token-current",
            "content-type": "application/json",
            **(headers or {}),
        },
        route_key="ANY /directus/{source}",
        path_parameters={"source": source},
    )


def call_handler(handler, event: dict) -> tuple[int, dict]:
    """The handler's answer: its status and its body, which must be JSON."""
    answer = handler(event, LambdaContext())
    assert answer["headers"]["Content-Type"] == "application/json"
    return answer["statusCode"], json.loads(answer["body"])
