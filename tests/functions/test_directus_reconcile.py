"""DirectusReconcileFunction, as EventBridge Scheduler invokes it every 5 minutes: each source is swept
every `reconcile_minutes` (RECONCILE_EVERY_SECONDS in the local stack), and every run says per source
whether its last sweep failed (the alarm's metric), 0 included."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from clay_relay.config import DirectusSource
from clay_relay.reconcile import due
from clay_relay.reconcile.checkpoint import Checkpoint
from clay_relay.runtime import get_runtime
from tests.destinations import DIRECTUS_API_TOKEN
from tests.invocations import LambdaContext, load_handler

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

SCHEDULED = {"source": "aws.scheduler", "detail-type": "Scheduled Event", "detail": "{}"}


def metrics_printed(printed: str) -> dict[tuple[str, str], float]:
    """(metric, source) → value of the EMF blobs printed."""
    found = {}
    for line in printed.splitlines():
        try:
            blob = json.loads(line)
        except ValueError:
            continue
        if isinstance(blob, dict) and "_aws" in blob:
            for metric in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                found[metric["Name"], blob.get("source", "")] = blob[metric["Name"]][0]
    return found


@pytest.fixture
def handler(aws, destinations, relay_env):
    relay_env(RECONCILE_SETTLE_SECONDS=0)
    return load_handler("directus_reconcile")


def test_a_run_sweeps_each_source_and_publishes_what_it_found(handler, capsys):
    assert handler(SCHEDULED, LambdaContext()) == {"leads": {"lag_seconds": 0.0}}, "the first sweep starts watching"
    published = metrics_printed(capsys.readouterr().out)
    assert published[("ReconcileFailing", "leads")] == 0
    assert published[("ReconciledEvents", "leads")] == 0
    assert ("ReconcileLagSeconds", "leads") in published


def test_a_source_is_swept_every_reconcile_minutes_not_at_every_run(handler):
    handler(SCHEDULED, LambdaContext())
    assert handler(SCHEDULED, LambdaContext()) == {"leads": "not due"}


def test_a_source_is_due_once_its_minutes_have_passed_give_or_take_the_schedules_jitter():
    every_15 = DirectusSource(clay_target="leads", reconcile_minutes=15)
    runtime = SimpleNamespace(settings=SimpleNamespace(reconcile_every_seconds=None))
    assert due(runtime, every_15, Checkpoint("leads"), 1000.0), "never swept"
    swept = Checkpoint("leads", last_started_at=1000.0)
    assert not due(runtime, every_15, swept, 1000.0 + 10 * 60)
    assert due(runtime, every_15, swept, 1000.0 + 14 * 60 + 5), "a 5-minute tick a few seconds early still counts"
    local = SimpleNamespace(settings=SimpleNamespace(reconcile_every_seconds=2))
    assert due(local, every_15, swept, 1002.0), "--reconcile-seconds replaces reconcile_minutes"


def backdate(minutes: float) -> None:
    """As if the last sweep began `minutes` earlier."""
    table = get_runtime().table
    started = table.get("reconcile#leads")["last_started_at"]["N"]
    table.update_if(
        "reconcile#leads",
        "SET #s = :t",
        "attribute_exists(pk)",
        {"#s": "last_started_at"},
        {":t": {"N": str(float(started) - 60 * minutes)}},
    )


def test_a_failing_sweep_keeps_the_alarm_metric_up_at_every_run_until_one_succeeds(
    handler, capsys, put_secret, destinations
):
    handler(SCHEDULED, LambdaContext())
    put_secret("directus-api", "REPLACE_ME")
    backdate(15)
    capsys.readouterr()
    answer = handler(SCHEDULED, LambdaContext())
    assert "still holds the placeholder" in answer["leads"]["error"]
    assert metrics_printed(capsys.readouterr().out)[("ReconcileFailing", "leads")] == 1
    assert handler(SCHEDULED, LambdaContext()) == {"leads": "not due"}
    assert metrics_printed(capsys.readouterr().out)[("ReconcileFailing", "leads")] == 1, "until a sweep succeeds"
    put_secret("directus-api", {"url": "http://127.0.0.1:9/directus", "token": "t"})
    backdate(15)
    handler(SCHEDULED, LambdaContext())
    assert metrics_printed(capsys.readouterr().out)[("ReconcileFailing", "leads")] == 1, "unreachable: failing still"
    put_secret("directus-api", {"url": f"{destinations.base}/directus", "token": DIRECTUS_API_TOKEN})
    backdate(15)
    assert "error" not in handler(SCHEDULED, LambdaContext())["leads"]
    assert metrics_printed(capsys.readouterr().out)[("ReconcileFailing", "leads")] == 0


def test_a_run_with_no_source_to_sweep_still_says_none_is_failing(aws, use_config, capsys):
    use_config(lambda c: c["directus_sources"]["leads"].update(reconcile_minutes=None))
    assert load_handler("directus_reconcile")(SCHEDULED, LambdaContext()) == {}
    assert metrics_printed(capsys.readouterr().out) == {("ReconcileFailing", ""): 0}


def test_a_run_that_cannot_start_says_it_failed_and_fails(aws, relay_env, tmp_path, capsys):
    broken = tmp_path / "relay.json"
    broken.write_text("{")
    relay_env(RELAY_CONFIG_PATH=broken)
    with pytest.raises(Exception, match="cannot read relay configuration"):
        load_handler("directus_reconcile")(SCHEDULED, LambdaContext())
    assert metrics_printed(capsys.readouterr().out) == {("ReconcileFailing", ""): 1}
