"""Loops' feedback written into Directus (a DirectusFeedbackJob, delivered by the worker).

1. The lead's items: those the lead ledger knows (the `directus#<collection>/<key>` aliases of the
   lead's stages, e.g. the Clay row of the item's create), else those a Directus query finds on the
   email field (`_icontains`, then compared whole and case-insensitively: Directus' `_eq` is
   case-sensitive and a CMS keeps emails as typed). None: the event is `unmatched`, counted
   (`LoopsFeedbackUnmatched`) and noted in the ledger, never dead-lettered (retrying finds nothing more).
2. Event-time order: the lead's `feedback#<email hash>` item keeps, per field, the mark (event time,
   then the event type's rank) and the value last applied. One conditional update advances the marks
   of the event's fields unless a newer mark is there; then the event is `superseded` and skipped.
3. Each item is PATCHed (a ledger-known item that is gone, 403/404, is looked up again by email).
4. The marks are read again: an event that raced this one (another worker, the same moment) and is
   newer may have been PATCHed before this one; its values are written again, so the newest wins.
A retry repeats every step: its own mark is equal, not older, so it passes again.
"""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from clay_relay.ledger import email_hash, normalise_email
from clay_relay.ledger.entries import DAY
from clay_relay.ledger.timeline import directus_items
from clay_relay.observability import count, logger, mask_email
from clay_relay.outbound import Outcome, fetch_json, send_json
from clay_relay.secrets import SecretUnavailable, read_json

if TYPE_CHECKING:
    from clay_relay.config import FeedbackTarget
    from clay_relay.jobs import DirectusFeedbackJob
    from clay_relay.store import RelayTable

GONE = {403, 404}  # Directus answers 403 for an item that does not exist (it will not say which)
MOST_ITEMS = 20  # items of one lead written per event (a CMS with more copies of a lead has a problem)
PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]{1,128}")  # a key that cannot change the request's path
STATE_DAYS = 400  # how long the lead's marks are kept after its last feedback
REPAIRS = 3


class _Api:
    """Directus' URL and token, from the secret `{"url": …, "token": …}`."""

    def __init__(self, secret_name: str):
        value = read_json(secret_name)
        if not isinstance(value, dict) or not value.get("url") or not value.get("token"):
            raise SecretUnavailable(f"secret {secret_name!r} is not a JSON object with url and token")
        self.base, self.headers = str(value["url"]).rstrip("/"), {"Authorization": f"Bearer {value['token']}"}


def deliver_feedback(job: DirectusFeedbackJob, target: FeedbackTarget, table: RelayTable) -> Outcome:
    if not job.email or "@" not in job.email:
        return _unmatched(job, "the event names no email")
    try:
        api = _Api(target.api_secret)
    except SecretUnavailable as error:
        return Outcome(delivered=False, retryable=True, reason=f"directus API secret unusable: {error}", reached=False)
    keys = [] if job.lead is None else directus_items(table, job.lead.key, target.collection)
    from_ledger = bool(keys)
    if not keys:
        keys, failed = _query(api, job, target)
        if failed:
            return failed
    if not keys:
        where = f"{target.collection}.{target.settings.email_field}"
        return _unmatched(job, f"no item of the lead: the ledger knows none, and no {where} is {mask_email(job.email)}")
    state = f"feedback#{email_hash(job.email)}"
    mark = int(job.event_time) * 1000 + job.rank
    if not _advance(table, state, mark, job.fields):
        count("LoopsFeedbackSuperseded", destination="directus")
        return Outcome(True, False, f"a newer event already set {', '.join(job.fields)}", note="superseded")
    outcome, written = _write(api, job, target, keys, job.fields, from_ledger)
    if not outcome.delivered:
        return outcome
    if not written:
        return _unmatched(job, "the lead's items are gone from Directus")
    rewritten: dict[str, str] = {}
    for _ in range(REPAIRS):
        values, marks = _newer(table, state, mark, job.fields)
        if not values or marks == rewritten:
            break
        outcome, _ = _write(api, job, target, written, values, False)
        if not outcome.delivered:
            return outcome
        rewritten = marks
    return outcome


