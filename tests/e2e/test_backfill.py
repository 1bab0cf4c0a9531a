"""`relay backfill directus` against a running local stack of its own (its Clay quota and deliveries
are nobody else's): items that existed before the relay are read from the sandbox Directus, sent
through the relay, interrupted (a real SIGINT) and resumed, and every item reaches Clay exactly
once; a small target's quota stops the backfill cleanly until a URL is added to its pool."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import E2E_DELIVERY, ROOT, RunningStack, start_stack

RELAY_TOKEN = "backfill-directus-token"
BACKFILL_CONFIG = {
    "directus_sources": {
        "leads": {
            "clay_target": "leads",
            "collection": "leads",
            "fields": {"email": "email", "first_name": "first_name", "company": "company_name"},
            "metadata": {"event": "directus_event", "collection": "directus_collection", "key": "directus_id"},
        },
        "prospects": {
            "clay_target": "small",
            "collection": "prospects",
            "fields": ["email"],
            "metadata": {"event": None, "collection": None, "key": "directus_id"},
        },
    },
    "clay_targets": {
        "leads": {"webhooks_secret": "clay-webhooks-leads"},
        "small": {"webhooks_secret": "clay-webhooks-small", "submission_limit": 40},
    },
    "delivery": {**E2E_DELIVERY, "retry_horizon_seconds": 30, "rates_per_second": {"clay": 100}},
}
BACKFILL_SECRETS = f"""
DIRECTUS_TOKENS={RELAY_TOKEN}
CLAY_WEBHOOKS_LEADS=[{{"url": "{{sandbox}}/clay/webhooks/backfill-leads", "token": "backfill-clay-token"}}]
CLAY_WEBHOOKS_SMALL=[{{"url": "{{sandbox}}/clay/webhooks/small-1"}}]
DIRECTUS_API={{"url": "{{sandbox}}/directus", "token": "backfill-directus-api-token"}}
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> RunningStack:
    """A stack whose Clay sandbox takes 300 records/s and whose relay sends 100/s, so a few
    hundred items take seconds."""
    yield from start_stack(
        tmp_path_factory.mktemp("backfill-stack"),
        config=BACKFILL_CONFIG,
        secrets=BACKFILL_SECRETS,
        outbound_timeout=2,
        extra_args=("--clay-rate", "300"),
    )


def seed(stack: RunningStack, collection: str, items: list[dict]) -> list[dict]:
    answer = requests.post(f"{stack.gateway}/_local/directus/items/{collection}", json=items, timeout=10)
    assert answer.status_code == 201, answer.text
    return answer.json()["data"]


def clay_rows(stack: RunningStack, path_prefix: str) -> list[dict]:
    return [d for d in stack.deliveries(destination="clay") if d["path"].startswith(path_prefix)]


def read_checkpoint(folder: Path, source: str, collection: str) -> dict:
    return json.loads((folder / f"clay-relay-local-{source}-{collection}.json").read_text())


def sent_so_far(folder: Path) -> int:
    try:
        return read_checkpoint(folder, "leads", "leads")["sent"]
    except FileNotFoundError:
        return 0


