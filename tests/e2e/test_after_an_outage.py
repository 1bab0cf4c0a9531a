"""After an outage, on the local stack: while the sandbox Clay answers every request 503, Directus
creates are still accepted and their rows are parked; `relay status` shows the Clay lane down with
its parked jobs; when Clay is back, every row reaches it exactly once and `relay status` no longer
lists the lane. Probes and backoffs are a second here (the stack's relay.json)."""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections import Counter

import pytest
import requests

from tests.e2e.conftest import E2E_CONFIG, E2E_DELIVERY, RunningStack, start_stack

pytestmark = pytest.mark.e2e

ROWS = 20
LANE = "clay:default"  # the `leads` target's workspace
DEADLINE = 120.0
CONFIG = copy.deepcopy(E2E_CONFIG)
# A horizon long enough that no row is dead-lettered while Clay is down; a probe every second.
CONFIG["delivery"] = {**E2E_DELIVERY, "retry_horizon_seconds": 600}


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> RunningStack:
    yield from start_stack(tmp_path_factory.mktemp("outage-stack"), config=CONFIG)


def status(stack: RunningStack, capsys) -> dict:
    """`relay --local --json status`, in-process."""
    capsys.readouterr()
    assert stack.relay("--json", "status") == 0
    return json.loads(capsys.readouterr().out)


def parked_lanes(stack: RunningStack, capsys) -> dict[str, dict]:
    return {lane["lane"]: lane for lane in status(stack, capsys)["parked"]["lanes"]}


def test_rows_parked_while_clay_is_down_reach_it_once_each_when_it_is_back(stack, capsys):
    fault = {"destination": "clay", "status": 503, "times": 100_000}  # until cleared below
    assert requests.post(f"{stack.gateway}/_local/faults", json=fault, timeout=5).status_code == 201
    run = uuid.uuid4().hex[:8]
    event_ids = []
    for n in range(ROWS):
        create = {
            "event": "leads.items.create",
            "collection": "leads",
            "key": f"{run}-{n}",
            "payload": {"email": f"outage-{n}-{run}@example.com", "first_name": "Ada", "company": f"Co {n}"},
        }
        answer = stack.post_directus(create)
        assert answer.status_code == 202, answer.text
        event_ids += [row["event_id"] for row in answer.json()["rows"]]
    assert len(event_ids) == ROWS

    # Every row is parked: the lane is down, and holds them all.
    lane = stack.wait_for(
        lambda: (lanes := parked_lanes(stack, capsys)).get(LANE, {}).get("parked_jobs") == ROWS and lanes[LANE],
        DEADLINE,
    )
    assert lane, f"relay status did not show the {ROWS} rows parked: {parked_lanes(stack, capsys)}"
    assert lane["state"] == "down" and lane["down_since"] and "HTTP 503" in lane["last_error"]
    capsys.readouterr()
    assert stack.relay("status") == 0
    printed = capsys.readouterr().out
    assert f"{LANE}  down since {lane['down_since']}" in printed

    def rows_kept() -> Counter:
        return Counter(
            entry["headers"].get("x-relay-event-id")
            for entry in stack.deliveries(destination="clay", status=200)
            if entry["headers"].get("x-relay-event-id") in event_ids
        )

    assert rows_kept() == Counter(), "nothing reached Clay while it was down"
    assert requests.delete(f"{stack.gateway}/_local/faults", timeout=5).status_code in (200, 204)
    back = time.monotonic()

    assert stack.wait_for(lambda: set(rows_kept()) == set(event_ids), DEADLINE), rows_kept()
    drained = time.monotonic() - back
    assert stack.wait_for(lambda: LANE not in parked_lanes(stack, capsys), DEADLINE), parked_lanes(stack, capsys)
    kept = rows_kept()
    assert kept == dict.fromkeys(event_ids, 1), "each row reached Clay once"
    made = [e for e in stack.deliveries(destination="clay", status=200) if e["headers"].get("x-relay-event-id") in kept]
    assert all(e.get("row_created") for e in made), "and none had to be dropped by Clay's auto-dedupe"
    refused = len([e for e in stack.deliveries(destination="clay") if e["status"] == 503])
    print(
        f"\nafter an outage: {ROWS} rows parked, all at Clay {drained:.1f} s after it was back; Clay refused {refused}"
    )
