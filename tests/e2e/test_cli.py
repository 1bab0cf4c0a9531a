"""The `relay` command against a running local stack: `send` to every route with the stack's own
secrets, `status`, dead letters listed, shown and replayed (then delivered), and a Clay pool that
is used up, grown with `relay clay add-webhook`, and whose held rows then go to the new URL."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests

from relay_cli.__main__ import main
from tests.e2e.conftest import E2E_DELIVERY, ROOT, RunningStack, start_stack

CONFIG = {
    "directus_sources": {
        # `relay send directus --event update` tells of items no Directus holds: the changed fields go.
        "leads": {"clay_target": "leads", "collection": "leads", "on_update": "changed"},
        "held": {"clay_target": "tiny", "collection": "held"},
    },
    "clay_targets": {
        "leads": {"webhooks_secret": "clay-webhooks-leads"},
        "tiny": {"webhooks_secret": "clay-webhooks-tiny", "submission_limit": 3},
    },
    "clay_callback": {"hmac_secret": "clay-callback-hmac-keys"},
    "loops_webhook": {"clay_target": "leads"},
    "loops_forwarding": {},
    "delivery": dict(E2E_DELIVERY),
}
SECRETS = """
DIRECTUS_TOKENS=cli-directus-token
CLAY_WEBHOOKS_LEADS=[{"url": "{sandbox}/clay/webhooks/cli-leads-1", "token": "cli-clay-token"}]
CLAY_WEBHOOKS_TINY=[{"url": "{sandbox}/clay/webhooks/tiny-1", "token": "tiny-token-1"}]
CLAY_CALLBACK_TOKENS=cli-callback-token
CLAY_CALLBACK_HMAC_KEYS=cli-signing-key
LOOPS_API_KEY=cli-loops-key
LOOPS_WEBHOOK_SECRET=whsec_Y2xpLWxvb3BzLXdlYmhvb2stc2lnbmluZy1rZXktMDE=
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> RunningStack:
    """A stack of its own: a tiny Clay quota (3 per URL) to use up, and retries of seconds."""
    yield from start_stack(tmp_path_factory.mktemp("cli-stack"), config=CONFIG, secrets=SECRETS, workers=1)


def relay(capsys, stack: RunningStack, *command: str) -> tuple[int, object]:
    """`relay --local --json COMMAND…` in-process: its exit status and printed JSON."""
    capsys.readouterr()
    code = stack.relay("--json", *command)
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else None


def test_relay_runs_as_an_installed_command():
    installed = Path(sys.executable).parent / "relay"
    commands = [[sys.executable, "-m", "relay_cli", "--help"]]
    if installed.exists():
        commands.append([str(installed), "dlq", "replay", "--help"])
    for command in commands:
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr
        assert "usage: relay" in result.stdout


def test_without_a_running_stack_it_says_how_to_start_one(tmp_path, capsys):
    assert main(["--local", "--state-file", str(tmp_path / "none.json"), "status"]) == 1
    assert "make run" in capsys.readouterr().err


def test_send_reaches_every_route_authenticated_with_the_stacks_own_secrets(stack, capsys):
    for command in (
        ("send", "directus"),
        ("send", "directus", "--event", "update", "--key", "7", "--data", '{"first_name": "Ada"}'),
        ("send", "clay"),
        ("send", "clay", "--hmac"),
        ("send", "loops", "webhook"),
        ("send", "loops", "contact"),
        ("send", "loops", "event"),
    ):
        code, answer = relay(capsys, stack, *command)
        assert (code, answer["status"]) == (0, 202), (command, answer)
        assert answer["answer"]["accepted"] is True
    code, answer = relay(capsys, stack, "send", "directus", "--data", '{"email": "x@example.com"}', "--key", "7")
    code, again = relay(capsys, stack, "send", "directus", "--data", '{"email": "x@example.com"}', "--key", "7")
    assert again["answer"]["duplicate"] is True, "the same event twice is a duplicate"

    assert stack.wait_for(lambda: len(stack.deliveries(destination="loops")) >= 4), "2 leads, 1 contact, 1 event"
    assert stack.wait_for(lambda: len(stack.deliveries(path="/clay/webhooks/cli-leads-1")) >= 4)

    # A route that is not configured, or a sender that does not authenticate, exits non-zero.
    assert relay(capsys, stack, "send", "directus", "--source", "nope")[0] == 1
    assert stack.relay("send", "directus", "--data", "[1") == 1


