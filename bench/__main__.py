"""`make bench`: every performance figure of clay-relay in one run on this machine, written to
bench/results.json and bench/results.md (and printed as it goes).

    cold start      bench/handlers.py   each HTTP function and the worker vs a raw-boto3 baseline, fresh
                                        processes, in each tracing mode
    warm overhead   bench/handlers.py   CPU per request vs the same baseline, AWS answered from a recording
    AWS calls/cost  bench/aws_calls.py  every flow end to end against moto; $ per million relayed events
    fan-out         bench/fan_out.py    what the largest request the bounds accept costs the receiver
    drain           bench/drain.py      a burst of Loops events against Loops' 10/s limit
    recovery        bench/recovery.py   a backlog queued during a Clay outage: how fast it drains after, what the
                                        outage cost; parking off and on (the real worker, on a virtual clock)
    layer size      layers/shared/Makefile for Lambda's arm64, zipped and unzipped

    .venv/bin/python -m bench [--cold-runs 9] [--warm-iterations 1000] [--flow-events 100] [--drain-events 500]
                              [--fan-out-runs 5] [--recovery-backlog 300]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from bench import aws_calls, fan_out, handlers

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench"
TARGETS = {  # key: (limit, "max" | "min")
    "cold_start_ratio": (1.25, "max"),
    "warm_overhead_ratio": (1.5, "max"),
    "dynamodb_writes_per_event": (1.2, "max"),
    "round_trip_close_writes_per_lead": (1.0, "max"),
    "sqs_requests_per_event": (1.3, "max"),
    "cost_per_million_usd": (2.50, "max"),
    "drain_rate_ratio": (0.9, "min"),
    "drain_429_fraction": (0.01, "max"),
    "recovery_drain_ratio": (1.5, "max"),
    "outage_requests_per_job": (3.0, "max"),
}
TEMPLATE_MEMORY_MB = 256
# Lambda duration assumptions for the cost (the benchmark cannot time AWS or the destinations):
AWS_CALL_MS = 8  # one DynamoDB/SQS request from Lambda, in-region
DESTINATION_MS = 150  # one request to Clay/Loops/Slack/Directus, answered


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


XRAY_ONLY = ("aws_xray_sdk", "wrapt")  # what only mode xray needs in the layer (wrapt: the SDK's)


def zipped(files: list[Path], root: Path, archive: Path) -> dict[str, int]:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipping:
        for path in files:
            zipping.write(path, path.relative_to(root))
    return {"unzipped_bytes": sum(p.stat().st_size for p in files), "zip_bytes": archive.stat().st_size}


def layer_size(python: str) -> dict:
    """The layer as `sam build` makes it for Lambda (arm64), unzipped and zipped; and per tracing
    option, the layer that option needs: without the X-Ray SDK (lambda, off), as built (xray), and
    without the SDK plus the OpenTelemetry packages (otel, measured only)."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        handlers.build_layer(root / "layer", python)
        handlers.install_otel(root / "otel" / "python", python)
        files = [p for p in (root / "layer").rglob("*") if p.is_file()]
        names = {p.relative_to(root / "layer").parts[1] for p in files if len(p.relative_to(root / "layer").parts) > 1}
        without_sdk = [p for p in files if not p.relative_to(root / "layer" / "python").parts[0].startswith(XRAY_ONLY)]
        otel = [p for p in (root / "otel").rglob("*") if p.is_file()]
        built = zipped(files, root / "layer", root / "layer.zip")
        options = {
            "xray": built,
            "lambda": zipped(without_sdk, root / "layer", root / "lambda.zip"),
            "otel": {
                key: value + extra
                for (key, value), extra in zip(
                    zipped(without_sdk, root / "layer", root / "lambda.zip").items(),
                    zipped(otel, root / "otel", root / "otel.zip").values(),
                    strict=True,
                )
            },
        }
        return {
            "layer_unzipped_bytes": built["unzipped_bytes"],
            "layer_zip_bytes": built["zip_bytes"],
            "layer_bundles_boto3": int(any(n.startswith(("boto3", "botocore")) for n in names)),
            "by_mode": options,
        }


