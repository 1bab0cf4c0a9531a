"""The reconciliation sweep: Directus never retries a Flow's request, so every event the relay missed
(a deploy, a Lambda error, a throttle, a 5xx) would be lost at the source. Every `reconcile_minutes`
per source (checked every 5 minutes by DirectusReconcileFunction), the collection's items created or
updated since the source's checkpoint are listed, and a Clay row is queued for each create or
mapped-field update the relay has not seen: each lands exactly once, whichever path brought it first.

    checkpoint   the source's checkpoint item in the table (`reconcile#<source>`), its lease, its result
    sweep        one source: the window (or the new keys), paged through the one Directus reader
    missing      which listed items hold an event the relay has not seen (their claims), unseen rows

Each run publishes, per swept source, `ReconciledEvents` (rows queued for events found missing),
`ReconcileLagSeconds` (how far behind now the sweep's checkpoint is) and `ReconcileFailing` (1 while
its last sweep failed: the alarm's metric, published every run, 0 included). `relay status` shows
each source's last sweep and what it recovered.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from clay_relay.observability import MetricUnit, gauge, logger, mask_email
from clay_relay.reconcile import checkpoint as checkpoints
from clay_relay.reconcile.sweep import Sweep, seconds_left

if TYPE_CHECKING:
    from clay_relay.config import DirectusSource
    from clay_relay.reconcile.checkpoint import Checkpoint
    from clay_relay.runtime import Runtime

RESERVE_SECONDS = 20  # kept at the end of the invocation to save where the sweep got to
DESTINATION = "directus"  # the metrics' dimension: what the sweep reads


def swept_sources(runtime: Runtime) -> dict[str, DirectusSource]:
    """The sources with a sweep: `reconcile_minutes`, and one collection to read (a source that accepts
    any collection names none)."""
    sources = runtime.config.directus_sources.items()
    return {name: s for name, s in sources if s.reconcile_minutes is not None and s.collection is not None}


def due(runtime: Runtime, source: DirectusSource, checkpoint: Checkpoint, now: float) -> bool:
    every = runtime.settings.reconcile_every_seconds or 60 * (source.reconcile_minutes or 0)
    if checkpoint.last_started_at is None:
        return True
    return now - checkpoint.last_started_at >= every - min(60.0, every / 4)  # the schedule's own jitter


def reconcile(runtime: Runtime, context: object) -> dict[str, Any]:
    """Sweeps every source that is due; what each did (or why not). A run that cannot even start (a
    broken relay.json, the table out of reach) still says it failed, then fails."""
    try:
        return _reconcile(runtime, context)
    except Exception:
        gauge("ReconcileFailing", 1, MetricUnit.Count, destination=DESTINATION, breakdown={})
        raise


def _reconcile(runtime: Runtime, context: object) -> dict[str, Any]:
    sources = swept_sources(runtime)
    now = time.time()
    time_left = seconds_left(context, RESERVE_SECONDS)
    found = checkpoints.load(runtime.table, list(sources))
    report: dict[str, Any] = {}
    for name, source in sources.items():
        checkpoint = found[name]
        if not due(runtime, source, checkpoint, now):
            report[name] = "not due"
        elif time_left() <= 0:
            report[name] = "no time left in this run"
        else:
            report[name] = sweep_source(runtime, name, source, checkpoint, time_left)
        gauge(
            "ReconcileFailing",
            int(checkpoint.failing),
            MetricUnit.Count,
            destination=DESTINATION,
            breakdown={"source": name},
        )
    if not sources:  # nothing to sweep: still a datapoint, so the alarm tells a run from a missing one
        gauge("ReconcileFailing", 0, MetricUnit.Count, destination=DESTINATION, breakdown={})
    return report


def sweep_source(
    runtime: Runtime, name: str, source: DirectusSource, checkpoint: Checkpoint, time_left: Any
) -> dict[str, Any] | str:
    started = time.time()
    lease_until = started + max(60.0, time_left() + RESERVE_SECONDS)
    if not checkpoints.take_lease(runtime.table, checkpoint, started, lease_until):
        return "another sweep of it is under way"
    previous_start = checkpoint.last_started_at
    checkpoint.last_started_at, checkpoint.last_error = started, None
    sweep = None
    try:
        sweep = Sweep(runtime, name, source, checkpoint, started)
        sweep.run(time_left)
    except Exception as error:  # noqa: BLE001 - the sweep fails (the alarm), the next one tries again
        checkpoint.last_error = mask_email(f"{type(error).__name__}: {error}")
        logger.exception("the Directus sweep failed", extra={"source": name})
    counts = dict(sweep.counts) if sweep else {}
    recovered = sweep.recovered if sweep else 0
    checkpoint.last_result = counts
    finished = time.time()
    if not checkpoints.save(runtime.table, checkpoint, now=finished, recovered=recovered, lease_until=lease_until):
        logger.warning("the sweep's lease was taken over: its checkpoint is not saved", extra={"source": name})
    if checkpoint.last_error:
        checkpoint.last_error_at = finished
    else:
        checkpoint.last_ok_at = finished
    lag = sweep.lag_seconds(previous_start) if sweep else 0.0
    breakdown = {"source": name}
    gauge("ReconciledEvents", recovered, MetricUnit.Count, destination=DESTINATION, breakdown=breakdown)
    gauge("ReconcileLagSeconds", round(lag, 1), MetricUnit.Seconds, destination=DESTINATION, breakdown=breakdown)
    if recovered:
        logger.warning(
            "the sweep found Directus events the relay never received, and queued their rows",
            extra={"source": name, "found": counts},
        )
    result: dict[str, Any] = {**counts, "lag_seconds": round(lag, 1)}
    if checkpoint.last_error:
        result["error"] = checkpoint.last_error
    elif checkpoint.cursor_upto is not None:
        result["unfinished"] = "out of time: the next run goes on from where it stopped"
    return result
