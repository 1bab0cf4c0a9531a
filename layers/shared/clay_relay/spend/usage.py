"""What a Clay target has spent: rows sent today and this month against its budget, rows held for
it, rows skipped as the same person, rows a target in shadow mode would have sent, and the month's
projection at this month's rate. Two items read (`relay clay spend`, `relay clay budget`, `relay
status`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from clay_relay.spend.budget import Limits, Period, limits_of, month_key, settings_key

if TYPE_CHECKING:
    from clay_relay.config import ClayTarget
    from clay_relay.store import RelayTable


@dataclass(frozen=True)
class TargetSpend:
    target: str
    mode: str
    limits: Limits
    period: Period
    sent_today: int
    sent_month: int
    skipped_today: int
    skipped_month: int
    shadow_today: int
    shadow_month: int
    held: int
    projected_month: int  # rows sent (shadow mode: that it would send) this month, at this month's rate

    @property
    def left_today(self) -> int | None:
        return None if self.limits.rows_per_day is None else max(0, self.limits.rows_per_day - self.sent_today)

    @property
    def left_month(self) -> int | None:
        return None if self.limits.rows_per_month is None else max(0, self.limits.rows_per_month - self.sent_month)

    def as_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "mode": self.mode,
            "day": self.period.day,
            "month": self.period.month,
            "budget": {
                "rows_per_day": self.limits.rows_per_day,
                "rows_per_month": self.limits.rows_per_month,
                "rows_per_day_from": self.limits.day_source,
                "rows_per_month_from": self.limits.month_source,
            },
            "sent": {"today": self.sent_today, "month": self.sent_month},
            "left": {"today": self.left_today, "month": self.left_month},
            "held": self.held,
            "skipped_same_person": {"today": self.skipped_today, "month": self.skipped_month},
            "shadow_would_send": {"today": self.shadow_today, "month": self.shadow_month},
            "projected_month": self.projected_month,
        }


def _count(item: dict[str, Any] | None, name: str) -> int:
    return int((item or {}).get(name, {"N": "0"})["N"])


def target_spend(table: RelayTable, target_name: str, target: ClayTarget, now: float) -> TargetSpend:
    period = Period.of(now)
    items = {
        item["pk"]["S"]: item for item in table.get_many([settings_key(target_name), month_key(target_name, period)])
    }
    stored, month = items.get(settings_key(target_name)), items.get(month_key(target_name, period))
    sent_month, shadow_month = _count(month, "sent"), _count(month, "shadow")
    fraction = period.month_fraction(now)
    return TargetSpend(
        target=target_name,
        mode=target.mode,
        limits=limits_of(target, stored),
        period=period,
        sent_today=_count(month, period.attribute("sent")),
        sent_month=sent_month,
        skipped_today=_count(month, period.attribute("skipped")),
        skipped_month=_count(month, "skipped"),
        shadow_today=_count(month, period.attribute("shadow")),
        shadow_month=shadow_month,
        held=max(0, _count(stored, "held")),  # approximate: see worker.settlement.settle_budgets
        projected_month=round((shadow_month if target.mode == "shadow" else sent_month) / fraction),
    )
