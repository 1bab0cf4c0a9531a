"""How the relay's functions trace: the template parameter `Tracing`, read as `RELAY_TRACING`.

    off      nothing in the functions, and Lambda records no segment (`Tracing: PassThrough`)
    lambda   Lambda records each invocation's own segment (`Tracing: Active`); nothing in the
             functions, so no tracing SDK is imported (the default: the cheapest that still shows
             every invocation in X-Ray)
    xray     as `lambda`, plus Powertools' Tracer (the AWS X-Ray SDK, in maintenance since
             2026-02-25, supported until 2027-02-25): a subsegment for the handler, the route and
             every AWS and outbound request

Whatever the mode, one lead's request is followed across functions by the relay's event id: the
receiver answers it (`X-Relay-Event-Id`), the worker logs it (`event_id`), sends it to every
destination, and the lead ledger records it per stage (`relay trace`).

The handlers decorate with `tracer`, whose backend is the runtime's (built from its settings at the
first invocation): importing a handler imports no tracing SDK, and a bad `RELAY_TRACING` fails like
any bad setting, with a message that names the parameter.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from clay_relay.settings import SettingsError, TracingMode

F = TypeVar("F", bound=Callable[..., Any])


class TracingBackend(Protocol):
    """What a mode does to a handler, a method, and the outbound HTTP session's library."""

    def lambda_handler(self, handler: F) -> F: ...

    def method(self, function: F) -> F: ...

    def instrument_requests(self) -> None: ...


class InProcessNothing:
    """`off` and `lambda`: the functions are not traced from inside (Lambda may trace them)."""

    def lambda_handler(self, handler: F) -> F:
        return handler

    def method(self, function: F) -> F:
        return function

    def instrument_requests(self) -> None:
        return None


class XRaySdk:
    """`xray`: Powertools' Tracer over the X-Ray SDK; botocore patched now, requests when the
    outbound session is first built (the receivers never build it)."""

    def __init__(self) -> None:
        from aws_lambda_powertools import Tracer

        self.tracer = Tracer(patch_modules=["botocore"])

    def lambda_handler(self, handler: F) -> F:
        return self.tracer.capture_lambda_handler(handler)  # type: ignore[return-value]

    def method(self, function: F) -> F:
        return self.tracer.capture_method(function)

    def instrument_requests(self) -> None:
        self.tracer.patch(["requests"])


def backend_for(mode: TracingMode) -> TracingBackend:
    if mode == "xray":
        return XRaySdk()
    return InProcessNothing()


def _runtime_backend() -> TracingBackend:
    from clay_relay.runtime import get_runtime

    return get_runtime().tracing


class RelayTracer:
    """The decorators the handlers use. Each call asks `backend` (the runtime's, built from its
    settings at the first invocation) and wraps the function once per backend. While the settings
    are invalid a decorated function runs untraced, and the handler meets the invalid settings as
    every handler does: a receiver answers 503 and logs the problem (naming the variable and the
    template parameter); the worker's batch fails and comes back."""

    def __init__(self, backend: Callable[[], TracingBackend] = _runtime_backend):
        self._backend = backend

    def backend(self) -> TracingBackend | None:
        try:
            return self._backend()
        except SettingsError:
            return None

    def capture_lambda_handler(self, handler: F) -> F:
        return self._lazily(handler, "lambda_handler")

    def capture_method(self, function: F) -> F:
        return self._lazily(function, "method")

    def instrument_requests(self) -> None:
        if (backend := self.backend()) is not None:
            backend.instrument_requests()

    def _lazily(self, function: F, kind: str) -> F:
        wrapped: tuple[TracingBackend, Callable[..., Any]] | None = None

        @functools.wraps(function)
        def call(*args: Any, **kwargs: Any) -> Any:
            nonlocal wrapped
            backend = self.backend()
            if backend is None:
                return function(*args, **kwargs)
            if wrapped is None or wrapped[0] is not backend:
                wrapped = (backend, getattr(backend, kind)(function))
            return wrapped[1](*args, **kwargs)

        return call  # type: ignore[return-value]


tracer = RelayTracer()

__all__ = ["InProcessNothing", "RelayTracer", "TracingBackend", "XRaySdk", "backend_for", "tracer"]
