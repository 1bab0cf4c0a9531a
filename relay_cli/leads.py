"""`relay trace`, `relay leads --overdue` and `relay forget`: the lead ledger, per person.

`relay trace LEAD` (an email, `directus:<collection>/<key>`, or an event id) prints the lead's
timeline, oldest first: one line per stage with its time, outcome and the ids a person would look up
elsewhere (the Clay URL and submission number, the Loops Idempotency-Key, the Directus item), and
what Loops reported about the lead's emails (sent, delivered, bounced, unsubscribed, with the
campaign or workflow) with the feedback written into Directus.
`relay leads --overdue` lists the leads that went to Clay and did not come back enriched within
their target's SLA. `relay forget EMAIL` removes everything the relay keeps about a lead: its ledger
(claims, failures, round trip, links) and the dead letters that hold it. Emails are masked unless
`--reveal`.
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from pydantic import ValidationError

from clay_relay.clay import ClayPoolUnavailable, parse_pool
from clay_relay.jobs import parse_job
from clay_relay.ledger import email_key, normalise_email
from clay_relay.ledger.timeline import NoSuchLead, OverdueLead, Timeline, kept_about, overdue_leads, resolve, timeline
from clay_relay.observability import mask_email
from relay_cli import CommandError
from relay_cli.clay_pool import pool_entries
from relay_cli.dead_letters import DeadLetterQueue, Letter
from relay_cli.output import ago, iso, mask_url, print_json, print_table, shorten

if TYPE_CHECKING:
    from relay_cli.stack import Stack


def register(commands) -> None:
    trace = commands.add_parser(
        "trace",
        help="a lead's timeline: every stage from Directus to Loops, with times and outcomes",
        description=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    trace.add_argument("lead", help="an email, directus:<collection>/<key>, or an event id")
    trace.add_argument("--reveal", action="store_true", help="show email addresses unmasked")
    trace.set_defaults(run=trace_lead)
    leads = commands.add_parser("leads", help="leads that went to Clay and never came back enriched (--overdue)")
    leads.add_argument("--overdue", action="store_true", required=True, help="past their target's enrichment SLA")
    leads.add_argument("--reveal", action="store_true", help="show email addresses unmasked")
    leads.set_defaults(run=list_overdue)
    forget = commands.add_parser("forget", help="remove everything the relay keeps about a lead (erasure)")
    forget.add_argument("email", help="the lead's email address")
    forget.set_defaults(run=forget_lead)


def _email(value: str | None, reveal: bool) -> str | None:
    return value if reveal or value is None else mask_email(value)


def _detail_text(detail: dict, reveal: bool) -> str:
    return ", ".join(f"{k}={_email(str(v), reveal)}" for k, v in detail.items() if v is not None and v != "")


# --- trace ------------------------------------------------------------------------------------------
def trace_lead(stack: Stack, args: argparse.Namespace) -> int:
    try:
        key = resolve(stack.table, args.lead)
        found = timeline(stack.table, key, time.time())
    except ValueError as error:
        raise CommandError(str(error)) from None
    except NoSuchLead as error:
        raise CommandError(str(error)) from None
    if getattr(args, "json", False):
        print_json(trace_json(found, args.reveal))
        return 0
    _print_trace(found, args.reveal)
    return 0


def trace_json(found: Timeline, reveal: bool) -> dict:
    lead = {
        "key": found.key,
        "email": _email(found.email, reveal),
        "aliases": found.aliases,
        "round_trip": found.round_trip,
    }
    stages = []
    for line in found.stages:
        detail = {k: (_email(v, reveal) if isinstance(v, str) else v) for k, v in line.detail.items()}
        stages.append({**line.as_json(), "at": iso(line.at), "detail": detail})
    return {"lead": lead, "stages": stages}


def _print_trace(found: Timeline, reveal: bool) -> None:
    print(
        f"lead {_email(found.email, reveal) or found.key}"
        + (f"  ({', '.join(found.aliases)})" if found.aliases else "")
    )
    rows = [
        [iso(line.at), line.stage, line.outcome, line.event_id[:16], shorten(_detail_text(line.detail, reveal), 80)]
        for line in found.stages
    ]
    print_table(["AT", "STAGE", "OUTCOME", "EVENT", "DETAIL"], rows)
    if trip := found.round_trip:
        state = "OVERDUE" if trip["overdue"] else "waiting"
        print(
            f"  round trip: {state} for Clay's enrichment since {iso(float(trip.get('sent_at') or 0))} "
            f"(due {iso(float(trip['due_at']))}, target {trip.get('target')})"
        )
    if not reveal:
        print("(email addresses masked: --reveal shows them)")


# --- leads --overdue ---------------------------------------------------------------------------------
def list_overdue(stack: Stack, args: argparse.Namespace) -> int:
    now = time.time()
    leads = overdue_leads(stack.table, now)
    urls = pool_urls(stack, {lead.target for lead in leads})
    rows = [overdue_json(lead, urls, now, args.reveal) for lead in leads]
    if getattr(args, "json", False):
        print_json({"overdue": rows})
        return 0
    if not rows:
        print("no overdue leads: every lead sent to Clay came back enriched, or is still within its SLA")
        return 0
    print_table(
        ["EMAIL", "TARGET", "SENT", "OVERDUE FOR", "DIRECTUS ITEM", "CLAY URL", "EVENT"],
        [
            [
                r["email"],
                r["target"],
                ago(now - r["sent_seconds_ago"], now),
                ago(now - r["overdue_seconds"], now),
                ", ".join(r["directus"]) or None,
                r["clay_url"],
                r["event_id"][:16],
            ]
            for r in rows
        ],
    )
    if not args.reveal:
        print("(email addresses masked: --reveal shows them)")
    return 0


def overdue_json(lead: OverdueLead, urls: dict[str, str], now: float, reveal: bool) -> dict:
    return {
        "email": _email(lead.email, reveal),
        "target": lead.target,
        "event_id": lead.event_id,
        "sent_at": iso(lead.sent_at),
        "sent_seconds_ago": round(now - lead.sent_at),
        "due_at": iso(lead.due_at),
        "overdue_seconds": round(now - lead.due_at),
        "directus": lead.directus,
        "clay_url": urls.get(lead.webhook_id or "", lead.webhook_id),
        "webhook_id": lead.webhook_id,
    }


def pool_urls(stack: Stack, targets: set[str]) -> dict[str, str]:
    """webhook id → the masked URL, for the targets' pools (a pool that cannot be read is left out)."""
    urls: dict[str, str] = {}
    config = stack.config
    for name in targets:
        target = config.clay_targets.get(name)
        if target is None:
            continue
        try:
            pool = parse_pool(pool_entries(stack, target), target)
        except (ClayPoolUnavailable, CommandError):
            continue
        urls.update({webhook.webhook_id: mask_url(webhook.url) for webhook in pool})
    return urls


