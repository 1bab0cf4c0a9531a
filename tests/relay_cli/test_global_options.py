"""The options that say which stack (and `--json`) work before the command and after it, at every
level, as a new user types them: `relay status --local`, `relay dlq list --json`,
`relay backfill directus leads --target leads --json`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from relay_cli.__main__ import main, parser


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "--local"],
        ["--local", "status"],
        ["dlq", "list", "--local", "--json"],
        ["dlq", "--local", "list", "--json"],
        ["clay", "list", "leads", "--local"],
        ["backfill", "directus", "leads", "--target", "leads", "--json", "--local"],
        ["trace", "ada@example.com", "--local", "--json"],
        ["console", "--local"],
    ],
)
def test_stack_options_and_json_are_understood_after_the_command(argv):
    args = parser().parse_args(argv)
    assert args.local is True
    if "--json" in argv:
        assert args.json is True


def test_an_option_after_the_command_wins_and_one_left_out_keeps_what_came_before():
    args = parser().parse_args(["--stack", "before", "--region", "eu-west-1", "status", "--stack", "after"])
    assert (args.stack, args.region) == ("after", "eu-west-1")
    args = parser().parse_args(["--local", "--json", "dlq", "list"])
    assert args.local and args.json  # the subcommand's own (hidden) copies do not reset them to False
    args = parser().parse_args(["status"])
    assert (args.local, args.json, args.config_env) == (False, False, "default")


def test_every_stack_option_is_accepted_after_the_command():
    args = parser().parse_args(
        ["status", "--state-file", "s.json", "--profile", "ops", "--config-env", "prod", "--config", "relay.json"]
    )
    assert (args.state_file, args.profile, args.config_env, args.config) == (
        Path("s.json"),
        "ops",
        "prod",
        Path("relay.json"),
    )


def test_relay_status_local_without_a_stack_says_how_to_start_one(tmp_path, capsys):
    assert main(["status", "--local", "--state-file", str(tmp_path / "none.json")]) == 1
    assert "make run" in capsys.readouterr().err


ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_and_make_relay_say_how_to_put_relay_on_the_path():
    assert "source .venv/bin/activate" in (ROOT / "README.md").read_text()
    assert "source .venv/bin/activate" in (ROOT / "docs" / "operating.md").read_text()
    result = subprocess.run(
        ["make", "--no-print-directory", "relay"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "usage: relay" in result.stdout
    assert "source .venv/bin/activate" in result.stdout
