"""Runs inside a fresh interpreter started by bench/handlers.py, set up like a Lambda execution
environment: `python3.13 -S` (no site-packages), sys.path = function code, layer, runtime (boto3
only), read-only bytecode caches (PYTHONDONTWRITEBYTECODE), Lambda's environment variables.

    child.py cold   SPEC   import the handler and serve one request; print the times
    child.py record SPEC   serve two requests against moto (and the sandboxes); write the AWS calls and
                           raw answers, and the HTTP requests sent out (the worker's)
    child.py warm   SPEC   serve N requests with AWS and the destinations answered from the recording
                           (no network); print CPU time

It prints one line `BENCH {json}` (the handler's own logs go to stdout too).
Standard library only before the handler is imported, so nothing is imported ahead of it.
"""

import json
import os
import sys
import time

STARTED = time.perf_counter()


class Context:
    function_name = "bench"
    function_version = "$LATEST"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/bench"
    log_stream_name = "bench"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


def load_handler(spec: dict):
    sys.path[:0] = spec["paths"]
    if spec.get("otel"):  # the measured option (c): bench/otel_tracing.py as the relay's tracing backend
        import otel_tracing

        import clay_relay.tracing

        clay_relay.tracing.backend_for = lambda mode: otel_tracing.OpenTelemetry()
    module_name, _, function = spec["handler"].rpartition(".")
    module = __import__(module_name)
    return getattr(module, function)


def status(answer: dict) -> int:
    """An HTTP function's status; the worker's batch: 200, or 500 with items to retry."""
    if "statusCode" in answer:
        return answer["statusCode"]
    return 500 if answer.get("batchItemFailures") else 200


def report(**figures) -> None:
    sys.stdout.flush()
    print("BENCH " + json.dumps(figures), flush=True)


def cold(spec: dict) -> None:
    handler = load_handler(spec)
    imported = time.perf_counter()
    answer = handler(spec["event"], Context())
    served = time.perf_counter()
    report(
        init_ms=(imported - STARTED) * 1000,
        first_request_ms=(served - imported) * 1000,
        total_ms=(served - STARTED) * 1000,
        status=status(answer),
    )


def record(spec: dict) -> None:
    """Two invocations (the first cold, the second warm) with every AWS call and its raw answer."""
    sys.path[:0] = spec["paths"]
    import botocore.session

    invocations: list[list[dict]] = []

    def before(params, model, **_):
        invocations[-1].append({"service": model.service_model.service_name, "operation": model.name, "params": params})

    def received(response_dict, **_):
        invocations[-1][-1]["answer"] = {
            "status": response_dict["status_code"],
            "headers": dict(response_dict["headers"]),
            "body": response_dict["body"].decode(),
        }

    original = botocore.session.Session.__init__

    def hooked(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.register("before-parameter-build", before)
        self.register("response-received", received)

    botocore.session.Session.__init__ = hooked
    import requests.adapters

    sent: list[list[dict]] = []
    original_send = requests.adapters.HTTPAdapter.send

    def send(self, request, **kwargs):
        sent[-1].append({"method": request.method, "url": request.url, "headers": dict(request.headers)})
        sent[-1][-1]["body"] = request.body.decode() if isinstance(request.body, bytes) else request.body
        response = original_send(self, request, **kwargs)
        sent[-1][-1]["answer"] = {"status": response.status_code, "headers": dict(response.headers)}
        return response

    requests.adapters.HTTPAdapter.send = send
    handler = load_handler({**spec, "paths": []})
    statuses = []
    for event in (spec["event"], spec["second_event"]):
        invocations.append([])
        sent.append([])
        statuses.append(status(handler(event, Context())))
    with open(spec["record_to"], "w") as file:
        json.dump({"statuses": statuses, "invocations": invocations, "sent": sent}, file)
    report(statuses=statuses, calls=[[f"{c['service']}:{c['operation']}" for c in calls] for calls in invocations])


def warm(spec: dict) -> None:
    """AWS answered from the recording (no network), then `iterations` requests timed in CPU."""
    sys.path[:0] = spec["paths"]
    import botocore.endpoint
    from botocore.awsrequest import AWSResponse

    recorded = json.load(open(spec["recording"]))["invocations"]
    answers = {f"{c['operation']}": c["answer"] for calls in recorded for c in calls}

    class Raw:
        def __init__(self, body: bytes):
            self.body = body

        def stream(self, **_):
            yield self.body

    def send(self, request):
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else target
        answer = answers[target.rpartition(".")[2]]
        return AWSResponse(request.url, answer["status"], answer["headers"], Raw(answer["body"].encode()))

    botocore.endpoint.Endpoint._send = send
    import requests.adapters
    from requests.models import Response

    sent = [request for requests_of_one in json.load(open(spec["recording"]))["sent"] for request in requests_of_one]

    def answer_from_recording(self, request, **kwargs):
        """The destination's recorded answer to the same URL (the worker's requests out)."""
        answer = next(r["answer"] for r in reversed(sent) if r["url"] == request.url)
        response = Response()
        response.status_code, response.url, response.request = answer["status"], request.url, request
        response.headers.update(answer["headers"])
        response._content = b"{}"
        return response

    requests.adapters.HTTPAdapter.send = answer_from_recording
    handler = load_handler({**spec, "paths": []})
    event, iterations, every = spec["event"], spec["iterations"], spec["sampled_every"]
    # Lambda sets a new trace header for every invocation; X-Ray records only the sampled ones.
    headers = [
        f"Root=1-6742e1a0-{n:024x};Parent=53995c3f42cd8ad8;Sampled={int(n % every == 0)}" for n in range(iterations)
    ]
    for _ in range(50):  # warm-up: secrets cached, code paths taken once
        assert status(handler(event, Context())) < 300
    cpu = time.process_time()
    for n in range(iterations):
        os.environ["_X_AMZN_TRACE_ID"] = headers[n]
        handler(event, Context())
    cpu = time.process_time() - cpu
    report(cpu_ms_per_request=cpu * 1000 / iterations, iterations=iterations)


if __name__ == "__main__":
    mode, spec_file = sys.argv[1], sys.argv[2]
    with open(spec_file) as spec_input:
        {"cold": cold, "record": record, "warm": warm}[mode](json.load(spec_input))
