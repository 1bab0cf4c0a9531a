"""What each page shows, from the `relay` command's own functions: `relay status` (queues, dead
letters per flow and destination, last failures, parked destinations, Clay pools), the CloudWatch
activity, `relay leads --overdue`, `relay trace` and `relay dlq list|show|replay`. The console is a
second face of the same operations, not a second implementation.

The dead-letter queue is read by receiving its letters (hidden while read, then visible again):
one reader at a time in this console, so that a replay never finds letters a refresh is holding.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from dataclasses import dataclass

from clay_relay.ledger.timeline import NoSuchLead, overdue_leads, resolve, timeline
from clay_relay.observability import mask_emails_in
from relay_cli import activity, dead_letters, status
from relay_cli.dead_letters import DeadLetterQueue, Letter
from relay_cli.leads import overdue_json, pool_urls, trace_json
from relay_cli.stack import Stack

_dead_letter_reader = threading.Lock()
MAX_LETTERS_SHOWN = 200


class BadRequest(ValueError):
    """What the person asked for cannot be answered as asked (the message says why): a 400."""


def overview(stack: Stack) -> dict:
    with _dead_letter_reader:
        report = status.gather(stack)
    now = time.time()
    leads = overdue_leads(stack.table, now)
    urls = pool_urls(stack, {lead.target for lead in leads})
    return {
        **report,
        "activity": activity.gather(stack, now),
        "overdue": [overdue_json(lead, urls, now, reveal=False) for lead in leads],
        "budgets": report.get("clay_spend", []),  # the spend guard per target (relay clay spend)
    }


def lead(stack: Stack, query: str, reveal: bool) -> dict:
    """The lead's timeline (`relay trace`), or BadRequest / NoSuchLead saying why there is none."""
    if not query.strip():
        raise BadRequest("give an email, directus:<collection>/<key> or an event id")
    if len(query) > 512:
        raise BadRequest("that is too long for an email, a Directus item or an event id")
    try:
        found = timeline(stack.table, resolve(stack.table, query), time.time())
    except ValueError as error:
        raise BadRequest(str(error)) from None
    return trace_json(found, reveal)


@dataclass
class LetterView:
    summary: dict
    attributes: dict
    body: object
    revealed: bool


def letters(stack: Stack, reveal: set[str] | bool) -> dict:
    """Every dead letter, newest first, each with its job; emails masked unless revealed (all, or
    the letters named)."""
    with _dead_letter_reader, DeadLetterQueue(stack) as dlq:
        found = list(reversed(dlq.letters))
        note = dead_letters.incomplete_note(dlq)
    views = [
        _view(letter, reveal is True or (isinstance(reveal, set) and letter.message_id in reveal)) for letter in found
    ]
    return {"letters": views[:MAX_LETTERS_SHOWN], "total": len(found), "note": note}


def _view(letter: Letter, revealed: bool) -> LetterView:
    try:
        body: object = json.loads(letter.body)
    except ValueError:
        body = letter.body
    attributes = {name: value.get("StringValue") for name, value in letter.attributes.items()}
    if not revealed:
        body, attributes = mask_emails_in(body), mask_emails_in(attributes)
    return LetterView(letter.summary(revealed), attributes, body, revealed)


def replay(stack: Stack, ids: list[str], *, every: bool, dry_run: bool) -> tuple[dict, list[dict]]:
    """`relay dlq replay` (`--id` each of `ids`, or every letter but the unconfirmed ones): the report
    and the letters replayed (or that would be), masked."""
    if not ids and not every:
        raise BadRequest("choose a dead letter to replay, or replay all")
    if len(ids) > 1_000 or any(len(i) > 128 for i in ids):
        raise BadRequest("too many or too long dead letter ids")
    args = argparse.Namespace(
        destination=None, origin=None, since=None, ids=[] if every else ids, limit=None,
        unconfirmed=False, dry_run=dry_run,
    )  # fmt: skip
    with _dead_letter_reader:
        report, replayed = dead_letters.replay(stack, args)
    return report, [letter.summary() for letter in replayed]


__all__ = ["BadRequest", "NoSuchLead", "letters", "lead", "overview", "replay"]