def _unmatched(job: DirectusFeedbackJob, why: str) -> Outcome:
    count("LoopsFeedbackUnmatched", destination="directus")
    logger.warning("Loops feedback matches no Directus item", extra={"event_id": job.event_id, "why": why})
    return Outcome(True, False, why, note="unmatched")


def _query(api: _Api, job: DirectusFeedbackJob, target: FeedbackTarget) -> tuple[list[str], Outcome | None]:
    """The keys of the items whose email field is the lead's (case-insensitively)."""
    settings, email = target.settings, str(job.email)
    query = urlencode(
        {
            f"filter[{settings.email_field}][_icontains]": email,
            "fields": f"{settings.key_field},{settings.email_field}",
            "limit": str(MOST_ITEMS * 5),
        }
    )
    outcome, answer = fetch_json(
        f"{api.base}/items/{quote(target.collection, safe='')}?{query}", api.headers, event_id=job.event_id
    )
    if not outcome.delivered:
        return [], outcome
    items = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(items, list):
        reason = "Directus answered the item query without a data list"
        return [], Outcome(delivered=False, retryable=True, reason=reason, status=outcome.status)
    wanted = normalise_email(email)
    keys = [
        str(item[settings.key_field])
        for item in items
        if isinstance(item, dict)
        and isinstance(item.get(settings.email_field), str)
        and normalise_email(item[settings.email_field]) == wanted
        and item.get(settings.key_field) is not None
    ]
    return keys[:MOST_ITEMS], None


def _write(
    api: _Api,
    job: DirectusFeedbackJob,
    target: FeedbackTarget,
    keys: list[str],
    fields: dict[str, Any],
    from_ledger: bool,
) -> tuple[Outcome, list[str]]:
    """PATCH `fields` into every item: the outcome and the items written. Items the ledger knew that
    are gone (403/404) are left out; when all of them are, the lead's items are looked up by email."""
    written: list[str] = []
    last: Outcome | None = None
    for key in keys:
        if not PLAIN_KEY.fullmatch(key):
            logger.warning("Directus item key refused: it could change the request path", extra={"key": key[:64]})
            continue
        url = f"{api.base}/items/{quote(target.collection, safe='')}/{quote(key, safe='')}"
        answer = send_json("PATCH", url, fields, api.headers, event_id=job.event_id)
        if answer.status in GONE and from_ledger:
            continue
        if not answer.delivered:
            return answer, written
        written.append(key)
        last = answer
    if not written and from_ledger:
        found, failed = _query(api, job, target)
        if failed:
            return failed, []
        return _write(api, job, target, found, fields, False)
    return last or Outcome(delivered=True, retryable=False, reason="no item"), written


def _advance(table: RelayTable, state: str, mark: int, fields: dict[str, Any]) -> bool:
    """Sets the marks and values of `fields` unless one of them has a newer mark (False then)."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {":mark": {"N": str(mark)}}
    conditions, updates = [], []
    for number, (field, value) in enumerate(fields.items()):
        names[f"#m{number}"], names[f"#v{number}"] = f"mark.{field}", f"value.{field}"
        values[f":v{number}"] = {"S": json.dumps(value)}
        conditions.append(f"(attribute_not_exists(#m{number}) OR #m{number} <= :mark)")
        updates.append(f"#m{number} = :mark, #v{number} = :v{number}")
    values[":expires"] = {"N": str(int(time.time()) + STATE_DAYS * DAY)}
    return table.update_if(
        state,
        "SET " + ", ".join(updates) + ", expires_at = :expires",
        " AND ".join(conditions),
        names,
        values,
    )


def _newer(table: RelayTable, state: str, mark: int, fields: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The values, and marks, of `fields` that a newer event set since: written again after this
    event's PATCH (once per newer state)."""
    item = table.get(state) or {}
    values, marks = {}, {}
    for field in fields:
        their_mark = item.get(f"mark.{field}", {}).get("N")
        if their_mark is not None and int(their_mark) > mark and f"value.{field}" in item:
            values[field], marks[field] = json.loads(item[f"value.{field}"]["S"]), their_mark
    return values, marks
