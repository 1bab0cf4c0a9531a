"""A Directus item's state as the relay knows it, and the event ids of the item's Clay rows.

An item's *state* is the values of its source's mapped fields, by Clay column. Values are compared
in a canonical form, so a value reads the same whether a Flow's payload carried it or Directus' items
API answered it: numbers and numeric text as numbers (`"5"`, `5`, `5.0`), `true`/`false` text as
booleans, `null` and `""` as no value, objects and lists as sorted JSON.

The event ids of an item's rows (`clay_relay.directus` builds them; a Flow's event, `relay backfill`
and the reconciliation sweep compute the same, so the worker's claim sends each once):
- a create: `origin, "create", collection, key`: one per item, whatever brought it and whatever its
  payload (a Flow's create carries the submitted fields, a backfill the whole item);
- an update with full rows (`on_update: full`): `origin, "update", collection, key, state`: one per
  state of the item, computed by the worker once it has read the item, and by the sweep from what it
  listed; a second Flow event that finds the item in the same state is a duplicate;
- an update with `on_update: changed`, and a delete: the event's own content, as before full rows.

Each Clay row's claim keeps the hash of every column it carried (`columns`, see `claim_columns`):
the sweep tells by them whether an item changed since the relay last sent it. A write-back of
enrichment, or an edit of fields the source does not map, leaves every mapped column as it was.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from clay_relay.jobs import ClayRowJob, DeliveryJob, content_id

if TYPE_CHECKING:
    from clay_relay.config import DirectusSource, RelayConfig

_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
CLAIM_ATTRIBUTE = "columns"  # the claim's map of column → value hash
BOOKKEEPING = ("user_created", "user_updated")  # Directus' own fields, never a lead's


def canonical(value: object) -> str:
    """The value's canonical text: equal for the same value however it was written."""
    if value is None or value == "":
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number(str(value))
    if isinstance(value, str):
        if value in ("true", "false"):
            return value
        return _number(value) if _NUMBER.fullmatch(value) else json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{json.dumps(str(k))}:{canonical(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def _number(text: str) -> str:
    try:
        number = Decimal(text)
    except InvalidOperation:
        return json.dumps(text)
    if not number.is_finite():
        return json.dumps(text)
    return format(number.normalize(), "f") if number == number.to_integral_value() else str(number.normalize())


def value_hash(value: object) -> str:
    return hashlib.sha256(canonical(value).encode()).hexdigest()[:12]


def blank(value: object) -> bool:
    return canonical(value) == "null"


def row_columns(row: Mapping[str, Any], source: DirectusSource) -> dict[str, Any]:
    """The columns of a Clay row that carry the item's fields (not the metadata columns)."""
    meta = {source.metadata.event, source.metadata.collection, source.metadata.key} - {None}
    return {column: value for column, value in row.items() if column not in meta}


def column_hashes(columns: Mapping[str, Any]) -> dict[str, str]:
    return {column: value_hash(value) for column, value in columns.items()}


def claim_columns(job: DeliveryJob, config: RelayConfig) -> dict[str, Any]:
    """What the claim of a Directus row keeps of it (DynamoDB's form): the hash of each column it carried."""
    source = config.directus_sources.get(job.origin.removeprefix("directus/"))
    if not isinstance(job, ClayRowJob) or not job.origin.startswith("directus/") or source is None:
        return {}
    hashes = column_hashes(row_columns(job.row, source))
    return {CLAIM_ATTRIBUTE: {"M": {column: {"S": value} for column, value in hashes.items()}}} if hashes else {}


def recorded_columns(claim: Mapping[str, Any]) -> dict[str, str] | None:
    """The column hashes a claim item kept (None when it kept none: a claim of another kind, or older)."""
    columns = claim.get(CLAIM_ATTRIBUTE, {}).get("M")
    return {column: value["S"] for column, value in columns.items()} if columns is not None else None


def state_hash(columns: Mapping[str, Any]) -> str:
    """The hash of a full state (every mapped column, `None` for an empty one)."""
    return content_id(sorted((column, canonical(value)) for column, value in columns.items()))


def create_event_id(origin: str, collection: str, key: object) -> str:
    return content_id(origin, "create", collection, str(key))


def update_event_id(origin: str, collection: str, key: object, columns: Mapping[str, Any]) -> str:
    return content_id(origin, "update", collection, str(key), state_hash(columns))


def changed_since(
    recorded: Mapping[str, str], current: Mapping[str, Any], defaults: Callable[[], Mapping[str, Any]]
) -> bool:
    """Whether the item's mapped columns (`current`, every one) differ from those of the row the relay
    sent (`recorded`: their hashes). A column that row did not carry (a create carries only the fields
    submitted) counts as unchanged while it is empty or holds the field's default value (`defaults()`,
    asked only then)."""
    for column, value in current.items():
        if column in recorded:
            if recorded[column] != value_hash(value):
                return True
        elif not blank(value):
            known = defaults()
            if column not in known or canonical(known[column]) != canonical(value):
                return True
    return False
