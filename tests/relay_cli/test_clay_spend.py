"""`relay clay budget` and `relay clay spend` against moto: the budget in force is shown and changed at
run time (kept in the table, read by the workers), bad values are refused with a clear message, a
budget below what is already used is accepted and said so, and each target's spend is reported;
`relay status` shows used, left and held per target and which targets are in shadow mode."""

from __future__ import annotations

import argparse
import json
import time

import pytest

from clay_relay.config import load_config
from clay_relay.spend.budget import Limits, Period, note_held, reserve_rows
from clay_relay.store import RelayTable
from relay_cli import CommandError, status
from relay_cli.__main__ import parser
from relay_cli.stack import Stack
from tests.invocations import default_config, relay_stack


@pytest.fixture
def stack(aws, tmp_path) -> Stack:
    """The `relay` command's view of the moto stack, whose relay.json gives `leads` 5 rows a day and
    has a second target, `trial`, in shadow mode."""
    config = default_config()
    config["clay_targets"]["leads"]["budget"] = {"rows_per_day": 5}
    config["clay_targets"]["trial"] = {"webhooks_secret": "clay-webhooks-trial", "mode": "shadow"}
    path = tmp_path / "relay.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    load_config(path)
    return relay_stack(aws, local=True, config_path=path)


def run(capsys, stack: Stack, *argv: str) -> dict | list:
    """`relay --json clay …` parsed as the command line parses it, run against the moto stack."""
    args = parser().parse_args(["--json", *argv])
    capsys.readouterr()
    args.run(stack, args)
    return json.loads(capsys.readouterr().out)


def used_today(rows: int, target: str = "leads") -> None:
    reserve_rows(RelayTable(), target, Limits(), Period.of(time.time()), rows)


def test_budget_shows_relay_jsons_budget_and_what_it_used(stack, capsys):
    used_today(3)
    note_held(RelayTable(), "leads", 2)
    shown = run(capsys, stack, "clay", "budget", "leads")
    assert shown["changed"] is False
    assert shown["budget"] == {
        "rows_per_day": 5,
        "rows_per_month": None,
        "rows_per_day_from": "relay.json",
        "rows_per_month_from": "relay.json",
    }
    assert (shown["sent"], shown["left"], shown["held"]) == ({"today": 3, "month": 3}, {"today": 2, "month": None}, 2)


def test_a_raise_is_stored_in_the_table_for_the_workers_and_says_when_held_rows_resume(stack, capsys):
    changed = run(capsys, stack, "clay", "budget", "leads", "--rows-per-day", "10", "--rows-per-month", "200")
    assert changed["changed"] is True
    assert changed["budget"]["rows_per_day"] == 10 and changed["budget"]["rows_per_day_from"] == "relay clay budget"
    assert changed["budget"]["rows_per_month"] == 200
    assert any("resume within about 45 s" in note for note in changed["notes"])
    stored = RelayTable().get("clay-budget#leads")
    assert (stored["rows_per_day"], stored["rows_per_month"]) == ({"N": "10"}, {"N": "200"})
    assert run(capsys, stack, "clay", "budget", "leads", "--rows-per-day", "none")["budget"]["rows_per_day"] is None
    back = run(capsys, stack, "clay", "budget", "leads", "--reset")["budget"]
    assert (back["rows_per_day"], back["rows_per_month"], back["rows_per_day_from"]) == (5, None, "relay.json")


def test_a_budget_below_what_went_today_is_accepted_and_said_so(stack, capsys):
    used_today(4)
    changed = run(capsys, stack, "clay", "budget", "leads", "--rows-per-day", "2")
    assert changed["budget"]["rows_per_day"] == 2 and changed["left"]["today"] == 0
    assert any("4 rows already went today, more than the budget of 2: accepted" in note for note in changed["notes"])


@pytest.mark.parametrize("value", ["-3", "2.5", "ten", "1e3", "", "٣"])
def test_negative_or_non_integer_budgets_are_refused_with_a_clear_message(stack, capsys, value):
    with pytest.raises(CommandError, match="takes a whole number of rows, 0 or more, or `none`"):
        run(capsys, stack, "clay", "budget", "leads", "--rows-per-day", value)
    assert RelayTable().get("clay-budget#leads") is None  # nothing stored


def test_a_missing_target_names_the_targets_there_are(stack, capsys):
    with pytest.raises(CommandError, match=r"no clay target 'nope' .*\(targets: leads, trial\)"):
        run(capsys, stack, "clay", "budget", "nope", "--rows-per-day", "5")
    with pytest.raises(CommandError, match="targets: leads, trial"):
        run(capsys, stack, "clay", "spend", "nope")


def test_spend_reports_each_target_sent_held_skipped_shadowed_and_the_months_projection(stack, capsys):
    table, period = RelayTable(), Period.of(time.time())
    reserve_rows(table, "leads", Limits(rows_per_day=5), period, 7, skipped=2)
    note_held(table, "leads", 2)
    reserve_rows(table, "trial", Limits(), period, 0, shadow=4)
    leads, trial = run(capsys, stack, "clay", "spend")
    assert (leads["target"], leads["mode"], leads["sent"], leads["held"]) == (
        "leads",
        "live",
        {"today": 5, "month": 5},
        2,
    )
    assert leads["skipped_same_person"] == {"today": 2, "month": 2}
    assert leads["projected_month"] >= 5
    assert (trial["mode"], trial["sent"]["today"], trial["shadow_would_send"]) == (
        "shadow",
        0,
        {"today": 4, "month": 4},
    )
    args = parser().parse_args(["clay", "spend"])
    args.run(stack, args)
    printed = capsys.readouterr().out
    assert "5 of 5" in printed and "shadow" in printed and "PROJECTED MONTH" in printed


def test_status_shows_used_left_and_held_per_target_and_the_targets_in_shadow(stack, capsys):
    used_today(5)
    note_held(RelayTable(), "leads", 3)
    status.run(stack, argparse.Namespace(json=False))
    printed = capsys.readouterr().out
    section = printed.split("Clay spend (", 1)[1].splitlines()[1:]  # its own: a Directus source may be `leads` too
    section = section[: next((n for n, text in enumerate(section) if not text.startswith(" ")), len(section))]
    [line] = [line.split() for line in section if line.strip().startswith("leads  ")]
    assert line[:6] == ["leads", "live", "5", "of", "5", "0"] and line[-1] == "3"
    assert "in shadow mode (nothing sent, nothing spent; relay trace shows each decision): trial" in printed
    report = status.gather(stack)
    assert [(s["target"], s["mode"], s["held"]) for s in report["clay_spend"]] == [
        ("leads", "live", 3),
        ("trial", "shadow", 0),
    ]


def test_status_does_not_count_rows_held_for_a_budget_as_held_for_clay_quota(stack, capsys):
    """Both wait on the queue as delayed messages; only a row held for quota waits for a URL and its
    hold horizon."""
    from clay_relay.delivery_queue import DeliveryQueue
    from tests.clay_relay.worker.test_worker import row_job

    budget = [row_job(n, budget_held=True, budget_held_at=time.time()) for n in range(3)]
    DeliveryQueue().enqueue(budget, delay_seconds=30)  # as the worker re-queues rows held for the budget
    note_held(RelayTable(), "leads", 3)
    DeliveryQueue().enqueue([row_job(3, holds=1), row_job(4, holds=1)], delay_seconds=900)  # held for quota
    report = status.gather(stack)
    assert report["delivery_queue"]["delayed"] == 5
    assert report["held_for_quota"]["rows"] == 2
    assert [s["held"] for s in report["clay_spend"] if s["target"] == "leads"] == [3]
