"""Reading the ledger: which lead a person means, the lead's timeline (one Query of the index, plus
one per alias), the round trips that are overdue, and every item the relay keeps about a lead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, get_args

from clay_relay.ledger.entries import (
    DELIVERY_STAGES,
    INDEX,
    OBSERVED_OUTCOMES,
    OVERDUE,
    Scalar,
    Stage,
    directus_alias,
    email_key,
    from_attributes,
)

if TYPE_CHECKING:
    from clay_relay.store import RelayTable

FAILURES = ("retry", "dead_letter")  # `ledger#<event id>#<suffix>` entries that say a delivery failed
NOTES = ("unmatched", "superseded")  # `ledger#<event id>#<suffix>`: delivered otherwise than the claim says
# Among stages at the same time, the order they happen in.
ORDER: tuple[str, ...] = get_args(Stage)


_OUTCOMES: dict[str, str] = {
    str(stage): outcome for stage, outcome in OBSERVED_OUTCOMES.items()
}  # an accepting or observed stage's outcome


class NoSuchLead(LookupError):
    """The ledger knows nothing of the lead (never seen, forgotten, or past its retention)."""


@dataclass(frozen=True)
class StageLine:
    stage: str
    at: float
    outcome: str
    event_id: str
    detail: dict[str, Scalar] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "at": self.at,
            "outcome": self.outcome,
            "event_id": self.event_id,
            "detail": self.detail,
        }


@dataclass
class Timeline:
    key: str
    email: str | None
    aliases: list[str]
    stages: list[StageLine]
    round_trip: dict[str, Scalar] | None  # the lead's open round trip: target, sent_at, due_at, overdue


@dataclass(frozen=True)
class OverdueLead:
    email: str | None
    key: str
    target: str
    event_id: str
    sent_at: float
    due_at: float
    webhook_id: str | None
    directus: list[str]


def resolve(table: RelayTable, query: str) -> str:
    """The lead's key from what a person typed: an email, `directus:<collection>/<key>` or an event id."""
    query = query.strip()
    if not query:
        raise ValueError("give an email, directus:<collection>/<key> or an event id")
    if query.startswith("directus:"):
        collection, _, key = query.removeprefix("directus:").partition("/")
        if not (collection and key):
            raise ValueError(f"{query!r}: write directus:<collection>/<key>, e.g. directus:leads/42")
        alias = directus_alias(collection, key)
        link = table.get(f"link#{alias}")
        return str(link["link_to"]["S"]) if link else alias
    if "@" in query:
        return email_key(query)
    pks = [f"event#{query}", *(f"ledger#{query}#{suffix}" for suffix in (*FAILURES, *NOTES, "held"))]
    for item in table.get_many(pks):
        if "lead" in item:
            return str(item["lead"]["S"])
    raise NoSuchLead(f"no such lead: no event {query!r} in the ledger")


def items_of(table: RelayTable, key: str) -> list[dict[str, Any]]:
    """Every ledger item of the lead: its own partition and those of its aliases (the stages that knew
    only a Directus item or a Loops contact)."""
    items = table.query_index(INDEX, key)
    aliases = {alias["S"] for item in items for alias in item.get("aliases", {}).get("L", [])} - {key}
    for alias in sorted(aliases):
        items += [item for item in table.query_index(INDEX, alias) if item["pk"]["S"] not in _pks(items)]
    return items


def directus_items(table: RelayTable, key: str, collection: str) -> list[str]:
    """The keys of the lead's items in a Directus collection that its stages named (one Query)."""
    prefix = directus_alias(collection, "")
    aliases = {alias["S"] for item in table.query_index(INDEX, key) for alias in item.get("aliases", {}).get("L", [])}
    return sorted(alias.removeprefix(prefix) for alias in aliases if alias.startswith(prefix))


def timeline(table: RelayTable, key: str, now: float) -> Timeline:
    items = items_of(table, key)
    trip = table.get(f"trip#{key.removeprefix('email#')}") if key.startswith("email#") else None
    open_trip = trip if trip and trip.get("lead", {}).get("S") == OVERDUE else None
    if not items and open_trip is None:
        raise NoSuchLead("no such lead: the ledger has no stage of it (never seen, forgotten, or past retention)")
    email = next(
        (item["email"]["S"] for item in [*items, *([open_trip] if open_trip else [])] if "email" in item), None
    )
    aliases = sorted({alias["S"] for item in items for alias in item.get("aliases", {}).get("L", [])})
    round_trip = None
    if open_trip:
        detail = from_attributes(open_trip.get("detail", {}).get("M", {}))
        due = float(open_trip["at"]["N"])
        round_trip = {**detail, "due_at": due, "overdue": due <= now, "event_id": open_trip["event_id"]["S"]}
    return Timeline(key, email, aliases, stages_of(items), round_trip)


