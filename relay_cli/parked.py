"""Parked destinations, for `relay status` and the console: each lane (a destination; for Clay a
workspace, for forwarded Loops events an endpoint) that is down or still holds parked jobs, since when,
how many jobs it holds, and its last error.

While a destination is down the worker parks its jobs (hidden on the queue) and one of them probes it
every `probe_seconds`; when a delivery goes well again they are released oldest first at its rate
(clay_relay.worker.parking). Read from the lanes' items (clay_relay.store.parking): one Query lists
the lanes, and one counting Query per listed lane its parked jobs. A job that came back by itself (its
hiding ended, or it was dead-lettered past its retry horizon) may still be counted until the next
release strikes it off.
"""

from __future__ import annotations

import time

from clay_relay.observability import mask_email
from clay_relay.worker.parking import destination_of
from relay_cli.output import duration, iso, print_table, shorten
from relay_cli.stack import Stack


def parked_report(stack: Stack, now: float | None = None) -> dict:
    """Whether parking is on, its settings, and each listed lane (by name)."""
    policy = stack.config.delivery
    return {
        "park_when_down": policy.park_when_down,
        "probe_seconds": policy.probe_seconds,
        "lanes": lane_rows(stack, now or time.time()),
    }


def lane_rows(stack: Stack, now: float) -> list[dict]:
    rows = []
    for lane in stack.table.down_lanes():
        down = lane.down_since is not None
        rows.append(
            {
                "lane": lane.lane,
                "destination": destination_of(lane.lane),
                "state": "down" if down else "releasing",
                "down_since": iso(lane.down_since),
                "down_for_seconds": round(now - lane.down_since) if lane.down_since is not None else None,
                "parked_jobs": stack.table.parked_count(lane.lane),
                "last_error": mask_email(lane.reason) or None,
                "releasing_until": iso(lane.releasing_until) if lane.releasing_until > now else None,
            }
        )
    return sorted(rows, key=lambda row: row["lane"])


def state_text(row: dict) -> str:
    """`down since <time> (<how long>)`, or `back up, releasing`."""
    if row["state"] == "down":
        return f"down since {row['down_since']} ({duration(row['down_for_seconds'])})"
    return "back up, releasing"


def print_parked(report: dict) -> None:
    lanes = report["lanes"]
    if not lanes:
        if report["park_when_down"]:
            print("Parked destinations: none (no destination is down)")
        else:
            print("Parked destinations: none (parking is off: delivery.park_when_down; jobs retry on their own)")
        return
    print(
        "Parked destinations (their jobs wait on the queue; one probes every "
        f"{report['probe_seconds']} s, and all are released at the destination's rate once it is back)"
    )
    rows = [[r["lane"], state_text(r), r["parked_jobs"], shorten(r["last_error"], 60)] for r in lanes]
    print_table(["LANE", "STATE", "PARKED JOBS", "LAST ERROR"], rows)
