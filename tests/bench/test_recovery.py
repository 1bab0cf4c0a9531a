"""bench/recovery.py: a backlog queued while Clay is down reaches Clay after it recovers, each job
once, whatever the parking setting (the simulation runs the real worker code on a virtual clock)."""

from __future__ import annotations

import random

import pytest

from bench import recovery


@pytest.mark.parametrize("parking", recovery.modes())
def test_a_backlog_queued_during_an_outage_is_delivered_once_each_after_clay_recovers(parking):
    random.seed(19)
    result = recovery.measure(outage=30, backlog=20, parking=parking, cap_seconds=3 * 3600, progress=False)
    assert result["drained"]
    assert (result["accepted"], result["delivered"], result["lost"], result["sent_twice"]) == (20, 20, 0, 0)
    assert result["outage_clay_requests"] > 0 and result["first_delivery_after_recovery_seconds"] >= 0
    assert result["invocation_errors"] == {} and result["logged_errors"] == {}
