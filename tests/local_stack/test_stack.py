"""Starting the local stack (`python -m local_stack run`): a configuration that cannot work stops it
before anything starts, with a message that says what to fix, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from local_stack.aws import LOCAL_ENV
from local_stack.template import ROOT


def start(tmp_path, secrets: str) -> subprocess.CompletedProcess:
    """`python -m local_stack run` with local.env's secrets plus `secrets` (later lines win)."""
    secrets_file = tmp_path / "local.env"
    secrets_file.write_text(LOCAL_ENV.read_text() + "\n" + secrets + "\n")
    command = [sys.executable, "-m", "local_stack", "run", "--quiet", "--secrets-file", str(secrets_file)]
    command += ["--port", "0", "--sandbox-port", "0", "--moto-port", "0", "--state-file", str(tmp_path / "state.json")]
    # Exits at once when the configuration is refused; a stack that started would run until the timeout.
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize(
    ("line", "names"),
    [
        ("DIRECTUS_TOKENS=,,,", "DIRECTUS_TOKENS (tokens of the Directus source 'leads')"),
        ("CLAY_CALLBACK_TOKENS= , \t,", "CLAY_CALLBACK_TOKENS (tokens of /clay/enriched)"),
        ("LOOPS_WEBHOOK_SECRET=[]", "LOOPS_WEBHOOK_SECRET (signing secrets of /loops/webhook)"),
    ],
)
def test_a_tokens_secret_of_only_separators_stops_the_start_with_a_clear_error(tmp_path, line, names):
    started = start(tmp_path, line)
    assert started.returncode == 1
    assert started.stdout == "", "nothing started, nothing announced"
    assert "Traceback" not in started.stderr
    message = started.stderr.strip()
    assert message.startswith(f"cannot start the local stack: {tmp_path / 'local.env'}: {names}: ")
    assert "holds no token" in message and "separated by commas" in message
    assert not (tmp_path / "state.json").exists()