def test_a_backfill_interrupted_and_resumed_sends_every_item_to_clay_exactly_once(stack, tmp_path, capsys):
    items = seed(stack, "leads", [{"email": f"lead{n}@example.com", "first_name": f"Lead {n}"} for n in range(300)])
    assert [item["id"] for item in items] == list(range(1, 301))
    state = tmp_path / "checkpoints"
    command = [*("backfill", "directus", "leads", "--target", "leads", "--state", str(state))]

    # 1. A real Ctrl-C (SIGINT) while it runs: it finishes the request in flight and saves where it is.
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    process = subprocess.Popen(  # nosec B603 - this interpreter and fixed arguments
        [sys.executable, "-m", "relay_cli", "--local", "--state-file", str(stack.state_file), *command],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert stack.wait_for(lambda: sent_so_far(state) >= 60, timeout=60, interval=0.05), "it did not get going"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert "stopping after the request in flight" in err
    checkpoint = read_checkpoint(state, "leads", "leads")
    first = checkpoint["last_key"]
    assert 60 <= first < 300, "stopped mid-way"
    assert (checkpoint["sent"], checkpoint["duplicates"], checkpoint["upper_key"]) == (first, 0, 300)
    assert f"interrupted: {first} items handed over" in out and f"resume after item {first}" in out

    # 2. Resumed for 120 items, 3. then to the end.
    assert stack.relay(*command, "--limit", "120") == 0
    assert read_checkpoint(state, "leads", "leads")["last_key"] == first + 120
    capsys.readouterr()
    assert stack.relay("--json", *command) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert (summary["state"], summary["sent"], summary["duplicates"], summary["refused"]) == ("done", 300, 0, 0)

    # Clay received every item once: 300 rows, one per item id, none deduplicated away.
    rows = stack.wait_for(lambda: len(clay_rows(stack, "/clay/webhooks/backfill-leads")) >= 300, timeout=60)
    stack.wait_for(lambda: False, timeout=1)  # and nothing more trickles in
    rows = clay_rows(stack, "/clay/webhooks/backfill-leads")
    per_item = Counter(row["body"]["directus_id"] for row in rows)
    assert sorted(per_item) == list(range(1, 301)) and set(per_item.values()) == {1}
    assert all(row["status"] == 200 and row["row_created"] for row in rows)
    first_item = next(row["body"] for row in rows if row["body"]["directus_id"] == 1)
    assert first_item | {"relay_event_id": "…"} == {
        "email": "lead0@example.com",
        "first_name": "Lead 0",
        "directus_event": "leads.items.create",
        "directus_collection": "leads",
        "directus_id": 1,
        "relay_event_id": "…",
    }

    # A run that lost its last checkpoint writes sends those items again: the relay answers them
    # as duplicates (same content, same event id), and Clay receives nothing more.
    path = state / "clay-relay-local-leads-leads.json"
    rewound = {**read_checkpoint(state, "leads", "leads"), "last_key": 290, "sent": 290, "finished_at": None}
    path.write_text(json.dumps(rewound))
    capsys.readouterr()
    assert stack.relay("--json", *command) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert (summary["sent"], summary["duplicates"]) == (290, 10)
    stack.wait_for(lambda: False, timeout=2)
    assert len(clay_rows(stack, "/clay/webhooks/backfill-leads")) == 300


def test_a_backfill_stops_before_the_target_quota_and_finishes_once_a_url_is_added(stack, tmp_path, capsys):
    seed(stack, "prospects", [{"email": f"prospect{n}@example.com"} for n in range(60)])
    command = [*("backfill", "directus", "prospects", "--target", "small", "--state", str(tmp_path))]

    capsys.readouterr()
    assert stack.relay("--json", *command) == 3
    out, err = capsys.readouterr()
    summary = json.loads(out)  # --json: the summary alone on standard output, the words on standard error
    assert (summary["state"], summary["sent"], summary["last_key"], summary["quota"]["budget"]) == ("quota", 40, 40, 0)
    assert "stopped: target small has 0 submissions left" in err
    assert "add a webhook URL with `relay clay add-webhook small URL`, then run the same command again" in err

    stack.wait_for(lambda: len(clay_rows(stack, "/clay/webhooks/small-")) >= 40, timeout=30)
    stack.wait_for(lambda: False, timeout=2)
    first_url = clay_rows(stack, "/clay/webhooks/small-")
    assert len(first_url) == 40 and {row["path"] for row in first_url} == {"/clay/webhooks/small-1"}
    assert "row held until a URL is added" not in stack.log_file.read_text(), "no row had to wait for quota"

    # The same command again, before anything changed: nothing is sent.
    assert stack.relay(*command) == 3
    assert stack.relay("clay", "add-webhook", "small", f"{stack.sandboxes}/clay/webhooks/small-2") == 0
    capsys.readouterr()
    assert stack.relay(*command) == 0
    assert "done: 60 items handed over: 60 sent" in capsys.readouterr().out

    rows = stack.wait_for(lambda: len(clay_rows(stack, "/clay/webhooks/small-")) >= 60, timeout=30)
    stack.wait_for(lambda: False, timeout=1)
    rows = clay_rows(stack, "/clay/webhooks/small-")
    assert Counter(row["path"] for row in rows) == {"/clay/webhooks/small-1": 40, "/clay/webhooks/small-2": 20}
    assert sorted(row["body"]["directus_id"] for row in rows) == list(range(1, 61))
    assert all(row["row_created"] for row in rows)
