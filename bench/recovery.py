"""Recovery after an outage (issue 19): how long a backlog takes to reach Clay once Clay is back, and
what the outage cost in SQS requests and Lambda invocations, with and without parking.

A discrete-event simulation on a virtual clock (a 10-minute outage takes seconds) that runs the real
worker code, `clay_relay.worker.deliver_batch`, in `WorkerMaximumConcurrency` simulated Lambda
instances (bench/simulated_lambda.py) fed by Lambda's SQS event source mapping from an in-memory SQS
with the same clock (bench/virtual_sqs.py); DynamoDB is moto's (the table from template.yaml). The
backlog is accepted by the real Directus receiver (`receive_directus_event`): one create per lead of
the shipped `leads` source, each a row for the `leads` Clay target. Clay is the sandbox Clay
(local_stack/sandboxes/clay.py: 10 rows/s per workspace, bursts of 20, 429 beyond) reached through a
transport adapter mounted on each instance's session (no socket), answering 503 to every request
until it recovers.

Scenario, per outage length: Clay goes down at t=0; the backlog arrives during the first seconds;
Clay recovers at t=outage. The simulation runs until every job is delivered or dead-lettered and the
queue is empty (or `--cap-hours` of virtual time). Each outage runs with `delivery.park_when_down`
off and on, side by side (a build without the setting runs once, as built).

    recovery_drain_ratio      (seconds from recovery to the last job delivered) ÷ (backlog ÷ Clay's rate)
                                                                          target ≤ 1.5 for both outages
    outage_requests_per_job   (SQS requests + Lambda invocations made during the outage) ÷ jobs, for
                              the longest outage; every request the virtual SQS gets counts (the
                              event source mapping's receives and deletes, the worker's), except
                              the receiver's sends, which the backlog costs with or without an
                              outage                                              target ≤ 3 (parking on)

Virtual time costs: an AWS request 8 ms, a Clay request 150 ms, a Lambda invocation 20 ms; pacing
waits as the Pacer computes them. The output ends with one JSON line (also written to `--json PATH`);
the exit status is 1 when a job was lost or sent twice (missed targets are reported, not failed).

    .venv/bin/python -m bench.recovery [--backlog 300] [--outages 60 600] [--json PATH]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from moto import mock_aws
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from bench.simulated_lambda import AwsRequest, SimulatedClients, VirtualClock, WorkerInstance
from bench.virtual_sqs import VirtualSqs
from clay_relay.config import DeliveryPolicy
from clay_relay.jobs import EVENT_ID_HEADER, parse_job
from clay_relay.observability import logger
from clay_relay.pacing import CircuitBreaker, Pacer
from clay_relay.receivers.directus_event import receive_directus_event
from clay_relay.runtime import Runtime, use_runtime
from clay_relay.settings import DEFAULT_CONFIG_PATH, Settings
from clay_relay.worker import deliver_batch
from local_stack.aws import FAKE_CREDENTIALS, provision
from local_stack.gateway import api_gateway_event
from local_stack.sandboxes import ClaySandbox
from local_stack.sandboxes.answers import Answer
from local_stack.template import HttpRoute, Template, load_template

STACK = "clay-relay-bench"
CLAY_HOST = "clay.bench.invalid"  # reached only through the adapter; .invalid never resolves
CLAY_TOKEN = "bench-clay-token"  # noqa: S105 - the simulation's, no secret
DIRECTUS_TOKEN = "bench-directus-token"  # noqa: S105 - the simulation's, no secret
SECRETS = {
    "DIRECTUS_TOKENS": DIRECTUS_TOKEN,
    "CLAY_WEBHOOKS_LEADS": json.dumps([{"url": f"https://{CLAY_HOST}/clay/webhooks/leads-1", "token": CLAY_TOKEN}]),
}
DIRECTUS_ROUTE = HttpRoute("ANY", "/directus/{source}", "DirectusTriggerFunction")
AWS_REQUEST_SECONDS = 0.008
CLAY_REQUEST_SECONDS = 0.15
ARRIVAL_SECONDS = 3.0  # the backlog arrives during the outage's first seconds
PROGRESS_SECONDS = 60.0
TARGET_DRAIN_RATIO = 1.5
TARGET_REQUESTS_PER_JOB = 3.0
PARKING_AVAILABLE = "park_when_down" in DeliveryPolicy.model_fields


@dataclass(frozen=True)
class ClayAnswer:
    at: float
    event_id: str
    status: int


class ClayOutage(BaseAdapter):
    """Clay as the instances' sessions reach it: 503 to every request until `recovers_at`, then the
    sandbox Clay. Every request and its answer is noted with its virtual time."""

    def __init__(self, clock: VirtualClock, clay: ClaySandbox, recovers_at: float):
        super().__init__()
        self.clock, self.clay, self.recovers_at = clock, clay, recovers_at
        self.answers: list[ClayAnswer] = []

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        url = urlsplit(request.url or "")
        if url.hostname != CLAY_HOST:  # the simulation reaches nothing else
            raise requests.ConnectionError(f"the simulation has no {url.hostname}")
        at = self.clock.now
        self.clock.sleep(CLAY_REQUEST_SECONDS)
        if at < self.recovers_at:
            answer = Answer(503, {"error": "Service unavailable"})
        else:
            headers = {name.lower(): value for name, value in request.headers.items()}
            body = request.body if isinstance(request.body, bytes) else (request.body or "").encode()
            answer = self.clay.receive(request.method or "POST", url.path.strip("/").split("/"), headers, body)
        self.answers.append(ClayAnswer(at, request.headers.get(EVENT_ID_HEADER, ""), answer.status))
        response = requests.Response()
        response.status_code, response.reason = answer.status, HTTPStatus(answer.status).phrase
        response._content = json.dumps(answer.body).encode()
        response.headers = CaseInsensitiveDict({"Content-Type": "application/json", **answer.headers})
        response.url, response.request, response.encoding = request.url or "", request, "utf-8"
        return response

    def close(self) -> None:
        pass


@dataclass
class Run:
    """One outage, simulated."""

    outage: float
    backlog: int
    parking: bool | None  # None: the build has no parking
    clock: VirtualClock
    sqs: VirtualSqs
    clay: ClayOutage
    queue_url: str
    dead_letter_url: str
    instances: list[WorkerInstance] = field(default_factory=list)
    rate: float = 0.0  # Clay's rows per second (relay.json's delivery.rates_per_second)
    aws_requests: list[AwsRequest] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)  # event ids of the jobs the receiver accepted

    @property
    def mode(self) -> str:
        return {None: "as built (no parking)", False: "parking off", True: "parking on"}[self.parking]


def relay_config(folder: Path, parking: bool | None) -> Path:
    """relay.json as shipped, with `delivery.park_when_down` set when the build has it."""
    config = json.loads(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    if parking is not None:
        config["delivery"]["park_when_down"] = parking
    path = folder / "relay.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


@contextmanager
def simulated_stack(outage: float, backlog: int, parking: bool | None) -> Iterator[Run]:
    """moto with the template's table and secrets, the virtual queues, the instances and Clay."""
    saved = dict(os.environ)
    os.environ.update(FAKE_CREDENTIALS)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-recovery-") as folder, mock_aws():
            template = Template(load_template(), STACK)
            provisioned = provision(template, SECRETS)
            os.environ.update(provisioned.environment)
            os.environ.update(
                RELAY_CONFIG_PATH=str(relay_config(Path(folder), parking)),
                POWERTOOLS_METRICS_DISABLED="1",
                POWERTOOLS_TRACE_DISABLED="1",
            )
            settings = Settings.from_environment()
            clock = VirtualClock(float(int(time.time())))  # whole seconds: runs repeat exactly
            sqs = VirtualSqs(clock.time, latency=lambda: clock.sleep(AWS_REQUEST_SECONDS))
            queue = template.resources["DeliveryQueue"]["Properties"]
            sqs.create_queue(settings.dead_letter_queue_url, queue["VisibilityTimeout"])
            sqs.create_queue(
                settings.delivery_queue_url,
                queue["VisibilityTimeout"],
                dead_letter_url=settings.dead_letter_queue_url,
                max_receive=queue["RedrivePolicy"]["maxReceiveCount"],
            )
            clay = ClayOutage(
                clock, ClaySandbox(tokens={"leads-1": CLAY_TOKEN}, clock=clock.time), clock.start + outage
            )
            run = Run(
                outage=outage,
                backlog=backlog,
                parking=parking,
                clock=clock,
                sqs=sqs,
                clay=clay,
                queue_url=settings.delivery_queue_url,
                dead_letter_url=settings.dead_letter_queue_url,
            )
            worker = template.functions()["DeliveryWorkerFunction"]
            for n in range(settings.worker_max_concurrency):  # the template's WorkerMaximumConcurrency
                run.instances.append(
                    WorkerInstance(
                        name=f"worker {n + 1}",
                        runtime=instance_runtime(settings, run, f"worker {n + 1}"),
                        handler=deliver_batch,
                        sqs=sqs,
                        queue_url=run.queue_url,
                        clock=clock,
                        timeout_seconds=worker.timeout,
                        batch_size=int(worker.sqs_sources[0]["BatchSize"]),
                        window_seconds=float(template.parameter_defaults()["WorkerBatchingWindowSeconds"]),
                        at=clock.start,
                    )
                )
            run.rate = run.instances[0].runtime.config.delivery.rates_per_second["clay"]
            yield run
    finally:
        use_runtime(None)
        os.environ.clear()
        os.environ.update(saved)


