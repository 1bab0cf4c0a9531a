"""Budgets of Clay targets against moto: rows per UTC day and month counted in one conditional
update per batch, never past either limit whatever other workers do at the same time; the budget
in force is relay.json's, replaced limit by limit by `relay clay budget`, and read again only after
the cache's age."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime

import pytest

from clay_relay.config import ClayBudget, ClayTarget
from clay_relay.runtime import get_runtime
from clay_relay.spend.budget import (
    BudgetLimits,
    Limits,
    Period,
    limits_of,
    release_rows,
    reserve_rows,
    set_limits,
    settings_key,
)
from clay_relay.store import RelayTable
from tests.recorders import RecordingClient

DAY = Period("2026-12-06")


@pytest.fixture
def table(aws) -> RelayTable:
    return RelayTable()


def target(**budget) -> ClayTarget:
    return ClayTarget(webhooks_secret="clay-webhooks-leads", budget=ClayBudget(**budget) if budget else None)


def test_rows_are_granted_up_to_the_day_and_then_none(table):
    limits = Limits(rows_per_day=5)
    assert reserve_rows(table, "leads", limits, DAY, 3).granted == 3
    second = reserve_rows(table, "leads", limits, DAY, 4)
    assert (second.granted, second.day_used, second.month_used) == (2, 5, 5)
    assert reserve_rows(table, "leads", limits, DAY, 1).granted == 0
    assert reserve_rows(table, "leads", limits, Period("2026-12-07"), 4).granted == 4  # a new day
    assert reserve_rows(table, "leads", limits, Period("2027-01-01"), 9).granted == 5  # a new month too


def test_the_month_limit_holds_across_days(table):
    limits = Limits(rows_per_day=10, rows_per_month=12)
    assert reserve_rows(table, "leads", limits, DAY, 10).granted == 10
    assert reserve_rows(table, "leads", limits, Period("2026-12-07"), 10).granted == 2


def test_skipped_and_shadowed_rows_are_counted_even_when_nothing_is_granted(table):
    limits = Limits(rows_per_day=0)
    reservation = reserve_rows(table, "leads", limits, DAY, 3, skipped=2, shadow=1)
    assert reservation.granted == 0
    item = table.get("clay-budget#leads#2026-12")
    assert (item["skipped"], item["skipped_06"], item["shadow_06"], item["sent"]) == (
        {"N": "2"},
        {"N": "2"},
        {"N": "1"},
        {"N": "0"},
    )


def test_rows_given_back_can_be_granted_again(table):
    limits = Limits(rows_per_day=4)
    reserve_rows(table, "leads", limits, DAY, 4)
    release_rows(table, "leads", DAY, 3)
    assert reserve_rows(table, "leads", limits, DAY, 5).granted == 3


def test_concurrent_workers_never_pass_the_budget_and_use_it_all(table):
    """8 workers x 40 batches of 1-10 rows against 300 a day and 250 a month: exactly 250 granted.

    moto's DynamoDB evaluates a condition and applies the update in two Python steps, so each request
    is made atomic (as DynamoDB makes it) by a lock around the moto call; the relay's code runs free
    between requests, which is what is under test."""
    clients = get_runtime().aws
    clients._clients["dynamodb"] = RecordingClient(clients.client("dynamodb"), [], threading.Lock())
    limits, grants, lock = Limits(rows_per_day=300, rows_per_month=250), [], threading.Lock()

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(40):
            reservation = reserve_rows(table, "busy", limits, DAY, rng.randint(1, 10))
            with lock:
                grants.append(reservation)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(r.granted for r in grants) == 250
    assert max(r.month_used for r in grants) <= 250
    item = table.get("clay-budget#busy#2026-12")
    assert (item["sent"], item["sent_06"]) == ({"N": "250"}, {"N": "250"})


def test_relay_clay_budget_replaces_relay_json_limit_by_limit(table):
    configured = target(rows_per_day=5, rows_per_month=100)
    assert limits_of(configured, None) == Limits(5, 100)
    set_limits(table, "leads", {"rows_per_day": 10})
    limits = limits_of(configured, table.get(settings_key("leads")))
    assert (limits.rows_per_day, limits.day_source) == (10, "relay clay budget")
    assert (limits.rows_per_month, limits.month_source) == (100, "relay.json")
    set_limits(table, "leads", {"rows_per_month": None})  # no monthly limit
    assert limits_of(configured, table.get(settings_key("leads"))).rows_per_month is None
    set_limits(table, "leads", {}, reset=True)
    assert limits_of(configured, table.get(settings_key("leads"))) == Limits(5, 100)


def test_a_worker_reads_the_budget_again_only_after_the_cache_age(table):
    configured = target(rows_per_day=5)
    calls: list = []
    clients = get_runtime().aws
    clients._clients["dynamodb"] = RecordingClient(clients.client("dynamodb"), calls)
    cached = BudgetLimits(table, 3600, {})
    assert cached.of("leads", configured).rows_per_day == 5
    set_limits(table, "leads", {"rows_per_day": 9})
    assert cached.of("leads", configured).rows_per_day == 5  # still the cached read
    assert [name for name, _ in calls].count("get_item") == 1
    assert BudgetLimits(table, 0, {}).of("leads", configured).rows_per_day == 9


def test_periods_are_utc_days_and_months():
    moment = datetime(2026, 12, 31, 23, 59, tzinfo=UTC).timestamp()
    period = Period.of(moment)
    assert (period.day, period.month, period.attribute("sent")) == ("2026-12-31", "2026-12", "sent_31")
    assert Period.of(moment + 120).month == "2027-01"
    assert period.month_fraction(moment) == pytest.approx(1.0, abs=0.001)
    assert Period("2026-12-16").month_fraction(datetime(2026, 12, 16, 12, tzinfo=UTC).timestamp()) == pytest.approx(
        15.5 / 31
    )
