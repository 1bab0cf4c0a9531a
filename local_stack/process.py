"""The local stack in a subprocess, as `make run` starts it, for the end-to-end tests and the
benchmarks: free ports, a configuration and fake secrets of their own, its output in a log file."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3

from local_stack.aws import FAKE_CREDENTIALS
from local_stack.template import ROOT

START_TIMEOUT_SECONDS = 120


class StackFailed(RuntimeError):
    """The local stack did not report itself ready."""


@dataclass(frozen=True)
class StackProcess:
    gateway: str
    sandboxes: str
    moto: str
    state_file: Path
    log_file: Path

    def aws(self, service: str):
        """A boto3 client of the stack's moto server."""
        return boto3.client(
            service,
            endpoint_url=self.moto,
            region_name=FAKE_CREDENTIALS["AWS_DEFAULT_REGION"],
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )


@contextlib.contextmanager
def stack_process(folder: Path, config: dict, secrets: str, *options: str) -> Iterator[StackProcess]:
    """`python -m local_stack run` with `config` as its relay.json and `secrets` as its local.env
    (both written to `folder`), plus `options`; stopped with SIGTERM. Its output goes to
    `folder`/stack.log, line by line, so it can be read while the stack runs."""
    (folder / "relay.json").write_text(json.dumps(config))
    (folder / "local.env").write_text(secrets)
    log_file = folder / "stack.log"
    command = [
        sys.executable,
        "-m",
        "local_stack",
        "run",
        "--port",
        "0",
        "--sandbox-port",
        "0",
        "--moto-port",
        "0",
        "--quiet",
        "--config",
        str(folder / "relay.json"),
        "--secrets-file",
        str(folder / "local.env"),
        "--state-file",
        str(folder / "state.json"),
        "--log-level",
        "WARNING",
        *options,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    with open(log_file, "w", buffering=1) as log:
        # A fixed argv (this interpreter, -m local_stack and its options), no shell: bandit's B603 is fine.
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True)  # nosec B603
        # Keep reading what it prints (a line per request) into the log, or it would block on a full pipe.
        drain = None
        try:
            readable, _, _ = select.select([process.stdout], [], [], START_TIMEOUT_SECONDS)
            try:
                ready = json.loads((process.stdout.readline() if readable else "") or "{}")
            except ValueError:
                ready = {}
            if not ready.get("ready"):
                raise StackFailed(f"the local stack did not start; its log ends:\n{tail(log_file, 40)}")
            drain = threading.Thread(target=lambda: log.writelines(process.stdout), daemon=True)
            drain.start()
            yield StackProcess(ready["gateway"], ready["sandboxes"], ready["moto"], folder / "state.json", log_file)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if drain:
                drain.join(timeout=5)


def tail(path: Path, lines: int) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