def instance_runtime(settings: Settings, run: Run, caller: str) -> Runtime:
    """A Lambda instance's runtime: its own pacer and breaker on the virtual clock, its session to Clay."""
    clients = SimulatedClients(run.sqs.client(caller), run.clock, AWS_REQUEST_SECONDS, run.aws_requests)
    runtime = Runtime(
        settings,
        aws=clients,
        pacer=Pacer(clock=run.clock.time, sleep=run.clock.sleep),
        breaker=CircuitBreaker(clock=run.clock.time),
    )
    for prefix in ("https://", "http://"):
        runtime.http.mount(prefix, run.clay)
    return runtime


def accept_lead(run: Run, receiver: Runtime, number: int) -> None:
    """A Directus Flow's create of lead `number`, through the real receiver (one row for Clay)."""
    body = {
        "event": "leads.items.create",
        "collection": "leads",
        "key": number,
        "payload": {"email": f"lead{number}@example.com", "first_name": "Ada", "company_name": f"Company {number}"},
    }
    headers = {"authorization": f"Bearer {DIRECTUS_TOKEN}", "content-type": "application/json"}
    event = api_gateway_event(
        DIRECTUS_ROUTE, "POST", "/directus/leads", headers, json.dumps(body).encode(), {"source": "leads"}, "127.0.0.1"
    )
    use_runtime(receiver)
    receipt = receive_directus_event(receiver, "leads", APIGatewayProxyEventV2(event))
    run.accepted += [row.event_id for row in receipt.rows or []]


