"""Directus' list query (`GET /items/<collection>`): the query string as Directus' `qs` parses it,
and `limit` (default 100, -1 for all), `offset`, `page` (from 1; wins over offset), `sort` (`id`,
`-id`, any field, comma-separated), `filter` on top-level fields (`filter[id][_gt]=5` or JSON
`filter={"_and": [...]}`; operators `_eq _neq _gt _gte _lt _lte _in _nin _null _nnull _contains
_icontains`,
`_and`/`_or`), `fields` (`*` or names) and `meta` (`filter_count`, `total_count`, `*`). A query
Directus would refuse raises InvalidQuery (its 400 `INVALID_QUERY`).
"""

from __future__ import annotations

import itertools
import json
from urllib.parse import parse_qsl


class InvalidQuery(ValueError):
    """A list query Directus would refuse with 400 INVALID_QUERY."""


_FILTER_OPERATORS = (
    "_eq",
    "_neq",
    "_gt",
    "_gte",
    "_lt",
    "_lte",
    "_in",
    "_nin",
    "_null",
    "_nnull",
    "_contains",
    "_icontains",
)


def query_object(query: str) -> dict:
    """The query string as Directus' `qs` parses it: `filter[id][_gt]=5` → {"filter": {"id": {"_gt": "5"}}},
    `fields[]=a&fields[]=b` → {"fields": ["a", "b"]}, `x[0]=…` → a list."""
    parsed: dict = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        head, _, rest = name.partition("[")
        path = [head] + (rest.rstrip("]").split("][") if rest else [])
        node = parsed
        for part, next_part in itertools.pairwise(path):
            node = node.setdefault(part, [] if next_part == "" else {}) if isinstance(node, dict) else None
            if not isinstance(node, dict | list):
                raise InvalidQuery(f'"{name}" mixes a value and an object')
        last = path[-1]
        if isinstance(node, list):
            node.append(value)
        elif last in node and not isinstance(node[last], dict):
            node[last] = [*node[last], value] if isinstance(node[last], list) else [node[last], value]
        else:
            node[last] = value
    return _lists_from_indexes(parsed)


def _lists_from_indexes(value: object) -> object:
    if not isinstance(value, dict):
        return value
    value = {k: _lists_from_indexes(v) for k, v in value.items()}
    if value and all(k.isdigit() for k in value):
        return [value[k] for k in sorted(value, key=int)]
    return value


def _integer(query: dict, name: str, minimum: int) -> int | None:
    if name not in query:
        return None
    try:
        number = int(str(query[name]))
    except ValueError:
        raise InvalidQuery(f'"{name}" must be a number') from None
    if number < minimum:
        raise InvalidQuery(f'"{name}" must be greater than or equal to {minimum}')
    return number


def _like(value: object, example: object) -> object:
    """A filter value from the query string (always text) as the field's type, as Directus casts it."""
    if isinstance(value, str) and isinstance(example, bool):
        return {"true": True, "false": False}.get(value, value)
    if isinstance(value, str) and isinstance(example, int | float):
        try:
            return int(value) if isinstance(example, int) else float(value)
        except ValueError:
            return value
    if isinstance(value, int | float) and not isinstance(value, bool) and isinstance(example, str):
        return str(value)
    return value


def _compare(op: str, actual: object, expected: object) -> bool:
    if op in ("_null", "_nnull"):
        wanted = expected in (True, "true", "1", 1, "")
        return (actual is None) == (wanted if op == "_null" else not wanted)
    if op in ("_in", "_nin"):
        values = expected if isinstance(expected, list) else str(expected).split(",")
        found = any(_like(v, actual) == actual for v in values)
        return found if op == "_in" else not found
    if op in ("_contains", "_icontains"):
        if not isinstance(actual, str):
            return False
        return str(expected).lower() in actual.lower() if op == "_icontains" else str(expected) in actual
    expected = _like(expected, actual)
    if op == "_eq":
        return actual == expected
    if op == "_neq":
        return actual != expected
    if actual is None or isinstance(actual, bool) != isinstance(expected, bool):
        return False
    try:
        return {
            "_gt": actual > expected,  # type: ignore[operator]
            "_gte": actual >= expected,  # type: ignore[operator]
            "_lt": actual < expected,  # type: ignore[operator]
            "_lte": actual <= expected,  # type: ignore[operator]
        }[op]
    except TypeError:  # a number against text: no match, like SQL's failed cast
        return False


