"""Directus: Flow webhooks (`{{$trigger}}` of an event hook), their mapping to Clay rows, and the
write-back of enrichment into items.

create: {"event":"posts.items.create","payload":{...submitted fields},"key":1,"collection":"posts"}
update: {"event":"posts.items.update","payload":{...changed fields},"keys":["1"],"collection":"posts"}
delete: {"event":"posts.items.delete","payload":["1"],"keys":["1"],"collection":"posts"}
Keys arrive as numbers or strings; updateMany/deleteMany send one request whose `keys` lists every
item, and each item becomes its own row. `event` must be the event of `collection`:
`<collection>.items.<action>`, or `<name>.<action>` for a system collection `directus_<name>`.

A row's event id is its item's (see clay_relay.item_state): a create's is the item's own, whatever the
payload; an update's, with full rows, is the state the worker reads (until then the event's).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from clay_relay import item_state, javascript
from clay_relay.config import DirectusSource, DirectusWriteBack
from clay_relay.errors import InvalidPayload, validation_fields
from clay_relay.item_keys import ItemKey, item_path
from clay_relay.jobs import ClayRowJob, DirectusPatchJob, content_id
from clay_relay.ledger import Stage, directus_alias, lead_ref
from clay_relay.outbound import Outcome, send_json
from clay_relay.secrets import SecretUnavailable, read_json

Action = Literal["create", "update", "delete"]
ACTIONS = ("create", "update", "delete")
SYSTEM_PREFIX = "directus_"  # system collections (directus_users) name their events without it: users.create


def event_action(event: str, collection: str) -> str | None:
    """The action of `event` when it is an item event of `collection`, else None."""
    prefixes = [f"{collection}.items."]
    if collection.startswith(SYSTEM_PREFIX):
        prefixes.append(f"{collection.removeprefix(SYSTEM_PREFIX)}.")
    for prefix in prefixes:
        if event.startswith(prefix) and event.removeprefix(prefix) in ACTIONS:
            return event.removeprefix(prefix)
    return None


class DirectusEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    event: str = Field(min_length=1, max_length=256)
    collection: str = Field(min_length=1, max_length=256)
    payload: dict[str, Any] | list[Any] | None = None
    key: ItemKey | None = None
    keys: list[ItemKey] | None = None  # how many may make rows: clay_relay.fan_out

    @property
    def action(self) -> Action:
        return self.event.rsplit(".", 1)[-1]  # type: ignore[return-value]  # validated: one of ACTIONS

    @property
    def item_keys(self) -> list[ItemKey]:
        return list(self.keys) if self.keys else [self.key]  # type: ignore[list-item]

    @property
    def changed_fields(self) -> dict[str, Any]:
        return self.payload if isinstance(self.payload, dict) else {}

    @model_validator(mode="after")
    def _shape_matches_action(self) -> DirectusEvent:
        action = event_action(self.event, self.collection)
        if action is None:
            raise _WrongShape(
                "event",
                f"event {self.event!r} is not an items create, update or delete event of collection "
                f"{self.collection!r} (that is {self.collection + '.items.<create|update|delete>'!r})",
            )
        if self.key is None and not self.keys:
            raise _WrongShape("keys", f"a {action} event needs 'key' or a non-empty 'keys'")
        if action in ("create", "update") and not isinstance(self.payload, dict):
            raise _WrongShape("payload", f"a {action} event needs 'payload' to be an object of fields")
        return self


class _WrongShape(Exception):
    """Not a ValueError on purpose: pydantic lets it through, with the field it names intact."""

    def __init__(self, field: str, problem: str):
        super().__init__(problem)
        self.field, self.problem = field, problem


def parse_event(body: dict[str, Any]) -> DirectusEvent:
    try:
        return DirectusEvent.model_validate(body)
    except _WrongShape as wrong:
        fields = [{"field": wrong.field, "problem": wrong.problem}]
    except ValidationError as error:
        fields = validation_fields(error)
    raise InvalidPayload("the body is not a Directus item event", fields=fields)


class Skipped(Exception):
    """The event is valid but the source's configuration says not to send it."""


def clay_jobs(
    source_name: str,
    source: DirectusSource,
    event: DirectusEvent,
    echo_fields: set[str] | None = None,
    *,
    email_column: str = "email",
    stage: Stage = "directus.accepted",
) -> list[ClayRowJob]:
    """One Clay row job per item the event touches, with the fields the source selects."""
    fields = row_fields(source, event, echo_fields)
    return row_jobs(source_name, source, event, fields, email_column=email_column, stage=stage)


