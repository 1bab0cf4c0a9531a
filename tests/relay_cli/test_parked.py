"""`relay status` shows the destinations whose jobs are parked (relay_cli.parked): each lane that is
down, since when and for how long, how many jobs it holds and its last error (masked); one that is back
and still releasing says so; with nothing parked it says so in one line. The same in `--json`."""

from __future__ import annotations

import argparse
import json
import re
import time

import pytest

from clay_relay.delivery_queue import DeliveryQueue
from clay_relay.store import RelayTable
from clay_relay.store.parking import ParkedJob
from relay_cli import status
from relay_cli.output import iso
from relay_cli.stack import Stack
from tests.clay_relay.worker.test_worker import row_job
from tests.destinations import Answer
from tests.invocations import relay_stack
from tests.queues import received_records, run_worker

LANE = "clay:default"  # relay.json's `leads` target, in its workspace
CLAY_PATH = "/clay/webhooks/leads-1"


@pytest.fixture
def stack(aws) -> Stack:
    return relay_stack(aws, local=True)


def parked_outage(lane: str, jobs: int, down_for: float, reason: str) -> float:
    """What the worker leaves in the table when it parked `jobs` of `lane`, `down_for` seconds ago: since when."""
    table, since = RelayTable(), time.time() - down_for
    table.mark_down(lane, reason, since, 10)
    table.park(lane, [ParkedJob(f"message-{lane}-{n}", f"receipt-{n}", since + n) for n in range(jobs)], since, 600)
    return since


def printed_status(stack: Stack, capsys) -> str:
    capsys.readouterr()
    status.run(stack, argparse.Namespace(json=False))
    return capsys.readouterr().out


def json_status(stack: Stack, capsys) -> dict:
    capsys.readouterr()
    status.run(stack, argparse.Namespace(json=True))
    return json.loads(capsys.readouterr().out)


def parked_section(printed: str) -> list[str]:
    lines = printed.split("Parked destinations", 1)[1].split("\n\n", 1)[0].splitlines()
    return ["Parked destinations" + lines[0], *lines[1:]]


def cells(row: str) -> list[str]:
    return re.split(r"\s{2,}", row.strip())


def test_a_down_lane_is_listed_since_when_with_its_parked_jobs_and_its_last_error_masked(stack, capsys):
    since = parked_outage(LANE, 3, 300, "clay answered HTTP 503: no room for ada.lovelace@example.com")

    section = parked_section(printed_status(stack, capsys))
    assert section[0].startswith("Parked destinations (their jobs wait on the queue; one probes every 5 s")
    assert section[1].split() == ["LANE", "STATE", "PARKED", "JOBS", "LAST", "ERROR"]
    [row] = section[2:]
    name, state, parked, error = cells(row)
    assert (name, parked, error) == (LANE, "3", "clay answered HTTP 503: no room for a***@example.com")
    assert re.fullmatch(rf"down since {re.escape(iso(since))} \(\d+ min\)", state), "and for how long"

    [lane] = json_status(stack, capsys)["parked"]["lanes"]
    assert lane.pop("down_for_seconds") >= 300
    assert lane == {
        "lane": LANE,
        "destination": "clay",
        "state": "down",
        "down_since": iso(since),
        "parked_jobs": 3,
        "last_error": "clay answered HTTP 503: no room for a***@example.com",
        "releasing_until": None,
    }


def test_a_lane_back_up_and_still_releasing_says_so_until_its_last_parked_job_is_let_go(stack, capsys):
    parked_outage("forward:archive", 2, 60, "forward answered connect timeout")
    table, now = RelayTable(), time.time()
    assert table.start_release("forward:archive", now, 30)  # a probe went through: the lane is back
    table.unpark("forward:archive", ["message-forward:archive-0"])
    table.end_release("forward:archive", now + 0.1, more=True)  # one let go, one more to come

    [row] = parked_section(printed_status(stack, capsys))[2:]
    assert cells(row) == ["forward:archive", "back up, releasing", "1", "forward answered connect timeout"]
    [lane] = json_status(stack, capsys)["parked"]["lanes"]
    assert (lane["state"], lane["down_since"], lane["parked_jobs"]) == ("releasing", None, 1)

    assert table.start_release("forward:archive", now + 1, 30)
    table.unpark("forward:archive", ["message-forward:archive-1"])
    table.end_release("forward:archive", now + 1.1, more=False)
    assert parked_section(printed_status(stack, capsys)) == ["Parked destinations: none (no destination is down)"]


def test_with_nothing_parked_it_says_so_in_one_line_and_whether_parking_is_off(aws, use_config, tmp_path, capsys):
    stack = relay_stack(aws, local=True)
    assert parked_section(printed_status(stack, capsys)) == ["Parked destinations: none (no destination is down)"]
    assert json_status(stack, capsys)["parked"] == {"park_when_down": True, "probe_seconds": 5, "lanes": []}

    use_config(lambda config: config.setdefault("delivery", {}).update(park_when_down=False))
    stack = relay_stack(aws, local=True, config_path=tmp_path / "relay.json")
    assert parked_section(printed_status(stack, capsys)) == [
        "Parked destinations: none (parking is off: delivery.park_when_down; jobs retry on their own)"
    ]


def test_the_lanes_the_worker_parks_in_an_outage_are_listed_each_with_its_jobs(
    stack, aws, http_stub, put_secret, capsys
):
    http_stub.answer(CLAY_PATH, Answer(503))
    put_secret("clay-webhooks-leads", [http_stub.url(CLAY_PATH)])
    DeliveryQueue().enqueue([row_job(1), row_job(2), row_job(3)])
    records = received_records(aws.ref("DeliveryQueue"), 3)
    assert run_worker(records) == {record["messageId"] for record in records}  # all three parked

    report = json_status(stack, capsys)
    [lane] = report["parked"]["lanes"]
    assert (lane["lane"], lane["state"], lane["parked_jobs"]) == (LANE, "down", 3)
    assert lane["last_error"].startswith("clay answered HTTP 503")
    assert report["delivery_queue"]["in_flight"] == 3, "parked jobs wait hidden on the queue"
