"""What one request may cause: the Clay rows of one Directus event, bounded so that a receiver's
work per request (mapping, hashing, queueing) and what it leaves for Clay are bounded too. Beyond
a bound the request is refused with a 413 that names the limit and what was measured, before
anything is queued.

Why these numbers (docs/http-api.md, "What one request may cause"):
- MAX_ROWS 1,000: a Directus updateMany/deleteMany sends every key in one request. 1,000 rows are
  100 s of Clay's 10 records/s per workspace and 2 % of one webhook URL's 50,000 lifetime
  submissions; the receiver queues them in a handful of SQS requests, well inside its 10 s timeout
  and API Gateway's 29 s. Larger batches go through `relay backfill directus`, which paces itself.
- MAX_ROW_BYTES_TOTAL 10 MB: the rows together, as Clay receives them. One request may not cause
  more queued data than API Gateway lets one request carry (10 MB): 40 full SQS messages of
  256 KB, or 100 of Clay's largest rows (100 KB). Without it 1,000 keys and a 99,000-character field
  (a 104 KB request) queued 99.5 MB.
- ANSWERED_ROWS 100: an answer lists each row up to 100 (the receiver checks each for a duplicate);
  a bigger event is queued in bundles and answered with `row_count`, so an answer stays a few KB
  (10,000 keys once made a 660 KB answer).
"""

from __future__ import annotations

from collections.abc import Sequence

from clay_relay.clay import check_row_size
from clay_relay.config import ClayTarget
from clay_relay.errors import PayloadTooLarge
from clay_relay.intake import BUNDLE_OVER
from clay_relay.jobs import ClayRowJob

MAX_ROWS = 1_000
MAX_ROW_BYTES_TOTAL = 10_000_000
ANSWERED_ROWS = BUNDLE_OVER  # past it rows are bundled, with no duplicate check of their own to answer
SPLIT = "split the change into smaller batches, or send the items with `relay backfill directus`"


def check_item_count(items: int) -> None:
    """Before any row is made: at most MAX_ROWS items per event."""
    if items > MAX_ROWS:
        raise PayloadTooLarge(
            f"this event touches {items:,} items; one request may make at most {MAX_ROWS:,} Clay rows ({SPLIT})",
            fields=[{"field": "keys", "problem": f"{items:,} items; at most {MAX_ROWS:,}"}],
        )


def check_rows(target: ClayTarget, rows: Sequence[ClayRowJob]) -> int:
    """The rows' total size as Clay receives them, when each fits the target's `max_row_bytes` and
    together they fit MAX_ROW_BYTES_TOTAL. An event's rows differ only in their item key, so the
    first row's size tells whether they can fit before the others are measured: refusing costs one
    row's measurement, accepting at most MAX_ROW_BYTES_TOTAL of it."""
    if not rows:
        return 0
    first = _fitting_row(target, rows[0])
    if first * len(rows) > MAX_ROW_BYTES_TOTAL:
        _too_much(len(rows), first * len(rows), approximate=True)
    total = first + sum(_fitting_row(target, row) for row in rows[1:])
    if total > MAX_ROW_BYTES_TOTAL:
        _too_much(len(rows), total, approximate=False)
    return total


def _fitting_row(target: ClayTarget, row: ClayRowJob) -> int:
    return check_row_size(target, row.row, row.event_id)


def _too_much(rows: int, size: int, *, approximate: bool) -> None:
    about = "about " if approximate else ""
    raise PayloadTooLarge(
        f"this event's {rows:,} Clay rows would take {about}{size:,} bytes; one request may cause at most "
        f"{MAX_ROW_BYTES_TOTAL:,} bytes of rows ({SPLIT})"
    )
