"""Full rows, before anything is claimed: a Directus update of a source with `on_update: full` becomes
the row of its item as the item is now, read from Directus' items API, with the event id of that
state (clay_relay.item_state). One request per batch and collection (`filter[<key>][_in]`, `fields`
limited to the mapping), through the outbound helpers (only where the configuration says, no redirects).

- an item deleted before the read is not sent: settled `gone`, counted (`DirectusItemsGone`) and
  recorded in its lead's ledger (`directus.gone`);
- Directus failing, timing out or out of reach, or its API secret unusable: the rows are retried like
  any delivery (backoff, the retry horizon, then the dead-letter queue); while the circuit is open for
  Directus they are not read;
- a refusal (401, 403, another 4xx, a redirect): the rows are dead-lettered with Directus' message.
The receiver's event id stays in the ledger, as the event the row was accepted with.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from clay_relay import item_state, javascript
from clay_relay.clay import row_bytes
from clay_relay.directus import item_columns
from clay_relay.directus_items import DirectusFailed, api_secret, relay_items
from clay_relay.jobs import ClayRowJob
from clay_relay.ledger.entries import entry, lead_ref
from clay_relay.observability import count, logger, mask_email
from clay_relay.runtime import get_runtime
from clay_relay.secrets import SecretUnavailable
from clay_relay.store import Failure
from clay_relay.worker.batch import Settlement

if TYPE_CHECKING:
    from clay_relay.config import DirectusSource, RelayConfig
    from clay_relay.store import RelayTable
    from clay_relay.worker.batch import Batch, Plan

LANE = "directus"  # paced and left alone with the write-backs: one Directus


@dataclass(frozen=True)
class ItemRow:
    """A queued update row of an item, waiting for its full row."""

    plan: Plan
    source: DirectusSource
    collection: str
    key: str


def read_full_rows(batch: Batch, config: RelayConfig, table: RelayTable) -> None:
    """The batch's update rows of full-row sources, as their items are now (one read per collection)."""
    groups: dict[tuple[str, str], list[ItemRow]] = defaultdict(list)
    for plan in batch.plans.values():
        if (row := _update_row(plan, config)) is not None:
            groups[row.plan.parsed.origin, row.collection].append(row)
    gone: list[ItemRow] = []
    for rows in groups.values():
        gone += _read(batch, config, rows)
    if gone:
        _record_gone(table, gone, config)


def _update_row(plan: Plan, config: RelayConfig) -> ItemRow | None:
    job = plan.job
    if not (isinstance(job, ClayRowJob) and plan.open and not plan.failure and job.lead and job.lead.aliases):
        return None
    source = config.directus_sources.get(job.origin.removeprefix("directus/"))
    event = str(job.lead.detail.get("event") or "")
    if source is None or source.on_update != "full" or not event.endswith(".update"):
        return None
    alias = job.lead.aliases[0].removeprefix("directus#")  # directus#<collection>/<key>
    collection, _, key = alias.rpartition("/")
    return ItemRow(plan, source, collection, key) if collection and key else None


def _read(batch: Batch, config: RelayConfig, rows: list[ItemRow]) -> list[ItemRow]:
    """Reads the rows' items; the rows whose item is gone."""
    runtime = get_runtime()
    first = rows[0]
    if why := runtime.breaker.why_open(LANE):
        _failed(batch, rows, f"Directus unavailable, its items not read (last error: {why})")
        return []
    try:
        items = relay_items(config, first.collection, first.source.key_field, event_id=first.plan.parsed.event_id)
    except SecretUnavailable as error:
        _failed(batch, rows, f"the directus API secret is unusable: {error}")
        return []
    except ValueError as error:
        _dead(batch, rows, f"cannot read the item from Directus: {error}")
        return []
    mapped = first.source.columns()
    runtime.pacer.wait(LANE, batch.policy.rates_per_second["directus"], runtime.settings.worker_max_concurrency)
    try:
        found = items.by_keys([row.key for row in rows], list(mapped) if mapped is not None else ["*"])
    except DirectusFailed as failed:
        reason = f"Directus answered the read of {first.collection!r} items: {failed}"
        if failed.retryable:
            if failed.status is None or failed.status >= 500:
                runtime.breaker.trip(LANE, batch.policy.min_backoff_seconds / 2, str(failed))
            _failed(batch, rows, reason)
        else:
            _dead(batch, rows, f"{reason} (the token of secret {api_secret(config)!r} must be able to read it)")
        return []
    runtime.breaker.close(LANE)
    echoes = config.write_back_fields(first.collection)
    gone = []
    for row in rows:
        item = found.get(row.key)
        if item is None:
            gone.append(row)
            row.plan.settlement = Settlement.GONE
            continue
        _take(batch, config, row, item_columns(row.source, item, echoes))
    return gone


def _take(batch: Batch, config: RelayConfig, row: ItemRow, columns: dict[str, Any]) -> None:
    """The job becomes its item's full row, under the event id of the item's state."""
    job = row.plan.job_as(ClayRowJob)
    if prototype := javascript.prototype_keys(columns):
        _dead(batch, [row], f"the item's fields hold keys JavaScript reads as an object's prototype: {prototype[:3]}")
        return
    meta = row.source.metadata
    full = {**columns, **{c: job.row[c] for c in (meta.event, meta.collection, meta.key) if c and c in job.row}}
    target = config.clay_targets.get(job.target)
    event_id = item_state.update_event_id(job.origin, row.collection, row.key, columns)
    if target is not None and (size := row_bytes(target, full, event_id)) > target.max_row_bytes:
        _dead(batch, [row], f"the item's full row would be {size} bytes; Clay accepts at most {target.max_row_bytes}")
        return
    lead = job.lead
    if lead is not None:  # by its email now that the row has it (the Flow's update may not have carried it)
        lead = lead_ref(
            full.get(target.email_column if target else "email"),
            aliases=lead.aliases,
            accepted=lead.accepted,
            accepted_event_id=lead.accepted_event_id or job.event_id,
            detail=lead.detail,
        )
    row.plan.job = job.model_copy(update={"row": full, "event_id": event_id, "lead": lead})


def _failed(batch: Batch, rows: list[ItemRow], reason: str) -> None:
    """Retried (by the lanes, as a failure before delivery)."""
    for row in rows:
        row.plan.failure = reason
    batch.failures[LANE] = Failure(mask_email(reason), "retrying", rows[0].plan.parsed.origin, time.time())


def _dead(batch: Batch, rows: list[ItemRow], reason: str) -> None:
    for row in rows:
        batch.dead_letter(row.plan, reason)


def _record_gone(table: RelayTable, rows: list[ItemRow], config: RelayConfig) -> None:
    puts = []
    for row in rows:
        job = row.plan.job_as(ClayRowJob)
        count("DirectusItemsGone", destination="clay")
        logger.info(
            "the item was deleted before its full row was read: not sent",
            extra={"event_id": job.event_id, "collection": row.collection, "key": row.key},
        )
        if job.lead is not None:
            item = entry(
                job.lead,
                "directus.gone",
                "gone",
                event_id=job.event_id,
                retention_days=config.ledger_retention_days,
                accepted_at=job.accepted_at,
                detail={"collection": row.collection, "key": row.key},
            )
            puts.append({**item, "pk": {"S": f"ledger#{job.event_id}#gone"}})
    try:
        table.write_batch(puts)
    except Exception:  # noqa: BLE001 - the ledger never stops the batch
        count("LedgerWriteFailed")
        logger.warning("could not record the items that were gone; delivery goes on")
