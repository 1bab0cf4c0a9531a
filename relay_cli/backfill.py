"""`relay backfill directus COLLECTION --target TARGET`: send the items a Directus collection already
holds through the relay to Clay, as if each had just been created.

    source   the collection's items in primary-key order (directus_items), with a static token: the
             relay's own `directus-api` secret, or --directus-url/--directus-token (or DIRECTUS_URL/
             DIRECTUS_TOKEN), up to the highest key when the backfill started: items created
             afterwards are the Flow's to send, not the backfill's.
    relay    POST {api}/directus/{source} with the source's token and the body a Flow sends for a
             create (`{"event": "<collection>.items.create", "collection", "key", "payload": item}`),
             so every row goes through the relay's checks, dedupe, queue, quota and pacing. The
             event id is a hash of that content: an item sent twice is answered `duplicate`.
    rate     95 % of relay.json's `delivery.rates_per_second.clay` (what the workers themselves
             keep to), or --rate below it: the queue never piles up behind the backfill.
    quota    before each page (and whenever the budget runs out): the submissions left on the
             target's webhook URLs (clay_pool.pool_use), minus every job on the delivery queue
             (visible, in flight or delayed: conservatively all counted as rows for this target),
             minus --reserve. The backfill never sends more than that, and stops (exit status 3)
             before the item that would need more.
    resume   a checkpoint (`.relay-backfill/<stack>-<source>-<collection>.json`, or --state DIR)
             is written atomically after each item the relay acknowledged: the last key handed
             over, the counts, the items refused. The next run continues after that key.

Exit statuses: 0 done (or --limit reached, or --dry-run), 1 error (nothing more was sent after the
checkpoint), 3 stopped before the target's quota ran out, 4 done but the relay refused some items
(listed), 130 interrupted (Ctrl-C: the request in flight was finished and checkpointed).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO
from urllib.parse import quote

import requests
from botocore.exceptions import BotoCoreError, ClientError

from clay_relay.config import ClayTarget, DirectusSource, RelayConfig
from clay_relay.pacing import MARGIN
from clay_relay.secrets import PLACEHOLDER
from relay_cli import CommandError
from relay_cli.clay_pool import pool_use
from relay_cli.directus_items import DirectusItems, Key
from relay_cli.output import duration, non_negative_int, positive_float, positive_int
from relay_cli.retries import Retrying
from relay_cli.send import directus_body, encode
from relay_cli.stack import ROOT, Stack, StackError
from relay_cli.status import queue_counts

STATE_DIR = ROOT / ".relay-backfill"
EXIT_QUOTA = 3
EXIT_REFUSED = 4
EXIT_INTERRUPTED = 130
CHECKPOINT_VERSION = 1
# The relay's answers that say something is wrong with every item (a setting), not with this one.
FATAL_RELAY_STATUSES = {
    401: "the source's token was refused",
    403: "forbidden",
    404: "no such source or route",
    405: "method not allowed",
    415: "unsupported content type",
}


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


# --- the command -------------------------------------------------------------------------------------
def run_directus(stack: Stack, args: argparse.Namespace) -> int:
    config = stack.config
    source_name, source = choose_source(config, args.collection, args.target, args.source)
    target = config.clay_targets[args.target]
    clay_rate = config.delivery.rates_per_second["clay"] * MARGIN
    if args.rate is not None and args.rate > clay_rate:
        raise CommandError(
            f"--rate {args.rate:g} is above the Clay rate the workers keep to ({clay_rate:g}/s, 95 % of "
            f"relay.json's delivery.rates_per_second.clay): the queue would pile up"
        )
    rate = args.rate or clay_rate
    reserve = default_reserve(target) if args.reserve is None else args.reserve
    url, token = directus_access(stack, args)
    relay_token = stack.first_token(source.tokens_secret)
    path = checkpoint_path(args.state or STATE_DIR, stack.name, source_name, args.collection)
    stop = StopSignal()
    http = Retrying(sleep=stop.sleep)  # Ctrl-C also cuts a retry's wait short
    items = DirectusItems(url, token, args.collection, args.key_field, http=http)

    checkpoint = None if args.restart else Checkpoint.load(path)
    if checkpoint is not None:
        _check_same_backfill(checkpoint, args, url, path)
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
        checkpoint.finished_at = checkpoint.finished_at or _now()
        checkpoint.save(path)
        return report.finish("done", left=0)

    total = checkpoint.handled + left_to_send if left_to_send is not None else None
    progress = Progress(sys.stderr, f"{args.collection} → {args.target}", total)
    relay = RelayDirectusRoute(stack.api_url, source_name, relay_token, http)
    pace = Pace(rate, stop)
    handled_now, quota, state = 0, None, "done"
    with stop:
        try:
            while state == "done":
                size = args.page_size if args.limit is None else min(args.page_size, args.limit - handled_now)
                if size <= 0:
                    state = "limit"
                    break
                if stop.requested:
                    raise Stopped
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
                    pace.wait()
                    key = item[args.key_field]
                    outcome = relay.send(args.collection, key, item)
                    checkpoint.record(key, outcome)
                    checkpoint.save(path)
                    handled_now += 1
                    if outcome.status == "sent":
                        budget -= 1
                    progress.update(checkpoint)
                    if stop.requested:
                        raise Stopped
        except (Stopped, KeyboardInterrupt):
            state = "interrupted"
        except (CommandError, StackError, BotoCoreError, ClientError):
            progress.close(checkpoint)
            print(
                f"relay: {checkpoint.handled} items handed over so far; the checkpoint {path} resumes "
                f"{_after(checkpoint)}: `{resume_command(stack, args, source_name)}`",
                file=sys.stderr,
            )
            raise
    progress.close(checkpoint)
    if state == "done":
        checkpoint.finished_at = _now()
        checkpoint.save(path)
    return report.finish(state, left=None if total is None else max(0, total - checkpoint.handled), quota=quota)


def choose_source(config: RelayConfig, collection: str, target: str, wanted: str | None) -> tuple[str, DirectusSource]:
    """The directus_sources entry that sends COLLECTION to TARGET (one for COLLECTION before one for any)."""
    if target not in config.clay_targets:
        raise CommandError(
            f"no Clay target {target!r} in relay.json; its targets: {', '.join(sorted(config.clay_targets)) or 'none'}"
        )
    sources = config.directus_sources
    fitting = [n for n, s in sources.items() if s.clay_target == target and s.collection in (None, collection)]
    described = ", ".join(f"{n} ({s.collection or 'any collection'} → {s.clay_target})" for n, s in sources.items())
    if wanted is not None:
        if wanted not in fitting:
            raise CommandError(
                f"source {wanted!r} does not send collection {collection!r} to target {target!r}; "
                f"the sources: {described or 'none'}"
            )
        candidates = [wanted]
    else:
        candidates = [n for n in fitting if sources[n].collection == collection] or fitting
    if not candidates:
        raise CommandError(
            f"no Directus source sends collection {collection!r} to target {target!r}; "
            f"the sources: {described or 'none'} (add one to relay.json, or pick with --source)"
        )
    if len(candidates) > 1:
        raise CommandError(
            f"several sources send {collection!r} to {target!r} ({', '.join(candidates)}): pick one with --source"
        )
    [name] = candidates
    if sources[name].on_create != "send":
        raise CommandError(
            f"source {name!r} skips create events (on_create: skip); the backfill sends items as creates"
        )
    return name, sources[name]


def directus_access(stack: Stack, args: argparse.Namespace) -> tuple[str, str]:
    """Directus' URL and a token: the options (or DIRECTUS_URL/DIRECTUS_TOKEN), else the relay's write-back secret."""
    url, token = args.directus_url, args.directus_token
    if not (url and token):
        write_back = stack.config.clay_callback.directus_writeback if stack.config.clay_callback else None
        name = write_back.api_secret if write_back else "directus-api"
        try:
            api = json.loads(stack.read_secret(name))
            url, token = url or str(api["url"]), token or str(api["token"])
        except (StackError, ValueError, KeyError, TypeError) as error:
            reason = str(error) if isinstance(error, StackError) else 'it is not {"url": …, "token": …}'
            raise CommandError(
                f"which Directus? give --directus-url and --directus-token (or DIRECTUS_URL, DIRECTUS_TOKEN): "
                f"the secret {stack.secret_id(name)!r} cannot tell ({reason})"
            ) from None
        if token.startswith(PLACEHOLDER) or url.startswith(PLACEHOLDER):
            raise CommandError(
                f"the secret {stack.secret_id(name)!r} still holds the template's placeholder: "
                f"give --directus-url and --directus-token (or DIRECTUS_URL, DIRECTUS_TOKEN)"
            )
    if not url.startswith(("https://", "http://")):
        raise CommandError(f"the Directus URL must start with https:// (got {url!r})")
    return url.rstrip("/"), token


def resume_command(stack: Stack, args: argparse.Namespace, source: str) -> str:
    words = ["relay"]
    words += ["--local"] if stack.local else ["--stack", stack.name, "--region", stack.region]
    words += ["backfill", "directus", args.collection, "--target", args.target, "--source", source]
    if args.state:
        words += ["--state", str(args.state)]
    return shlex.join(words)


def _check_same_backfill(checkpoint: Checkpoint, args: argparse.Namespace, url: str, path: Path) -> None:
    for what, theirs, ours in (
        ("target", checkpoint.target, args.target),
        ("key field", checkpoint.key_field, args.key_field),
        ("Directus URL", checkpoint.directus_url, url),
    ):
        if theirs != ours:
            raise CommandError(
                f"the checkpoint {path} is of a backfill with {what} {theirs!r}, not {ours!r}: "
                f"run that one again to resume it, or --restart to start this one over"
            )


# --- stopping cleanly, and the pace ------------------------------------------------------------------
class Stopped(Exception):
    """Ctrl-C asked the backfill to stop (raised only between requests)."""


class StopSignal:
    """The first Ctrl-C asks for a stop after the request in flight; a second one stops at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: object = None

    def __enter__(self) -> StopSignal:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)  # type: ignore[arg-type]

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nrelay: stopping after the request in flight (Ctrl-C again to stop at once)", file=sys.stderr)

    def sleep(self, seconds: float) -> None:
        """Sleeps, but wakes within 0.1 s of a stop request (and raises Stopped)."""
        end = time.monotonic() + seconds
        while not self.requested:
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.1))
        raise Stopped


