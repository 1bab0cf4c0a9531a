"""A source's sweep checkpoint: one item of the relay's table, keyed by pk (`reconcile#<source>`), read
and written through clay_relay.store like every other.

- `since` (dates): the end of the last window swept, an ISO time in UTC (Directus' own format);
  `checked_key`, `upto_key` (keys): items up to `checked_key` were checked; those up to `upto_key`
  existed at the last sweep and are checked by the next one (so a Flow event in flight is never taken
  for a lost one);
- `cursor`: a window left half way (the invocation ran out of time): its end and the last key done;
- `lease_until`: a sweep under way (another invocation leaves the source alone until then);
- what the last sweep did (`last_started_at`, `last_finished_at`, `last_ok_at`, `last_error`,
  `last_error_at`, `last_result`) and `recovered_total`, for `relay status` and the metrics.
Two writes per sweep (the lease, the result) and one read, whatever it finds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clay_relay.directus_items import Key
    from clay_relay.store import RelayTable

PREFIX = "reconcile#"
RESULT_COUNTS = ("listed", "seen", "waiting", "created", "updated", "unverifiable", "skipped", "refused")


def _key(value: dict[str, Any] | None) -> Key | None:
    return json.loads(value["S"]) if value else None


def _key_attribute(key: Key) -> dict[str, str]:
    return {"S": json.dumps(key)}


@dataclass
class Checkpoint:
    source: str
    since: str | None = None
    checked_key: Key | None = None
    upto_key: Key | None = None
    cursor_upto: str | None = None  # a window left half way: its end …
    cursor_after: Key | None = None  # … and the last key done in it
    lease_until: float = 0.0
    last_started_at: float | None = None
    last_finished_at: float | None = None
    last_ok_at: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    last_result: dict[str, int] = field(default_factory=dict)
    recovered_total: int = 0
    exists: bool = False

    @property
    def pk(self) -> str:
        return PREFIX + self.source

    @property
    def failing(self) -> bool:
        """Its last sweep failed (none succeeded since)."""
        return self.last_error_at is not None and (self.last_ok_at or 0) < self.last_error_at

    @classmethod
    def from_item(cls, source: str, item: dict[str, Any] | None) -> Checkpoint:
        if item is None:
            return cls(source)

        def number(name: str) -> float | None:
            return float(item[name]["N"]) if name in item else None

        cursor = item.get("cursor", {}).get("M")
        result = item.get("last_result", {}).get("M", {})
        return cls(
            source,
            since=item.get("since", {}).get("S"),
            checked_key=_key(item.get("checked_key")),
            upto_key=_key(item.get("upto_key")),
            cursor_upto=cursor["upto"]["S"] if cursor else None,
            cursor_after=_key(cursor.get("after")) if cursor else None,
            lease_until=number("lease_until") or 0.0,
            last_started_at=number("last_started_at"),
            last_finished_at=number("last_finished_at"),
            last_ok_at=number("last_ok_at"),
            last_error=item.get("last_error", {}).get("S"),
            last_error_at=number("last_error_at"),
            last_result={name: int(value["N"]) for name, value in result.items()},
            recovered_total=int(number("recovered_total") or 0),
            exists=True,
        )


def load(table: RelayTable, sources: list[str]) -> dict[str, Checkpoint]:
    """The checkpoints of these sources (one batch read)."""
    items = (
        {item["pk"]["S"]: item for item in table.get_many([PREFIX + source for source in sources])} if sources else {}
    )
    return {source: Checkpoint.from_item(source, items.get(PREFIX + source)) for source in sources}


def take_lease(table: RelayTable, checkpoint: Checkpoint, now: float, until: float) -> bool:
    """The source is this invocation's to sweep until `until`; False when another sweep holds it."""
    return table.update_if(
        checkpoint.pk,
        "SET #lease_until = :until, #last_started_at = :now",
        "attribute_not_exists(#lease_until) OR #lease_until < :now",
        {"#lease_until": "lease_until", "#last_started_at": "last_started_at"},
        {":until": {"N": f"{until:.3f}"}, ":now": {"N": f"{now:.3f}"}},
    )


def save(table: RelayTable, checkpoint: Checkpoint, *, now: float, recovered: int, lease_until: float) -> bool:
    """The sweep's progress and result, and the lease given back (unless another sweep took it over:
    then False and nothing is written)."""
    values: dict[str, Any] = {
        ":now": {"N": f"{now:.3f}"},
        ":mine": {"N": f"{lease_until:.3f}"},
        ":recovered": {"N": str(recovered)},
        ":last_result": {"M": {name: {"N": str(value)} for name, value in checkpoint.last_result.items()}},
    }
    sets = {"last_finished_at": ":now", "last_result": ":last_result"}
    removes = ["lease_until"]
    if checkpoint.since is not None:
        sets["since"] = ":since"
        values[":since"] = {"S": checkpoint.since}
    for name in ("checked_key", "upto_key"):
        if (value := getattr(checkpoint, name)) is not None:
            sets[name] = f":{name}"
            values[f":{name}"] = _key_attribute(value)
    if checkpoint.cursor_upto is not None:
        cursor: dict[str, Any] = {"upto": {"S": checkpoint.cursor_upto}}
        if checkpoint.cursor_after is not None:
            cursor["after"] = _key_attribute(checkpoint.cursor_after)
        sets["cursor"] = ":cursor"
        values[":cursor"] = {"M": cursor}
    else:
        removes.append("cursor")
    if checkpoint.last_error is None:
        sets["last_ok_at"] = ":now"
    else:
        sets.update(last_error=":last_error", last_error_at=":now")
        values[":last_error"] = {"S": checkpoint.last_error[:1000]}
    names = {f"#{name}": name for name in [*sets, *removes, "recovered_total"]}
    update = (
        f"SET {', '.join(f'#{name} = {value}' for name, value in sets.items())} "
        f"ADD #recovered_total :recovered REMOVE {', '.join(f'#{name}' for name in removes)}"
    )
    return table.update_if(checkpoint.pk, update, "#lease_until = :mine", names, values)
