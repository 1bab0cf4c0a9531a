"""Budgets of Clay targets: rows per UTC day and per UTC month, counted atomically per batch.

One item per target and month, `clay-budget#<target>#<YYYY-MM>`, holds the month's counts (`sent`,
`skipped`, `shadow`) and each day's (`sent_<DD>`, ...). A batch's rows are counted with one
conditional UpdateItem that adds to the day and the month at once and never passes either limit,
whatever other workers do meanwhile (like the Clay quota, clay_relay.store.counters). The
item is written even without a budget: its counts are what `relay clay spend` reports.

The item `clay-budget#<target>` holds what `relay clay budget` set at run time (`rows_per_day`,
`rows_per_month`: a number, or NULL for no limit; absent: relay.json's) and the rows `held` now.
Workers read it at most every `CLAY_BUDGET_CACHE_SECONDS`.
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from clay_relay.observability import MetricUnit, count, gauge, logger
from clay_relay.store import QUOTA_RETRIES, ConditionFailed

if TYPE_CHECKING:
    from clay_relay.config import ClayTarget
    from clay_relay.store import RelayTable

KEPT_DAYS = 400  # a month's counts are kept this long after the month began (TTL)
LIMITS = ("rows_per_day", "rows_per_month")


@dataclass(frozen=True)
class Period:
    """The UTC day and month a moment falls in."""

    day: str  # YYYY-MM-DD

    @classmethod
    def of(cls, now: float) -> Period:
        return cls(datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d"))

    @property
    def month(self) -> str:
        return self.day[:7]

    def attribute(self, counter: str) -> str:
        """The day's attribute of a counter: `sent_06` for the 6th."""
        return f"{counter}_{self.day[8:]}"

    def month_fraction(self, now: float) -> float:
        """How much of the month has passed at `now` (0 < fraction <= 1)."""
        start = datetime.strptime(self.month, "%Y-%m").replace(tzinfo=UTC)
        days = calendar.monthrange(start.year, start.month)[1]
        return min(1.0, max(1.0, now - start.timestamp()) / (days * 86_400))


def settings_key(target: str) -> str:
    return f"clay-budget#{target}"


def month_key(target: str, period: Period) -> str:
    return f"clay-budget#{target}#{period.month}"


@dataclass(frozen=True)
class Limits:
    """A target's budget in force, and where each limit comes from ("relay.json" or "relay clay budget")."""

    rows_per_day: int | None = None
    rows_per_month: int | None = None
    day_source: str = "relay.json"
    month_source: str = "relay.json"

    @property
    def any(self) -> bool:
        return self.rows_per_day is not None or self.rows_per_month is not None


def limits_of(target: ClayTarget, stored: dict[str, Any] | None) -> Limits:
    """relay.json's budget, replaced limit by limit by what `relay clay budget` stored."""

    def limit(name: str) -> tuple[int | None, str]:
        if stored and name in stored:
            return (None if stored[name].get("NULL") else int(stored[name]["N"])), "relay clay budget"
        return (getattr(target.budget, name) if target.budget else None), "relay.json"

    (day, day_source), (month, month_source) = limit("rows_per_day"), limit("rows_per_month")
    return Limits(day, month, day_source, month_source)


class BudgetLimits:
    """The budgets in force, each read from the table at most every `max_age` seconds (per target)."""

    def __init__(self, table: RelayTable, max_age: float, cache: dict[str, tuple[float, dict[str, Any] | None]]):
        self.table, self.max_age, self.cache = table, max_age, cache

    def of(self, target_name: str, target: ClayTarget) -> Limits:
        now = time.monotonic()
        read_at, stored = self.cache.get(target_name, (float("-inf"), None))
        if now - read_at >= self.max_age:
            stored = self.table.get(settings_key(target_name))
            self.cache[target_name] = (now, stored)
        return limits_of(target, stored)


@dataclass(frozen=True)
class Reservation:
    """Rows granted out of those wanted, and the day's and month's rows sent after it."""

    granted: int
    day_used: int
    month_used: int


def _used(item: dict[str, Any] | None, name: str) -> int:
    return int((item or {}).get(name, {"N": "0"})["N"])


