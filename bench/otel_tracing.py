"""Option (c) of issue 21, measured by `make bench` and not offered by the template: an OpenTelemetry
tracer sending to X-Ray without a collector layer. bench/child.py puts it in place of the relay's
tracing backend (clay_relay.tracing) in mode `otel`, with bench/otel-requirements.txt's packages on
the path.

It works without a collector: ADOT's OTLP-over-UDP exporter sends each span to the X-Ray daemon
endpoint Lambda runs (AWS_XRAY_DAEMON_ADDRESS), as ADOT's own Lambda layers do. It is not offered
because it costs the most of the modes on cold start, on traced requests and in layer bytes, needs
14 more pinned packages, and takes its exporter from a 0.x distro's internal module
(docs/performance.md, Tracing modes).
"""

from __future__ import annotations

import functools
import os
from typing import Any, TypeVar

F = TypeVar("F")


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