def simulate(run: Run, cap_seconds: float, progress: bool) -> bool:
    """Runs every actor in order of its local time until the backlog is settled and the queue empty;
    False when the virtual-time cap came first."""
    clock, start = run.clock, run.clock.start
    receiver = instance_runtime(Settings.from_environment(), run, "receiver")
    arrivals = [start + ARRIVAL_SECONDS * n / run.backlog for n in range(run.backlog)]
    next_report = start + PROGRESS_SECONDS
    while True:
        if not arrivals and not any(i.busy for i in run.instances) and not run.sqs.queues[run.queue_url].messages:
            return True
        actor = min(run.instances, key=lambda instance: instance.next_step_at())
        moment = min(arrivals[0], actor.next_step_at()) if arrivals else actor.next_step_at()
        if moment - start > cap_seconds:
            return False
        while progress and moment >= next_report:
            report_progress(run, next_report)
            next_report += PROGRESS_SECONDS
        clock.now = moment
        if arrivals and arrivals[0] <= actor.next_step_at():
            arrivals.pop(0)
            accept_lead(run, receiver, run.backlog - len(arrivals))
            continue
        actor.at = moment
        actor.step()


def report_progress(run: Run, moment: float) -> None:
    delivered = len({a.event_id for a in run.clay.answers if 200 <= a.status < 300})
    counts = run.sqs.counts(run.queue_url)
    invocations = sum(len(i.invocations) for i in run.instances)
    print(
        f"  [{run.mode}, outage {run.outage:.0f} s] t={moment - run.clock.start:6.0f} s  delivered {delivered}/"
        f"{run.backlog}  queue: {counts['visible']} visible, {counts['in_flight']} hidden  "
        f"invocations {invocations}  SQS requests {len(run.sqs.requests)}",
        file=sys.stderr,
        flush=True,
    )


