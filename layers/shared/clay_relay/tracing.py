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
import os
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


class OpenTelemetry:
    """`otel`: OpenTelemetry spans for the handler, the route and every AWS and outbound request,
    children of Lambda's own segment (its trace header), sampled as Lambda sampled it, and sent as
    OTLP over UDP to Lambda's X-Ray daemon endpoint (ADOT's exporter): no collector layer."""

    def __init__(self) -> None:
        from amazon.opentelemetry.distro.otlp_udp_exporter import OTLPUdpSpanExporter
        from opentelemetry import propagate, trace
        from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
        from opentelemetry.propagators.aws import AwsXRayPropagator
        from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

        function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        provider = TracerProvider(
            resource=Resource(
                {
                    "service.name": os.environ.get("POWERTOOLS_SERVICE_NAME") or function,
                    "cloud.provider": "aws",
                    "cloud.platform": "aws_lambda",
                    "faas.name": function,
                }
            ),
            id_generator=AwsXRayIdGenerator(),
            sampler=ParentBased(ALWAYS_OFF),  # Lambda decides: its header's Sampled flag
        )
        # One UDP datagram per finished span, sent at once: nothing is left to flush when Lambda
        # freezes the environment after the invocation.
        provider.add_span_processor(SimpleSpanProcessor(OTLPUdpSpanExporter(os.environ.get("AWS_XRAY_DAEMON_ADDRESS"))))
        trace.set_tracer_provider(provider)
        self.propagator = AwsXRayPropagator()
        propagate.set_global_textmap(self.propagator)  # X-Amzn-Trace-Id on outbound requests, as the SDK does
        self.tracer = trace.get_tracer("clay_relay")
        self.server = trace.SpanKind.SERVER
        BotocoreInstrumentor().instrument(skip_dep_check=True)

    def lambda_handler(self, handler: F) -> F:
        @functools.wraps(handler)
        def traced(event: Any, context: Any) -> Any:
            parent = self.propagator.extract({"X-Amzn-Trace-Id": os.environ.get("_X_AMZN_TRACE_ID", "")})
            with self.tracer.start_as_current_span(f"## {handler.__name__}", context=parent, kind=self.server):
                return handler(event, context)

        return traced  # type: ignore[return-value]

    def method(self, function: F) -> F:
        @functools.wraps(function)
        def traced(*args: Any, **kwargs: Any) -> Any:
            with self.tracer.start_as_current_span(f"## {function.__name__}"):
                return function(*args, **kwargs)

        return traced  # type: ignore[return-value]

    def instrument_requests(self) -> None:
        from opentelemetry.instrumentation.requests import RequestsInstrumentor

        instrumentor = RequestsInstrumentor()
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(skip_dep_check=True)


def backend_for(mode: TracingMode) -> TracingBackend:
    if mode == "xray":
        return XRaySdk()
    if mode == "otel":
        return OpenTelemetry()
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
