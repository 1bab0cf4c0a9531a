"""One row per person: a new lead whose email already went to a Clay target within the target's
`person_dedupe_days` is not sent there again.

What a person went to is kept in the lead's round trip item (`trip#<email hash>`, clay_relay.ledger),
which the worker writes anyway before its rows go to Clay: its map `sent` holds, per target, the event
id of the person's last row and when it went. So the check costs one BatchGetItem per batch (the
batch's persons' trips, strongly consistent) and no write of its own: the map travels in the batch
write that opens the round trips. A round trip opened before the map existed counts for its target.

What remains: two rows of one person handled by two workers at the same instant (between one's read
and the other's write, a few milliseconds) both go; two rows in one batch never do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from clay_relay.ledger.entries import DAY, OVERDUE, from_attributes

if TYPE_CHECKING:
    from clay_relay.config import RelayConfig
    from clay_relay.jobs import ClayRowJob

ROUND_TRIP = ("lead", "at", "stage", "outcome", "event_id", "email", "detail", "aliases", "accepted")


def trip_key(job: ClayRowJob) -> str | None:
    """The key of the job's person's round trip (None: the row names no email)."""
    lead = job.lead
    return f"trip#{lead.key.removeprefix('email#')}" if lead is not None and lead.knows_email else None


def guarded(config: RelayConfig) -> bool:
    """Whether any target keeps one row per person (else no trip is read)."""
    return any(target.person_dedupe_days for target in config.clay_targets.values())


def kept_days(config: RelayConfig) -> int:
    """How long a round trip item is kept: the ledger's retention, or the longest person window."""
    return max([config.ledger_retention_days, *(t.person_dedupe_days for t in config.clay_targets.values())])


@dataclass(frozen=True)
class EarlierRow:
    event_id: str
    at: float


def sent_to(trip: dict[str, Any] | None) -> dict[str, EarlierRow]:
    """Per target, the person's last row the trip remembers."""
    if not trip:
        return {}
    rows = {
        target: EarlierRow(str(row["M"]["event_id"]["S"]), float(row["M"]["at"]["N"]))
        for target, row in trip.get("sent", {}).get("M", {}).items()
    }
    if trip.get("lead", {}).get("S") == OVERDUE:  # an open round trip: its row went to its target
        detail = from_attributes(trip.get("detail", {}).get("M", {}))
        target, sent_at = detail.get("target"), detail.get("sent_at")
        if isinstance(target, str) and target not in rows and isinstance(sent_at, int | float):
            rows[target] = EarlierRow(trip["event_id"]["S"], float(sent_at))
    return rows


def earlier_row(trip: dict[str, Any] | None, job: ClayRowJob, days: int, now: float) -> EarlierRow | None:
    """The person's row that already went to the job's target within `days` (not the job's own)."""
    earlier = sent_to(trip).get(job.target)
    if days <= 0 or earlier is None or earlier.event_id == job.event_id or earlier.at < now - days * DAY:
        return None
    return earlier


def sent_attribute(
    previous: dict[str, Any] | None, rows: list[tuple[str, str]], config: RelayConfig, now: float
) -> dict[str, Any]:
    """The trip's `sent` map after `rows` (target, event id) went: what it held, less what is past its
    target's window, plus these rows."""
    kept = {
        target: row
        for target, row in sent_to(previous).items()
        if target in config.clay_targets and row.at >= now - config.clay_targets[target].person_dedupe_days * DAY
    }
    for target, event_id in rows:
        kept[target] = EarlierRow(event_id, now)
    return {
        "M": {
            target: {"M": {"event_id": {"S": row.event_id}, "at": {"N": f"{row.at:.3f}"}}}
            for target, row in kept.items()
        }
    }


def without_row(trip: dict[str, Any], event_id: str) -> dict[str, Any] | None:
    """The trip once a row that never reached Clay (dead-lettered) is taken out of it: its target's
    entry goes, and so does the round trip it opened. None when nothing is left to keep."""
    sent = {t: row for t, row in trip.get("sent", {}).get("M", {}).items() if row["M"]["event_id"]["S"] != event_id}
    opened_by_it = trip.get("lead", {}).get("S") == OVERDUE and trip.get("event_id", {}).get("S") == event_id
    item = {name: value for name, value in trip.items() if not (opened_by_it and name in ROUND_TRIP)}
    item["sent"] = {"M": sent}
    if not sent:
        del item["sent"]
    return item if set(item) - {"pk", "expires_at"} else None