def busiest_second(times: list[float]) -> int:
    ordered, best, first = sorted(times), 0, 0
    for last, moment in enumerate(ordered):
        while moment - ordered[first] >= 1.0:
            first += 1
        best = max(best, last - first + 1)
    return best


def figures(run: Run, drained: bool, real_seconds: float) -> dict[str, Any]:
    start, recovers = run.clock.start, run.clock.start + run.outage
    answers = run.clay.answers
    delivered_at: dict[str, float] = {}
    deliveries = Counter(a.event_id for a in answers if 200 <= a.status < 300)
    for answer in answers:
        if 200 <= answer.status < 300:
            delivered_at.setdefault(answer.event_id, answer.at)
    jobs = set(run.accepted)

    def event_ids(url: str) -> set[str]:
        return {parse_job(m.body).event_id for m in run.sqs.queues[url].messages.values()}

    dead, queued = event_ids(run.dead_letter_url) & jobs, event_ids(run.queue_url) & jobs
    delivered = jobs & delivered_at.keys()
    during = [r for r in run.sqs.requests if r.at < recovers and r.caller != "receiver"]
    invocations = [i for instance in run.instances for i in instance.invocations]
    worker_dynamodb = [r for r in run.aws_requests if r.service == "dynamodb" and r.caller != "receiver"]
    outage_invocations = sum(1 for i in invocations if i.started < recovers)
    last = max((delivered_at[e] for e in delivered), default=None)
    ideal = run.backlog / run.rate
    recovery = last - recovers if last is not None and delivered == jobs else None
    return {
        "outage_seconds": run.outage,
        "parking": run.parking,
        "mode": run.mode,
        "backlog": run.backlog,
        "accepted": len(jobs),
        "delivered": len(delivered),
        "dead_lettered": len(dead),
        "still_queued": len(queued - delivered - dead),
        "lost": len(jobs - delivered - dead - queued),
        "sent_twice": sum(1 for n in deliveries.values() if n > 1),
        "drained": drained,
        "recovery_seconds": None if recovery is None else round(recovery, 1),
        "ideal_seconds": ideal,
        "recovery_drain_ratio": None if recovery is None else round(recovery / ideal, 3),
        "first_delivery_after_recovery_seconds": (
            round(min(delivered_at.values()) - recovers, 1) if delivered_at else None
        ),
        "outage_sqs_requests": len(during),
        "outage_sqs_by_operation": dict(Counter(r.operation for r in during)),
        "outage_invocations": outage_invocations,
        "outage_requests_per_job": round((len(during) + outage_invocations) / run.backlog, 3),
        "outage_dynamodb_requests": sum(1 for r in worker_dynamodb if r.at < recovers),
        "outage_clay_requests": sum(1 for a in answers if a.at < recovers),
        "receiver_sqs_requests": sum(1 for r in run.sqs.requests if r.caller == "receiver"),
        "sqs_requests": len(run.sqs.requests),
        "invocations": len(invocations),
        "invocation_errors": Counter(i.error for i in invocations if i.error),
        "dynamodb_requests": len(worker_dynamodb),
        "clay_requests": len(answers),
        "clay_429": sum(1 for a in answers if a.status == 429),
        "busiest_second": busiest_second([a.at for a in answers if a.at >= recovers]),
        "virtual_seconds": round(run.clock.now - start, 1),
        "real_seconds": round(real_seconds, 1),
    }


