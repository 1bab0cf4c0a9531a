"""The Directus sources' reconciliation sweeps, for `relay status`: each source's last sweep (when,
whether it failed and why), what it found (items listed, events recovered: creates and mapped-field
updates the Flow never delivered), what it recovered in all, and how far behind now it looks.

Read from each source's checkpoint item (`reconcile#<source>`, clay_relay.reconcile.checkpoint): one
batch read, whatever the sweeps found.
"""

from __future__ import annotations

import time

from clay_relay.reconcile.checkpoint import load
from clay_relay.reconcile.sweep import epoch
from relay_cli.output import ago, duration, iso, print_table, shorten
from relay_cli.stack import Stack


def sweep_rows(stack: Stack) -> list[dict]:
    sources = stack.config.directus_sources
    checkpoints = load(stack.table, list(sources))
    now = time.time()
    rows = []
    for name, source in sources.items():
        c = checkpoints[name]
        if source.reconcile_minutes is None and not c.exists:
            continue
        swept = source.reconcile_minutes is not None and source.collection is not None
        since = epoch(c.since)
        rows.append(
            {
                "source": name,
                "collection": source.collection,
                "every_minutes": source.reconcile_minutes if swept else None,
                "not_swept": None if swept else "off" if source.reconcile_minutes is None else "no collection",
                "by": "date_created/date_updated" if source.created_field else "new primary keys (creates only)",
                "last_sweep_at": iso(c.last_finished_at),
                "last_sweep_age_seconds": None if c.last_finished_at is None else round(now - c.last_finished_at),
                "failing": c.failing,
                "last_error": c.last_error if c.failing else None,
                "last_result": c.last_result,
                "recovered_last": c.last_result.get("created", 0) + c.last_result.get("updated", 0),
                "recovered_total": c.recovered_total,
                "changes_up_to": c.since,
                "lag_seconds": None if since is None else round(now - since),
                "unfinished_window": c.cursor_upto is not None,
            }
        )
    return rows


def print_sweeps(rows: list[dict]) -> None:
    print("Directus sweeps (events the Flow never delivered, recovered as Clay rows)")
    if not rows:
        print("  none: no Directus source has reconcile_minutes")
        return
    table = []
    for row in rows:
        when = ago(None if row["last_sweep_age_seconds"] is None else time.time() - row["last_sweep_age_seconds"])
        outcome = "never" if when is None else ("FAILED: " + (row["last_error"] or "") if row["failing"] else "ok")
        found = row["last_result"]
        table.append(
            [
                row["source"],
                row["not_swept"] or f"{row['every_minutes']} min",
                when and f"{when} ago",
                shorten(outcome, 60),
                found.get("listed"),
                f"{row['recovered_last']} ({found.get('created', 0)} creates, {found.get('updated', 0)} updates)",
                row["recovered_total"],
                None if row["lag_seconds"] is None else duration(row["lag_seconds"]),
            ]
        )
    headers = ["SOURCE", "EVERY", "LAST SWEEP", "OUTCOME", "LISTED", "RECOVERED", "IN ALL", "LAG"]
    print_table(headers, table)
