"""What one Directus sweep costs: the Directus requests and the AWS requests (DynamoDB, SQS) a sweep of
a source makes for 0, 100 and 10,000 items changed since its last sweep, counted in-process against
moto (the table and queue provisioned from template.yaml) and the sandbox Directus.

    .venv/bin/python -m bench.reconcile [--sizes 0 100 10000]

Per size, three cases, each a run of the scheduled function's work for the shipped `leads` source
(the checkpoint read, its lease, the sweep, the checkpoint saved):
    delivered   items created, and the Flow delivered each (their claims are in the table): the usual sweep
    echoed      the same items, then updated by the relay's own write-back: each item's create and
                update claims are read, and nothing is sent
    lost        items created while the Flow failed (none delivered): every one is queued as a Clay row
Counts do not depend on timing: the same on every machine. What the worker then does with a recovered
row is a relayed event like any other (bench/aws_calls.py).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from contextlib import contextmanager
from datetime import UTC, datetime

from moto import mock_aws

from clay_relay import item_state
from clay_relay.observability import logger
from clay_relay.reconcile import checkpoint as checkpoints
from clay_relay.reconcile import sweep_source
from clay_relay.runtime import get_runtime
from local_stack.aws import FAKE_CREDENTIALS, provision
from local_stack.sandboxes import Sandboxes
from local_stack.template import Template, load_template
from tests.conftest import fresh_runtime
from tests.recorders import RecordingClient

STACK = "clay-relay-bench"
TOKEN = "bench-directus-api-token"  # noqa: S105 - the sandbox's, no secret
ORIGIN, COLLECTION = "directus/leads", "leads"


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@contextmanager
def relay(sandboxes: Sandboxes, base: str):
    """A fresh stack in moto whose Directus API secret points at the sandbox."""
    saved = dict(os.environ)
    os.environ.update(FAKE_CREDENTIALS)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    try:
        with mock_aws():
            secrets = {
                "DIRECTUS_API": json.dumps({"url": f"{base}/directus", "token": TOKEN}),
                "CLAY_WEBHOOKS_LEADS": json.dumps([{"url": f"{base}/clay/webhooks/bench"}]),
            }
            provisioned = provision(Template(load_template(), STACK), secrets)
            os.environ.update(provisioned.environment)
            os.environ.update(
                RECONCILE_SETTLE_SECONDS="0",
                ALLOW_LOCAL_DESTINATIONS="true",
                POWERTOOLS_METRICS_DISABLED="1",
                POWERTOOLS_TRACE_DISABLED="1",
                POWERTOOLS_LOG_LEVEL="WARNING",
            )
            fresh_runtime()
            yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        fresh_runtime()


def sweep() -> dict:
    runtime = get_runtime()
    found = checkpoints.load(runtime.table, ["leads"])["leads"]
    return sweep_source(runtime, "leads", runtime.config.directus_sources["leads"], found, lambda: 600.0)


def store(sandboxes: Sandboxes, size: int, *, updated: bool) -> list[dict]:
    """`size` items created just now (and updated by the write-back), as the sandbox's API would keep them."""
    now = time.time()
    items = []
    for key in range(1, size + 1):
        item = {"id": key, "email": f"lead{key}@example.com", "first_name": "Ada", "date_created": iso(now)}
        item["date_updated"] = iso(now + 0.001) if updated else None
        if updated:
            item.update(icp_score=91, industry="Software")
        sandboxes.directus.items[COLLECTION, str(key)] = item
        items.append(item)
    sandboxes.directus._next_ids[COLLECTION] = size + 1  # the sandbox's own counter
    return items


def claim_creates(items: list[dict]) -> None:
    """The claims the worker wrote when the Flow's creates were delivered (with their column hashes)."""
    expires = {"N": str(int(time.time()) + 86_400)}
    puts = []
    for item in items:
        columns = {"email": item["email"], "first_name": item["first_name"]}
        hashes = item_state.column_hashes(columns)
        puts.append(
            {
                "pk": {"S": f"event#{item_state.create_event_id(ORIGIN, COLLECTION, item['id'])}"},
                "job_id": {"S": "bench"},
                "dedupe_until": expires,
                "expires_at": expires,
                item_state.CLAIM_ATTRIBUTE: {"M": {c: {"S": h} for c, h in hashes.items()}},
            }
        )
    get_runtime().table.write_batch(puts)


def measure(size: int, case: str) -> dict:
    sandboxes = Sandboxes()
    base = sandboxes.start("127.0.0.1", 0)
    sandboxes.directus.token = TOKEN
    try:
        with relay(sandboxes, base):
            sweep()  # the first sweep starts watching
            time.sleep(0.002)  # the items' date_created must come after the window's start (ms precision)
            items = store(sandboxes, size, updated=case == "echoed")
            if case != "lost":
                claim_creates(items)
            calls: dict[str, list] = {"dynamodb": [], "sqs": []}
            clients = get_runtime().aws
            for service in calls:
                clients.client(service)
                clients._clients[service] = RecordingClient(clients._clients[service], calls[service])
            sandboxes.deliveries.clear()
            started = time.perf_counter()
            result = sweep()
            seconds = time.perf_counter() - started
            directus = Counter(
                d["path"].split("?")[0] for d in sandboxes.deliveries.all() if d["destination"] == "directus"
            )
    finally:
        sandboxes.stop()
    dynamodb = Counter(name for name, _ in calls["dynamodb"])
    keys_read = sum(
        len(entry["Keys"])
        for name, kwargs in calls["dynamodb"]
        if name == "batch_get_item"
        for entry in kwargs["RequestItems"].values()
    )
    return {
        "changed_items": size,
        "case": case,
        "directus_requests": sum(directus.values()),
        "dynamodb_requests": sum(dynamodb.values()),
        "dynamodb": dict(dynamodb),
        "dynamodb_items_read": keys_read,
        "sqs_requests": len(calls["sqs"]),
        "rows_queued": result.get("created", 0) + result.get("updated", 0) if isinstance(result, dict) else 0,
        "seconds_here": round(seconds, 2),
        "result": result,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reconcile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[0, 100, 10_000])
    args = parser.parse_args(argv)
    logger.setLevel("WARNING")  # a line per row queued: not what is measured
    rows = [measure(size, case) for size in args.sizes for case in ("delivered", "echoed", "lost")]
    print("| changed items | case | Directus requests | DynamoDB requests (items read) | SQS requests | rows queued |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        calls = ", ".join(f"{n} {name}" for name, n in sorted(row["dynamodb"].items()))
        print(
            f"| {row['changed_items']:,} | {row['case']} | {row['directus_requests']} | "
            f"{row['dynamodb_requests']} ({calls}; {row['dynamodb_items_read']:,} read) | {row['sqs_requests']} | "
            f"{row['rows_queued']:,} |"
        )
    print(json.dumps(rows, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