def measure(outage: float, backlog: int, parking: bool | None, cap_seconds: float, progress: bool) -> dict:
    started = time.monotonic()
    logs = io.StringIO()  # the worker logs every retry: kept out of the report, its errors counted
    handler = logger.registered_handler
    stream, level = handler.stream, logger.log_level
    handler.stream = logs
    logger.setLevel("ERROR")
    try:
        with simulated_stack(outage, backlog, parking) as run, run.clock.installed():
            drained = simulate(run, cap_seconds, progress)
            result = figures(run, drained, time.monotonic() - started)
    finally:
        handler.stream = stream
        logger.setLevel(level)
    errors = Counter(json.loads(line).get("message") for line in logs.getvalue().splitlines() if line.startswith("{"))
    result["logged_errors"] = dict(errors)
    return result


def modes(chosen: str = "both") -> list[bool | None]:
    """The parking settings to run: off and on (`chosen`: only one), or the build's only one."""
    if not PARKING_AVAILABLE:
        return [None]
    return {"both": [False, True], "off": [False], "on": [True]}[chosen]


def summary(runs: list[dict]) -> dict[str, Any]:
    """The headline figures: the parking mode's (or the build's only one), and without parking beside them."""
    headline = True if PARKING_AVAILABLE else None
    result: dict[str, Any] = {"parking_available": PARKING_AVAILABLE}
    for label, parking in (("", headline), ("_without_parking", False if PARKING_AVAILABLE else None)):
        mine = [r for r in runs if r["parking"] is parking]
        if not mine or (label and not PARKING_AVAILABLE):
            continue
        longest = max(r["outage_seconds"] for r in mine)
        ratios = [r["recovery_drain_ratio"] for r in mine]
        result[f"recovery_drain_ratio{label}"] = None if None in ratios else max(ratios)
        for r in mine:
            result[f"recovery_drain_ratio_{r['outage_seconds']:.0f}s{label}"] = r["recovery_drain_ratio"]
        result[f"outage_requests_per_job{label}"] = next(
            r["outage_requests_per_job"] for r in mine if r["outage_seconds"] == longest
        )
    result["lost"] = sum(r["lost"] for r in runs)
    result["sent_twice"] = sum(r["sent_twice"] for r in runs)
    return result


ROWS = [
    ("recovery_drain_ratio", "recovery drain ratio (target ≤ 1.5)"),
    ("recovery_seconds", "seconds from recovery to the last delivery"),
    ("first_delivery_after_recovery_seconds", "seconds from recovery to the first delivery"),
    ("outage_requests_per_job", "SQS + Lambda requests per job during the outage (target ≤ 3)"),
    ("outage_sqs_requests", "SQS requests during the outage"),
    ("outage_invocations", "Lambda invocations during the outage"),
    ("outage_dynamodb_requests", "DynamoDB requests during the outage"),
    ("outage_clay_requests", "Clay requests during the outage"),
    ("delivered", "delivered"),
    ("dead_lettered", "dead-lettered"),
    ("still_queued", "still queued at the cap"),
    ("lost", "lost"),
    ("sent_twice", "sent twice"),
    ("clay_429", "Clay 429s"),
    ("busiest_second", "busiest second at Clay after recovery"),
    ("invocations", "Lambda invocations in all"),
    ("sqs_requests", "SQS requests in all (receiver's included)"),
    ("real_seconds", "real seconds simulated in"),
]


