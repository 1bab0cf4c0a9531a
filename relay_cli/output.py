"""What every command prints: aligned tables for people, JSON for scripts (`--json`), durations,
times and masked values (no token and, unless asked, no email address is ever printed); and the
values its options take: numbers, times, JSON."""

from __future__ import annotations

import argparse
import json
import math
import re
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

from relay_cli import CommandError

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)", re.IGNORECASE)
_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86_400, "w": 604_800}


def print_json(value: object) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def print_table(headers: list[str], rows: list[list[object]], *, indent: str = "  ") -> None:
    """Columns as wide as their widest cell; `None` cells print as `-`."""
    cells = [[("-" if cell is None else str(cell)) for cell in row] for row in rows]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    for row in [headers, *cells]:
        print(indent + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def shorten(text: str | None, width: int = 70) -> str | None:
    if text is None or len(text) <= width:
        return text
    return text[: width - 1] + "…"


def ago(at: float | None, now: float | None = None) -> str | None:
    """`at` (unix seconds) as an age: `42 s`, `5 min`, `3.2 h`, `2.1 d`."""
    if at is None:
        return None
    return duration(max(0.0, (now or time.time()) - at))


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86_400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} d"


def iso(at: float | None) -> str | None:
    return None if at is None else datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")


def parse_since(text: str, now: float | None = None) -> float:
    """`30m`, `2h`, `1d12h`, `90s` (that long ago) or an ISO 8601 time (`2026-05-01T12:00:00Z`;
    UTC unless it names its zone): the unix time it means."""
    spec = text.strip()
    if spec and _DURATION.sub("", spec).strip() == "":
        seconds = sum(float(n) * _SECONDS[unit.lower()] for n, unit in _DURATION.findall(spec))
        return (now or time.time()) - seconds
    try:
        moment = datetime.fromisoformat(spec.replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(f"--since {text!r}: a duration (30m, 2h, 1d) or an ISO time (2026-05-01T12:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def mask_url(url: str) -> str:
    """A webhook URL as `host/…last6` (of its path): enough to tell the URLs of a pool apart, not to
    call one. Never its credentials (`user:password@`) nor its query (`?…`: a token may be there)."""
    try:
        parts = urlsplit(url.strip())
        host, port = parts.hostname or "?", parts.port
    except ValueError:  # a port that is no number, an unclosed [
        return "?/…"
    where = (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")
    return f"{where}/…{parts.path.rstrip('/')[-6:]}{'?…' if parts.query else ''}"


def read_json_argument(value: str, option: str) -> object:
    """A JSON option's value: inline JSON, or `@file.json`."""
    text = value
    if value.startswith("@"):
        try:
            with open(value[1:], encoding="utf-8") as file:
                text = file.read()
        except OSError as error:
            raise CommandError(f"{option}: cannot read {value[1:]}: {error.strerror}") from None
    try:
        return json.loads(text)
    except ValueError as error:
        raise CommandError(f"{option} is not valid JSON: {error}") from None


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError("must be a positive number")
    return value
