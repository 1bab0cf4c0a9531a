"""Domain errors. Each knows the HTTP answer it becomes (see http_api)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError


class RelayError(Exception):
    status = 500
    code = "internal_error"
    headers: dict[str, str] = {}  # sent with the answer

    def __init__(self, message: str, *, fields: list[dict[str, str]] | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or []

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.fields:
            body["fields"] = self.fields
        return body


class MalformedRequest(RelayError):
    status, code = 400, "malformed_request"


class Unauthorized(RelayError):
    status, code = 401, "unauthorized"


class UnknownRoute(RelayError):
    status, code = 404, "not_found"


class MethodNotAllowed(RelayError):
    status, code = 405, "method_not_allowed"
    headers = {"Allow": "POST"}  # RFC 9110: a 405 names the methods the route serves


class PayloadTooLarge(RelayError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(RelayError):
    status, code = 415, "unsupported_media_type"


class InvalidPayload(RelayError):
    status, code = 422, "invalid_payload"


class ServiceUnavailable(RelayError):
    """Our own dependency (DynamoDB, SQS) failed: the sender may retry; nothing was accepted."""

    status, code = 503, "temporarily_unavailable"


def validation_fields(error: ValidationError, whole: str = "body") -> list[dict[str, str]]:
    """What a model refused, as `[{"field": "a.b", "problem": …}]`; `whole` names the field of a
    problem with the whole object (a model validator's)."""
    return [
        {"field": ".".join(map(str, e["loc"])) or whole, "problem": e["msg"].removeprefix("Value error, ")}
        for e in error.errors(include_url=False)
    ]
