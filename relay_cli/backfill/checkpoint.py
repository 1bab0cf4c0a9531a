"""The checkpoint: what a backfill has handed over so far, written after each item, so that the
next run resumes after the last one."""

from __future__ import annotations

import argparse
import json
import os
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from relay_cli import CommandError
from relay_cli.backfill.relay_route import Outcome
from relay_cli.directus_items import Key

CHECKPOINT_VERSION = 1


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
    started_at: str = field(default_factory=lambda: now())
    updated_at: str = field(default_factory=lambda: now())
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
        self.updated_at = now()
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


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def checkpoint_path(folder: Path, stack_name: str, source: str, collection: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{stack_name}-{source}-{collection}")
    return folder / f"{safe}.json"


def check_same_backfill(checkpoint: Checkpoint, args: argparse.Namespace, url: str, path: Path) -> None:
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
