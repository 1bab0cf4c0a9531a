"""`relay clay budget TARGET [--rows-per-day N] [--rows-per-month M] [--reset]` and `relay clay spend
[TARGET]`: the Clay spend guard of each target.

`budget` shows a target's budget in force (relay.json's, or what this command set) with what it
used today and this month, and changes it at run time: the value is stored in the table
(`clay-budget#<target>`), and the workers read it again within `CLAY_BUDGET_CACHE_SECONDS`, so rows
held for the budget resume within a minute of a raise, without a redeploy. `spend` prints, per
target, rows sent today and this month, held, skipped as the same person, what a target in shadow
mode would have sent, and the month's projection at this month's rate. Days and months are UTC.
"""

from __future__ import annotations

import argparse
import time

from clay_relay.config import ClayTarget
from clay_relay.settings import Settings
from clay_relay.spend.budget import set_limits
from clay_relay.spend.usage import TargetSpend, target_spend
from relay_cli import CommandError
from relay_cli.output import print_json, print_table
from relay_cli.stack import Stack

NO_LIMIT = ("none", "off", "unlimited")


def register_subcommands(sub) -> None:
    """`budget` and `spend`, under `relay clay`."""
    budget = sub.add_parser(
        "budget",
        help="a target's rows per day and month: show it, or change it at run time",
        description=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    budget.add_argument("target", help="the target of relay.json's clay_targets")
    budget.add_argument("--rows-per-day", metavar="N", help="rows per UTC day at most (`none`: no daily limit)")
    budget.add_argument("--rows-per-month", metavar="M", help="rows per UTC month at most (`none`: no monthly limit)")
    budget.add_argument("--reset", action="store_true", help="back to relay.json's budget")
    budget.set_defaults(run=budget_command)
    spend = sub.add_parser(
        "spend", help="per target: rows sent today and this month, held, skipped, the month's projection"
    )
    spend.add_argument("target", nargs="?", help="one target of relay.json's clay_targets (default: all)")
    spend.set_defaults(run=spend_command)


def _target(stack: Stack, name: str) -> ClayTarget:
    targets = stack.config.clay_targets
    if name not in targets:
        raise CommandError(f"no clay target {name!r} in {stack.config_path} (targets: {', '.join(targets) or 'none'})")
    return targets[name]


def parse_limit(option: str, text: str) -> int | None:
    """A limit as typed: a whole number of rows, 0 or more, or `none`."""
    value = text.strip().lower()
    if value in NO_LIMIT:
        return None
    if not value.isdecimal() or not value.isascii():
        raise CommandError(f"{option} takes a whole number of rows, 0 or more, or `none` for no limit: not {text!r}")
    return int(value)


def spend_of(stack: Stack, name: str, target: ClayTarget) -> TargetSpend:
    return target_spend(stack.table, name, target, time.time())


# --- budget -------------------------------------------------------------------------------------------
def budget_command(stack: Stack, args: argparse.Namespace) -> None:
    target = _target(stack, args.target)
    changes = {
        name: parse_limit(option, value)
        for name, option, value in (
            ("rows_per_day", "--rows-per-day", args.rows_per_day),
            ("rows_per_month", "--rows-per-month", args.rows_per_month),
        )
        if value is not None
    }
    before = spend_of(stack, args.target, target)
    if changes or args.reset:
        set_limits(stack.table, args.target, changes, reset=args.reset)
    after = spend_of(stack, args.target, target)
    notes = budget_notes(stack, before, after, changed=bool(changes or args.reset))
    if getattr(args, "json", False):
        print_json({"changed": bool(changes or args.reset), **after.as_json(), "notes": notes})
        return
    print_budget(after)
    for note in notes:
        print(f"note: {note}")


def budget_notes(stack: Stack, before: TargetSpend, after: TargetSpend, *, changed: bool) -> list[str]:
    notes = []
    if changed:
        cache = Settings.model_fields["clay_budget_cache_seconds"].default
        hold = stack.config.delivery.budget_hold_seconds
        notes.append(
            f"stored in the table, no redeploy: the workers use it within {cache} s, and rows held for the budget "
            f"resume within about {hold + cache} s of a raise (they check every {hold} s)"
        )
    for period, used, limit, rolls in (
        ("today", after.sent_today, after.limits.rows_per_day, "tomorrow (00:00 UTC)"),
        ("this month", after.sent_month, after.limits.rows_per_month, "next month (UTC)"),
    ):
        if limit is not None and used > limit:
            notes.append(
                f"{used} rows already went {period}, more than the budget of {limit}: accepted; rows are held until "
                f"{rolls} or a raise"
            )
    if after.mode == "shadow":
        notes.append("the target is in shadow mode: it sends nothing and spends no budget")
    if before.held and changed and after.limits != before.limits:
        notes.append(f"{before.held} rows are held for this budget now")
    return notes


def _limit(value: int | None, source: str, per: str) -> str:
    return f"no limit per {per}" if value is None else f"{value:,} rows per {per} ({source})"


def print_budget(spend: TargetSpend) -> None:
    limits = spend.limits
    print(
        f"{spend.target}: {_limit(limits.rows_per_day, limits.day_source, 'day')}, "
        f"{_limit(limits.rows_per_month, limits.month_source, 'month')}"
    )
    left = "" if spend.left_today is None else f", {spend.left_today:,} left"
    left_month = "" if spend.left_month is None else f", {spend.left_month:,} left"
    print(f"  today ({spend.period.day} UTC): {spend.sent_today:,} sent{left}; held {spend.held:,}")
    print(f"  this month ({spend.period.month}): {spend.sent_month:,} sent{left_month}")


# --- spend ----------------------------------------------------------------------------------------------
def spend_command(stack: Stack, args: argparse.Namespace) -> None:
    names = [args.target] if args.target else list(stack.config.clay_targets)
    figures = [spend_of(stack, name, _target(stack, name)) for name in names]
    if getattr(args, "json", False):
        print_json([spend.as_json() for spend in figures])
        return
    print_spend(figures)


def _of(used: int, limit: int | None) -> str:
    return f"{used:,}" if limit is None else f"{used:,} of {limit:,}"


def print_spend(figures: list[TargetSpend]) -> None:
    if not figures:
        print("no clay targets in relay.json")
        return
    rows = [
        [
            spend.target,
            spend.mode,
            _of(spend.sent_today, spend.limits.rows_per_day),
            _of(spend.sent_month, spend.limits.rows_per_month),
            spend.held,
            f"{spend.skipped_today:,} / {spend.skipped_month:,}",
            f"{spend.shadow_today:,} / {spend.shadow_month:,}" if spend.mode == "shadow" else None,
            f"{spend.projected_month:,}",
        ]
        for spend in figures
    ]
    headers = ["TARGET", "MODE", "SENT TODAY", "SENT THIS MONTH", "HELD", "SKIPPED SAME PERSON (TODAY / MONTH)"]
    print_table([*headers, "SHADOW WOULD SEND (TODAY / MONTH)", "PROJECTED MONTH"], rows)
    print(
        f"(UTC day {figures[0].period.day}; projected: this month's rows at this month's rate so far; "
        "a target in shadow mode: what it would send)"
    )