class Pace:
    """Spaces the requests `1/rate` apart (from when each was really sent)."""

    def __init__(self, rate: float, stop: StopSignal):
        self.interval = 1 / rate
        self.stop = stop
        self._next = 0.0

    def wait(self) -> None:
        pause = self._next - time.monotonic()
        if pause > 0:
            self.stop.sleep(pause)
        elif self.stop.requested:
            raise Stopped
        self._next = max(self._next, time.monotonic()) + self.interval


# --- the relay ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    status: str  # "sent", "duplicate", "skipped" or "refused"
    detail: str = ""


class RelayError(CommandError):
    """The relay refuses every item (a setting): no item can go through until that is fixed."""


class RelayDirectusRoute:
    """`POST {api}/directus/{source}`, exactly as a Directus Flow calls it for a create."""

    def __init__(self, api_url: str, source: str, token: str, http: Retrying):
        self.url = f"{api_url.rstrip('/')}/directus/{quote(source, safe='')}"
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "User-Agent": "clay-relay-backfill",
        }
        self._http = http

    def __repr__(self) -> str:  # never the token
        return f"RelayDirectusRoute({self.url!r})"

    def send(self, collection: str, key: object, item: dict) -> Outcome:
        if isinstance(key, bool) or not isinstance(key, int | str):
            return Outcome("refused", f"the key {key!r} is neither an integer nor a string")
        data = encode(directus_body("create", collection, key, item))
        response = self._http.request("POST", self.url, data=data, headers=self._headers, reason=_relay_reason)
        status = response.status_code
        if 200 <= status < 300:
            try:
                answer = response.json()
            except ValueError:
                answer = {}
            answer = answer if isinstance(answer, dict) else {}
            if answer.get("skipped"):
                return Outcome("skipped", str(answer["skipped"]))
            return Outcome("duplicate" if answer.get("duplicate") else "sent", str(answer.get("event_id", "")))
        if status in FATAL_RELAY_STATUSES:
            raise RelayError(
                f"the relay answered {status} at {self.url} ({FATAL_RELAY_STATUSES[status]}: "
                f"{_relay_reason(response)}): no item can go through until that is fixed"
            )
        return Outcome("refused", f"HTTP {status} {_relay_reason(response)}")