def reserve_rows(
    table: RelayTable,
    target_name: str,
    limits: Limits,
    period: Period,
    wanted: int,
    *,
    skipped: int = 0,
    shadow: int = 0,
) -> Reservation:
    """Count up to `wanted` rows as sent without passing the day's or the month's limit, and the
    batch's rows skipped (same person) and shadowed, in one conditional update (more only when other
    workers won a race, or the budget is used up)."""
    day = period.attribute("sent")
    ask = max(0, min([wanted, *(limit for limit in (limits.rows_per_day, limits.rows_per_month) if limit is not None)]))
    for _ in range(QUOTA_RETRIES):
        values: dict[str, Any] = {
            ":n": {"N": str(ask)},
            ":skipped": {"N": str(skipped)},
            ":shadow": {"N": str(shadow)},
            ":target": {"S": target_name},
            ":expires": {"N": str(int(time.time()) + KEPT_DAYS * 86_400)},
        }
        names = {
            "#day": day,
            "#skipped_day": period.attribute("skipped"),
            "#shadow_day": period.attribute("shadow"),
            "#target": "target",
        }
        conditions = []
        if ask and limits.rows_per_day is not None:
            conditions.append("(attribute_not_exists(#day) OR #day <= :day_most)")
            values[":day_most"] = {"N": str(limits.rows_per_day - ask)}
        if ask and limits.rows_per_month is not None:
            conditions.append("(attribute_not_exists(sent) OR sent <= :month_most)")
            values[":month_most"] = {"N": str(limits.rows_per_month - ask)}
        try:
            item = table.update(
                month_key(target_name, period),
                "ADD sent :n, #day :n, skipped :skipped, #skipped_day :skipped, shadow :shadow, #shadow_day :shadow "
                "SET #target = :target, expires_at = if_not_exists(expires_at, :expires)",
                values,
                names=names,
                condition=" AND ".join(conditions) or None,
            )
        except ConditionFailed as failed:
            left = [wanted]
            if limits.rows_per_day is not None:
                left.append(limits.rows_per_day - _used(failed.item, day))
            if limits.rows_per_month is not None:
                left.append(limits.rows_per_month - _used(failed.item, "sent"))
            ask = max(0, min(left))
            if not (ask or skipped or shadow):  # used up, and nothing else to count: no second write
                return Reservation(0, _used(failed.item, day), _used(failed.item, "sent"))
            continue
        return Reservation(ask, _used(item, day), _used(item, "sent"))
    # Lost every race to other workers: take nothing now (the rows wait); the counts are not known.
    return Reservation(0, -1, -1)


def release_rows(table: RelayTable, target_name: str, period: Period, rows: int) -> None:
    """Give back rows counted for requests that never reached Clay."""
    if rows > 0:
        table.update(
            month_key(target_name, period),
            "ADD sent :minus, #day :minus",
            {":minus": {"N": str(-rows)}},
            names={"#day": period.attribute("sent")},
        )


def note_held(table: RelayTable, target_name: str, change: int) -> None:
    """Rows that began (+) or stopped (-) waiting for the target's budget."""
    if change:
        table.update(settings_key(target_name), "ADD held :change", {":change": {"N": str(change)}})


def set_limits(table: RelayTable, target_name: str, changes: dict[str, int | None], *, reset: bool = False) -> None:
    """What `relay clay budget` sets: a limit (None: no limit), or back to relay.json's (`reset`)."""
    sets = [f"{name} = :{name}" for name in changes]
    values: dict[str, Any] = {
        f":{name}": {"NULL": True} if value is None else {"N": str(value)} for name, value in changes.items()
    }
    values[":at"] = {"N": f"{time.time():.3f}"}
    expression = "SET " + ", ".join([*sets, "changed_at = :at"])
    if reset:
        expression += " REMOVE " + ", ".join(LIMITS)
    table.update(settings_key(target_name), expression, values)


def warn_on_thresholds(target_name: str, target: ClayTarget, limits: Limits, reservation: Reservation) -> None:
    """Warnings (and counts) when the day's or the month's rows pass a mark of `warn_at`; the level
    `ClayBudgetUsedPercent` (the fuller of the two), which the 100 % alarm watches."""
    if not limits.any or reservation.day_used < 0:
        return
    levels = []
    for period, limit, used in (
        ("day", limits.rows_per_day, reservation.day_used),
        ("month", limits.rows_per_month, reservation.month_used),
    ):
        if limit is None:
            continue
        levels.append(100.0 if limit <= 0 else min(100.0, 100 * used / limit))
        before = used - reservation.granted
        for fraction in (*target.warn_at, 1.0):
            mark = fraction * limit
            if reservation.granted and before < mark <= used:
                logger.warning(
                    f"clay target has used {fraction:.0%} of its budget for the {period}",
                    extra={"target": target_name, "period": period, "used": used, "budget": limit},
                )
                if fraction < 1:
                    count(f"ClayBudgetPassed{round(fraction * 100)}Percent", destination="clay")
    gauge(
        "ClayBudgetUsedPercent",
        round(max(levels), 2),
        MetricUnit.Percent,
        destination="clay",
        breakdown={"target": target_name},
    )
