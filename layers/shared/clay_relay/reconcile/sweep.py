"""One source's sweep: the collection's items created or updated since the checkpoint, read page by page
through the one Directus reader (keyset paging on the primary key, as `relay backfill` reads), and a
Clay row queued for each create or mapped-field update the relay has not seen (reconcile.missing).

What it lists, and when (the window ends `RECONCILE_SETTLE_SECONDS` ago, so a Flow event still on its
way is not taken for a lost one):
- dates (`created_field`, and `updated_field` with `on_update: full`): items whose created or updated
  time is in the window (since, upto]; the next window starts where this one ended. A window the
  invocation has no time to finish is kept (`cursor`) and finished by the next one;
- keys (a collection without `created_field`): creates only, by new primary keys (integers): the items
  after the last key checked, up to the highest key of the previous sweep.
The first sweep of a source only starts its checkpoint: what was lost before it is `relay backfill`'s.
The rows it queues are the rows the Flow's events would have made (clay_relay.directus.item_jobs), with
the same event ids, accepted at the ledger stage `directus.reconciled`: the worker's claims, Clay quota,
budgets and person dedupe treat them as any other.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from clay_relay import directus
from clay_relay.clay import check_row_size
from clay_relay.delivery_queue import MAX_BATCH_BYTES
from clay_relay.directus_items import DirectusFailed, DirectusItems, Key, relay_items
from clay_relay.errors import RelayError
from clay_relay.jobs import ClayRowJob, dump_job
from clay_relay.observability import logger
from clay_relay.reconcile.missing import Listed, column_defaults, find_missing

if TYPE_CHECKING:
    from clay_relay.config import DirectusSource
    from clay_relay.reconcile.checkpoint import Checkpoint
    from clay_relay.runtime import Runtime

PAGE_ITEMS = 100


def iso(moment: float) -> str:
    """Directus' own form of a time: `2026-12-06T17:08:20.230Z`."""
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def epoch(text: object) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