def stages_of(items: list[dict[str, Any]]) -> list[StageLine]:
    """The items as stages, oldest first: each claim is the stage that accepted the job (once per
    event) and its delivery; a delivery is `failed` when a later entry says it was retried or
    dead-lettered (`parked`, with why, when its destination was down and it waits for its return)."""
    lines: dict[tuple[str, str], StageLine] = {}
    failed_after: dict[str, float] = {}
    parked: dict[str, StageLine] = {}  # event id → its latest failure, when that was parking
    retried: dict[tuple[str, str], StageLine] = {}
    notes: dict[str, StageLine] = {}
    for item in items:
        pk = item["pk"]["S"]
        suffix = pk.rsplit("#", 1)[-1] if pk.startswith("ledger#") else ""
        if suffix in NOTES:
            notes[item["event_id"]["S"]] = _lines(item)[-1]
            continue
        for line in _lines(item):
            key = (line.stage, line.event_id if line.stage != "dead_letter" else pk)
            # A retry's own line only stands for a job with no claim: the claim (rewritten when the job
            # comes back, so it may be the later item) is the stage, and the retry marks it failed.
            (retried if suffix == "retry" else lines).setdefault(key, line)
        if suffix in FAILURES:
            event_id, at = item["event_id"]["S"], float(item["at"]["N"])
            if at >= failed_after.get(event_id, 0.0):
                failure = _lines(item)[-1]
                parked.pop(event_id, None)
                if failure.outcome == "parked":
                    parked[event_id] = failure
            failed_after[event_id] = max(failed_after.get(event_id, 0.0), at)
    for key, line in retried.items():
        lines.setdefault(key, line)
    out = []
    for line in lines.values():
        note = notes.get(line.event_id)
        if note is not None and note.stage == line.stage and line.outcome == "delivered":
            line = StageLine(line.stage, line.at, note.outcome, line.event_id, {**line.detail, **note.detail})
        elif line.outcome == "delivered" and failed_after.get(line.event_id, -1) >= line.at:
            waiting = parked.get(line.event_id)
            outcome, detail = ("parked", {**line.detail, **waiting.detail}) if waiting else ("failed", line.detail)
            line = StageLine(line.stage, line.at, outcome, line.event_id, detail)
        out.append(line)
    return sorted(out, key=lambda line: (line.at, ORDER.index(line.stage) if line.stage in ORDER else 99))


def _lines(item: dict[str, Any]) -> list[StageLine]:
    pk, at = item["pk"]["S"], float(item["at"]["N"])
    event_id = item.get("event_id", {}).get("S", pk.split("#")[1] if "#" in pk else pk)
    detail = from_attributes(item.get("detail", {}).get("M", {}))
    lines = []
    accepted = item.get("accepted", {}).get("M")
    if accepted and not pk.startswith("trip#"):  # a closed round trip is its own clay.enriched line
        stage = accepted["stage"]["S"]
        lines.append(
            StageLine(
                stage,
                float(accepted.get("at", item["at"])["N"]),
                "enriched" if stage == "clay.enriched" else _OUTCOMES.get(stage, "accepted"),
                accepted.get("event_id", {}).get("S", event_id),
                from_attributes(accepted.get("detail", {}).get("M", {})),
            )
        )
    stage, outcome = item["stage"]["S"], item.get("outcome", {}).get("S", "")
    # A delivery's claim: the request was made when it was written. Not what Loops reported (an
    # observed stage), nor a Clay row the spend guard did not send (clay.skipped, clay.shadow).
    if pk.startswith("event#") and stage not in _OUTCOMES and stage in DELIVERY_STAGES.values():
        if detail.pop("replayed", False):
            lines.append(StageLine("replayed", at, "replayed", event_id, {}))
        if "delivered_at" in item or "sending_since" not in item:
            outcome = "delivered"
        else:
            outcome = "sending"
    elif pk.startswith("trip#"):  # the enrichment that closed the round trip
        lines.append(StageLine("clay.enriched", at, "enriched", event_id, detail))
        if detail.get("route") == "skip":
            lines.append(StageLine("route.skipped", at, "skipped", event_id, {"score": detail.get("score")}))
        return lines
    lines.append(StageLine(stage, at, outcome, event_id, detail))
    return lines


def _pks(items: list[dict[str, Any]]) -> set[str]:
    return {item["pk"]["S"] for item in items}


def overdue_leads(table: RelayTable, now: float) -> list[OverdueLead]:
    """Round trips past their due time (one Query: its cost grows with the overdue leads only)."""
    leads = []
    for item in table.query_index(INDEX, OVERDUE, at_most=now):
        detail = from_attributes(item.get("detail", {}).get("M", {}))
        aliases = [alias["S"] for alias in item.get("aliases", {}).get("L", [])]
        leads.append(
            OverdueLead(
                email=item.get("email", {}).get("S"),
                key=f"email#{item['pk']['S'].removeprefix('trip#')}",
                target=str(detail.get("target", "")),
                event_id=item["event_id"]["S"],
                sent_at=float(detail.get("sent_at") or 0),
                due_at=float(item["at"]["N"]),
                webhook_id=str(detail["webhook_id"]) if detail.get("webhook_id") else None,
                directus=[alias.removeprefix("directus#") for alias in aliases if alias.startswith("directus#")],
            )
        )
    return leads


def kept_about(table: RelayTable, key: str) -> list[str]:
    """The keys of every item the relay keeps about the lead: its stages (claims, failures, the round
    trip) and those of its aliases, and the links that point at it."""
    items = items_of(table, key)
    pks = _pks(items)
    if key.startswith("email#"):
        # The round trip, and the marks of the Loops feedback applied to the lead's Directus items.
        for pk in (f"trip#{key.removeprefix('email#')}", f"feedback#{key.removeprefix('email#')}"):
            if table.get(pk):
                pks.add(pk)
    aliases = {alias["S"] for item in items for alias in item.get("aliases", {}).get("L", [])}
    for alias in aliases:
        link = table.get(f"link#{alias}")
        if link and link.get("link_to", {}).get("S") == key:
            pks.add(f"link#{alias}")
    return sorted(pks)
