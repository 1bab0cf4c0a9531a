"""The HTTP edge shared by every receiver: one resolver, body handling, JSON answers.

The resolver (`relay_api`) knows a sender's route as `app.receiver(path, section=...)`: POST goes
to the route; any other method is a 405 naming POST; a route whose relay.json section is absent is
a 404 saying so, before anything else happens. The route itself makes one call into a use case
(clay_relay.receivers) and answers its receipt with `receipt_response` (202).

Every rejection is a JSON body `{"error": <code>, "message": <what is wrong>[, "fields": [...]]}`
with the status that fits (400, 401, 404, 405, 413, 415, 422); errors of our own are a 503 the
sender may retry (nothing was accepted), never a stack trace.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from pydantic import BaseModel

from clay_relay.config import ConfigError, RelayConfig
from clay_relay.errors import (
    MalformedRequest,
    MethodNotAllowed,
    PayloadTooLarge,
    RelayError,
    ServiceUnavailable,
    UnknownRoute,
    UnsupportedMediaType,
)
from clay_relay.jobs import EVENT_ID_HEADER
from clay_relay.observability import logger
from clay_relay.runtime import get_runtime
from clay_relay.settings import SettingsError

if TYPE_CHECKING:
    from typing import TypeVar

    from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

    Route = TypeVar("Route", bound=Callable[..., Response[str]])  # a receiver's POST handler

# The relay.json sections that switch a route on, and what the route's 404 calls it without one.
OPTIONAL_SECTIONS = {
    "clay_callback": "the Clay callback",
    "loops_webhook": "the Loops webhook",
    "loops_forwarding": "forwarding to Loops",
}
ALLOWED_ELSEWHERE = ["GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT"]
# Deeper than any sender's payload nests. A deeper body is refused (400): the job carrying it must
# stay within what pydantic serialises and parses (about 250 and 200 levels), or an accepted event
# could never be queued or read.
MAX_JSON_DEPTH = 64
# A \u escape of a UTF-16 surrogate: only then can the parsed text hold an unpaired one.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, separators=(",", ":")),
        headers=headers,
    )


def receipt_response(receipt: BaseModel) -> Response[str]:
    """The 202 that answers an accepted (or knowingly skipped) request: the receipt as JSON, and its
    event id in `X-Relay-Event-Id` too: the id the worker logs, sends to the destination and the
    ledger records, to follow the request across functions whatever the tracing mode."""
    event_id = getattr(receipt, "event_id", None)
    return json_response(
        202, receipt.model_dump(mode="json", exclude_none=True), {EVENT_ID_HEADER: event_id} if event_id else None
    )


class RelayApi(APIGatewayHttpResolver):
    """The resolver of a relay function: its routes are senders' POST routes (see `receiver`)."""

    def receiver(self, path: str, *, section: str | None = None) -> Callable[[Route], Route]:
        """Register `path`'s POST route; every other method on it is a 405 (`Allow: POST`). With a
        `section` of relay.json (one of OPTIONAL_SECTIONS), the route is a 404 while that section
        is absent: answered before authentication, so no secret is read and no AWS call made."""

        def register(route: Route) -> Route:
            self.route(path, method=ALLOWED_ELSEWHERE)(_other_method)
            self.post(path, middlewares=[_section_required(section)] if section else None)(route)
            return route

        return register


def _other_method(**_path_parameters: str) -> Response[str]:
    raise MethodNotAllowed("use POST")


def _section_required(section: str) -> Callable[[APIGatewayHttpResolver, NextMiddleware], Response[str]]:
    def section_required(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[str]:
        configured_section(get_runtime().config, section)
        return next_middleware(app)

    return section_required


def configured_section(config: RelayConfig, section: str) -> Any:
    """relay.json's `section` (one of OPTIONAL_SECTIONS), or the 404 that says it is absent. The
    resolver asks first, before authentication; a use case asks again for its typed settings."""
    settings = getattr(config, section)
    if settings is None:
        raise UnknownRoute(f"{OPTIONAL_SECTIONS[section]} is not configured (relay.json has no {section})")
    return settings


def relay_api() -> RelayApi:
    app = RelayApi()

    # The ignores: powertools' `exception_handler` has no return annotation, so mypy takes the
    # decorator for an untyped one (the handlers keep their signatures at run time).
    @app.exception_handler(RelayError)  # type: ignore[untyped-decorator]
    def _relay_error(error: RelayError) -> Response[str]:
        return json_response(error.status, error.to_body(), error.headers)

    @app.exception_handler([ConfigError, SettingsError])  # type: ignore[untyped-decorator]
    def _misconfigured(error: Exception) -> Response[str]:
        logger.error("relay is misconfigured", extra={"problem": str(error)})
        return json_response(503, ServiceUnavailable("the relay is misconfigured; see its logs").to_body())

    @app.exception_handler(Exception)  # type: ignore[untyped-decorator]
    def _unexpected(error: Exception) -> Response[str]:
        logger.exception("unexpected error while handling a request")
        return json_response(500, {"error": "internal_error", "message": "unexpected error; see the relay's logs"})

    @app.not_found
    def _not_found(_: NotFoundError) -> Response[str]:
        return json_response(404, UnknownRoute("no such route").to_body())

    return app


def raw_body(event: APIGatewayProxyEventV2) -> bytes:
    """The body exactly as received (what signatures are computed over)."""
    body = event.body or ""
    if event.is_base64_encoded:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedRequest("the body is not valid base64") from None
    return body.encode("utf-8", "surrogatepass")


def json_object(event: APIGatewayProxyEventV2, body: bytes | None = None) -> dict[str, Any]:
    """The body as a JSON object, or the 413/415/400 that says why not."""
    body = raw_body(event) if body is None else body
    limit = get_runtime().settings.max_body_bytes
    if len(body) > limit:
        raise PayloadTooLarge(f"the body is {len(body)} bytes; the limit is {limit}")
    content_type = (event.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type and content_type != "application/json" and not content_type.endswith("+json"):
        raise UnsupportedMediaType(f"send Content-Type: application/json, not {content_type!r}")
    if not body.strip():
        raise MalformedRequest("the body is empty; send a JSON object")
    try:
        parsed = json.loads(body.decode("utf-8"), parse_constant=_not_json, parse_float=_finite)
    except UnicodeDecodeError:
        raise MalformedRequest("the body is not valid UTF-8") from None
    except RecursionError:
        raise MalformedRequest("the body is nested too deeply") from None
    except ValueError as error:
        raise MalformedRequest(f"the body is not valid JSON: {error}") from None
    if not isinstance(parsed, dict):
        kind = {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(parsed), "number")
        raise MalformedRequest(f"the body must be a JSON object, not a JSON {kind}")
    if _depth_exceeds(parsed, MAX_JSON_DEPTH):
        raise MalformedRequest(f"the body is nested too deeply (more than {MAX_JSON_DEPTH} levels)")
    if _SURROGATE_ESCAPE.search(body):
        try:
            json.dumps(parsed, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise MalformedRequest("the body escapes an unpaired UTF-16 surrogate, which is no text") from None
    return parsed


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not a JSON value")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"the number {text[:20]} is out of range")
    return number


def _depth_exceeds(value: object, limit: int) -> bool:
    """Whether objects and arrays nest more than `limit` levels (without recursion)."""
    pending = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        for child in children:
            if isinstance(child, dict | list):
                if depth >= limit:
                    return True
                pending.append((child, depth + 1))
    return False
