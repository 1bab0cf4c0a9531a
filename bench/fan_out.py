"""What one request may cause (clay_relay.fan_out), measured at the Directus receiver: the largest
Directus event the bounds accept (1,000 items whose rows take just under 10 MB together), a
typical bulk update (1,000 items, one short field), and the requests the bounds refuse (1,000
items of 99,000 characters: 99.5 MB of rows; 10,000 items), each through DirectusTriggerFunction
in-process against moto (provisioned from template.yaml).

For each: the answer's status and size, the SQS requests the receiver made and the bytes it queued
(message bodies), and the receiver's time per request (median of --runs; it includes moto's own
handling of those SQS requests, which in AWS is a network round trip of ~8 ms each instead).
Timing figures are printed and recorded, never asserted.

    .venv/bin/python -m bench.fan_out [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter

from bench.aws_calls import STACK, _stack
from local_stack.functions import LocalFunction
from local_stack.gateway import api_gateway_event
from local_stack.template import Template, load_template
from tests.conftest import fresh_runtime

ITEMS = 1_000
LARGEST_FIELD = 9_800  # characters: 1,000 rows of ~9.97 KB, just under the 10 MB of rows one request may cause
CASES = {
    # name: (items, characters of the one changed field)
    "largest accepted (1,000 items, rows just under 10 MB)": (ITEMS, LARGEST_FIELD),
    "typical bulk update (1,000 items, one short field)": (ITEMS, 20),
    "refused: 1,000 items of 99,000 characters (99.5 MB of rows)": (ITEMS, 99_000),
    "refused: 10,000 items": (10_000, 20),
}


def _request(items: int, characters: int, run: int) -> bytes:
    return json.dumps(
        {
            "event": "leads.items.update",
            "collection": "leads",
            "payload": {"job_title": f"{run:04}" + "x" * max(0, characters - 4)},
            "keys": list(range(1, items + 1)),
        }
    ).encode()


def _empty(sqs, queue_url: str) -> None:
    """The queue emptied (moto's SQS slows down with every message a queue holds; PurgeQueue may
    run once a minute)."""
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)


def measure(runs: int = 5, progress=print) -> dict:
    from clay_relay.observability import logger
    from clay_relay.runtime import get_runtime  # after the environment is set

    results: dict = {}
    with _stack() as (refs, _sandboxes, secrets):
        fresh_runtime()
        logger.setLevel("ERROR")  # a log line per request is not what is measured
        sent: Counter = Counter()

        def count_sends(params, model, **_) -> None:
            if model.name == "SendMessageBatch":
                sent["requests"] += 1
                sent["bytes"] += sum(len(entry["MessageBody"].encode()) for entry in params["Entries"])

        session = get_runtime().aws.session
        session.register("before-parameter-build.sqs", count_sends)
        sqs = get_runtime().aws.client("sqs")
        functions = Template(load_template(), STACK).functions()
        receiver = LocalFunction(functions["DirectusTriggerFunction"])
        route = next(r for r in functions["DirectusTriggerFunction"].routes if r.match("POST", "/directus/leads"))
        headers = {
            "authorization": f"Bearer {secrets['directus-tokens'].split(',')[0]}",
            "content-type": "application/json",
        }
        receiver.invoke(  # a warm instance: the cold start is measured elsewhere (bench/handlers.py)
            api_gateway_event(
                route, "POST", "/directus/leads", headers, _request(1, 20, 9999), {"source": "leads"}, "127.0.0.1"
            )
        )
        for name, (items, characters) in CASES.items():
            progress(f"fan-out: {name}")
            walls, cpus = [], []
            for run in range(runs):
                body = _request(items, characters, run)
                event = api_gateway_event(route, "POST", "/directus/leads", headers, body, {"source": "leads"}, "x")
                sent.clear()
                wall, cpu = time.perf_counter(), time.process_time()
                answer = receiver.invoke(event)
                walls.append((time.perf_counter() - wall) * 1000)
                cpus.append((time.process_time() - cpu) * 1000)
                _empty(sqs, refs["DeliveryQueue"])
            message = json.loads(answer["body"]).get("message") if answer["statusCode"] != 202 else None
            results[name] = {
                "items": items,
                "request_bytes": len(body),
                "status": answer["statusCode"],
                "answer_bytes": len(answer["body"].encode()),
                "sqs_requests": sent["requests"],
                "queued_bytes": sent["bytes"],
                "receiver_ms": statistics.median(walls),
                "receiver_cpu_ms": statistics.median(cpus),
                **({"message": message} if message else {}),
            }
            progress(f"  {json.dumps(results[name])}")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.fan_out", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="requests per case (default 5)")
    print(json.dumps(measure(parser.parse_args().runs), indent=2))
