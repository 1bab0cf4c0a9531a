"""`relay backfill directus COLLECTION --target TARGET`: send the items a Directus collection already
holds through the relay to Clay, as if each had just been created.

    source   the collection's items in primary-key order (directus_items), with a static token: the
             relay's own `directus-api` secret, or --directus-url/--directus-token (or DIRECTUS_URL/
             DIRECTUS_TOKEN), up to the highest key when the backfill started: items created
             afterwards are the Flow's to send, not the backfill's.
    relay    POST {api}/directus/{source} with the source's token and the body a Flow sends for a
             create (`{"event": "<collection>.items.create", "collection", "key", "payload": item}`),
             so every row goes through the relay's checks, dedupe, queue, quota and pacing. The
             event id is a hash of that content: an item sent twice is answered `duplicate`.
    rate     95 % of relay.json's `delivery.rates_per_second.clay` (what the workers themselves
             keep to, with the same Pacer), or --rate below it: the queue never piles up behind
             the backfill.
    quota    before each page (and whenever the budget runs out): the submissions left on the
             target's webhook URLs (clay_pool.pool_use), minus every job on the delivery queue
             (visible, in flight or delayed: conservatively all counted as rows for this target),
             minus --reserve. The backfill never sends more than that, and stops (exit status 3)
             before the item that would need more.
    resume   a checkpoint (`.relay-backfill/<stack>-<source>-<collection>.json`, or --state DIR)
             is written atomically after each item the relay acknowledged: the last key handed
             over, the counts, the items refused. The next run continues after that key.

Exit statuses: 0 done (or --limit reached, or --dry-run), 1 error (nothing more was sent after the
checkpoint), 3 stopped before the target's quota ran out, 4 done but the relay refused some items
(listed), 130 interrupted (Ctrl-C: the request in flight was finished and checkpointed).

command      the options and the run loop
sources      which directus_sources entry, and Directus' URL and token
relay_route  the relay's Directus route, one item at a time
quota        what the target can still take
checkpoint   the checkpoint file
report       the progress bar, the final report, the command that resumes
stopping     Ctrl-C between requests
"""

from relay_cli.backfill.checkpoint import Checkpoint, checkpoint_path
from relay_cli.backfill.command import STATE_DIR, register, run_directus
from relay_cli.backfill.quota import QuotaLeft, default_reserve, quota_left
from relay_cli.backfill.relay_route import Outcome, RelayDirectusRoute, RelayError
from relay_cli.backfill.report import EXIT_INTERRUPTED, EXIT_QUOTA, EXIT_REFUSED, Progress, Report
from relay_cli.backfill.sources import choose_source, directus_access

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_QUOTA",
    "EXIT_REFUSED",
    "STATE_DIR",
    "Checkpoint",
    "Outcome",
    "Progress",
    "QuotaLeft",
    "RelayDirectusRoute",
    "RelayError",
    "Report",
    "checkpoint_path",
    "choose_source",
    "default_reserve",
    "directus_access",
    "quota_left",
    "register",
    "run_directus",
]