# --- forget ------------------------------------------------------------------------------------------
def forget_lead(stack: Stack, args: argparse.Namespace) -> int:
    email = normalise_email(args.email)
    if "@" not in email:
        raise CommandError(f"{args.email!r} is not an email address")
    key = email_key(email)
    ledger = kept_about(stack.table, key)
    stack.table.delete(ledger)
    with DeadLetterQueue(stack) as dlq:
        letters = [letter for letter in dlq.letters if _holds(letter, key, email)]
        removed = _delete_letters(stack, letters)
        complete = dlq.complete
    report = {
        "email": mask_email(email),
        "ledger_items_removed": len(ledger),
        "ledger_items": ledger,
        "dead_letters_removed": [letter.message_id for letter in removed],
        "dead_letter_queue_read_completely": complete,
        "still_elsewhere": "Clay (the table's rows), Loops (the contact), Directus (the item): see docs/operating.md",
    }
    if getattr(args, "json", False):
        print_json(report)
    else:
        print(f"forgot {mask_email(email)}: {len(ledger)} ledger items and {len(removed)} dead letters removed")
        for pk in ledger:
            print(f"  ledger  {pk.split('#')[0]}  {shorten(pk, 60)}")
        for letter in removed:
            print(f"  dead letter  {letter.message_id}  ({letter.destination}, {letter.origin})")
        if not complete:
            print("  the dead-letter queue was too long to read in one go: run the command again")
        print("  still kept elsewhere: the Clay row, the Loops contact and the Directus item (docs/operating.md)")
    return 0


def _holds(letter: Letter, key: str, email: str) -> bool:
    try:
        job = parse_job(letter.body)
    except ValidationError:
        return email in letter.body.lower()
    return (job.lead is not None and job.lead.key == key) or email in letter.body.lower()


def _delete_letters(stack: Stack, letters: list[Letter]) -> list[Letter]:
    removed = []
    for start in range(0, len(letters), 10):
        chunk = letters[start : start + 10]
        answer = stack.sqs.delete_message_batch(
            QueueUrl=stack.dead_letter_url,
            Entries=[{"Id": str(i), "ReceiptHandle": letter.receipt_handle} for i, letter in enumerate(chunk)],
        )
        for entry in answer.get("Successful", []):
            chunk[int(entry["Id"])].removed = True
            removed.append(chunk[int(entry["Id"])])
    return removed
