"""`relay status` shows each Directus source's last reconciliation sweep: when, whether it failed and
why, what it recovered (creates and updates the Flow never delivered), in all, and how far behind now."""

from __future__ import annotations

import argparse
import json

from relay_cli import status
from tests.directus_relay import DirectusRelay as Relay
from tests.invocations import relay_stack


def sweeps_section(printed: str) -> list[str]:
    """The lines of `relay status`'s sweeps section (a Clay target may be called `leads` too)."""
    return printed.split("Directus sweeps (", 1)[1].splitlines()


def test_status_shows_each_sources_last_sweep_and_what_it_recovered(relay: Relay, aws, capsys, put_secret):
    stack = relay_stack(aws, local=True)
    capsys.readouterr()
    status.run(stack, argparse.Namespace(json=False))
    never = next(line for line in sweeps_section(capsys.readouterr().out) if line.startswith("  leads "))
    assert never.split()[:5] == ["leads", "15", "min", "-", "never"]

    relay.sweep()
    for n in range(3):
        relay.create(email=f"lost{n}@example.com")
    relay.sweep()
    capsys.readouterr()
    status.run(stack, argparse.Namespace(json=True))
    [row] = json.loads(capsys.readouterr().out)["directus_sweeps"]
    assert (row["source"], row["collection"], row["every_minutes"], row["failing"]) == ("leads", "leads", 15, False)
    assert (row["recovered_last"], row["recovered_total"], row["last_result"]["listed"]) == (3, 3, 3)
    assert row["by"] == "date_created/date_updated"

    put_secret("directus-api", {"url": f"{relay.directus_sandbox.base}/directus", "token": "revoked"})
    relay.sweep()
    capsys.readouterr()
    status.run(stack, argparse.Namespace(json=False))
    printed = capsys.readouterr().out
    assert "Directus sweeps" in printed
    line = next(line for line in sweeps_section(printed) if line.startswith("  leads "))
    assert "FAILED: DirectusFailed: Directus answered HTTP 401" in line
    status.run(stack, argparse.Namespace(json=True))
    [row] = json.loads(capsys.readouterr().out)["directus_sweeps"]
    assert row["failing"] and "INVALID_CREDENTIALS" in row["last_error"]
    assert (row["recovered_last"], row["recovered_total"]) == (0, 3), "what it recovered before stays counted"
