"""Directus item keys: which values may name an item, and so become a segment of the write-back's
request path (`PATCH /items/<collection>/<key>`).

A key is a whole number (Directus' integer primary keys, up to a bigint) or a string of 1 to 64
letters, digits, `_` and `-` (which takes in UUIDs and the usual slugs). Anything else (`.`, `..`,
`/`, `%2e`, spaces, other characters) is refused where a key enters: a sender learns it at once with
a 422 naming the field, and no key can change the path the relay calls.
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import quote

from pydantic import Field, PlainValidator, WithJsonSchema

SAFE_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")
BIGINT = 2**63  # Directus' largest integer key is a bigint
KEY_RULE = "a whole number or 1 to 64 letters, digits, '_' or '-' (a UUID is fine)"


def item_key(value: object) -> int | str:
    """The key, unchanged, when it can name a Directus item; ValueError saying what a key may be."""
    if isinstance(value, int) and not isinstance(value, bool):
        if -BIGINT <= value < BIGINT:
            return value
    elif isinstance(value, str) and SAFE_KEY.fullmatch(value):
        return value
    raise ValueError(f"not a Directus item key: {KEY_RULE}")


def item_key_text(value: object) -> str:
    return str(item_key(value))


def item_path(collection: str, key: str) -> str:
    """`/items/<collection>/<key>`, each segment checked and percent-encoded (safe=""), so that no
    collection or key can add a segment, leave one out or climb out with `.` or `..`. Only safe
    values get here (the models refuse the rest): ValueError for any other."""
    for value in (collection, key):
        if not SAFE_KEY.fullmatch(value):
            raise ValueError(f"{value[:80]!r} cannot be a segment of an item's path: {KEY_RULE}")
    return f"/items/{quote(collection, safe='')}/{quote(key, safe='')}"


ItemKey = Annotated[
    int | str,
    PlainValidator(item_key),
    WithJsonSchema(
        {"anyOf": [{"type": "integer"}, {"type": "string", "pattern": f"^{SAFE_KEY.pattern}$"}]}, mode="validation"
    ),
]
"""A Directus item key, as a field of a model (a 422 naming the field refuses anything else)."""

ItemKeyText = Annotated[str, PlainValidator(item_key_text), WithJsonSchema({"type": "string"}, mode="validation")]
"""The same, carried as text (a queued job's `item_id`)."""

CollectionName = Annotated[str, Field(pattern=f"^{SAFE_KEY.pattern}$")]
"""A Directus collection the relay writes into (the same rule: it is a path segment too)."""
