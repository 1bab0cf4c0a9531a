"""How the JavaScript services the relay feeds (Loops, Clay) read what it sends them.

- A string's length is JavaScript's `string.length`: UTF-16 code units, so "😀" counts 2 and "é"
  1. Loops' 500-character limit is counted that way: 499 "x" and an emoji are 501 to Loops.
- `__proto__`, `constructor` and `prototype` are the keys through which a JavaScript object reaches
  its prototype: a receiver that merges objects key by key can be made to change every object it
  has (prototype pollution). The relay passes none of them on.
"""

from __future__ import annotations

PROTOTYPE_KEYS = frozenset({"__proto__", "constructor", "prototype"})


def length(text: str) -> int:
    """`text.length` in JavaScript: UTF-16 code units."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def shortened(text: str, limit: int, ellipsis: str = "…") -> str:
    """`text` when it fits in `limit` UTF-16 code units, else its start and `ellipsis` within them,
    never cutting a character (an emoji) in half."""
    if length(text) <= limit:
        return text
    room = limit - length(ellipsis)
    kept, used = [], 0
    for character in text:
        used += length(character)
        if used > room:
            break
        kept.append(character)
    return "".join(kept) + ellipsis


def shown(key: str, limit: int = 60) -> str:
    """A key as an error message names it: a very long one cut short."""
    return key if len(key) <= limit else key[:limit] + "…"


def prototype_keys(value: object, path: str = "") -> list[str]:
    """The paths (`a.b`, `items.0.c`) of every prototype key in `value`, at any depth."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, child in value.items():
            at = f"{path}{shown(key)}"
            if key in PROTOTYPE_KEYS:
                found.append(at)
            found += prototype_keys(child, f"{at}.")
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += prototype_keys(child, f"{path}{index}.")
    return found


def without_prototype_keys(value: object) -> object:
    """`value` without prototype keys, at any depth (a copy where something was left out)."""
    if isinstance(value, dict):
        return {key: without_prototype_keys(child) for key, child in value.items() if key not in PROTOTYPE_KEYS}
    if isinstance(value, list):
        return [without_prototype_keys(child) for child in value]
    return value
