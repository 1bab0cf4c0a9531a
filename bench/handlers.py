"""Cold start and warm overhead of the HTTP functions, each side by side with a baseline handler
(bench/baseline/app.py: raw boto3 + json.loads, the same AWS calls), in one run on this machine.

The functions run the way Lambda runs them, as far as a laptop can:
- the layer is built by its own recipe (layers/shared/Makefile: pinned packages without boto3,
  compiled bytecode) for this machine's platform; boto3 comes from a separate "runtime" folder;
- each cold start is a fresh `python3.13 -S -B` (no site-packages, bytecode caches read-only like
  /opt), with Lambda's environment variables and X-Ray tracing active as deployed;
- AWS is moto's server, reset and provisioned from template.yaml before every cold start, so each
  one meets the same empty table and queues.

cold_start_ratio     (import + first request) / baseline's, median of --cold-runs, worst function
warm_overhead_ratio  CPU per request / baseline's, AWS answered from a recording (no network timed),
                     worst receiver
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
from local_stack.stack import LocalStack, Options
from local_stack.template import ROOT, Template, load_template

BUILD = ROOT / "bench" / ".build"
LAYER = BUILD / "layer" / "python"
RUNTIME = BUILD / "runtime"
BASELINE = ROOT / "bench" / "baseline"
CHILD = ROOT / "bench" / "child.py"
STACK = "clay-relay-bench"
SAMPLED_EVERY = 20
TRACE_ID = "Root=1-6742e1a0-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1"


@dataclass(frozen=True)
class Case:
    function: str
    event_file: str

    def event(self) -> dict:
        return json.loads((ROOT / self.event_file).read_text())


CASES = [
    Case("DirectusTriggerFunction", "events/directus/create.json"),
    Case("ClayCallbackFunction", "events/clay/hot.json"),
    Case("LoopsForwarderFunction", "events/loops/contact-created.json"),
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


def build(python: str, progress) -> None:
    """The layer for this machine; the runtime folder with boto3 (cached)."""
    progress("building the layer with layers/shared/Makefile for this machine")
    shutil.rmtree(LAYER.parent, ignore_errors=True)
    build_layer(LAYER.parent, python, f"manylinux2014_{platform.machine()}")
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
    """moto's server; `fresh()` wipes it and provisions the template again."""

    def __init__(self):
        self.stack = LocalStack(Options(port=0, sandbox_port=0, moto_port=0, stack_name=STACK, state_file=None))
        self.url = self.stack.start_aws()  # on a free port, with this process' AWS clients pointed at it
        self.template = Template(load_template(), STACK)
        self.secrets = read_local_env(sandbox_url="http://127.0.0.1:9")  # receivers send nothing out
        self.environment = self.fresh()

    def fresh(self) -> dict[str, str]:
        requests.post(f"{self.url}/moto-api/reset", timeout=10).raise_for_status()
        return provision(self.template, self.secrets).environment

    def stop(self) -> None:
        self.stack.stop()


