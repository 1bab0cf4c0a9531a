"""Cold start and warm overhead of the HTTP functions and the delivery worker, in each tracing mode
(template parameter `Tracing`), side by side with a baseline handler (bench/baseline: raw boto3 +
json.loads making the same AWS calls, and for the worker the same POST with requests), in one run
on this machine.

The tracing modes measured, as clay_relay.tracing runs them:
  xray    Powertools' Tracer (the X-Ray SDK): botocore and requests patched, a subsegment per call
  lambda  no tracer in the functions (Lambda records its own segment outside them); `off` runs
          the same code (only Lambda's setting differs)
  otel    measured, not offered: OpenTelemetry spans over OTLP/UDP to the X-Ray daemon endpoint
          (bench/otel_tracing.py, ADOT's exporter), with bench/otel-requirements.txt's packages

The functions run the way Lambda runs them, as far as a laptop can:
- the layer is built by its own recipe (layers/shared/Makefile: pinned packages without boto3,
  compiled bytecode) for this machine's platform; boto3 comes from a separate "runtime" folder;
- each cold start is a fresh `python3.13 -S -B` (no site-packages, bytecode caches read-only like
  /opt), with Lambda's environment variables and X-Ray tracing active as deployed;
- AWS is moto's server, reset and provisioned from template.yaml before every cold start, so each
  one meets the same empty table and queues.

cold_start_ratio     (import + first request) / baseline's, median of --cold-runs, worst HTTP function,
                     in the default mode (DEFAULT_MODE)
warm_overhead_ratio  CPU per request / baseline's, AWS (and the worker's destination) answered from a
                     recording (no network timed), worst HTTP function, in the default mode
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from local_stack.aws import FAKE_CREDENTIALS, provision, read_local_env
from local_stack.sandboxes import Sandboxes
from local_stack.stack import LocalStack, Options
from local_stack.template import ROOT, Template, load_template

BUILD = ROOT / "bench" / ".build"
LAYER = BUILD / "layer" / "python"
OTEL = BUILD / "otel" / "python"  # otel-requirements.txt's packages, on the path in mode otel only
OTEL_REQUIREMENTS = ROOT / "bench" / "otel-requirements.txt"
RUNTIME = BUILD / "runtime"
BASELINE = ROOT / "bench" / "baseline"
CHILD = ROOT / "bench" / "child.py"
STACK = "clay-relay-bench"
SAMPLED_EVERY = 20
TRACE_ID = "Root=1-6742e1a0-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1"
MODES = ("xray", "lambda", "otel")  # in-process tracing modes; `off` runs lambda's code
DEFAULT_MODE = "lambda"  # template.yaml's Tracing default: the headline figures
SIDES = ("baseline", *MODES)
# Modes whose work depends on X-Ray's sampling decision (the others do the same for every request).
SAMPLING_MATTERS = ("xray", "otel")
WARM_ROUNDS = 5


@dataclass(frozen=True)
class Case:
    function: str
    event_file: str
    baseline: str = "app.lambda_handler"  # in bench/baseline
    http: bool = True

    def event(self) -> dict:
        return json.loads((ROOT / self.event_file).read_text())

    def second_event(self) -> dict:
        """The recorded second (warm) request. A worker batch's jobs get new ids, so that it is a
        delivery too (the same job again would be skipped as delivered)."""
        event = self.event()
        if self.http:
            return event
        for n, record in enumerate(event["Records"]):
            body = json.loads(record["body"])
            body.update(event_id=f"{n:032x}", job_id=f"{n + 1:032x}")
            record["body"] = json.dumps(body)
        return event


CASES = [
    Case("DirectusTriggerFunction", "events/directus/create.json"),
    Case("ClayCallbackFunction", "events/clay/hot.json"),
    Case("LoopsForwarderFunction", "events/loops/contact-created.json"),
    Case("DeliveryWorkerFunction", "events/worker/clay-row.json", baseline="worker.lambda_handler", http=False),
]


def python313() -> str:
    """Like the Makefile: python3.13 on PATH, else pyenv's (whose shim fails without `pyenv global`)."""
    candidates = [
        shutil.which("python3.13"),
        *map(str, sorted(Path.home().glob(".pyenv/versions/3.13*/bin/python3.13"))),
    ]
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "-c", ""], capture_output=True, check=False).returncode == 0:
            return candidate
    raise SystemExit("the benchmark needs a python3.13 (Lambda's runtime) on PATH or in pyenv")