def test_dead_letters_are_listed_shown_replayed_and_then_delivered(stack, capsys):
    requests.post(f"{stack.gateway}/_local/faults", json={"destination": "loops", "status": 400, "times": 1}, timeout=5)
    email = f"dead-{uuid.uuid4().hex[:8]}@example.com"
    event = json.dumps({"email": email, "eventName": "replay_me"})
    assert relay(capsys, stack, "send", "loops", "event", "--data", event)[0] == 0

    def letters():
        return relay(capsys, stack, "dlq", "list", "--destination", "loops")[1]["letters"]

    [letter] = stack.wait_for(letters, timeout=20)
    assert letter["origin"] == "loops/events" and letter["reason"].startswith("loops answered HTTP 400")
    assert relay(capsys, stack, "dlq", "list", "--destination", "clay")[1]["matching"] == 0

    code, shown = relay(capsys, stack, "dlq", "show", letter["id"])
    assert code == 0 and shown["body"]["payload"]["email"] == f"d***@{email.split('@')[1]}", "masked"
    assert relay(capsys, stack, "dlq", "show", letter["id"], "--reveal")[1]["body"]["payload"]["email"] == email

    code, status = relay(capsys, stack, "status")
    assert code == 0
    [row] = [r for r in status["flows"] if (r["flow"], r["destination"]) == ("loops/events", "loops")]
    assert row["dead_lettered"] == 1 and row["latest_reason"].startswith("loops answered HTTP 400")
    [loops] = [d for d in status["destinations"] if d["destination"] == "loops"]
    assert loops["last_failure"]["kind"] == "dead-lettered" and "HTTP 400" in loops["last_failure"]["error"]
    assert status["delivery_queue"]["oldest_age_source"].startswith("n/a")

    code, dry = relay(capsys, stack, "dlq", "replay", "--dry-run")
    assert code == 0 and dry["replayed_ids"] == [letter["id"]]
    assert len(letters()) == 1, "a dry run changes nothing"

    code, replayed = relay(capsys, stack, "dlq", "replay", "--destination", "loops")
    assert code == 0 and replayed["replayed"] == {"loops": 1} and replayed["left_in_dead_letter_queue"] == 0
    delivered = stack.wait_for(lambda: stack.deliveries(destination="loops", body__email=email, status=200))
    assert len(delivered) == 1 and delivered[0]["path"].endswith("/v1/events/send")
    assert letters() == []


def test_a_used_up_pool_holds_rows_until_add_webhook_gives_it_a_new_url(stack, capsys):
    tag = uuid.uuid4().hex[:8]
    for key in range(5):
        data = json.dumps({"email": f"held-{key}-{tag}@example.com"})
        assert (
            relay(capsys, stack, "send", "directus", "--source", "held", "--key", f"{tag}-{key}", "--data", data)[0]
            == 0
        )

    def tiny(n: int) -> list[dict]:
        return stack.deliveries(destination="clay", path=f"/clay/webhooks/tiny-{n}")

    assert len(stack.wait_for(lambda: len(tiny(1)) >= 3 and tiny(1), timeout=30)) == 3
    stack.wait_for(lambda: False, timeout=3)  # the other two are held
    assert tiny(1) and len(tiny(1)) == 3 and tiny(2) == []
    [pool] = relay(capsys, stack, "clay", "list", "tiny")[1]
    assert pool["current"] is None and pool["remaining"] == 0 and pool["webhooks"][0]["used"] == 3

    new_url = f"{stack.sandboxes}/clay/webhooks/tiny-2"
    capsys.readouterr()
    code = stack.relay("clay", "add-webhook", "tiny", new_url, "--token", "tiny-secret-2")
    printed = capsys.readouterr().out
    assert code == 0 and "tiny-secret-2" not in printed and "current" in printed

    rows = stack.wait_for(lambda: len(tiny(2)) >= 2 and tiny(2), timeout=30)
    assert sorted(r["body"]["email"] for r in tiny(1) + rows) == sorted(f"held-{k}-{tag}@example.com" for k in range(5))
    [pool] = relay(capsys, stack, "clay", "list", "tiny")[1]
    assert [(w["used"], w["current"]) for w in pool["webhooks"]] == [(3, False), (2, True)]

    assert relay(capsys, stack, "clay", "add-webhook", "tiny", new_url)[0] == 1, "already in the pool"
    assert relay(capsys, stack, "clay", "add-webhook", "tiny", "ftp://example.com/x")[0] == 1
    assert relay(capsys, stack, "clay", "add-webhook", "nope", new_url)[0] == 1
