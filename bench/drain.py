"""Drain-throughput benchmark: how fast the delivery worker drains a burst of Loops events, against
Loops' rate limit of 10 requests/s.

It starts the local stack the way `make run` does (a `python -m local_stack run` subprocess on free
ports, with its configuration, fake secrets, state file and log in a temporary directory), sends
`--events` distinct events to `POST /loops/events` (Clay → Loops) from a small thread pool, then
polls the sandboxes' delivery log until every accepted event has a 2xx answer from the sandbox Loops
(or `--timeout` passes), and reports:

    drain_rate_ratio    events delivered per second between the first and the last delivery, over
                        the limit (10/s)                                          target >= 0.9
    drain_429_fraction  Loops requests answered 429 (too many requests), over all Loops requests
                                                                                  target <= 1 %
    lost                accepted events neither delivered nor in the dead-letter queue  target 0
    busiest_second      the most Loops requests within any 1 s window (the sandbox allows 10)

The report ends with one JSON line (also written to `--json PATH`). The exit status is 1 when the
stack did not start or events were lost, else 0 (missed targets are reported, not failed).

    make bench-drain                                  # 1000 events (about 2 minutes)
    make bench-drain ARGS="--events 200 --json drain.json"
    .venv/bin/python -m bench.drain --help
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import requests

from local_stack.process import StackFailed, StackProcess, stack_process, tail

LIMIT_PER_SECOND = 10  # the sandbox Loops' limit (local_stack/sandboxes/loops.py), like Loops' own
TARGET_RATE_RATIO = 0.9
TARGET_429_FRACTION = 0.01
DEAD_LETTER_QUEUE = "clay-relay-local-dead-letters"
POLL_SECONDS = 2.0
PROGRESS_SECONDS = 5.0

CALLBACK_TOKEN = "bench-clay-callback-token"  # noqa: S105 - a fake secret of the throwaway stack
# Only /loops/events is needed; retries and holds take seconds instead of minutes (as in the e2e tests).
RELAY_CONFIG = {
    "loops_forwarding": {},
    "delivery": {"min_backoff_seconds": 1, "max_backoff_seconds": 2, "hold_seconds": 2},
}
LOCAL_ENV = f"""
CLAY_CALLBACK_TOKENS={CALLBACK_TOKEN}
LOOPS_API_KEY=bench-loops-key
"""


def send_burst(gateway: str, events: int, threads: int) -> tuple[Counter[int], set[str]]:
    """POSTs `events` distinct Loops events; returns the answers' status counts and the accepted emails."""
    local = threading.local()

    def send(index: int) -> tuple[int, str]:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        email = f"bench-{index}@example.com"
        try:
            answer = local.session.post(
                f"{gateway}/loops/events",
                json={"eventName": "bench_event", "email": email},
                headers={"Authorization": f"Bearer {CALLBACK_TOKEN}"},
                timeout=30,
            )
        except requests.RequestException:
            return 0, email  # 0: no answer
        return answer.status_code, email

    with ThreadPoolExecutor(max_workers=threads) as pool:
        answers = list(pool.map(send, range(events)))
    return Counter(status for status, _ in answers), {email for status, email in answers if status == 202}


def loops_requests(gateway: str) -> list[dict]:
    """Every request the sandbox Loops received, in order."""
    entries = requests.get(f"{gateway}/_local/deliveries", timeout=30).json()
    return [entry for entry in entries if entry.get("destination") == "loops"]


def delivered_at(entries: list[dict]) -> dict[str, datetime]:
    """Email → time of its first 2xx answer from the sandbox Loops."""
    delivered: dict[str, datetime] = {}
    for entry in entries:
        body = entry.get("body")
        email = body.get("email") if isinstance(body, dict) else None
        if 200 <= entry.get("status", 0) < 300 and isinstance(email, str) and email not in delivered:
            delivered[email] = _at(entry)
    return delivered


def _at(entry: dict) -> datetime:
    return datetime.fromisoformat(entry["at"])


def dead_lettered(stack: StackProcess) -> int:
    sqs = stack.aws("sqs")
    url = sqs.get_queue_url(QueueName=DEAD_LETTER_QUEUE)["QueueUrl"]
    names = [f"ApproximateNumberOfMessages{state}" for state in ("", "NotVisible", "Delayed")]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes.get(name, 0)) for name in names)


def wait_for_drain(stack: StackProcess, accepted: set[str], started: float, timeout: float) -> tuple[list[dict], int]:
    """Polls until every accepted event is delivered or dead-lettered, or `timeout` s after `started`
    (monotonic); prints progress to stderr. Returns the Loops requests and the dead-letter count."""
    last_count, last_time = 0, started
    while True:
        entries = loops_requests(stack.gateway)
        delivered = len(accepted & delivered_at(entries).keys())
        dead = dead_lettered(stack)
        now = time.monotonic()
        if delivered + dead >= len(accepted) or now - started >= timeout:
            return entries, dead
        if now - last_time >= PROGRESS_SECONDS:
            rate = (delivered - last_count) / (now - last_time)
            rejected = sum(1 for entry in entries if entry.get("status") == 429)
            print(
                f"  [{now - started:6.1f} s] delivered {delivered}/{len(accepted)}  {rate:5.1f}/s  "
                f"Loops requests {len(entries)} (429: {rejected})  dead-lettered {dead}",
                file=sys.stderr,
                flush=True,
            )
            last_count, last_time = delivered, now
        time.sleep(POLL_SECONDS)