def boto3_pin() -> str:
    pins = [line for line in (ROOT / "requirements-dev.txt").read_text().splitlines() if line.startswith("boto3==")]
    return pins[0]


def build_layer(folder: Path, python: str, platform_tag: str | None = None) -> None:
    """The layer by its own recipe (layers/shared/Makefile); Lambda's arm64 unless `platform_tag`."""
    subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-C",
            str(ROOT / "layers" / "shared"),
            "build-SharedLayer",
            f"ARTIFACTS_DIR={folder}",
            f"PYTHON={python}",
            *([f"PLATFORM={platform_tag}"] if platform_tag else []),
        ],
        check=True,
    )


def install_otel(folder: Path, python: str, platform_tag: str | None = None) -> None:
    """otel-requirements.txt's packages (pinned, --no-deps, compiled like the layer's), and the
    tracer that uses them (bench/otel_tracing.py)."""
    shutil.rmtree(folder, ignore_errors=True)
    subprocess.run(
        [
            python,
            *("-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps", "--only-binary=:all:"),
            *("--platform", platform_tag or "manylinux2014_aarch64", "--implementation", "cp"),
            *("--python-version", "3.13", "--abi", "cp313", "--target", str(folder), "-r", str(OTEL_REQUIREMENTS)),
        ],
        check=True,
    )
    shutil.copy(ROOT / "bench" / "otel_tracing.py", folder)
    subprocess.run(
        [python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(folder)], check=True
    )


def build(python: str, progress) -> None:
    """The layer for this machine, the OpenTelemetry packages beside it; the runtime folder with
    boto3 (cached)."""
    progress("building the layer with layers/shared/Makefile for this machine")
    shutil.rmtree(LAYER.parent, ignore_errors=True)
    build_layer(LAYER.parent, python, f"manylinux2014_{platform.machine()}")
    install_otel(OTEL, python, f"manylinux2014_{platform.machine()}")
    marker = RUNTIME / ".boto3"
    if marker.exists() and marker.read_text() == boto3_pin():
        return
    progress(f"installing the runtime's {boto3_pin()} into {RUNTIME.relative_to(ROOT)}")
    shutil.rmtree(RUNTIME, ignore_errors=True)
    subprocess.run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
            str(RUNTIME),
            boto3_pin(),
        ],
        check=True,
    )
    subprocess.run([python, "-m", "compileall", "-q", "-j", "0", str(RUNTIME)], check=True)
    marker.write_text(boto3_pin())


class Aws:
    """moto's server; `fresh()` wipes it and provisions the template again. The sandboxes answer
    the worker's deliveries (the receivers send nothing out)."""

    def __init__(self):
        self.stack = LocalStack(Options(port=0, sandbox_port=0, moto_port=0, stack_name=STACK, state_file=None))
        self.url = self.stack.start_aws()  # on a free port, with this process' AWS clients pointed at it
        self.template = Template(load_template(), STACK)
        self.sandboxes = Sandboxes()
        self.sandboxes.clay.rate = 1e9  # answered, not paced
        self.secrets = read_local_env(sandbox_url=self.sandboxes.start("127.0.0.1", 0))
        self.environment = self.fresh()

    def fresh(self) -> dict[str, str]:
        requests.post(f"{self.url}/moto-api/reset", timeout=10).raise_for_status()
        return provision(self.template, self.secrets).environment

    def stop(self) -> None:
        self.sandboxes.stop()
        self.stack.stop()