def drain(events: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "drain.json"
        subprocess.run(
            [sys.executable, "-m", "bench.drain", "--events", str(events), "--json", str(out)], check=True, cwd=ROOT
        )
        return json.loads(out.read_text())


def recovery(backlog: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "recovery.json"
        subprocess.run(
            [sys.executable, "-m", "bench.recovery", "--backlog", str(backlog), "--json", str(out)],
            check=True,
            cwd=ROOT,
        )
        return json.loads(out.read_text())


def flows_and_cost(events: int, receiver_ms: float, flows_counted: list | None = None) -> dict:
    flows = {}
    for flow in aws_calls.FLOWS if flows_counted is None else flows_counted:
        progress(f"counting AWS requests: {flow.name} ({events} requests)")
        counted = aws_calls.count_flow(flow, events)
        worker_ms = DESTINATION_MS + AWS_CALL_MS * counted["dynamodb_writes_per_event"]
        receiver_wall_ms = receiver_ms + AWS_CALL_MS * 2  # a duplicate check and a send
        counted["cost_per_million_usd"] = {
            f"{memory}mb": aws_calls.cost_per_million(
                counted, receiver_ms=receiver_wall_ms, worker_ms_per_event=worker_ms, memory_mb=memory
            )
            for memory in (TEMPLATE_MEMORY_MB, 128)
        }
        flows[flow.name] = counted
    return flows


def summary(results: dict) -> dict:
    flows = results["flows"].values()
    return {
        "cold_start_ratio": results["handlers"]["cold_start_ratio"],
        "warm_overhead_ratio": results["handlers"]["warm_overhead_ratio"],
        "dynamodb_writes_per_event": max(f["dynamodb_writes_per_event"] for f in flows),
        "round_trip_close_writes_per_lead": max(f["round_trip_close_writes_per_lead"] for f in flows),
        "sqs_requests_per_event": max(f["sqs_requests_per_event"] for f in flows),
        "cost_per_million_usd": max(f["cost_per_million_usd"][f"{TEMPLATE_MEMORY_MB}mb"]["total"] for f in flows),
        "drain_rate_ratio": results["drain"]["drain_rate_ratio"],
        "drain_429_fraction": results["drain"]["drain_429_fraction"],
        **{key: value for key, value in results["recovery"].items() if key.startswith(("recovery_", "outage_"))},
        "layer_zip_bytes": results["layer"]["layer_zip_bytes"],
        "tracing_default": results["handlers"]["default_mode"],
        **{
            f"{key}_{mode}": figures[key]
            for mode, figures in results["handlers"]["by_mode"].items()
            for key in ("cold_start_ratio", "warm_overhead_ratio")
        },
        "worker_cold_start_ratio": results["handlers"]["functions"]["DeliveryWorkerFunction"]["cold_start_ratio"],
        "worker_warm_overhead_ratio": results["handlers"]["functions"]["DeliveryWorkerFunction"]["warm_overhead_ratio"],
        **{f"largest_request_{key}": value for key, value in largest_request(results).items()},
    }


def largest_request(results: dict) -> dict:
    """The largest request the bounds accept: what it queued and what it cost the receiver."""
    case = results["fan_out"][next(iter(fan_out.CASES))]
    return {key: case[key] for key in ("items", "queued_bytes", "sqs_requests", "receiver_ms")}


def met(key: str, value: float | None) -> bool:
    """None: not measured (e.g. a backlog that never drained), so not met."""
    limit, kind = TARGETS[key]
    return value is not None and (value <= limit if kind == "max" else value >= limit)


def markdown(results: dict) -> str:
    s, h = results["summary"], results["handlers"]
    lines = [
        "# clay-relay benchmark results",
        "",
        f"Measured {results['date']} on {results['machine']}, CPython {h['python']} (functions), "
        f"`make bench` in {results['seconds']:.0f} s. Ratios are measured side by side in this one run.",
        "",
        "| figure | value | target | met |",
        "|---|---|---|---|",
    ]
    for key, (limit, kind) in TARGETS.items():
        value = s[key]
        shown = (
            "n/a"
            if value is None
            else f"${value:.2f}"
            if key.startswith("cost")
            else f"{value:.3f}"
            if value < 10
            else f"{value:,.0f}"
        )
        sign, verdict = "≤" if kind == "max" else "≥", "yes" if met(key, value) else "**no**"
        lines.append(f"| `{key}` | {shown} | {sign} {limit} | {verdict} |")
    layer = results["layer"]
    lines += [
        f"| `layer_zip_bytes` | {layer['layer_zip_bytes']:,} ({layer['layer_unzipped_bytes']:,} unzipped) | "
        f"boto3 not bundled | {'yes' if not layer['layer_bundles_boto3'] else '**no**'} |",
        "",
        "## Cold start and warm overhead, per function",
        "",
        f"In the default tracing mode (`{h['default_mode']}`; every mode below). Cold: a fresh `python3.13 -S -B` "
        "importing the handler and serving its first request (AWS: moto's server, reset before each run; the "
        "worker's Clay: the sandbox), median of the runs. Warm: CPU per request, AWS and the worker's destination "
        f"answered from a recording; X-Ray samples 1 request in {handlers.SAMPLED_EVERY} as Lambda does under "
        "load (every request traced in the last column). Baseline: raw boto3 + json.loads making the same AWS "
        "calls (the worker's: and the same POST with requests). The headline ratios are the HTTP functions'.",
        "",
        "| function | cold ms (baseline) | ratio | init ms (baseline) | first request ms (baseline) | "
        "warm CPU ms (baseline) | ratio | ratio, every request traced |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, f in h["functions"].items():
        lines.append(
            f"| {name} | {f['cold_ms']['relay']:.0f} ({f['cold_ms']['baseline']:.0f}) | {f['cold_start_ratio']:.2f} | "
            f"{f['init_ms']['relay']:.0f} ({f['init_ms']['baseline']:.0f}) | "
            f"{f['first_request_ms']['relay']:.0f} ({f['first_request_ms']['baseline']:.0f}) | "
            f"{f['warm_cpu_ms']['relay']:.3f} ({f['warm_cpu_ms']['baseline']:.3f}) | {f['warm_overhead_ratio']:.2f} | "
            f"{f['warm_overhead_ratio_every_request_traced']:.2f} |"
        )
    by_mode = layer["by_mode"]
    lines += [
        "",
        "## Tracing modes side by side",
        "",
        "The template parameter `Tracing` (docs/operating.md). `xray`: Powertools' Tracer over the X-Ray SDK; "
        "`lambda`: no tracer in the functions (Lambda's own segment; `off` runs the same code); `otel`: measured, "
        "not offered: OpenTelemetry over OTLP/UDP to the X-Ray daemon endpoint (bench/otel_tracing.py). Each cell: "
        "the function's figure and its ratio to the baseline's, measured side by side in this run. Layer: what "
        "the mode needs, for arm64, zipped (unzipped).",
        "",
        "| function | mode | cold ms | warm CPU ms | warm CPU ms, every request traced |",
        "|---|---|---|---|---|",
    ]
    for name, f in h["functions"].items():
        for mode, m in f["modes"].items():
            lines.append(
                f"| {name} | `{mode}` | {m['cold_ms']:.0f} ({m['cold_start_ratio']:.2f}×) | "
                f"{m['warm_cpu_ms']:.3f} ({m['warm_overhead_ratio']:.2f}×) | "
                f"{m['warm_cpu_ms_every_request_traced']:.3f} ({m['warm_overhead_ratio_every_request_traced']:.2f}×) |"
            )
    lines += [
        "",
        "| mode | worst HTTP function: cold ratio | warm ratio | warm ratio, every request traced | layer bytes |",
        "|---|---|---|---|---|",
    ]
    for mode, worst in h["by_mode"].items():
        size = by_mode[mode]
        default = " (default)" if mode == h["default_mode"] else ""
        lines.append(
            f"| `{mode}`{default} | {worst['cold_start_ratio']:.2f} | {worst['warm_overhead_ratio']:.2f} | "
            f"{worst['warm_overhead_ratio_every_request_traced']:.2f} | "
            f"{size['zip_bytes']:,} ({size['unzipped_bytes']:,}) |"
        )
    lines += [
        "",
        "## AWS requests and cost per relayed event, per flow",
        "",
        "A relayed event is one job delivered to one destination; the enrichment callback also closes the "
        "lead's round trip in the ledger (one write per lead, shown apart). Cost: us-east-1 list prices "
        "(design.md), with every write, "
        f"Lambda duration assumed {AWS_CALL_MS} ms per AWS request and {DESTINATION_MS} ms per destination request.",
        "",
        "| flow | DynamoDB writes | items read | SQS requests | $ per million "
        f"({TEMPLATE_MEMORY_MB} MB) | $ per million (128 MB) | of which API Gateway |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, f in results["flows"].items():
        cost, small = f["cost_per_million_usd"][f"{TEMPLATE_MEMORY_MB}mb"], f["cost_per_million_usd"]["128mb"]
        close = f["round_trip_close_writes_per_lead"]
        writes = f"{f['dynamodb_writes_per_event']:.2f}" + (f" (+ {close:.2f} per lead)" if close else "")
        lines.append(
            f"| {name} | {writes} | {f['dynamodb_items_read_per_event']:.2f} | "
            f"{f['sqs_requests_per_event']:.2f} | ${cost['total']:.2f} | ${small['total']:.2f} | "
            f"${cost['api_gateway']:.2f} |"
        )
    lines += [
        "",
        "## What one request may cause",
        "",
        "Directus events through DirectusTriggerFunction in-process against moto (bench/fan_out.py), median of "
        f"{results['fan_out_runs']} requests. Receiver ms includes moto's own handling of the SQS requests "
        f"(in AWS, a round trip of ~{AWS_CALL_MS} ms each instead). Bounds: docs/http-api.md.",
        "",
        "| request | request bytes | status | answer bytes | SQS requests | bytes queued | receiver ms "
        "| receiver CPU ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, f in results["fan_out"].items():
        lines.append(
            f"| {name} | {f['request_bytes']:,} | {f['status']} | {f['answer_bytes']:,} | {f['sqs_requests']} | "
            f"{f['queued_bytes']:,} | {f['receiver_ms']:.0f} | {f['receiver_cpu_ms']:.0f} |"
        )
    lines += [
        "",
        "## Loops events besides Clay rows, per Loops event",
        "",
        "Not in the figures above (their targets are per relayed event): what a Loops event costs when it "
        "becomes Directus feedback (the claim, its event-time mark), is only kept in the lead's trace (one "
        "write by the receiver), or goes nowhere.",
        "",
        f"| flow | DynamoDB writes | items read | SQS requests | $ per million ({TEMPLATE_MEMORY_MB} MB) |",
        "|---|---|---|---|---|",
    ]
    for name, f in results.get("loops_feedback", {}).items():
        cost = f["cost_per_million_usd"][f"{TEMPLATE_MEMORY_MB}mb"]
        lines.append(
            f"| {name} | {f['dynamodb_writes_per_event_with_round_trip_close']:.2f} | "
            f"{f['dynamodb_items_read_per_event']:.2f} | {f['sqs_requests_per_event']:.2f} | ${cost['total']:.2f} |"
        )
    d = results["drain"]
    lines += [
        "",
        "## Drain at Loops' limit",
        "",
        f"{d['events']} events: {d['drain_rate_ratio']:.2f} of the 10/s limit, 429s {d['drain_429_fraction']:.1%} of "
        f"attempts, busiest second {d['busiest_second']} requests, lost {d['lost']}.",
        "",
        *recovery_section(results["recovery"]),
    ]
    return "\n".join(lines)


def recovery_section(r: dict) -> list[str]:
    from bench.recovery import table  # the layer's modules load only here, in the parent process

    modes = "with `delivery.park_when_down` off and on" if r["parking_available"] else "as built (no parking yet)"
    return [
        "## Recovery after an outage",
        "",
        f"A backlog of {r['backlog']} Clay rows queued as Clay goes down (503 to every request), Clay back after "
        f"each outage, {modes} (bench/recovery.py: the real worker in the template's concurrency of simulated Lambda "
        f"instances, a virtual SQS and clock, moto's DynamoDB, the sandbox Clay at {r['rate_per_second']:g} rows/s). "
        "Drain ratio: seconds from recovery to the last delivery ÷ the backlog's seconds at Clay's rate. Requests per "
        "job: SQS requests (receives included, the receiver's sends not) and Lambda invocations during the outage.",
        "",
        table(r["runs"]),
        "",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cold-runs", type=int, default=9, help="fresh processes per function and side (default 9)")
    parser.add_argument("--warm-iterations", type=int, default=1000, help="requests per warm run (default 1000)")
    parser.add_argument(
        "--flow-events", type=int, default=100, help="requests per flow for the AWS counts (default 100)"
    )
    parser.add_argument("--drain-events", type=int, default=500, help="events in the drain burst (default 500)")
    parser.add_argument(
        "--fan-out-runs", type=int, default=5, help="requests per fan-out case (bench/fan_out.py; default 5)"
    )
    parser.add_argument(
        "--recovery-backlog",
        type=int,
        default=300,
        help="jobs queued during each outage (bench/recovery.py; default 300)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="folder for results.json and results.md")
    args = parser.parse_args(argv)
    started = time.monotonic()
    python = handlers.python313()
    results: dict = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
    }
    progress("cold start and warm overhead (bench/handlers.py)")
    results["handlers"] = handlers.measure(args.cold_runs, args.warm_iterations, progress)
    receiver_ms = max(f["warm_cpu_ms"]["relay"] for f in results["handlers"]["functions"].values() if f["http"])
    results["flows"] = flows_and_cost(args.flow_events, receiver_ms)
    progress("what one request may cause (bench/fan_out.py)")
    results["fan_out"], results["fan_out_runs"] = fan_out.measure(args.fan_out_runs, progress), args.fan_out_runs
    results["loops_feedback"] = flows_and_cost(args.flow_events, receiver_ms, aws_calls.LOOPS_FEEDBACK_FLOWS)
    progress(f"drain benchmark: {args.drain_events} Loops events (bench/drain.py)")
    results["drain"] = drain(args.drain_events)
    progress(f"recovery after an outage: {args.recovery_backlog} Clay rows (bench/recovery.py)")
    results["recovery"] = recovery(args.recovery_backlog)
    progress("layer size (layers/shared/Makefile for arm64)")
    results["layer"] = layer_size(python)
    results["seconds"] = time.monotonic() - started
    results["summary"] = summary(results)
    results["targets_met"] = {key: met(key, results["summary"][key]) for key in TARGETS}
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "results.json").write_text(json.dumps({**results["summary"], "details": results}, indent=2) + "\n")
    (args.output / "results.md").write_text(markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
