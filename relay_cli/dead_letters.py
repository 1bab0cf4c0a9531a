"""`relay dlq list|show|replay`: the dead-letter queue, read and replayed without losing a letter.

The dead-letter queue has no consumer, so the command may read it: it receives every letter,
hidden from other readers while it works (HIDE_SECONDS), and makes each one it did not remove
visible again when it is done. The delivery queue is never read here (its receives would count
towards the redrive's maxReceiveCount and hide jobs from the workers).

A replay sends the letter back to the delivery queue with its body and message attributes as they
are: the worker takes a job that carries `reason` for one an operator replayed (an `unconfirmed`
Slack or Zapier post is then sent, see docs/operating.md). The letter is deleted from the
dead-letter queue only after SQS took the copy: a failure in between leaves at most a second copy,
which the relay's claims make harmless, and never loses one.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from dataclasses import dataclass

from pydantic import ValidationError

from clay_relay.delivery_queue import sqs_batches
from clay_relay.jobs import parse_job
from clay_relay.observability import mask_email, mask_emails_in
from relay_cli import CommandError
from relay_cli.output import ago, iso, non_negative_int, parse_since, print_json, print_table, shorten
from relay_cli.stack import Stack

HIDE_SECONDS = 300  # how long letters stay hidden from other readers while a command works
MAX_SCAN = 10_000  # letters read at most; the rest is reported, not guessed
MAX_SCAN_SECONDS = 240  # stop reading well before the first letters reappear
BATCH = 10
NO_REASON = "no reason recorded (moved by the queue's redrive policy after maxReceiveCount receives)"


@dataclass
class Letter:
    message_id: str
    receipt_handle: str
    body: str
    attributes: dict[str, dict]  # message attributes as SQS stores them: name → DataType, StringValue
    destination: str
    origin: str
    reason: str | None
    attempts: int | None
    failed_at: float | None
    sent_at: float | None
    removed: bool = False

    @property
    def at(self) -> float | None:
        """When it was dead-lettered (for a letter the redrive policy moved: when it was first sent)."""
        return self.failed_at or self.sent_at

    @property
    def unconfirmed(self) -> bool:
        return (self.reason or "").startswith("unconfirmed")

    def summary(self, reveal: bool = False) -> dict:
        reason = self.reason or NO_REASON
        return {
            "id": self.message_id,
            "destination": self.destination,
            "origin": self.origin,
            "attempts": self.attempts,
            "failed_at": iso(self.at),
            "age_seconds": None if self.at is None else round(time.time() - self.at),
            "reason": reason if reveal else mask_email(reason),
        }


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def letter_from(message: dict) -> Letter:
    attributes = {
        name: {key: value[key] for key in ("DataType", "StringValue", "BinaryValue") if key in value}
        for name, value in message.get("MessageAttributes", {}).items()
    }

    def attribute(name: str) -> str | None:
        return attributes.get(name, {}).get("StringValue")

    destination, origin = attribute("destination"), attribute("origin")
    if not (destination and origin):  # moved by the redrive policy: the job itself says where it was going
        try:
            job = parse_job(message["Body"])
            destination, origin = destination or job.destination, origin or job.origin
        except ValidationError:
            destination, origin = destination or "unknown", origin or "unknown"
    sent = _number(message.get("Attributes", {}).get("SentTimestamp"))
    attempts = _number(attribute("attempts"))
    return Letter(
        message_id=message["MessageId"],
        receipt_handle=message["ReceiptHandle"],
        body=message["Body"],
        attributes=attributes,
        destination=destination,
        origin=origin,
        reason=attribute("reason"),
        attempts=None if attempts is None else int(attempts),
        failed_at=_number(attribute("failed_at")),
        sent_at=None if sent is None else sent / 1000,
    )


class DeadLetterQueue:
    """`with DeadLetterQueue(stack) as dlq:` every letter in `dlq.letters` (oldest first), hidden from
    other readers until the block ends; then those not replayed are visible again."""

    def __init__(self, stack: Stack):
        self.stack = stack
        self.url = stack.dead_letter_url
        self.letters: list[Letter] = []
        self.complete = True  # False when MAX_SCAN or MAX_SCAN_SECONDS stopped the reading
        self.hidden = 0  # letters other readers held while we read (not in `letters`)

    def __enter__(self) -> DeadLetterQueue:
        try:
            self._read()
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self._release()

    def _read(self) -> None:
        sqs = self.stack.sqs
        counts = sqs.get_queue_attributes(
            QueueUrl=self.url,
            AttributeNames=["ApproximateNumberOfMessagesNotVisible"],  # the visible count lags: read them all
        )["Attributes"]
        self.hidden = int(counts.get("ApproximateNumberOfMessagesNotVisible", 0))
        letters: dict[str, Letter] = {}
        deadline = time.monotonic() + MAX_SCAN_SECONDS
        while True:
            if len(letters) >= MAX_SCAN or time.monotonic() > deadline:
                self.complete = False
                break
            messages = sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=BATCH,
                WaitTimeSeconds=1,  # a long poll asks every SQS server: an empty answer means none left
                VisibilityTimeout=HIDE_SECONDS,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                break
            for message in messages:
                letters[message["MessageId"]] = letter_from(message)
            self.letters = list(letters.values())  # so that a failure halfway still releases them
        self.letters = sorted(letters.values(), key=lambda letter: letter.at or 0)

    def _release(self) -> None:
        """Every letter still here is visible again at once (else it would be after HIDE_SECONDS)."""
        handles = [letter.receipt_handle for letter in self.letters if not letter.removed]
        for start in range(0, len(handles), BATCH):
            self.stack.sqs.change_message_visibility_batch(
                QueueUrl=self.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                    for i, handle in enumerate(handles[start : start + BATCH])
                ],
            )

    def replay(self, letters: list[Letter]) -> tuple[list[Letter], list[Letter], list[Letter]]:
        """Back to the delivery queue, as they are: (replayed, failed to send, sent but still here)."""
        replayed, failed, stuck = [], [], []
        sqs = self.stack.sqs
        entries = [
            {"Id": str(i), "MessageBody": letter.body, "MessageAttributes": letter.attributes}
            for i, letter in enumerate(letters)
        ]
        for batch in sqs_batches(entries):  # 10 a request, and no more bytes than SQS takes in one
            answer = sqs.send_message_batch(QueueUrl=self.stack.queue_url, Entries=batch)
            sent = [letters[int(entry["Id"])] for entry in answer.get("Successful", [])]
            failed += [letters[int(entry["Id"])] for entry in answer.get("Failed", [])]
            if not sent:
                continue
            deleted = sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": str(i), "ReceiptHandle": letter.receipt_handle} for i, letter in enumerate(sent)],
            )
            for entry in deleted.get("Successful", []):
                sent[int(entry["Id"])].removed = True
            replayed += sent
            stuck += [sent[int(entry["Id"])] for entry in deleted.get("Failed", [])]
        return replayed, failed, stuck


# --- the commands ----------------------------------------------------------------------------------


def register(commands) -> None:
    dlq = commands.add_parser("dlq", help="dead letters: list, show, replay")
    sub = dlq.add_subparsers(dest="dlq_command", required=True, metavar="SUBCOMMAND")

    listing = sub.add_parser("list", help="dead letters, newest first")
    _filters(listing)
    listing.add_argument("--limit", type=non_negative_int, default=50, help="show at most N (default 50)")
    listing.add_argument("--reveal", action="store_true", help="show email addresses in reasons unmasked")
    listing.set_defaults(run=list_letters)

    show = sub.add_parser("show", help="one dead letter: its attributes and job")
    show.add_argument("id", help="its SQS message id (relay dlq list shows them)")
    show.add_argument("--reveal", action="store_true", help="show email addresses unmasked")
    show.set_defaults(run=show_letter)

    replay = sub.add_parser(
        "replay",
        help="move dead letters back to the delivery queue",
        description="Move the matching dead letters back to the delivery queue, keeping their attributes "
        "(the worker takes a letter with a `reason` for a replayed one). Each letter is deleted from the "
        "dead-letter queue only once the delivery queue took it. `unconfirmed` letters (Slack or Zapier posts "
        "that may have arrived) are skipped unless named with --id or --unconfirmed is given: check first.",
    )
    _filters(replay)
    replay.add_argument("--id", action="append", default=[], dest="ids", metavar="ID", help="only this letter (repeat)")
    replay.add_argument("--limit", type=non_negative_int, help="replay at most N (oldest first)")
    replay.add_argument("--unconfirmed", action="store_true", help="also replay `unconfirmed` letters")
    replay.add_argument("--dry-run", action="store_true", help="print what would be replayed; change nothing")
    replay.set_defaults(run=replay_letters)


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--destination", help="clay, loops, slack, zapier or directus")
    parser.add_argument("--origin", help="the flow that accepted it: directus/leads, clay/enriched, loops (prefix), …")
    parser.add_argument("--since", help="dead-lettered within this long (30m, 2h, 1d) or since an ISO time")


def matching(letters: list[Letter], args: argparse.Namespace) -> list[Letter]:
    since = parse_since(args.since) if args.since else None
    origin = args.origin.rstrip("/") if args.origin else None
    return [
        letter
        for letter in letters
        if (not args.destination or letter.destination == args.destination)
        and (not origin or letter.origin == origin or letter.origin.startswith(origin + "/"))
        and (since is None or (letter.at or 0) >= since)
    ]


def _print_letters(letters: list[Letter], reveal: bool = False) -> None:
    rows = []
    for letter in letters:
        reason = letter.summary(reveal)["reason"]
        rows.append(
            [letter.message_id, ago(letter.at), letter.destination, letter.origin, letter.attempts, shorten(reason, 80)]
        )
    print_table(["ID", "AGE", "DESTINATION", "ORIGIN", "ATTEMPTS", "REASON"], rows)


def incomplete_note(dlq: DeadLetterQueue) -> str | None:
    notes = []
    if not dlq.complete:
        notes.append(f"read only the first {len(dlq.letters)} letters (the rest was not read)")
    if dlq.hidden:
        notes.append(f"{dlq.hidden} letter(s) were held by another reader and are not included")
    return "; ".join(notes) or None


def list_letters(stack: Stack, args: argparse.Namespace) -> None:
    with DeadLetterQueue(stack) as dlq:
        found = matching(dlq.letters, args)
        shown = list(reversed(found))[: args.limit]
        note = incomplete_note(dlq)
        total = len(dlq.letters)
    if args.json:
        letters = [letter.summary(args.reveal) for letter in shown]
        print_json({"total": total, "matching": len(found), "letters": letters, "note": note})
        return
    if shown:
        _print_letters(shown, args.reveal)
    print(f"{len(shown)} shown, {len(found)} matching, {total} in the dead-letter queue")
    if note:
        print(f"note: {note}")


def show_letter(stack: Stack, args: argparse.Namespace) -> None:
    with DeadLetterQueue(stack) as dlq:
        letter = next((letter for letter in dlq.letters if letter.message_id == args.id), None)
        total = len(dlq.letters)
    if letter is None:
        raise CommandError(f"no dead letter {args.id!r} ({total} in the dead-letter queue: relay dlq list)")
    try:
        body: object = json.loads(letter.body)
    except ValueError:
        body = letter.body
    attributes = {name: value.get("StringValue") for name, value in letter.attributes.items()}
    if not args.reveal:  # masked once parsed: in the JSON text an escaped quote hides `"john doe"@…`
        body, attributes = mask_emails_in(body), mask_emails_in(attributes)
    if args.json:
        print_json({**letter.summary(args.reveal), "attributes": attributes, "body": body})
        return
    summary = letter.summary(args.reveal)
    print(f"id           {letter.message_id}")
    print(f"destination  {letter.destination}")
    print(f"origin       {letter.origin}")
    print(f"attempts     {letter.attempts if letter.attempts is not None else '-'}")
    print(f"failed at    {summary['failed_at']} ({ago(letter.at)} ago)")
    print(f"reason       {summary['reason']}")
    print("attributes   " + json.dumps(attributes, ensure_ascii=False))
    print("job:")
    print(json.dumps(body, indent=2, ensure_ascii=False) if not isinstance(body, str) else body)
    if not args.reveal:
        print("(email addresses masked: --reveal shows them)")


def replay_letters(stack: Stack, args: argparse.Namespace) -> int:
    report, replayed = replay(stack, args)
    if args.json:
        print_json(report)
    else:
        _print_replay(report, replayed)
    return 1 if report["failed"] or report["sent_but_not_removed"] or report["not_found"] else 0


def replay(stack: Stack, args: argparse.Namespace) -> tuple[dict, list[Letter]]:
    """Replays the letters `args` choose (filters, `ids`, `limit`, `unconfirmed`, `dry_run`): the
    report, and the letters replayed (or that would be). The `relay dlq replay` command and the
    console's replay buttons both come here."""
    with DeadLetterQueue(stack) as dlq:
        found = matching(dlq.letters, args)
        missing = [i for i in args.ids if i not in {letter.message_id for letter in dlq.letters}]
        if args.ids:
            found = [letter for letter in found if letter.message_id in args.ids]
        chosen = [letter for letter in found if args.unconfirmed or args.ids or not letter.unconfirmed]
        skipped = [letter for letter in found if letter.unconfirmed and letter not in chosen]
        if args.limit is not None:
            chosen = chosen[: args.limit]
        if args.dry_run:
            replayed, failed, stuck = chosen, [], []
        else:
            replayed, failed, stuck = dlq.replay(chosen)
        left = sum(1 for letter in dlq.letters if not letter.removed)
        note = incomplete_note(dlq)
    report = {
        "dry_run": args.dry_run,
        "replayed": dict(Counter(letter.destination for letter in replayed)),
        "replayed_ids": [letter.message_id for letter in replayed],
        "skipped_unconfirmed": [letter.message_id for letter in skipped],
        "failed": [letter.message_id for letter in failed],
        "sent_but_not_removed": [letter.message_id for letter in stuck],
        "not_found": missing,
        "left_in_dead_letter_queue": left,
        "note": note,
    }
    return report, replayed


