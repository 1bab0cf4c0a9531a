"""The only package that talks to DynamoDB: one table for deduplication claims, Clay quota and the
lead ledger.

Items (partition key `pk`; hashed ids spread them over partitions):
- `event#<event_id>`: the worker's claim on an event: `job_id`, `dedupe_until`; for destinations
  without an idempotency key also `sending_since` / `delivered_at`. The claim of a job about a lead
  is also its ledger entry (`lead`, `at`, `stage`, ...: see clay_relay.ledger), kept until
  `expires_at` (TTL: the end of the dedupe window or of the ledger's retention, the later).
- `clay-quota#<webhook id>`: submissions `used` of one Clay webhook URL and its `quota`.
- `lane#<lane>`, `parked#<lane>#<message id>`: a destination (lane) that is down, and the receipts of the
  jobs parked while it is (clay_relay.store.parking); in the index's `lanes` and `parked#<lane>` partitions.
- `status#<destination>`: the destination's last failure (`last_error`, `last_error_at`,
  `last_error_kind`: retrying or dead-lettered, `last_error_origin`), for `relay status`. Written
  once per batch and destination that failed, never when every delivery succeeded.
- `trip#`, `link#`, `ledger#`: the ledger's round trips (a trip also keeps which Clay targets the person
  went to, and when: the spend guard's one-row-per-person check), alias links and failure entries.
- `feedback#<email hash>`: per field of the lead's Directus items, the mark (event time) and value of
  the Loops feedback last applied (clay_relay.directus_feedback keeps them in event-time order).
- `clay-budget#<target>` (run-time budget, rows held) and `clay-budget#<target>#<YYYY-MM>` (rows sent,
  skipped and shadowed per day and month): the spend guard's counters (clay_relay.spend).
The index `lead-timeline` (partition `lead`, sort `at`) holds every ledger entry: one Query gives a
lead's timeline, another the round trips that are overdue.

Cost per relayed event (see docs/performance.md): one conditional put (the claim) plus one conditional
update per batch and URL (the quota reservation) and, for Clay rows, one batch write per batch (round
trips and links) and one conditional update per batch and target (the spend guard's budget count);
the receiver only reads.

    access    the client, batch reads and writes, ConditionFailed: how the modules below reach the table
    table     RelayTable: claims, the advisory duplicate check, items by key, batch writes, updates, the index
    counters  Clay quota per webhook URL, reserved atomically; each destination's last failure
    parking   lanes that are down (`lane#<lane>`) and their parked jobs' receipts (`parked#<lane>#<message id>`)
"""

from clay_relay.store.access import QUOTA_RETRIES, ConditionFailed
from clay_relay.store.counters import STATUS_DAYS, Failure, Reservation
from clay_relay.store.table import Claim, RelayTable

__all__ = ["QUOTA_RETRIES", "STATUS_DAYS", "Claim", "ConditionFailed", "Failure", "RelayTable", "Reservation"]
