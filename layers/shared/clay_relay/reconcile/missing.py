"""Which of the items a sweep listed hold an event the relay has not seen.

For each item listed (its key, its mapped fields, whether it was created or updated in the window):
- the claim of its create (`event#<create id>`, see clay_relay.item_state) and, for an item updated in
  the window when updates are swept, the claim of an update to the state it is in now
  (`event#<update id>`) are read: one BatchGetItem per 100 keys (100 new items, 50 updated ones);
- the update's claim is there: the item's state was sent, nothing is missing;
- the create's claim is there: an update is missing when a mapped column differs from what that row
  carried (item_state.changed_since). A write-back of enrichment, or an edit of fields the source does
  not map, changes none: nothing is sent;
- neither is there: a create in the window is missing (its row is the item as it is now). An item
  created before the window and changed in it is *unverifiable*: the relay keeps no record of what it
  last sent of it (it was created before the relay or before the sweep's first run, or its claims are
  past `ledger_retention_days`), so it is left alone and counted;
- a missing row that is only waiting (held for Clay quota or a budget, or being retried before its
  claim: `ledger#<id>#held`, `ledger#<id>#retry`) is not queued again (one more read, for those only).
Reads are the only calls: what it costs grows with the items listed, never with the table.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from clay_relay import item_state

if TYPE_CHECKING:
    from clay_relay.directus_items import Key
    from clay_relay.store import RelayTable

WAITING = ("held", "retry")  # `ledger#<event id>#<suffix>` of a row that waits, unclaimed


@dataclass(frozen=True)
class Listed:
    """An item as the sweep listed it."""

    key: Key
    columns: dict[str, Any]  # its mapped fields, by Clay column (item_state's state)
    created_in_window: bool
    updated_in_window: bool


@dataclass
class Missing:
    """What the relay has not seen among the listed items, and how the others were counted."""

    creates: list[Listed] = field(default_factory=list)
    updates: list[Listed] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


def find_missing(
    table: RelayTable,
    items: list[Listed],
    *,
    origin: str,
    collection: str,
    updates: bool,
    defaults: Callable[[], dict[str, Any]],
) -> Missing:
    """`updates`: whether mapped-field updates are swept (full rows), not only creates. `defaults`: the
    collection's field defaults by column, read when a create's row must be compared."""
    ids = {}
    for item in items:
        create = item_state.create_event_id(origin, collection, item.key)
        changed = updates and item.updated_in_window
        update = item_state.update_event_id(origin, collection, item.key, item.columns) if changed else None
        ids[str(item.key)] = (create, update)
    wanted = [f"event#{event_id}" for pair in ids.values() for event_id in pair if event_id]
    claims = {entry["pk"]["S"].removeprefix("event#"): entry for entry in table.get_many(wanted)}
    missing = Missing()
    candidates: list[tuple[Listed, str, bool]] = []  # (item, the missing row's event id, an update?)
    for item in items:
        create, update = ids[str(item.key)]
        if update and update in claims:
            missing.counts["seen"] += 1
        elif create in claims:
            recorded = item_state.recorded_columns(claims[create])
            if updates and recorded is not None and item_state.changed_since(recorded, item.columns, defaults):
                candidates.append((item, update or create, True))
            else:
                missing.counts["seen"] += 1
        elif item.created_in_window:
            candidates.append((item, create, False))
        else:
            missing.counts["unverifiable"] += 1
    waiting = _waiting(table, [event_id for _, event_id, _ in candidates])
    for item, event_id, is_update in candidates:
        if event_id in waiting:
            missing.counts["waiting"] += 1
        else:
            (missing.updates if is_update else missing.creates).append(item)
    return missing


def _waiting(table: RelayTable, event_ids: list[str]) -> set[str]:
    if not event_ids:
        return set()
    pks = [f"ledger#{event_id}#{suffix}" for event_id in event_ids for suffix in WAITING]
    return {entry["pk"]["S"].split("#")[1] for entry in table.get_many(pks)}


def column_defaults(field_defaults: dict[str, Any], columns: dict[str, str] | None) -> dict[str, Any]:
    """The fields' defaults by the Clay column they travel in."""
    if columns is None:
        return dict(field_defaults)
    return {column: field_defaults[name] for name, column in columns.items() if name in field_defaults}
