"""What a sandbox answers, and the JSON bodies the sandboxes accept."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Answer:
    status: int
    body: object  # dict → JSON, str → text/plain
    headers: dict = field(default_factory=dict)
    note: dict = field(default_factory=dict)  # extra fields for the delivery log
    then: Callable[[], None] | None = None  # runs after the answer was sent


def json_object(body: bytes) -> dict | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
