"""`relay clay list [TARGET]` and `relay clay add-webhook TARGET URL`: the pools of Clay webhook URLs.

A target's pool is its `webhooks_secret` (a JSON list of {"url", "token"} or of URLs, used in
order); each URL's submissions are counted in the table (`clay-quota#<webhook id>`). The current
URL is the one the workers reserve from: the first of the pool, in pool order, with submissions
left (clay.ClayQuota). URLs are shown masked (host and last 6 characters), tokens never.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass

from clay_relay.clay import ClayPoolUnavailable, ClayWebhook, parse_pool
from clay_relay.config import ClayTarget
from clay_relay.destination_urls import refusal
from clay_relay.secrets import PLACEHOLDER
from relay_cli import CommandError, clay_spend
from relay_cli.output import mask_url, print_json, print_table
from relay_cli.stack import Stack


def register(commands) -> None:
    clay = commands.add_parser(
        "clay", help="Clay targets: their pools of webhook URLs (list, add-webhook) and spend (budget, spend)"
    )
    sub = clay.add_subparsers(dest="clay_command", required=True, metavar="SUBCOMMAND")
    listing = sub.add_parser("list", help="each target's URLs (masked), submissions used and left, the current one")
    listing.add_argument("target", nargs="?", help="one target of relay.json's clay_targets (default: all)")
    listing.set_defaults(run=list_pools)
    add = sub.add_parser(
        "add-webhook",
        help="append a webhook URL to a target's pool",
        description="Append a Clay webhook URL to the target's pool secret. The workers use it once the URLs before "
        "it are used up: a worker that finds no URL with submissions left reads the pool again at once.",
    )
    add.add_argument("target", help="the target of relay.json's clay_targets")
    add.add_argument(
        "url",
        help="the table's webhook URL (https://api.clay.com/v3/sources/webhook/…): https:// to a public host "
        "(with --local, also http:// to this machine)",
    )
    add.add_argument("--token", help="the webhook's auth token, if it has one; `-` reads it from standard input")
    add.set_defaults(run=add_webhook)
    clay_spend.register_subcommands(sub)


def _target(stack: Stack, name: str) -> ClayTarget:
    targets = stack.config.clay_targets
    if name not in targets:
        raise CommandError(f"no clay target {name!r} in {stack.config_path} (targets: {', '.join(targets) or 'none'})")
    return targets[name]


def pool_entries(stack: Stack, target: ClayTarget) -> list:
    """The pool secret's entries as stored (an empty pool for a missing, empty or placeholder secret)."""
    value = stack.read_secret(target.webhooks_secret, missing="[]").strip()
    if not value or value.startswith(PLACEHOLDER):
        return []
    try:
        entries = json.loads(value)
    except ValueError:
        raise CommandError(f"secret {stack.secret_id(target.webhooks_secret)!r} is not JSON") from None
    return [entries] if isinstance(entries, dict) else entries


@dataclass(frozen=True)
class UrlUse:
    """A URL of a pool with the submissions it used and has left."""

    webhook: ClayWebhook
    used: int
    remaining: int


def pool_use(stack: Stack, target: ClayTarget) -> list[UrlUse]:
    """The target's URLs in pool order, each with the `clay-quota#<webhook id>` count the workers
    reserve from; CommandError when the pool secret is not a pool."""
    try:
        pool = parse_pool(pool_entries(stack, target), target)
    except ClayPoolUnavailable as error:
        raise CommandError(str(error)) from None
    used = stack.table.submissions([webhook.webhook_id for webhook in pool])
    limit = target.submission_limit
    return [UrlUse(webhook, used[webhook.webhook_id], max(0, limit - used[webhook.webhook_id])) for webhook in pool]


def pool_summary(stack: Stack, name: str, target: ClayTarget) -> dict:
    """The target's URLs in pool order with their submissions used and left, and which is current:
    the first with submissions left."""
    summary = {
        "target": name,
        "secret": stack.secret_id(target.webhooks_secret),
        "submission_limit": target.submission_limit,
        "webhooks": [],
        "remaining": 0,
        "current": None,
        "error": None,
    }
    try:
        urls = pool_use(stack, target)
    except CommandError as error:
        return summary | {"error": str(error)}
    current = next((position for position, url in enumerate(urls, start=1) if url.remaining), None)
    webhooks = [
        {
            "position": position,
            "url": mask_url(url.webhook.url),
            "webhook_id": url.webhook.webhook_id,
            "has_token": url.webhook.token is not None,
            "used": url.used,
            "remaining": url.remaining,
            "current": position == current,
        }
        for position, url in enumerate(urls, start=1)
    ]
    return summary | {"webhooks": webhooks, "remaining": sum(url.remaining for url in urls), "current": current}


def print_pools(summaries: list[dict]) -> None:
    for summary in summaries:
        print(
            f"{summary['target']}: secret {summary['secret']}, {summary['submission_limit']:,} submissions per URL, "
            f"{summary['remaining']:,} left"
        )
        if summary["error"]:
            print(f"  cannot read the pool: {summary['error']}")
            continue
        if not summary["webhooks"]:
            print("  the pool is empty: rows are held until a URL is added (relay clay add-webhook)")
            continue
        rows = [
            [
                w["position"],
                w["url"],
                w["webhook_id"],
                "yes" if w["has_token"] else "no",
                w["used"],
                w["remaining"],
                "current" if w["current"] else ("used up" if not w["remaining"] else ""),
            ]
            for w in summary["webhooks"]
        ]
        print_table(["#", "URL", "WEBHOOK ID", "TOKEN", "USED", "LEFT", ""], rows)
        if summary["current"] is None:
            print("  every URL is used up: rows are held until a URL is added (relay clay add-webhook)")


def list_pools(stack: Stack, args: argparse.Namespace) -> None:
    names = [args.target] if args.target else list(stack.config.clay_targets)
    summaries = [pool_summary(stack, name, _target(stack, name)) for name in names]
    if args.json:
        print_json(summaries)
    else:
        print_pools(summaries)


def add_webhook(stack: Stack, args: argparse.Namespace) -> None:
    target = _target(stack, args.target)
    url = args.url.strip()
    if problem := refusal(url, local=stack.local):
        where = "an https:// URL of a public host" + (", or one on this machine" if stack.local else "")
        raise CommandError(f"refused {mask_url(url)}: {problem}; a Clay webhook URL is {where}")
    entries = pool_entries(stack, target)
    try:
        pool = parse_pool(entries, target)
    except ClayPoolUnavailable as error:
        raise CommandError(f"{error}: fix the secret first") from None
    for position, webhook in enumerate(pool, start=1):
        if webhook.url.rstrip("/") == url.rstrip("/"):
            raise CommandError(f"that URL is already in the pool of {args.target!r} (#{position})")
    token = sys.stdin.readline().strip() if args.token == "-" else args.token  # noqa: S105  # nosec B105 - "-" means stdin
    entries.append({"url": url, "token": token} if token else {"url": url})
    stack.write_secret(target.webhooks_secret, json.dumps(entries))
    summary = pool_summary(stack, args.target, target)
    if args.json:
        print_json({"added": {"url": mask_url(url), "webhook_id": ClayWebhook(url).webhook_id}, "pool": summary})
        return
    print(f"added {mask_url(url)} to {args.target!r} as #{len(entries)}")
    print_pools([summary])
    print(
        "The workers read the pool again at once when they find no URL with submissions left (held rows go out at "
        f"their next check, within {stack.config.delivery.hold_seconds} s), otherwise within SECRETS_CACHE_SECONDS "
        "(5 min in a deployed stack)."
    )