def _check_filter(rule: object) -> None:
    if not isinstance(rule, dict):
        raise InvalidQuery("Invalid filter object")
    for key, condition in rule.items():
        if key in ("_and", "_or"):
            if not isinstance(condition, list):
                raise InvalidQuery(f'"{key}" has to be an array of filters')
            for nested in condition:
                _check_filter(nested)
        elif key.startswith("_"):
            raise InvalidQuery(f'"{key}" is not a logical operator')
        elif isinstance(condition, dict):
            for op, value in condition.items():
                if op not in _FILTER_OPERATORS:
                    raise InvalidQuery(f'Invalid filter operator "{op}"')
                if op in ("_in", "_nin") and not (isinstance(value, list) and value) and not isinstance(value, str):
                    raise InvalidQuery(f'"{op}" has to be an array of values')
                if op not in ("_in", "_nin") and not (value is None or isinstance(value, str | int | float | bool)):
                    raise InvalidQuery(f'The filter value for "{op}" has to be a string, number, or boolean')
                if value == "" and op not in ("_null", "_nnull"):
                    raise InvalidQuery(f'You can\'t filter for an empty string in "{op}"')


def _matches(item: dict, rule: dict) -> bool:
    for key, condition in rule.items():
        if key == "_and":
            if not all(_matches(item, nested) for nested in condition):
                return False
        elif key == "_or":
            if not any(_matches(item, nested) for nested in condition):
                return False
        elif isinstance(condition, dict):
            if not all(_compare(op, item.get(key), value) for op, value in condition.items()):
                return False
        elif not _compare("_eq", item.get(key), condition):
            return False
    return True


def _sort_key(value: object) -> tuple:
    if value is None:
        return (0, 0)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (1, value)
    return (2, str(value))


def list_items(every: list[dict], query: dict) -> dict:
    """The answer to a list query over `every` item of a collection: `{"data": [...]}`, and `"meta"` if asked."""
    limit = _integer(query, "limit", -1)
    offset = _integer(query, "offset", 0) or 0
    page = _integer(query, "page", 0)
    rule = query.get("filter") or {}
    if isinstance(rule, str):
        try:
            rule = json.loads(rule)
        except ValueError:
            raise InvalidQuery("Invalid JSON for filter object") from None
    _check_filter(rule)
    meta = query.get("meta") or []
    meta = meta.split(",") if isinstance(meta, str) else meta
    meta = ["total_count", "filter_count"] if meta == ["*"] else meta
    if any(name not in ("total_count", "filter_count") for name in meta):
        raise InvalidQuery('"meta" must be one of [total_count, filter_count, *]')
    found = [item for item in every if _matches(item, rule)]
    sort = query.get("sort") or []
    for name in reversed(sort.split(",") if isinstance(sort, str) else sort):
        name = name.strip()
        column = name.lstrip("-")
        found.sort(key=lambda item: _sort_key(item.get(column)), reverse=name.startswith("-"))
    limit = 100 if limit is None else limit
    if page and limit > 0:
        offset = limit * (page - 1)
    window = found[offset:] if limit == -1 else found[offset : offset + limit]
    fields = query.get("fields") or "*"
    fields = [f.strip() for f in (fields.split(",") if isinstance(fields, str) else fields)]
    if "*" not in fields:
        names = {f.split(".")[0] for f in fields}
        window = [{k: v for k, v in item.items() if k in names} for item in window]
    answer: dict = {"data": window}
    if meta:
        counts = {"total_count": len(every), "filter_count": len(found)}
        answer["meta"] = {name: counts[name] for name in meta}
    return answer
