"""The `relay backfill directus` command: its options, and the run that reads the collection page by
page and hands each item to the relay, at the pace and within the quota, checkpointing as it goes."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from clay_relay.pacing import MARGIN, Pacer, interval_seconds
from relay_cli import CommandError
from relay_cli.backfill.checkpoint import Checkpoint, check_same_backfill, checkpoint_path, now
from relay_cli.backfill.quota import default_reserve, quota_left
from relay_cli.backfill.relay_route import RelayDirectusRoute
from relay_cli.backfill.report import Progress, Report, resume_command, resume_point
from relay_cli.backfill.sources import choose_source, directus_access
from relay_cli.backfill.stopping import Stopped, StopSignal
from relay_cli.directus_items import DirectusItems
from relay_cli.output import non_negative_int, positive_float, positive_int
from relay_cli.retries import Retrying
from relay_cli.stack import ROOT, Stack, StackError

STATE_DIR = ROOT / ".relay-backfill"


def register(commands: argparse._SubParsersAction) -> None:
    backfill = commands.add_parser(
        "backfill",
        help="send existing items through the relay (e.g. a Directus collection to Clay)",
        description="Send the items a source already holds through the relay, as if they had just been created.",
    )
    sources = backfill.add_subparsers(dest="backfill_source", required=True, metavar="SOURCE")
    directus = sources.add_parser(
        "directus",
        help="the existing items of a Directus collection, to a Clay target",
        description=(
            "Read the items of a Directus collection (REST API, paged on the primary key) and send each "
            "through the relay's Directus route to the Clay target, at the Clay rate, within the target's "
            "quota. Resumable: run the same command again after an interruption."
        ),
        epilog=(
            "exit statuses: 0 done (or --limit reached, or --dry-run); 1 error; 3 stopped before the "
            "target's quota ran out (add a webhook URL, run again); 4 done, but the relay refused some "
            "items (listed); 130 interrupted (run again to resume)"
        ),
    )
    directus.add_argument("collection", metavar="COLLECTION", help="the Directus collection, e.g. leads")
    directus.add_argument("--target", required=True, help="the relay.json clay_targets entry that gets the rows")
    directus.add_argument(
        "--source", help="the relay.json directus_sources entry to send through (default: the one for COLLECTION)"
    )
    directus.add_argument(
        "--directus-url",
        default=os.environ.get("DIRECTUS_URL"),
        help="Directus base URL (default: $DIRECTUS_URL, else the relay's directus-api secret)",
    )
    directus.add_argument(
        "--directus-token",
        default=os.environ.get("DIRECTUS_TOKEN"),
        help="static token that may read COLLECTION (default: $DIRECTUS_TOKEN, else the directus-api secret's)",
    )
    directus.add_argument("--key-field", default="id", help="the collection's primary key field (default: id)")
    directus.add_argument("--page-size", type=positive_int, default=100, help="items per Directus request (100)")
    directus.add_argument(
        "--rate", type=positive_float, help="items per second (default, and most: 95%% of the Clay rate)"
    )
    directus.add_argument(
        "--reserve",
        type=non_negative_int,
        help="submissions to leave unused for the Flows' own rows (default: 1%% of the target's submission_limit)",
    )
    directus.add_argument("--limit", type=positive_int, help="send at most N items in this run")
    directus.add_argument("--state", type=Path, help=f"folder of the checkpoint files (default: {STATE_DIR})")
    directus.add_argument("--restart", action="store_true", help="ignore the checkpoint and start from the beginning")
    directus.add_argument("--dry-run", action="store_true", help="count the items and check the quota; send nothing")
    directus.set_defaults(run=run_directus)


def run_directus(stack: Stack, args: argparse.Namespace) -> int:
    config = stack.config
    source_name, source = choose_source(config, args.collection, args.target, args.source)
    target = config.clay_targets[args.target]
    clay_rate = config.delivery.rates_per_second["clay"]
    if args.rate is not None and args.rate > clay_rate * MARGIN:
        raise CommandError(
            f"--rate {args.rate:g} is above the Clay rate the workers keep to ({clay_rate * MARGIN:g}/s, 95 % of "
            f"relay.json's delivery.rates_per_second.clay): the queue would pile up"
        )
    pacer_rate = paced_rate(clay_rate, args.rate)
    rate = 1 / interval_seconds(pacer_rate, workers=1)  # items per second
    reserve = default_reserve(target) if args.reserve is None else args.reserve
    url, token = directus_access(stack, args)
    relay_token = stack.first_token(source.tokens_secret)
    path = checkpoint_path(args.state or STATE_DIR, stack.name, source_name, args.collection)
    stop = StopSignal()
    http = Retrying(sleep=stop.sleep)  # Ctrl-C also cuts a retry's wait short
    items = DirectusItems(url, token, args.collection, args.key_field, http=http)

    checkpoint = None if args.restart else Checkpoint.load(path)
    if checkpoint is not None:
        check_same_backfill(checkpoint, args, url, path)
    else:
        checkpoint = Checkpoint(
            stack=stack.name,
            source=source_name,
            collection=args.collection,
            target=args.target,
            key_field=args.key_field,
            directus_url=url,
            upper_key=items.last_key(),
        )
    left_to_send = items.count(checkpoint.last_key, checkpoint.upper_key) if checkpoint.upper_key is not None else 0
    report = Report(stack, args, source_name, checkpoint, path, sys.stderr if args.json else sys.stdout)

    if args.dry_run:
        return report.dry_run(left_to_send, quota_left(stack, target, reserve), rate)
    checkpoint.save(path)  # the upper bound holds from now on, whatever happens to the first item
    if checkpoint.upper_key is None or (checkpoint.last_key is not None and left_to_send == 0):
        checkpoint.finished_at = checkpoint.finished_at or now()
        checkpoint.save(path)
        return report.finish("done", left=0)

    total = checkpoint.handled + left_to_send if left_to_send is not None else None
    progress = Progress(sys.stderr, f"{args.collection} → {args.target}", total)
    relay = RelayDirectusRoute(stack.api_url, source_name, relay_token, http)
    pacer = Pacer(sleep=stop.sleep)  # Ctrl-C cuts the wait short
    handled_now, quota, state = 0, None, "done"
    with stop:
        try:
            while state == "done":
                size = args.page_size if args.limit is None else min(args.page_size, args.limit - handled_now)
                if size <= 0:
                    state = "limit"
                    break
                stop.check()
                page = items.page(checkpoint.last_key, checkpoint.upper_key, size)
                if not page:
                    break
                budget = 0  # read before each page: the queue and the pool change meanwhile
                for item in page:
                    if budget <= 0:
                        quota = quota_left(stack, target, reserve)
                        budget = quota.budget
                        if budget <= 0:
                            state = "quota"
                            break
                    stop.check()
                    pacer.wait("clay", pacer_rate, workers=1)
                    key = item[args.key_field]
                    outcome = relay.send(args.collection, key, item)
                    checkpoint.record(key, outcome)
                    checkpoint.save(path)
                    handled_now += 1
                    if outcome.status == "sent":
                        budget -= 1
                    progress.update(checkpoint)
                    stop.check()
        except (Stopped, KeyboardInterrupt):
            state = "interrupted"
        except (CommandError, StackError, BotoCoreError, ClientError):
            progress.close(checkpoint)
            print(
                f"relay: {checkpoint.handled} items handed over so far; the checkpoint {path} resumes "
                f"{resume_point(checkpoint)}: `{resume_command(stack, args, source_name)}`",
                file=sys.stderr,
            )
            raise
    progress.close(checkpoint)
    if state == "done":
        checkpoint.finished_at = now()
        checkpoint.save(path)
    return report.finish(state, left=None if total is None else max(0, total - checkpoint.handled), quota=quota)


def paced_rate(clay_rate: float, wanted: float | None) -> float:
    """The rate to give the Pacer, which keeps to 95 % of it (whole items per second from 1/s up), as the
    workers do: relay.json's Clay rate, or the --rate asked for expressed the same way (never above it)."""
    return clay_rate if wanted is None else round(wanted / MARGIN, 6)
