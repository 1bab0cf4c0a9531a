"""The local walk-through (docs/local-stack.md, "Try it locally") works top to bottom on one stack,
as a new user types it after `make run`: every command of the section, read from the page itself, in
its order, against a stack with the shipped relay.json and local.env. Each replay answers what its
comment says; the write-back demo at the end writes the enrichment into the Directus item it just
created (no dead letter, no `duplicate`, no second Clay row). And `--clay-limit 5` makes the pool
rotate as the page says: the relay counts 5 per URL, like the sandbox Clay."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import ROOT, RunningStack, start_stack

pytestmark = pytest.mark.e2e

PAGE = ROOT / "docs" / "local-stack.md"
SHIPPED_CONFIG = json.loads((ROOT / "layers" / "shared" / "relay.json").read_text())
LOCAL_ENV = (ROOT / "local.env").read_text()


def walkthrough_commands() -> list[str]:
    """The section's commands in order: `make replay|invoke` and `curl`, continuation lines joined."""
    section = PAGE.read_text().split("## Try it locally", 1)[1].split("\n## ", 1)[0]
    commands: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", section, re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            if line.startswith(("make replay", "make invoke", "curl")):
                commands.append(line)
    return commands


def run(stack: RunningStack, command: str) -> tuple[int, str, str]:
    """One command of the page against `stack`: (status or exit code, body or output, its comment)."""
    text, _, comment = command.partition("  #")
    text = text.replace("http://127.0.0.1:3000", stack.gateway).replace("http://127.0.0.1:3001", stack.sandboxes)
    words = shlex.split(text)
    if words[0] == "curl":
        return (*curl(words[1:]), comment.strip())
    options = dict(word.split("=", 1) for word in words[2:])
    if words[1] == "replay":
        argv = ["replay", options["EVENT"], "--url", stack.gateway]
    else:
        argv = ["invoke", options["FUNCTION"], options["EVENT"], "--state-file", str(stack.state_file)]
    result = subprocess.run(
        [sys.executable, "-m", "local_stack", *argv], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    if words[1] == "replay" and result.stdout.startswith("HTTP "):
        status_line, _, body = result.stdout.partition("\n")
        return int(status_line.split()[1]), body, comment.strip()
    return result.returncode, result.stdout + result.stderr, comment.strip()


def curl(words: list[str]) -> tuple[int, str]:
    method, headers, data, url = "GET", {}, None, None
    items = iter(words)
    for word in items:
        if word == "-X":
            method = next(items)
        elif word == "-H":
            name, _, value = next(items).partition(":")
            headers[name.strip()] = value.strip()
        elif word == "-d":
            data = next(items)
            method = "POST" if method == "GET" else method
        elif not word.startswith("-"):
            url = word
    answer = requests.request(method, url, headers=headers, data=data, timeout=30)
    return answer.status_code, answer.text


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> RunningStack:
    """`make run` with the shipped relay.json and local.env, as the page assumes."""
    yield from start_stack(tmp_path_factory.mktemp("walkthrough"), config=SHIPPED_CONFIG, secrets=LOCAL_ENV)


def test_every_command_of_the_local_walkthrough_works_in_its_order_on_one_stack(stack):
    commands = walkthrough_commands()
    assert len(commands) >= 20 and commands[-1].startswith("curl -s http://127.0.0.1:3000/_local/deliveries")
    answers = [(command, *run(stack, command)) for command in commands]
    for command, status, body, comment in answers:
        expected = re.match(r"(\d{3})\b", comment)
        if expected:
            assert status == int(expected[1]), (command, status, body)
        elif command.startswith("make invoke"):
            assert status == 0, (command, body)
        else:
            assert 200 <= status < 300, (command, status, body)
    [(_, _, hot, _)] = [a for a in answers if a[0].startswith("make replay EVENT=events/clay/hot.json")]
    assert json.loads(hot)["duplicate"] is False, "the write-back demo's lead is new, not a duplicate"

    def written_back():
        return stack.deliveries(destination="directus", method="PATCH", path="/directus/items/leads/1", status=200)

    assert stack.wait_for(written_back, timeout=60), "the enrichment was written into item 1"
    rows = [d for d in stack.deliveries(destination="clay") if d["body"].get("email") == "grace.hopper@example.com"]
    # One row of Grace: the page's "and no second row" (the write-back's echo from Directus is not sent
    # to Clay again; and with the spend guard, one row per person, whichever flow brought her first).
    assert len(rows) == 1, rows

    def dead_letters() -> list[dict]:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "relay_cli",
                "dlq",
                "list",
                "--local",
                "--json",
                "--state-file",
                str(stack.state_file),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
        return json.loads(out)["letters"]

    assert dead_letters() == [], "nothing the walk-through sent was dead-lettered"


def test_the_pages_commands_are_the_ones_that_do_what_the_page_says():
    commands = walkthrough_commands()
    hot = [i for i, c in enumerate(commands) if "events/clay/hot.json" in c]
    create = [i for i, c in enumerate(commands) if "3001/directus/items/leads" in c]
    assert len(hot) == 1 and create and create[0] < hot[0], "hot.json is replayed once, after its item exists"


@pytest.fixture(scope="module")
def limited_stack(tmp_path_factory) -> RunningStack:
    """`make run ARGS="--clay-limit 5"` with the shipped relay.json (its target counts 50,000 per URL)."""
    yield from start_stack(
        tmp_path_factory.mktemp("clay-limit"), config=SHIPPED_CONFIG, secrets=LOCAL_ENV, clay_limit=5, workers=1
    )


def test_clay_limit_5_makes_the_relay_count_5_per_url_so_the_pool_rotates(limited_stack, capsys):
    stack = limited_stack
    tag = uuid.uuid4().hex[:8]
    for key in range(7):
        event = {
            "event": "leads.items.create",
            "collection": "leads",
            "key": key,
            "payload": {"email": f"{key}-{tag}@ex.com"},
        }
        answer = requests.post(
            f"{stack.gateway}/directus/leads",
            json=event,
            headers={"Authorization": "Bearer local-directus-token"},
            timeout=10,
        )
        assert answer.status_code == 202

    def rows() -> list[dict]:
        return [d for d in stack.deliveries(destination="clay") if 200 <= d["status"] < 300]

    assert stack.wait_for(lambda: len(rows()) >= 7, timeout=60)
    assert Counter(d["path"] for d in rows()) == {"/clay/webhooks/leads-1": 5, "/clay/webhooks/leads-2": 2}
    assert all(d["row_created"] for d in rows()), "no row went past the sandbox's limit (and was lost)"
    capsys.readouterr()
    assert stack.relay("--json", "clay", "list") == 0
    [pool] = json.loads(capsys.readouterr().out)
    assert pool["submission_limit"] == 5
    assert [(w["used"], w["current"]) for w in pool["webhooks"]] == [(5, False), (2, True)]


def test_the_page_says_clay_limit_5_rotates_the_pool():
    assert re.search(r"--clay-limit.{0,200}rotate", Path(PAGE).read_text(), re.DOTALL)
