"""Directus: Flow webhooks (`{{$trigger}}` of an event hook), their mapping to Clay rows, and the
write-back of enrichment into items.

create: {"event":"posts.items.create","payload":{...submitted fields},"key":1,"collection":"posts"}
update: {"event":"posts.items.update","payload":{...changed fields},"keys":["1"],"collection":"posts"}
delete: {"event":"posts.items.delete","payload":["1"],"keys":["1"],"collection":"posts"}
Keys arrive as numbers or strings; updateMany/deleteMany send one request whose `keys` lists every
item, and each item becomes its own row.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError, model_validator

from clay_relay.config import DirectusSource, DirectusWriteBack
from clay_relay.errors import InvalidPayload, validation_fields
from clay_relay.jobs import ClayRowJob, DirectusPatchJob, content_id
from clay_relay.ledger import Stage, directus_alias, lead_ref
from clay_relay.outbound import Outcome, send_json
from clay_relay.secrets import SecretUnavailable, read_json

ItemKey = StrictStr | StrictInt
Action = Literal["create", "update", "delete"]


class DirectusEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    event: str = Field(min_length=1, max_length=256)
    collection: str = Field(min_length=1, max_length=256)
    payload: dict[str, Any] | list[Any] | None = None
    key: ItemKey | None = None
    keys: list[ItemKey] | None = Field(default=None, max_length=10_000)

    @property
    def action(self) -> Action:
        return self.event.rsplit(".", 1)[-1]  # type: ignore[return-value]

    @property
    def item_keys(self) -> list[ItemKey]:
        return list(self.keys) if self.keys else [self.key]  # type: ignore[list-item]

    @property
    def changed_fields(self) -> dict[str, Any]:
        return self.payload if isinstance(self.payload, dict) else {}

    @model_validator(mode="after")
    def _shape_matches_action(self) -> DirectusEvent:
        action = self.event.rsplit(".", 1)[-1]
        if action not in ("create", "update", "delete"):
            raise _WrongShape("event", f"event {self.event!r} is not an items create, update or delete event")
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
    """One Clay row job per item the event touches, with the fields the source selects.

    `echo_fields` are the fields the relay writes back into this collection: an update that
    changes only those is Directus echoing the relay's own write-back, not a user's edit. Each row's
    lead (for the ledger) is its `email_column`, or its item when the event carries no email;
    `stage` is how it came in (a Flow's event, or `relay backfill`)."""
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
    origin = f"directus/{source_name}"
    meta = source.metadata
    jobs = []
    for key in event.item_keys:
        row = dict(fields)
        for column, value in ((meta.event, event.event), (meta.collection, event.collection), (meta.key, key)):
            if column:
                row[column] = value
        event_id = content_id(origin, event.event, event.collection, str(key), event.payload)
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
    url = f"{base}/items/{quote(job.collection, safe='')}/{quote(job.item_id, safe='')}"
    return send_json("PATCH", url, job.fields, {"Authorization": f"Bearer {token}"}, event_id=job.event_id)