def _relay_reason(response: requests.Response) -> str:
    try:
        answer = response.json()
        text = f"{answer.get('error', '')}: {answer.get('message', '')}"
        if answer.get("fields"):
            text += " " + "; ".join(f"{f.get('field')}: {f.get('problem')}" for f in answer["fields"])
        return text
    except (ValueError, AttributeError, TypeError):
        return response.text[:200].strip()


# --- the target's quota ----------------------------------------------------------------------------
@dataclass(frozen=True)
class QuotaLeft:
    on_urls: int  # submissions left on the pool's URLs
    urls: int  # URLs in the pool
    queued: int  # jobs on the delivery queue, not yet counted
    reserve: int

    @property
    def budget(self) -> int:
        """Items the backfill may still send."""
        return max(0, self.on_urls - self.queued - self.reserve)


def quota_left(stack: Stack, target: ClayTarget, reserve: int) -> QuotaLeft:
    """What a Clay target can still take, from the same counts the workers reserve from."""
    urls = pool_use(stack, target)
    queued = sum(queue_counts(stack).values())
    return QuotaLeft(on_urls=sum(url.remaining for url in urls), urls=len(urls), queued=queued, reserve=reserve)


def default_reserve(target: ClayTarget) -> int:
    """1 % of one URL's submission_limit, kept for the rows the Flows send meanwhile."""
    return target.submission_limit // 100


