"""clay-relay's local stack.

python -m local_stack run                  serve 127.0.0.1:3000 until Ctrl-C (make run)
python -m local_stack invoke FUNCTION EVENT in-process `sam local invoke` (make invoke)
python -m local_stack replay EVENT         send an API Gateway event file to the running stack
"""

from __future__ import annotations

import argparse
import base64
import faulthandler
import json
import os
import signal
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

from local_stack.aws import LOCAL_ENV
from local_stack.real_services import (
    ALLOW_VARIABLE,
    RealServiceRefused,
    asked_for,
    outbound_settings,
    refuse_real_services,
)
from local_stack.stack import STATE_FILE, LocalStack, Options, StartupError, first_token


def _running_stack(state_file: Path = STATE_FILE, *, allow_real_services: bool = False) -> dict | None:
    """The running stack's state, or None when none runs. RealServiceRefused when the state file
    points beyond this machine (and nobody asked for that): its gateway before the health check
    calls it, the rest (AWS's endpoint, Loops' API, …) before anything uses them."""
    allowed = asked_for(allow_real_services)
    try:
        state = json.loads(state_file.read_text())
        environment = dict(state.get("environment") or {})
        gateway = str(state["gateway"])
    except (OSError, ValueError, KeyError, AttributeError, TypeError):
        return None
    where = f"the state file {state_file}"
    refuse_real_services({"gateway": gateway}, where=where, allowed=allowed)
    try:
        urllib.request.urlopen(f"{gateway}/_local/health", timeout=2).read()  # noqa: S310 - checked: this machine  # nosec B310
    except (OSError, ValueError):
        return None  # none runs (a stale file): a throwaway stack is used instead
    endpoints = {name: str(state[name]) for name in ("sandboxes", "moto") if state.get(name)}
    endpoints["AWS_ENDPOINT_URL"] = environment.get("AWS_ENDPOINT_URL") or "https://amazonaws.com"  # unset: AWS
    refuse_real_services({**endpoints, **outbound_settings(environment)}, where=where, allowed=allowed)
    return state


def _round_trip_example(sandboxes: str, api_secret: str, delay: float) -> str:
    try:
        directus_api = json.loads(api_secret or "{}")
    except ValueError:
        directus_api = {}
    api_token = directus_api.get("token", "") if isinstance(directus_api, dict) else ""
    return f"""
Round trip (--clay-enrich): the sandbox Clay calls /clay/enriched back {delay:g} s after each row.
  curl -s -X POST {sandboxes}/directus/items/leads -H 'Authorization: Bearer {api_token}' \\
       -d '{{"email": "ada@example.com", "first_name": "Ada"}}'     (ICP 91: Loops outreach + Slack)
"""


def _curl_examples(
    gateway: str, sandboxes: str, secrets: dict[str, str], clay_enrich_delay: float | None = None
) -> str:
    token = first_token(secrets.get("directus-tokens"), "directus-tokens")
    callback_token = first_token(secrets.get("clay-callback-tokens"), "clay-callback-tokens")
    round_trip = ""
    if clay_enrich_delay is not None:
        round_trip = _round_trip_example(sandboxes, secrets.get("directus-api", ""), clay_enrich_delay)
    create = json.dumps(
        {
            "event": "leads.items.create",
            "collection": "leads",
            "key": 1,
            "payload": {"email": "ada@example.com", "first_name": "Ada", "company": "Analytical Engines"},
        }
    )
    return f"""
clay-relay local stack is up.
  gateway    {gateway}   (routes from template.yaml, real handlers)
  deliveries {gateway}/_local/deliveries   (what the sandboxes received; DELETE clears)

Try it:
  curl -s -X POST {gateway}/directus/leads \\
       -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\
       -d '{create}'
  curl -s {gateway}/_local/deliveries
  curl -s -X POST {gateway}/clay/enriched \\
       -H 'Authorization: Bearer {callback_token}' -H 'Content-Type: application/json' \\
       -d '{{"email": "grace@example.com", "first_name": "Grace", "company_name": "Compiler Co", "icp_score": "92"}}'
  curl -s -X POST {gateway}/_local/loops/webhook -d '{{"contact": {{"email": "new@example.com", "firstName": "New"}}}}'
  python -m local_stack replay events/directus/update.json     (or: make replay EVENT=...)
  curl -s -X POST {gateway}/_local/faults -d '{{"destination": "clay", "status": 503, "times": 3}}'
  curl -s -X POST {gateway}/_local/faults -d '{{"destination": "worker", "mode": "crash", "times": 1}}'
{round_trip}
Ctrl-C stops everything.
"""