class Runner:
    def __init__(self, python: str, aws: Aws, folder: Path):
        self.python, self.aws, self.folder = python, aws, folder
        self.functions = Template(load_template(), STACK).functions()
        # The layer's relay.json with the destinations' rates lifted: a warm run sends thousands of
        # rows in seconds, and a paced worker would wait (no CPU, but minutes).
        config = json.loads((ROOT / "layers" / "shared" / "relay.json").read_text())
        config["delivery"]["rates_per_second"] = dict.fromkeys(config["delivery"]["rates_per_second"], 1e9)
        (folder / "relay.json").write_text(json.dumps(config))

    def environment(self, case: Case, recording: Path, mode: str) -> dict[str, str]:
        code = self.functions[case.function].code_dir
        env = {
            "PATH": os.environ.get("PATH", ""),
            "LANG": "C.UTF-8",
            **FAKE_CREDENTIALS,
            **self.aws.environment,
            "AWS_ENDPOINT_URL": self.aws.url,
            "LOOPS_WEBHOOK_TOLERANCE_SECONDS": "0",  # the event file's signature has a fixed timestamp
            "ALLOW_LOCAL_DESTINATIONS": "true",  # the worker delivers to the sandboxes
            "RELAY_CONFIG_PATH": str(self.folder / "relay.json"),  # unpaced (see Runner.__init__)
            "RELAY_TRACING": "lambda" if mode == "otel" else mode,  # otel: bench/child.py swaps the backend
            # What Lambda sets: tracing (Tracing: Active) works as deployed.
            "AWS_LAMBDA_FUNCTION_NAME": case.function,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "LAMBDA_TASK_ROOT": str(code),
            "_X_AMZN_TRACE_ID": TRACE_ID,
            "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            "BASELINE_CALLS": str(recording),
        }
        return env

    def run(self, run: str, case: Case, *, side: str = DEFAULT_MODE, **extra) -> dict:
        """`run` (cold, record, warm) of `side`: the baseline, or the function in a tracing mode."""
        baseline = side == "baseline"
        code = BASELINE if baseline else self.functions[case.function].code_dir
        recording = self.folder / f"{case.function}.calls.json"
        spec = {
            "paths": [str(code), str(LAYER), *([str(OTEL)] if side == "otel" else []), str(RUNTIME)],
            "handler": case.baseline if baseline else "app.lambda_handler",
            "event": case.event(),
            "second_event": case.second_event(),
            "record_to": str(recording),
            "recording": str(recording),
            "otel": side == "otel",
            **extra,
        }
        spec_file = self.folder / "spec.json"
        spec_file.write_text(json.dumps(spec))
        out = self.folder / "child.out"
        with out.open("w") as stdout:
            done = subprocess.run(
                [self.python, "-S", "-B", str(CHILD), run, str(spec_file)],
                stdout=stdout,
                stderr=subprocess.STDOUT,
                env=self.environment(case, recording, DEFAULT_MODE if baseline else side),
                timeout=600,
                check=False,
            )
        lines = [line for line in out.read_text().splitlines() if line.startswith("BENCH ")]
        if done.returncode or not lines:
            raise RuntimeError(f"{case.function} ({run}, {side}) failed:\n{out.read_text()[-3000:]}")
        return json.loads(lines[-1].removeprefix("BENCH "))


def ratios(figures: dict, side: str) -> dict:
    """One side's figures and its ratios to the baseline's."""
    base = figures["baseline"]
    own = figures[side]
    return {
        **own,
        "cold_start_ratio": own["cold_ms"] / base["cold_ms"],
        "warm_overhead_ratio": own["warm_cpu_ms"] / base["warm_cpu_ms"],
        "warm_overhead_ratio_every_request_traced": own["warm_cpu_ms_every_request_traced"]
        / base["warm_cpu_ms_every_request_traced"],
    }