# --- the checkpoint ------------------------------------------------------------------------------------
@dataclass
class Checkpoint:
    stack: str
    source: str
    collection: str
    target: str
    key_field: str
    directus_url: str
    upper_key: Key | None  # the collection's highest key when the backfill started
    last_key: Key | None = None  # the last item handed over (acknowledged by the relay)
    sent: int = 0
    duplicates: int = 0
    skipped: int = 0
    refused: int = 0
    refused_items: list[dict] = field(default_factory=list)  # {"key", "reason"}
    started_at: str = field(default_factory=lambda: _now())
    updated_at: str = field(default_factory=lambda: _now())
    finished_at: str | None = None
    version: int = CHECKPOINT_VERSION

    @property
    def handled(self) -> int:
        return self.sent + self.duplicates + self.skipped + self.refused

    def record(self, key: Key, outcome: Outcome) -> None:
        if outcome.status == "sent":
            self.sent += 1
        elif outcome.status == "duplicate":
            self.duplicates += 1
        elif outcome.status == "skipped":
            self.skipped += 1
        else:
            self.refused += 1
            self.refused_items.append({"key": key, "reason": outcome.detail})
        self.last_key = key

    def save(self, path: Path) -> None:
        """Atomically: a crash leaves the previous checkpoint or this one, never half of one."""
        self.updated_at = _now()
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(temporary, path)

    @classmethod
    def load(cls, path: Path) -> Checkpoint | None:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            raise CommandError(f"cannot read the checkpoint {path}: {error} (--restart starts over)") from None
        if not isinstance(raw, dict) or raw.get("version") != CHECKPOINT_VERSION:
            raise CommandError(f"{path} is not a checkpoint this version can read (--restart starts over)")
        try:
            return cls(**raw)
        except TypeError as error:
            raise CommandError(f"cannot read the checkpoint {path}: {error} (--restart starts over)") from None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def checkpoint_path(folder: Path, stack_name: str, source: str, collection: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{stack_name}-{source}-{collection}")
    return folder / f"{safe}.json"


# --- what it prints ------------------------------------------------------------------------------------
class Progress:
    """A bar redrawn in place on a terminal; on anything else a line every `every` items."""

    WIDTH = 24

    def __init__(
        self,
        stream: TextIO,
        label: str,
        total: int | None,
        *,
        every: int = 50,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.stream = stream
        self.label = label
        self.total = total
        self.tty = stream.isatty()
        self.every = every
        self._clock = clock
        self._started = clock()
        self._drawn_at = 0.0
        self._run_items = 0
        self._last_line_at_items = 0

    def line(self, checkpoint: Checkpoint) -> str:
        done = checkpoint.handled
        rate = self._run_items / max(self._clock() - self._started, 1e-9)
        if self.total:
            filled = min(self.WIDTH, round(self.WIDTH * done / self.total))
            head = f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {done}/{self.total} {100 * done / self.total:3.0f}%"
            eta = duration(max(0, self.total - done) / rate) if rate > 0 else "?"
        else:
            head, eta = f"{done}/?", "?"
        counts = f"sent {checkpoint.sent}, duplicates {checkpoint.duplicates}, refused {checkpoint.refused}"
        return f"{self.label} {head} {rate:4.1f}/s {counts} ETA {eta}"

    def update(self, checkpoint: Checkpoint) -> None:
        self._run_items += 1
        now = self._clock()
        if self.tty:
            if now - self._drawn_at >= 0.1:
                self.stream.write("\r\033[K" + self.line(checkpoint))
                self.stream.flush()
                self._drawn_at = now
        elif self._run_items - self._last_line_at_items >= self.every:
            self.stream.write(self.line(checkpoint) + "\n")
            self.stream.flush()
            self._last_line_at_items = self._run_items

    def close(self, checkpoint: Checkpoint) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + self.line(checkpoint) + "\n")
        elif self._run_items != self._last_line_at_items:
            self.stream.write(self.line(checkpoint) + "\n")
        self.stream.flush()


class Report:
    """What the command prints at the end (and for --dry-run): lines for people (on standard error
    with --json), and with --json the summary object on standard output."""

    def __init__(
        self, stack: Stack, args: argparse.Namespace, source: str, checkpoint: Checkpoint, path: Path, out: TextIO
    ):
        self.stack, self.args, self.source = stack, args, source
        self.checkpoint, self.path, self.out = checkpoint, path, out

    def dry_run(self, left: int | None, quota: QuotaLeft, rate: float) -> int:
        c = self.checkpoint
        count = "an unknown number of" if left is None else str(left)
        lines = [
            f"dry run: {count} items of {c.collection!r} to send {_after(c)} up to item {c.upper_key!r}, "
            f"through source {self.source!r} to target {c.target!r}, at {rate:.3g}/s"
            + (f" (about {duration(left / rate)})" if left else ""),
            f"target {c.target!r} can take {quota.budget} more ({_quota_words(quota)})",
        ]
        if left is not None and left > quota.budget:
            lines.append(
                f"the backfill would stop after {quota.budget} items: add a webhook URL first "
                f"(`relay clay add-webhook {c.target} URL`)"
            )
        lines.append("nothing was sent")
        self._emit("dry_run", lines, left=left, quota=asdict(quota) | {"budget": quota.budget})
        return 0

    def finish(self, state: str, *, left: int | None, quota: QuotaLeft | None = None) -> int:
        c = self.checkpoint
        counts = (
            f"{c.handled} items handed over: {c.sent} sent, {c.duplicates} already sent (duplicates), "
            f"{c.skipped} skipped, {c.refused} refused"
        )
        resume = f"`{resume_command(self.stack, self.args, self.source)}`"
        if state == "done":
            lines = [f"done: {counts}"]
            status = EXIT_REFUSED if c.refused else 0
        elif state == "limit":
            lines = [f"stopped after --limit {self.args.limit}: {counts}; run again to continue {_after(c)}: {resume}"]
            status = 0
        elif state == "quota" and quota is not None:
            lines = [
                f"stopped: target {c.target} has {quota.budget} submissions left ({_quota_words(quota)}); add a "
                f"webhook URL with `relay clay add-webhook {c.target} URL`, then run the same command again to "
                f"resume {_after(c)}: {resume}",
                counts,
            ]
            status = EXIT_QUOTA
        else:
            lines = [f"interrupted: {counts}; run the same command again to resume {_after(c)}: {resume}"]
            status = EXIT_INTERRUPTED
        if c.refused_items:
            lines.append(f"refused by the relay ({c.refused}; all are in {self.path}):")
            lines += [f"  item {r['key']!r}: {r['reason']}" for r in c.refused_items[:20]]
            if c.refused > 20:
                lines.append(f"  … and {c.refused - 20} more")
        extra: dict = {"left": left, "exit_status": status}
        if quota is not None:
            extra["quota"] = asdict(quota) | {"budget": quota.budget}
        self._emit(state, lines, **extra)
        return status

    def _emit(self, state: str, lines: list[str], **extra: object) -> None:
        for line in lines:
            print(line, file=self.out)
        if not self.args.json:
            return
        c = self.checkpoint
        summary = {
            "state": state,
            "collection": c.collection,
            "source": c.source,
            "target": c.target,
            "sent": c.sent,
            "duplicates": c.duplicates,
            "skipped": c.skipped,
            "refused": c.refused,
            "refused_items": c.refused_items,
            "handled": c.handled,
            "last_key": c.last_key,
            "upper_key": c.upper_key,
            "started_at": c.started_at,
            "checkpoint": str(self.path),
            **extra,
        }
        print(json.dumps(summary, ensure_ascii=False))


def _after(checkpoint: Checkpoint) -> str:
    return "from the first item" if checkpoint.last_key is None else f"after item {checkpoint.last_key!r}"


def _quota_words(quota: QuotaLeft) -> str:
    return (
        f"{quota.on_urls} on its {quota.urls} webhook URL{'s' if quota.urls != 1 else ''}, "
        f"less {quota.queued} jobs queued and {quota.reserve} in reserve"
    )