def run(args: argparse.Namespace) -> int:
    options = Options(
        host=args.host,
        port=args.port,
        sandbox_port=args.sandbox_port,
        moto_port=args.moto_port,
        workers=args.workers,
        config_path=args.config,
        clay_limit=args.clay_limit,
        clay_over_limit=args.clay_over_limit,
        clay_rate=args.clay_rate,
        clay_dedupe_column=args.clay_dedupe_column or None,
        clay_enrich=args.clay_enrich,
        clay_enrich_delay=args.clay_enrich_delay,
        enrichment_sla=args.enrichment_sla,
        schedule_every=args.schedule_every,
        reconcile_seconds=args.reconcile_seconds,
        queue_visibility_timeout=args.queue_visibility_timeout,
        log_level=args.log_level,
        environment=dict(pair.split("=", 1) for pair in args.env),
        secrets_file=args.secrets_file,
        state_file=args.state_file,
        allow_real_services=args.allow_real_services,
    )
    stack = LocalStack(options)
    try:
        urls = stack.start()
    except StartupError as error:
        print(f"cannot start the local stack: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"cannot start the local stack: {error} (is another one running? see {STATE_FILE})", file=sys.stderr)
        stack.stop()
        return 1
    except RealServiceRefused as error:
        print(f"cannot start the local stack: {error}", file=sys.stderr)
        stack.stop()
        return 2
    print(json.dumps({"ready": True, **urls.__dict__}), flush=True)
    stack.start_schedules()
    if not args.quiet:
        delay = args.clay_enrich_delay if args.clay_enrich else None
        print(_curl_examples(urls.gateway, urls.sandboxes, stack.provisioned.secrets, delay), flush=True)
        if stack.clay_limited:
            print(
                f"--clay-limit {args.clay_limit}: the relay counts {args.clay_limit} submissions per webhook URL for "
                f"the Clay target(s) {', '.join(stack.clay_limited)}, as the sandbox Clay does, so their pools "
                "rotate (make relay ARGS='--local clay list').",
                flush=True,
            )
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1 <pid>`: where every thread is
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    print("stopping the local stack…", flush=True)
    stack.stop()
    return 0


def invoke(args: argparse.Namespace) -> int:
    from local_stack.functions import LocalFunction
    from local_stack.template import Template, load_template

    event = read_event(args.event)
    state = _running_stack(args.state_file, allow_real_services=args.allow_real_services)
    stack = None
    # Like `sam local invoke --env-vars events/env.json`: the events' fixed webhook-timestamps pass
    # (unless LOOPS_WEBHOOK_TOLERANCE_SECONDS is set in your shell).
    tolerance = os.environ.get("LOOPS_WEBHOOK_TOLERANCE_SECONDS", "0")
    if state:
        os.environ.update(state["environment"])
        print(f"using the running local stack ({state['gateway']})", file=sys.stderr)
    else:
        print("no local stack running: using a throwaway one (start `make run` to see deliveries)", file=sys.stderr)
        stack = LocalStack(Options(port=0, sandbox_port=0, moto_port=0, allow_real_services=args.allow_real_services))
        stack.start_aws()
        stack.provision(stack.sandboxes.start("127.0.0.1", 0))
    os.environ["LOOPS_WEBHOOK_TOLERANCE_SECONDS"] = tolerance
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "1"  # one invocation's EMF lines would only clutter its answer
    functions = Template(load_template(), "clay-relay-local").functions()
    if args.function not in functions:
        print(f"no function {args.function!r} in template.yaml; choose from {', '.join(functions)}", file=sys.stderr)
        return 2
    try:
        result = LocalFunction(functions[args.function]).invoke(event)
    finally:
        if stack:
            stack.stop()
    print(json.dumps(result, indent=2))
    return 0


class EventFileError(ValueError):
    """The event file cannot be used for the command: a one-line message says why and what to do."""


def read_event(path: str) -> dict:
    try:
        event = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise EventFileError(f"no such event file: {path} (the ready-made ones are under events/)") from None
    except OSError as error:
        raise EventFileError(f"cannot read {path}: {error.strerror}") from None
    except ValueError as error:
        raise EventFileError(f"{path} is not JSON: {error}") from None
    if not isinstance(event, dict):
        raise EventFileError(f"{path} is not an event (a JSON object)")
    return event


def http_request_event(path: str) -> dict:
    """An API Gateway HTTP API event, the only kind `replay` sends to the gateway."""
    event = read_event(path)
    if "Records" in event:
        raise EventFileError(
            f"{path} is an SQS event for DeliveryWorkerFunction, not an HTTP request: "
            f"make invoke FUNCTION=DeliveryWorkerFunction EVENT={path}"
        )
    if not (event.get("requestContext", {}).get("http") or event.get("rawPath")):
        kind = "an EventBridge Scheduler event" if event.get("source") == "aws.scheduler" else "not an HTTP API event"
        raise EventFileError(f"{path} is {kind}, not an HTTP request: run it with make invoke FUNCTION=… EVENT={path}")
    return event


def replay(args: argparse.Namespace) -> int:
    event = http_request_event(args.event)
    base = args.url or (_running_stack(args.state_file, allow_real_services=args.allow_real_services) or {}).get(
        "gateway"
    )
    if not base:
        print("no local stack running: start it with `make run` (or pass --url)", file=sys.stderr)
        return 1
    http = event.get("requestContext", {}).get("http", {})
    path = event.get("rawPath", http.get("path", "/"))
    if event.get("rawQueryString"):
        path += "?" + event["rawQueryString"]
    body = event.get("body") or ""
    data = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    request = urllib.request.Request(  # noqa: S310 - local URL
        base.rstrip("/") + path,
        data=data or None,
        method=http.get("method", "POST"),
        headers={k: v for k, v in event.get("headers", {}).items() if k.lower() not in ("host", "content-length")},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - the local stack's URL  # nosec B310
            status, text = answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    print(f"HTTP {status}\n{text}")
    return 0 if status < 500 else 1


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds ≥ 0, got {text!r}")
    return value


def _positive_seconds(text: str) -> float:
    value = _seconds(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def _whole_seconds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of seconds ≥ 1, got {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local_stack", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("run", help="start the local stack in the foreground")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3000, help="gateway port (0: any free port)")
    p.add_argument("--sandbox-port", type=int, default=3001)
    p.add_argument("--moto-port", type=int, default=5001)
    p.add_argument("--workers", type=int, default=2, help="delivery worker instances polling the queue")
    p.add_argument("--config", type=Path, help="relay configuration (default layers/shared/relay.json)")
    p.add_argument("--clay-limit", type=int, default=50_000, help="sandbox Clay submissions per webhook URL")
    p.add_argument("--clay-over-limit", choices=["drop", "reject"], default="drop")
    p.add_argument("--clay-rate", type=float, default=10.0, help="sandbox Clay records/s per workspace")
    p.add_argument(
        "--clay-dedupe-column",
        default="relay_event_id",
        help="the sandbox Clay table's auto-dedupe column ('' turns auto-dedupe off)",
    )
    p.add_argument(
        "--clay-enrich",
        action="store_true",
        help="the sandbox Clay table calls the relay's /clay/enriched back for each row it keeps, like an "
        "HTTP API column, with a deterministic ICP score (docs/local-stack.md)",
    )
    p.add_argument(
        "--clay-enrich-delay",
        type=_seconds,
        default=3.0,
        metavar="SECONDS",
        help="how long after a row its enrichment call comes (default 3)",
    )
    p.add_argument(
        "--enrichment-sla",
        type=_whole_seconds,
        metavar="SECONDS",
        help="sets ENRICHMENT_SLA_SECONDS on every function (overrides relay.json's enrichment_sla_minutes) "
        "and runs the scheduled functions every max(1, SECONDS/2) seconds",
    )
    p.add_argument(
        "--schedule-every",
        type=_positive_seconds,
        metavar="SECONDS",
        help="run every scheduled function of template.yaml this often instead of on its rate",
    )
    p.add_argument(
        "--reconcile-seconds",
        type=_whole_seconds,
        metavar="SECONDS",
        help="run the Directus reconciliation sweep every SECONDS (every source with reconcile_minutes, looking at "
        "changes at least SECONDS old) instead of every 5 minutes for each source's reconcile_minutes",
    )
    p.add_argument(
        "--queue-visibility-timeout",
        type=int,
        metavar="SECONDS",
        help="the queues' visibility timeout (default: the template's 360): how soon a killed worker's batch returns",
    )
    p.add_argument("--log-level", default="INFO")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="extra function environment")
    p.add_argument("--secrets-file", type=Path, default=LOCAL_ENV, help="fake secrets (default local.env)")
    p.add_argument("--state-file", type=Path, default=STATE_FILE, help="where invoke/replay find this stack")
    p.add_argument("--quiet", action="store_true", help="do not print the examples")
    p.add_argument(
        "--allow-real-services",
        action="store_true",
        help="let settings, secrets or the state file point beyond this machine (e.g. the real Loops); "
        f"refused otherwise (also: {ALLOW_VARIABLE}=1)",
    )
    p.set_defaults(func=run)
    p = commands.add_parser("invoke", help="invoke a function in-process with an event file")
    p.add_argument("function")
    p.add_argument("event")
    p.add_argument("--state-file", type=Path, default=STATE_FILE, help="the running stack to use")
    p.add_argument(
        "--allow-real-services",
        action="store_true",
        help="let settings, secrets or the state file point beyond this machine (e.g. the real Loops); "
        f"refused otherwise (also: {ALLOW_VARIABLE}=1)",
    )
    p.set_defaults(func=invoke)
    p = commands.add_parser("replay", help="send an API Gateway event file to the running stack")
    p.add_argument("event")
    p.add_argument("--url", help="gateway URL (default: the running stack's)")
    p.add_argument("--state-file", type=Path, default=STATE_FILE, help="the running stack to use")
    p.add_argument(
        "--allow-real-services",
        action="store_true",
        help="let settings, secrets or the state file point beyond this machine (e.g. the real Loops); "
        f"refused otherwise (also: {ALLOW_VARIABLE}=1)",
    )
    p.set_defaults(func=replay)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except RealServiceRefused as error:
        print(f"python -m local_stack {args.command}: {error}", file=sys.stderr)
        return 2
    except EventFileError as error:
        print(f"python -m local_stack {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