def table(runs: list[dict]) -> str:
    def shown(value: Any) -> str:
        if value is None:
            return "n/a"
        return (f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}") if isinstance(value, float) else f"{value:,}"

    heads = [f"{r['outage_seconds']:.0f} s outage, {r['mode']}" for r in runs]
    lines = ["| figure | " + " | ".join(heads) + " |", "|---" * (len(runs) + 1) + "|"]
    lines += [f"| {label} | " + " | ".join(shown(r[key]) for r in runs) + " |" for key, label in ROWS]
    return "\n".join(lines)


def targets(result: dict[str, Any]) -> list[tuple[str, bool]]:
    ratio, requests_per_job = result.get("recovery_drain_ratio"), result.get("outage_requests_per_job")
    mode = "parking on" if result["parking_available"] else "as built"
    if "recovery_drain_ratio" not in result:
        mode += ": not run"
    return [
        (
            f"recovery_drain_ratio <= {TARGET_DRAIN_RATIO} for every outage ({mode})",
            ratio is not None and ratio <= TARGET_DRAIN_RATIO,
        ),
        (
            f"outage_requests_per_job <= {TARGET_REQUESTS_PER_JOB:g} for the longest outage ({mode})",
            requests_per_job is not None and requests_per_job <= TARGET_REQUESTS_PER_JOB,
        ),
        ("lost = 0, sent twice = 0", result["lost"] == 0 and result["sent_twice"] == 0),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.recovery", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backlog", type=int, default=300, help="jobs queued during the outage (default 300)")
    parser.add_argument(
        "--outages", type=float, nargs="+", default=[60, 600], help="outage lengths in seconds (default 60 600)"
    )
    parser.add_argument("--cap-hours", type=float, default=6, help="virtual time simulated at most (default 6)")
    parser.add_argument(
        "--parking", choices=["both", "on", "off"], default="both", help="delivery.park_when_down (default both)"
    )
    parser.add_argument("--seed", type=int, default=19, help="seed of the backoff's jitter (default 19)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the JSON result to PATH")
    args = parser.parse_args(argv)
    if args.backlog < 1 or any(outage <= 0 for outage in args.outages):
        parser.error("--backlog and --outages must be positive")
    runs = []
    for outage in args.outages:
        for parking in modes(args.parking):
            random.seed(args.seed)
            run = measure(outage, args.backlog, parking, args.cap_hours * 3600, not args.quiet)
            print(
                f"outage {outage:.0f} s, {run['mode']}: delivered {run['delivered']}/{run['backlog']}, "
                f"recovery drain ratio {run['recovery_drain_ratio']}, {run['outage_requests_per_job']} requests "
                f"per job during the outage ({run['real_seconds']} s)",
                file=sys.stderr,
                flush=True,
            )
            runs.append(run)
    result = {"backlog": args.backlog, "rate_per_second": args.backlog / runs[0]["ideal_seconds"], **summary(runs)}
    result["runs"] = runs
    print(f"Recovery after an outage: {args.backlog} Clay rows, Clay at {result['rate_per_second']:g} rows/s\n")
    print(table(runs))
    print("\nTargets")
    print("\n".join(f"  {'met    ' if met else 'MISSED '} {name}" for name, met in targets(result)))
    line = json.dumps(result, default=str)
    print(line)
    if args.json:
        args.json.write_text(line + "\n")
    return 1 if result["lost"] or result["sent_twice"] else 0


if __name__ == "__main__":
    sys.exit(main())