def _print_replay(report: dict, replayed: list[Letter]) -> None:
    verb = "would replay" if report["dry_run"] else "replayed"
    if replayed:
        _print_letters(replayed)
    per_destination = ", ".join(f"{d} {n}" for d, n in sorted(report["replayed"].items())) or "none"
    print(
        f"{verb} {len(replayed)} ({per_destination}); skipped {len(report['skipped_unconfirmed'])}; "
        f"failed {len(report['failed'])}; {report['left_in_dead_letter_queue']} left in the dead-letter queue"
    )
    if report["skipped_unconfirmed"]:
        print(
            "skipped: `unconfirmed` posts that may have arrived; check Slack or the Zap's history, then replay "
            "the missing ones with --id ID (or all with --unconfirmed)"
        )
    if report["failed"]:
        print("failed (the delivery queue refused them; they stay in the dead letters): " + " ".join(report["failed"]))
    if report["sent_but_not_removed"]:
        print(
            "replayed but still in the dead-letter queue (could not delete them): replaying them again sends a "
            "second copy, which the relay's claims make harmless: " + " ".join(report["sent_but_not_removed"])
        )
    if report["not_found"]:
        print("no such dead letter: " + " ".join(report["not_found"]))
    if report["note"]:
        print(f"note: {report['note']}")