def row_fields(source: DirectusSource, event: DirectusEvent, echo_fields: set[str] | None = None) -> dict[str, Any]:
    """The fields every row of the event carries (the source's selection), or Skipped. Cheap
    whatever the number of items: a receiver learns what it skips before it counts them.

    `echo_fields` are the fields the relay writes back into this collection: an update that
    changes only those is Directus echoing the relay's own write-back, not a user's edit."""
    if source.collection and event.collection != source.collection:
        raise InvalidPayload(
            f"this route accepts collection {source.collection!r}, not {event.collection!r}",
            fields=[{"field": "collection", "problem": f"expected {source.collection!r}"}],
        )
    handling = {"create": source.on_create, "update": source.on_update, "delete": source.on_delete}[event.action]
    if handling == "skip":
        raise Skipped(f"{event.action} events are not sent (on_{event.action} is 'skip')")
    changed = event.changed_fields
    if event.action == "update" and changed and echo_fields and set(changed) <= echo_fields:
        raise Skipped("echo of the relay's own write-back (only enrichment fields changed)")
    columns = source.columns()
    if columns is None:
        fields = dict(changed)
    else:
        fields = {column: changed[name] for name, column in columns.items() if name in changed}
        if event.action == "update" and not fields:
            raise Skipped("no mapped field changed")
    prototype = javascript.prototype_keys(fields)
    if prototype:
        raise InvalidPayload(
            "the row would carry keys JavaScript reads as an object's prototype (map the field to another column)",
            fields=[
                {"field": f"payload.{path}", "problem": "a key JavaScript reads as the prototype"} for path in prototype
            ],
        )
    return fields


def row_jobs(
    source_name: str,
    source: DirectusSource,
    event: DirectusEvent,
    fields: dict[str, Any],
    *,
    email_column: str = "email",
    stage: Stage = "directus.accepted",
) -> list[ClayRowJob]:
    """One Clay row job per item: `fields` plus the metadata columns. Each row's lead (for the
    ledger) is its `email_column`, or its item when the event carries no email; `stage` is how it
    came in (a Flow's event, or `relay backfill`)."""
    origin = f"directus/{source_name}"
    meta = source.metadata
    # The payload is the same for every item: hashed once, not once per key (an updateMany's).
    payload_id = content_id(event.payload) if event.action != "create" else ""
    jobs = []
    for key in event.item_keys:
        row = dict(fields)
        for column, value in ((meta.event, event.event), (meta.collection, event.collection), (meta.key, key)):
            if column:
                row[column] = value
        if event.action == "create":
            event_id = item_state.create_event_id(origin, event.collection, key)
        else:  # a full row's update gets its state's id once the worker has read the item
            event_id = content_id(origin, event.event, event.collection, str(key), payload_id)
        lead = lead_ref(
            row.get(email_column),
            aliases=[directus_alias(event.collection, key)],
            accepted=stage,
            detail={"source": source_name, "event": event.event, "key": key},
        )
        jobs.append(
            ClayRowJob(
                event_id=event_id,
                origin=origin,
                dedupe_window_seconds=source.dedupe_window_seconds,
                target=source.clay_target,
                row=row,
                lead=lead,
            )
        )
    return jobs


def item_columns(source: DirectusSource, item: dict[str, Any], echo_fields: set[str]) -> dict[str, Any]:
    """A full row's columns: the item's current value of every mapped field (`None` when it has none).
    With `fields: null`, every field of the item but its key, Directus' bookkeeping (dates, users) and
    the fields the relay itself writes into the collection."""
    columns = source.columns()
    if columns is not None:
        return {column: item.get(name) for name, column in columns.items()}
    own = {source.key_field, source.created_field, source.updated_field, *item_state.BOOKKEEPING} | echo_fields
    return {name: value for name, value in item.items() if name not in own}


def item_jobs(
    source_name: str,
    source: DirectusSource,
    action: Literal["create", "update"],
    collection: str,
    key: ItemKey,
    fields: dict[str, Any],
    *,
    email_column: str,
    stage: Stage,
) -> list[ClayRowJob]:
    """The row of an item event the relay makes itself (the sweep, from an item it listed): the row a
    Flow's event of it would have made, with the same event id. `fields`: the item's, by field name.
    Skipped when the source does not send such events."""
    shape: dict[str, Any] = {"key": key} if action == "create" else {"keys": [key]}
    event = DirectusEvent(event=f"{collection}.items.{action}", collection=collection, payload=fields, **shape)
    return clay_jobs(source_name, source, event, email_column=email_column, stage=stage)


def write_back(job: DirectusPatchJob, settings: DirectusWriteBack) -> Outcome:
    """PATCH the originating item. 200 (item) and 204 (token may update but not read) both mean
    written; 400/401/403/404 cannot succeed by retrying."""
    try:
        api = read_json(settings.api_secret)
        if not isinstance(api, dict):
            raise TypeError(f"a JSON object was expected, not {type(api).__name__}")
        base, token = str(api["url"]).rstrip("/"), str(api["token"])
    except (SecretUnavailable, KeyError, TypeError) as error:
        reason = f"directus API secret {settings.api_secret!r} unusable: {error}"
        return Outcome(delivered=False, retryable=True, reason=reason, reached=False)
    try:
        url = base + item_path(job.collection, job.item_id)
    except ValueError as error:  # a job from before keys were checked
        return Outcome(delivered=False, retryable=False, reason=str(error), reached=False)
    return send_json("PATCH", url, job.fields, {"Authorization": f"Bearer {token}"}, event_id=job.event_id)