class Runner:
    def __init__(self, python: str, aws: Aws, folder: Path):
        self.python, self.aws, self.folder = python, aws, folder
        self.functions = Template(load_template(), STACK).functions()

    def environment(self, case: Case, recording: Path) -> dict[str, str]:
        code = self.functions[case.function].code_dir
        env = {
            "PATH": os.environ.get("PATH", ""),
            "LANG": "C.UTF-8",
            **FAKE_CREDENTIALS,
            **self.aws.environment,
            "AWS_ENDPOINT_URL": self.aws.url,
            "LOOPS_WEBHOOK_TOLERANCE_SECONDS": "0",  # the event file's signature has a fixed timestamp
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

    def run(self, mode: str, case: Case, *, baseline: bool = False, **extra) -> dict:
        code = BASELINE if baseline else self.functions[case.function].code_dir
        recording = self.folder / f"{case.function}.calls.json"
        spec = {
            "paths": [str(code), str(LAYER), str(RUNTIME)],
            "handler": "app.lambda_handler",
            "event": case.event(),
            "record_to": str(recording),
            "recording": str(recording),
            **extra,
        }
        spec_file = self.folder / "spec.json"
        spec_file.write_text(json.dumps(spec))
        out = self.folder / "child.out"
        with out.open("w") as stdout:
            done = subprocess.run(
                [self.python, "-S", "-B", str(CHILD), mode, str(spec_file)],
                stdout=stdout,
                stderr=subprocess.STDOUT,
                env=self.environment(case, recording),
                timeout=600,
                check=False,
            )
        lines = [line for line in out.read_text().splitlines() if line.startswith("BENCH ")]
        if done.returncode or not lines:
            raise RuntimeError(f"{case.function} ({mode}, baseline={baseline}) failed:\n{out.read_text()[-3000:]}")
        return json.loads(lines[-1].removeprefix("BENCH "))


def measure(cold_runs: int, warm_iterations: int, progress=print) -> dict:
    python = python313()
    build(python, progress)
    aws = Aws()
    results: dict = {"functions": {}}
    try:
        with tempfile.TemporaryDirectory() as folder:
            runner = Runner(python, aws, Path(folder))
            for case in CASES:
                aws.environment = aws.fresh()
                recorded = runner.run("record", case)
                if any(status >= 300 for status in recorded["statuses"]):
                    raise RuntimeError(f"{case.function} answered {recorded['statuses']} to {case.event_file}")
                cold = {"relay": [], "baseline": []}
                for n in range(cold_runs):
                    for side in ("relay", "baseline") if n % 2 else ("baseline", "relay"):
                        aws.environment = aws.fresh()
                        cold[side].append(runner.run("cold", case, baseline=side == "baseline"))
                # CPU per warm request; X-Ray samples 1 in SAMPLED_EVERY (Lambda's default rule under
                # load: one request a second and 5 % of the rest), and, for comparison, every request.
                warm = {
                    (side, every): statistics.median(
                        runner.run(
                            "warm", case, baseline=side == "baseline", iterations=warm_iterations, sampled_every=every
                        )["cpu_ms_per_request"]
                        for _ in range(3)
                    )
                    for every in (SAMPLED_EVERY, 1)
                    for side in ("relay", "baseline")
                }
                figures = {
                    "event": case.event_file,
                    "aws_calls_first_request": recorded["calls"][0],
                    "aws_calls_warm_request": recorded["calls"][1],
                    "cold_ms": {s: statistics.median(r["total_ms"] for r in runs) for s, runs in cold.items()},
                    "init_ms": {s: statistics.median(r["init_ms"] for r in runs) for s, runs in cold.items()},
                    "first_request_ms": {
                        s: statistics.median(r["first_request_ms"] for r in runs) for s, runs in cold.items()
                    },
                    "warm_cpu_ms": {side: warm[side, SAMPLED_EVERY] for side in ("relay", "baseline")},
                    "warm_cpu_ms_every_request_traced": {side: warm[side, 1] for side in ("relay", "baseline")},
                }
                figures["cold_start_ratio"] = figures["cold_ms"]["relay"] / figures["cold_ms"]["baseline"]
                figures["warm_overhead_ratio"] = figures["warm_cpu_ms"]["relay"] / figures["warm_cpu_ms"]["baseline"]
                figures["warm_overhead_ratio_every_request_traced"] = warm["relay", 1] / warm["baseline", 1]
                results["functions"][case.function] = figures
                progress(
                    f"{case.function}: cold {figures['cold_ms']['relay']:.0f} ms vs baseline "
                    f"{figures['cold_ms']['baseline']:.0f} ms ({figures['cold_start_ratio']:.2f}×); warm CPU "
                    f"{figures['warm_cpu_ms']['relay']:.3f} ms vs {figures['warm_cpu_ms']['baseline']:.3f} ms "
                    f"({figures['warm_overhead_ratio']:.2f}×)"
                )
    finally:
        aws.stop()
    results["cold_start_ratio"] = max(f["cold_start_ratio"] for f in results["functions"].values())
    results["warm_overhead_ratio"] = max(f["warm_overhead_ratio"] for f in results["functions"].values())
    results["python"] = subprocess.run(
        [python, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return results


if __name__ == "__main__":
    started = time.monotonic()
    figures = measure(int(sys.argv[1]) if len(sys.argv) > 1 else 7, int(sys.argv[2]) if len(sys.argv) > 2 else 1000)
    print(json.dumps(figures, indent=2))
    print(f"{time.monotonic() - started:.0f} s")