def busiest_second(times: list[datetime]) -> int:
    """The most of `times` falling within any 1 s window."""
    ordered = sorted(times)
    best, start = 0, 0
    for end, moment in enumerate(ordered):
        while (moment - ordered[start]).total_seconds() >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def measure(
    events: int, accepted: set[str], entries: list[dict], dead: int, first_sent: datetime
) -> dict[str, int | float | None]:
    delivered = {email: at for email, at in delivered_at(entries).items() if email in accepted}
    first, last = (min(delivered.values()), max(delivered.values())) if delivered else (None, None)
    drain = (last - first).total_seconds() if first and last else 0.0
    rate = (len(delivered) - 1) / drain if drain > 0 else None
    rejected = sum(1 for entry in entries if entry.get("status") == 429)
    return {
        "events": events,
        "accepted": len(accepted),
        "delivered": len(delivered),
        "dead_lettered": dead,
        "lost": len(accepted) - len(delivered) - dead,
        "drain_seconds": round(drain, 3),
        "wall_seconds": round((last - first_sent).total_seconds(), 3) if last else None,
        "achieved_rate": round(rate, 3) if rate is not None else None,
        "limit": LIMIT_PER_SECOND,
        "drain_rate_ratio": round(rate / LIMIT_PER_SECOND, 4) if rate is not None else None,
        "loops_attempts": len(entries),
        "loops_429": rejected,
        "drain_429_fraction": round(rejected / len(entries), 4) if entries else None,
        "busiest_second": busiest_second([_at(entry) for entry in entries]),
    }


def targets(result: dict[str, int | float | None]) -> list[tuple[str, bool]]:
    ratio, fraction = result["drain_rate_ratio"], result["drain_429_fraction"]
    return [
        (f"drain_rate_ratio >= {TARGET_RATE_RATIO}", ratio is not None and ratio >= TARGET_RATE_RATIO),
        (f"drain_429_fraction <= {TARGET_429_FRACTION:.0%}", fraction is not None and fraction <= TARGET_429_FRACTION),
        ("lost = 0", result["lost"] == 0),
    ]


def report(result: dict[str, int | float | None], statuses: Counter[int], burst_seconds: float) -> str:
    def show(value: int | float | None, unit: str = "") -> str:
        return "n/a" if value is None else f"{value}{unit}"

    answers = ", ".join(f"{status or 'no answer'}: {n}" for status, n in sorted(statuses.items()))
    fraction = result["drain_429_fraction"]
    lines = [
        "Loops drain benchmark",
        f"  events sent          {result['events']} in {burst_seconds:.1f} s (answers {answers})",
        f"  accepted (202)       {result['accepted']}",
        f"  delivered (2xx)      {result['delivered']}",
        f"  dead-lettered        {result['dead_lettered']}",
        f"  lost                 {result['lost']}",
        f"  drain                {result['drain_seconds']} s (first to last delivery)",
        f"  wall                 {show(result['wall_seconds'], ' s')} (first request sent to last delivery)",
        f"  achieved rate        {show(result['achieved_rate'], '/s')} (limit {result['limit']}/s, "
        f"ratio {show(result['drain_rate_ratio'])})",
        f"  Loops requests       {result['loops_attempts']}, of which 429: {result['loops_429']} "
        f"({'n/a' if fraction is None else f'{fraction:.2%}'})",
        f"  busiest second       {result['busiest_second']} Loops requests",
        "Targets",
        *(f"  {'met    ' if met else 'MISSED '} {name}" for name, met in targets(result)),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.drain", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1000, help="events in the burst (default 1000)")
    parser.add_argument("--threads", type=int, default=8, help="threads sending the burst (default 8)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for the drain (default 300)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the JSON result to PATH")
    args = parser.parse_args(argv)
    if args.events < 1 or args.threads < 1:
        parser.error("--events and --threads must be positive")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwinds like Ctrl-C: the stack is stopped
    try:
        with (
            tempfile.TemporaryDirectory(prefix="bench-drain-") as folder,
            stack_process(Path(folder), RELAY_CONFIG, LOCAL_ENV, "--workers", "2") as stack,
        ):
            print(f"local stack up at {stack.gateway}; sending {args.events} events", file=sys.stderr, flush=True)
            first_sent, started = datetime.now(UTC), time.monotonic()
            statuses, accepted = send_burst(stack.gateway, args.events, args.threads)
            burst_seconds = time.monotonic() - started
            print(
                f"  burst sent in {burst_seconds:.1f} s: {len(accepted)} accepted; waiting for the drain",
                file=sys.stderr,
                flush=True,
            )
            entries, dead = wait_for_drain(stack, accepted, started, args.timeout)
            result = measure(args.events, accepted, entries, dead, first_sent)
            if result["lost"]:
                print(f"events were lost; the stack's log ends:\n{tail(stack.log_file, 20)}", file=sys.stderr)
    except StackFailed as error:
        print(error, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; the local stack was stopped", file=sys.stderr)
        return 130

    print(report(result, statuses, burst_seconds))
    line = json.dumps(result)
    print(line)
    if args.json:
        args.json.write_text(line + "\n")
    return 1 if result["lost"] else 0


if __name__ == "__main__":
    sys.exit(main())
