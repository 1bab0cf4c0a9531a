"""The Directus side, complete and lossless, through a local stack that sweeps every 2 seconds
(`make run ARGS="--reconcile-seconds 2"`): events the sandbox Directus' Flow failed to deliver (it
never retries) become Clay rows exactly once after the next sweep; an update becomes a row with the
item's email; a backfill over items the Flow already sent sends nothing."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest
import requests

from tests.e2e.conftest import E2E_DELIVERY, RunningStack, start_stack

DIRECTUS_API_TOKEN = "sweep-directus-api-token"
RELAY_TOKEN = "sweep-directus-token"
CONFIG = {
    "directus_sources": {
        "leads": {
            "clay_target": "leads",
            "collection": "leads",
            "fields": {
                "email": "email",
                "first_name": "first_name",
                "company": "company_name",
                "job_title": "job_title",
            },
            "metadata": {"event": "directus_event", "collection": "directus_collection", "key": "directus_id"},
        },
    },
    "clay_targets": {"leads": {"webhooks_secret": "clay-webhooks-leads"}},
    "delivery": {**E2E_DELIVERY, "retry_horizon_seconds": 60},
}
SECRETS = f"""
DIRECTUS_TOKENS={RELAY_TOKEN}
CLAY_WEBHOOKS_LEADS=[{{"url": "{{sandbox}}/clay/webhooks/sweep-leads"}}]
DIRECTUS_API={{"url": "{{sandbox}}/directus", "token": "{DIRECTUS_API_TOKEN}"}}
"""
SWEEP_SECONDS = 2


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> RunningStack:
    yield from start_stack(
        tmp_path_factory.mktemp("sweep-stack"),
        config=CONFIG,
        secrets=SECRETS,
        extra_args=("--reconcile-seconds", str(SWEEP_SECONDS)),
    )


def directus(stack: RunningStack, method: str, path: str, fields: dict) -> dict:
    """As a Directus user would: the item is written and the sandbox's Flow calls the relay."""
    answer = requests.request(
        method,
        f"{stack.sandboxes}/directus/items/leads{path}",
        json=fields,
        headers={"Authorization": f"Bearer {DIRECTUS_API_TOKEN}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def rows_of(stack: RunningStack, keys: set[int]) -> list[dict]:
    """The rows of these items Clay kept (an update's key is text, as Directus sends a path's id)."""
    wanted = {str(key) for key in keys}
    return [
        d["body"]
        for d in stack.deliveries(destination="clay", status=200)
        if d.get("row_created") and str(d["body"].get("directus_id")) in wanted
    ]


def finished_sweeps(stack: RunningStack) -> float:
    """When the source's last sweep finished (0 before the first)."""
    item = stack.aws("dynamodb").get_item(
        TableName="clay-relay-local-RelayTable", Key={"pk": {"S": "reconcile#leads"}}, ConsistentRead=True
    )
    return float(item.get("Item", {}).get("last_finished_at", {"N": "0"})["N"])


def a_sweep_after(stack: RunningStack, moment: float) -> None:
    assert stack.wait_for(lambda: finished_sweeps(stack) > moment, timeout=60), "the sweep runs every 2 s"


def test_items_created_while_the_receiver_crashed_become_rows_exactly_once_after_the_next_sweep(stack, capsys):
    a_sweep_after(stack, 0)  # the first sweep starts watching
    faults = {"destination": "receiver", "mode": "crash", "times": 5}
    assert requests.post(f"{stack.gateway}/_local/faults", json=faults, timeout=5).status_code == 201

    items = [directus(stack, "POST", "", {"email": f"crash{n}@example.com", "first_name": "Lost"}) for n in range(5)]
    keys = {item["id"] for item in items}

    def dropped() -> list[dict]:
        return [d for d in stack.deliveries(destination="directus_flow") if d.get("dropped")]

    assert stack.wait_for(lambda: len(dropped()) >= 5, timeout=30), "Directus dropped the five events (502)"
    assert {d["status"] for d in dropped()} == {502}
    assert stack.wait_for(lambda: len(rows_of(stack, keys)) >= 5, timeout=90), "the next sweep found them"
    recovered_at = time.time()
    a_sweep_after(stack, recovered_at)
    a_sweep_after(stack, finished_sweeps(stack))  # two more sweeps: nothing more is sent
    rows = rows_of(stack, keys)
    assert Counter(str(row["directus_id"]) for row in rows) == {str(key): 1 for key in keys}, "each exactly once"
    assert {row["email"] for row in rows} == {f"crash{n}@example.com" for n in range(5)}
    assert all(row["directus_event"] == "leads.items.create" for row in rows)

    capsys.readouterr()
    assert stack.relay("--json", "status") == 0
    [sweep] = json.loads(capsys.readouterr().out)["directus_sweeps"]
    assert sweep["recovered_total"] == 5 and not sweep["failing"]
    assert stack.relay("--json", "trace", "crash0@example.com") == 0
    stages = [line["stage"] for line in json.loads(capsys.readouterr().out)["stages"]]
    assert stages[:2] == ["directus.reconciled", "clay.delivered"]


def test_an_update_of_a_mapped_field_becomes_a_row_with_the_items_email(stack):
    item = directus(stack, "POST", "", {"email": "update@example.com", "first_name": "Ada", "company": "Acme"})
    assert stack.wait_for(lambda: rows_of(stack, {item["id"]}), timeout=30)
    directus(stack, "PATCH", f"/{item['id']}", {"job_title": "CTO"})  # the Flow sends {"job_title": "CTO"} only

    def updated() -> list[dict]:
        return [row for row in rows_of(stack, {item["id"]}) if row["directus_event"] == "leads.items.update"]

    [row] = stack.wait_for(updated, timeout=30)
    assert row["email"] == "update@example.com"
    assert (row["first_name"], row["company_name"], row["job_title"]) == ("Ada", "Acme", "CTO")
    moment = time.time()
    a_sweep_after(stack, moment)
    a_sweep_after(stack, finished_sweeps(stack))
    assert len(updated()) == 1, "the sweep does not send it again"


def test_a_backfill_over_items_the_flow_already_sent_sends_nothing(stack, tmp_path, capsys):
    items = [directus(stack, "POST", "", {"email": f"backfilled{n}@example.com"}) for n in range(3)]
    keys = {item["id"] for item in items}
    assert stack.wait_for(lambda: len(rows_of(stack, keys)) == 3, timeout=30)
    before = len(stack.deliveries(destination="clay"))

    capsys.readouterr()
    command = ("--json", "backfill", "directus", "leads", "--target", "leads", "--state", str(tmp_path))
    assert stack.relay(*command) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["sent"] == 0 and summary["duplicates"] == summary["handled"] >= 3
    a_sweep_after(stack, time.time())
    assert len(stack.deliveries(destination="clay")) == before, "Clay received nothing more"