def measure_case(runner: Runner, aws: Aws, case: Case, cold_runs: int, warm_iterations: int) -> dict:
    sides: dict[str, dict] = {side: {} for side in SIDES}
    recorded = {}
    for side in MODES:  # each mode makes the same AWS calls: recorded once per mode, checked alike
        aws.environment = aws.fresh()
        recorded[side] = runner.run("record", case, side=side)
        if any(status >= 300 for status in recorded[side]["statuses"]):
            raise RuntimeError(f"{case.function} ({side}) answered {recorded[side]['statuses']} to {case.event_file}")
    aws.environment = aws.fresh()
    runner.run("record", case, side=DEFAULT_MODE)  # the recording the warm runs and the baseline use
    cold: dict[str, list[dict]] = {side: [] for side in SIDES}
    for n in range(cold_runs):
        order = SIDES if n % 2 else tuple(reversed(SIDES))
        for side in order:
            aws.environment = aws.fresh()
            cold[side].append(runner.run("cold", case, side=side))
    # CPU per warm request; X-Ray samples 1 in SAMPLED_EVERY (Lambda's default rule under load: one
    # request a second and 5 % of the rest), and, for the modes where it matters, every request.
    # Each round runs every side once, back to back, so that a change in the machine's load meets
    # all sides alike; each figure is the median of its rounds.
    warm: dict[tuple[str, int], list[float]] = {}
    configurations = [(side, SAMPLED_EVERY) for side in SIDES] + [
        (side, 1) for side in SIDES if side in SAMPLING_MATTERS or side == "baseline"
    ]
    for _ in range(WARM_ROUNDS):
        for side, every in configurations:
            run = runner.run("warm", case, side=side, iterations=warm_iterations, sampled_every=every)
            warm.setdefault((side, every), []).append(run["cpu_ms_per_request"])
    for (side, every), runs in warm.items():
        key = "warm_cpu_ms" if every == SAMPLED_EVERY else "warm_cpu_ms_every_request_traced"
        sides[side][key] = statistics.median(runs)
    for side in SIDES:
        sides[side].setdefault("warm_cpu_ms_every_request_traced", sides[side]["warm_cpu_ms"])
        for key, field in (("cold_ms", "total_ms"), ("init_ms", "init_ms"), ("first_request_ms", "first_request_ms")):
            sides[side][key] = statistics.median(r[field] for r in cold[side])
    modes = {side: ratios(sides, side) for side in MODES}
    default, base = modes[DEFAULT_MODE], sides["baseline"]
    return {
        "event": case.event_file,
        "http": case.http,
        "aws_calls_first_request": recorded[DEFAULT_MODE]["calls"][0],
        "aws_calls_warm_request": recorded[DEFAULT_MODE]["calls"][1],
        # The default mode as "relay": the figures `make bench` always reported, and their ratios.
        **{
            key: {"relay": default[key], "baseline": base[key]}
            for key in ("cold_ms", "init_ms", "first_request_ms", "warm_cpu_ms", "warm_cpu_ms_every_request_traced")
        },
        "cold_start_ratio": default["cold_start_ratio"],
        "warm_overhead_ratio": default["warm_overhead_ratio"],
        "warm_overhead_ratio_every_request_traced": default["warm_overhead_ratio_every_request_traced"],
        "modes": modes,
    }


def measure(cold_runs: int, warm_iterations: int, progress=print) -> dict:
    python = python313()
    build(python, progress)
    aws = Aws()
    results: dict = {"functions": {}, "default_mode": DEFAULT_MODE, "modes": list(MODES)}
    try:
        with tempfile.TemporaryDirectory() as folder:
            runner = Runner(python, aws, Path(folder))
            for case in CASES:
                figures = measure_case(runner, aws, case, cold_runs, warm_iterations)
                results["functions"][case.function] = figures
                progress(
                    f"{case.function}: "
                    + "; ".join(
                        f"{mode} cold {m['cold_ms']:.0f} ms ({m['cold_start_ratio']:.2f}×), warm CPU "
                        f"{m['warm_cpu_ms']:.3f} ms ({m['warm_overhead_ratio']:.2f}×)"
                        for mode, m in figures["modes"].items()
                    )
                    + f"; baseline cold {figures['cold_ms']['baseline']:.0f} ms, "
                    f"warm {figures['warm_cpu_ms']['baseline']:.3f} ms"
                )
    finally:
        aws.stop()
    http = [f for f in results["functions"].values() if f["http"]]
    results["cold_start_ratio"] = max(f["cold_start_ratio"] for f in http)
    results["warm_overhead_ratio"] = max(f["warm_overhead_ratio"] for f in http)
    results["by_mode"] = {
        mode: {
            "cold_start_ratio": max(f["modes"][mode]["cold_start_ratio"] for f in http),
            "warm_overhead_ratio": max(f["modes"][mode]["warm_overhead_ratio"] for f in http),
            "warm_overhead_ratio_every_request_traced": max(
                f["modes"][mode]["warm_overhead_ratio_every_request_traced"] for f in http
            ),
        }
        for mode in MODES
    }
    results["python"] = subprocess.run(
        [python, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return results


if __name__ == "__main__":
    started = time.monotonic()
    figures = measure(int(sys.argv[1]) if len(sys.argv) > 1 else 7, int(sys.argv[2]) if len(sys.argv) > 2 else 1000)
    print(json.dumps(figures, indent=2))
    print(f"{time.monotonic() - started:.0f} s")