class Sweep:
    """The sweep of source `name` under way: its checkpoint is updated as it goes."""

    def __init__(self, runtime: Runtime, name: str, source: DirectusSource, checkpoint: Checkpoint, now: float) -> None:
        if source.collection is None:
            raise ValueError(f"directus source {name!r} accepts any collection: a sweep needs its `collection`")
        self.runtime, self.name, self.source, self.checkpoint = runtime, name, source, checkpoint
        self.collection, self.now = source.collection, now
        self.origin = f"directus/{name}"
        self.updates = source.on_update == "full" and bool(source.updated_field and source.created_field)
        self.counts: Counter[str] = Counter()
        self.echoes = runtime.config.write_back_fields(self.collection)
        self._defaults: dict[str, Any] | None = None
        self._items: DirectusItems | None = None

    @property
    def items(self) -> DirectusItems:
        if self._items is None:
            config = self.runtime.config
            self._items = relay_items(config, self.collection, self.source.key_field, event_id=f"reconcile:{self.name}")
        return self._items

    @property
    def recovered(self) -> int:
        return self.counts["created"] + self.counts["updated"]

    def run(self, time_left: Callable[[], float]) -> None:
        """Sweeps until done or `time_left()` runs short (then the checkpoint says where to go on)."""
        try:
            if self.source.created_field:
                self._dates(time_left)
            else:
                self._keys(time_left)
        except DirectusFailed as failed:
            if failed.retryable or failed.status not in (400, 403):
                raise
            dates = [f for f in (self.source.created_field, self.updated_field) if f]
            raise DirectusFailed(
                f"{failed} (may the Directus API secret's token read collection {self.collection!r} and its fields "
                f"{', '.join([self.source.key_field, *dates])}? a collection without "
                f"{' or '.join(dates) or 'them'}: set created_field / updated_field to null)",
                status=failed.status,
                detail=failed.detail,
            ) from None

    @property
    def updated_field(self) -> str | None:
        return self.source.updated_field if self.updates else None

    def lag_seconds(self, previous_start: float | None) -> float:
        """How far behind now the changes it has looked at reach: the end of its window; without dates,
        the previous sweep (the items it checks are those that existed then)."""
        if self.source.created_field:
            since = epoch(self.checkpoint.since)
            return max(0.0, self.now - since) if since is not None else 0.0
        return max(0.0, self.now - (previous_start or self.now))

    # --- the two ways to list -----------------------------------------------------------------------
    def _dates(self, time_left: Callable[[], float]) -> None:
        c = self.checkpoint
        settled = iso(self.now - self.runtime.settings.reconcile_settle_seconds)
        if c.since is None:
            c.since = settled  # the first sweep: from now on
            return
        upto = c.cursor_upto or settled
        if upto <= c.since:
            return
        created, updated = self.source.created_field, self.source.updated_field
        rule: dict[str, Any] = _window(str(created), c.since, upto)
        if self.updates:
            rule = {"_or": [rule, _window(str(updated), c.since, upto)]}
        since, until = epoch(c.since) or 0.0, epoch(upto) or self.now
        after = c.cursor_after
        while True:
            c.cursor_upto, c.cursor_after = upto, after
            if time_left() <= 0:
                return
            page = self.items.page(
                after, None, PAGE_ITEMS, fields=self._fields(created, self.updated_field), rules=[rule]
            )
            if not page:
                break
            listed = [
                Listed(
                    item[self.source.key_field],
                    directus.item_columns(self.source, item, self.echoes),
                    _within(item.get(str(created)), since, until),
                    self.updates and _within(item.get(str(updated)), since, until),
                )
                for item in page
            ]
            self._check(listed, page)
            after = page[-1][self.source.key_field]
        c.since, c.cursor_upto, c.cursor_after = upto, None, None

    def _keys(self, time_left: Callable[[], float]) -> None:
        c = self.checkpoint
        highest = self.items.last_key()
        if highest is not None and not isinstance(highest, int):
            raise ValueError(
                f"collection {self.collection!r} has no created_field and its keys are not integers: the sweep "
                "cannot tell new items (give the source its date_created field as created_field)"
            )
        if c.checked_key is None and c.upto_key is None:
            c.checked_key = c.upto_key = highest or 0  # the first sweep: from now on
            return
        after, upto = c.checked_key, c.upto_key
        while True:
            if time_left() <= 0:
                return  # checked_key says how far it got; the next sweep goes on from there
            page = self.items.page(after, upto, PAGE_ITEMS, fields=self._fields())
            if not page:
                break
            self._check([Listed(i[self.source.key_field], self._columns(i), True, False) for i in page], page)
            after = c.checked_key = page[-1][self.source.key_field]
        c.checked_key, c.upto_key = upto, highest or upto

    # --- checking a page and queueing what is missing ------------------------------------------------
    def _check(self, listed: list[Listed], page: list[dict[str, Any]]) -> None:
        self.counts["listed"] += len(listed)
        missing = find_missing(
            self.runtime.table,
            listed,
            origin=self.origin,
            collection=self.collection,
            updates=self.updates,
            defaults=self._column_defaults,
        )
        self.counts.update(missing.counts)
        by_key = {str(item[self.source.key_field]): item for item in page}
        jobs: list[ClayRowJob] = []
        for action, found in (("create", missing.creates), ("update", missing.updates)):
            for item in found:
                jobs += self._rows(action, item.key, by_key[str(item.key)])
        if jobs:
            self.runtime.queue.enqueue(jobs)
            for job in jobs:
                logger.info(
                    "a Directus event the relay never received, queued",
                    extra={
                        "source": self.name,
                        "event_id": job.event_id,
                        "key": job.lead.detail.get("key") if job.lead else None,
                    },
                )

    def _rows(self, action: str, key: Key, item: dict[str, Any]) -> list[ClayRowJob]:
        target = self.runtime.config.clay_targets[self.source.clay_target]
        try:
            jobs = directus.item_jobs(
                self.name,
                self.source,
                "create" if action == "create" else "update",
                self.collection,
                key,
                self._payload(item),
                email_column=target.email_column,
                stage="directus.reconciled",
            )
        except directus.Skipped:
            self.counts["skipped"] += 1
            return []
        except (RelayError, ValueError) as error:
            self.counts["refused"] += 1
            logger.warning("an item the sweep found cannot be a row", extra={"source": self.name, "why": str(error)})
            return []
        fitting = []
        for job in jobs:
            try:
                check_row_size(target, job.row, job.event_id)
            except RelayError:
                continue
            if len(dump_job(job).encode()) <= MAX_BATCH_BYTES:
                fitting.append(job)
        self.counts["refused"] += len(jobs) - len(fitting)
        self.counts["created" if action == "create" else "updated"] += len(fitting)
        return fitting

    def _payload(self, item: dict[str, Any]) -> dict[str, Any]:
        """The item's fields as a Flow's payload names them (mapped fields, or every field but Directus' own)."""
        mapped = self.source.columns()
        if mapped is None:
            return directus.item_columns(self.source, item, self.echoes)
        return {name: item.get(name) for name in mapped}

    def _columns(self, item: dict[str, Any]) -> dict[str, Any]:
        return directus.item_columns(self.source, item, self.echoes)

    def _fields(self, *dates: str | None) -> list[str]:
        mapped = self.source.columns()
        if mapped is None:
            return ["*"]
        return list(dict.fromkeys([self.source.key_field, *(d for d in dates if d), *mapped]))

    def _column_defaults(self) -> dict[str, Any]:
        """The fields' defaults (one Directus request, the first time a create's row is compared)."""
        if self._defaults is None:
            try:
                defaults = self.items.field_defaults()
            except DirectusFailed as failed:
                logger.warning("the collection's field defaults are unknown", extra={"why": str(failed)})
                defaults = {}
            self._defaults = column_defaults(defaults, self.source.columns())
        return self._defaults


def _window(field: str, since: str, upto: str) -> dict[str, Any]:
    return {"_and": [{field: {"_gt": since}}, {field: {"_lte": upto}}]}


def _within(value: object, since: float, until: float) -> bool:
    """Whether a created or updated time lies in the window (one Directus wrote some other way: yes)."""
    if value is None:
        return False
    moment = epoch(value)
    return moment is None or since < moment <= until + 0.001


def seconds_left(context: object, reserve: float) -> Callable[[], float]:
    """The invocation's time left, less `reserve` (what saving the checkpoint needs)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    started = time.monotonic()
    if remaining is None:
        return lambda: 900 - reserve - (time.monotonic() - started)
    return lambda: remaining() / 1000 - reserve
