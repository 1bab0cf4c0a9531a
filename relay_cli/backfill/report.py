"""What the backfill prints: a progress bar (or a line every so often), and the report at the end
(or for --dry-run), with --json a summary object; and the command that resumes it."""

from __future__ import annotations

import argparse
import json
import shlex
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TextIO

from clay_relay.observability import mask_email, mask_emails_in
from relay_cli.backfill.checkpoint import Checkpoint
from relay_cli.backfill.quota import QuotaLeft
from relay_cli.output import duration
from relay_cli.stack import Stack

EXIT_QUOTA = 3
EXIT_REFUSED = 4
EXIT_INTERRUPTED = 130


def resume_command(stack: Stack, args: argparse.Namespace, source: str) -> str:
    words = ["relay"]
    words += ["--local"] if stack.local else ["--stack", stack.name, "--region", stack.region]
    words += ["backfill", "directus", args.collection, "--target", args.target, "--source", source]
    if args.state:
        words += ["--state", str(args.state)]
    return shlex.join(words)


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
            f"dry run: {count} items of {c.collection!r} to send {resume_point(c)} up to item {c.upper_key!r}, "
            f"through source {self.source!r} to target {c.target!r}, at {rate:.3g}/s"
            + (f" (about {duration(left / rate)})" if left else ""),
            f"target {c.target!r} can take {quota.budget} more ({quota_words(quota)})",
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
            lines = [
                f"stopped after --limit {self.args.limit}: {counts}; run again to continue {resume_point(c)}: {resume}"
            ]
            status = 0
        elif state == "quota" and quota is not None:
            lines = [
                f"stopped: target {c.target} has {quota.budget} submissions left ({quota_words(quota)}); add a "
                f"webhook URL with `relay clay add-webhook {c.target} URL`, then run the same command again to "
                f"resume {resume_point(c)}: {resume}",
                counts,
            ]
            status = EXIT_QUOTA
        else:
            lines = [f"interrupted: {counts}; run the same command again to resume {resume_point(c)}: {resume}"]
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
            print(mask_email(line), file=self.out)  # a refusal may quote the item
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
            "refused_items": mask_emails_in(c.refused_items),
            "handled": c.handled,
            "last_key": c.last_key,
            "upper_key": c.upper_key,
            "started_at": c.started_at,
            "checkpoint": str(self.path),
            **extra,
        }
        print(json.dumps(summary, ensure_ascii=False))


def resume_point(checkpoint: Checkpoint) -> str:
    return "from the first item" if checkpoint.last_key is None else f"after item {checkpoint.last_key!r}"


def quota_words(quota: QuotaLeft) -> str:
    return (
        f"{quota.on_urls} on its {quota.urls} webhook URL{'s' if quota.urls != 1 else ''}, "
        f"less {quota.queued} jobs queued and {quota.reserve} in reserve"
    )
