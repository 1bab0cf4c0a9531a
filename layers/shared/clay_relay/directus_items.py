"""The one reader of Directus items: `GET /items/<collection>` of its REST API, used by the worker's full
rows (items by key), the reconciliation sweep and `relay backfill` (pages in primary-key order).

    by keys   ?filter={"<key>": {"_in": [...]}}&fields=<key>,<mapped fields>&limit=<n>
    a page    ?filter={"_and": [{"<key>": {"_gt": <after>}}, {"<key>": {"_lte": <upto>}}, <rules>...]}
              &sort=<key>&limit=<n>&fields=...

Keyset paging (each page starts after the last key of the one before) stays correct while items are
added or deleted, which offsets do not. How the request travels is the caller's (`Fetch`): the relay's
outbound helpers (only where the configuration says, no redirects: `relay_fetch`), or the `relay`
command's retrying session. The token is never part of a message.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from clay_relay.item_keys import KEY_RULE, SAFE_KEY

if TYPE_CHECKING:
    from clay_relay.config import RelayConfig

Key = int | str
RETRYABLE = {408, 425, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class Answer:
    """What Directus answered: `status` None when nothing came back (unreachable, timed out)."""

    status: int | None
    body: Any
    reason: str = ""


Fetch = Callable[[str, dict[str, str]], Answer]  # GET url with these query parameters


class DirectusFailed(Exception):
    """Directus did not answer with items. `retryable`: it may pass (a 5xx, a 429, no answer)."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False, detail: str = ""):
        super().__init__(message)
        self.status, self.retryable, self.detail = status, retryable, detail


def directus_message(body: object) -> str:
    """Directus' own words for a refusal: `CODE: message` of its first error."""
    try:
        error = body["errors"][0]  # type: ignore[index]
        return f"{error['extensions']['code']}: {error['message']}"
    except (KeyError, IndexError, TypeError):
        return ""


class DirectusItems:
    """The items of one collection."""

    def __init__(self, base_url: str, collection: str, key_field: str, fetch: Fetch):
        if not SAFE_KEY.fullmatch(collection):
            raise ValueError(f"{collection[:80]!r} cannot be a segment of the items path: {KEY_RULE}")
        self.base_url = base_url.rstrip("/")
        self.collection = collection
        self.key_field = key_field
        self.url = f"{self.base_url}/items/{quote(collection, safe='')}"
        self._fetch = fetch

    def __repr__(self) -> str:
        return f"DirectusItems({self.url!r})"

    def by_keys(self, keys: Sequence[Key], fields: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The items with these keys that exist, by their key as text (one request)."""
        if not keys:
            return {}
        unique = list(dict.fromkeys(keys))
        query = {
            "filter": _json({self.key_field: {"_in": unique}}),
            "fields": ",".join(dict.fromkeys([self.key_field, *fields])),
            "limit": str(len(unique)),
        }
        return {str(item[self.key_field]): item for item in self._items(query)}

    def page(
        self,
        after: Key | None,
        upto: Key | None = None,
        size: int = 100,
        *,
        fields: Sequence[str] = ("*",),
        rules: Sequence[dict[str, Any]] = (),
    ) -> list[dict[str, Any]]:
        """The next `size` items after `after` (up to `upto`, and matching `rules`), in key order."""
        query = self._query(after, upto, rules, sort=self.key_field, limit=str(size), fields=",".join(fields))
        items = self._items(query)
        for item in items:
            key = item[self.key_field]
            if type(key) is type(after) and key <= after:  # type: ignore[operator]
                raise DirectusFailed(f"{self.url} ignored the filter (item {key!r} is not after {after!r})")
        return items

    def last_key(self) -> Key | None:
        """The highest key of the collection now (None: it is empty)."""
        items = self._items({"sort": f"-{self.key_field}", "limit": "1", "fields": self.key_field})
        return items[0][self.key_field] if items else None

    def count(self, after: Key | None, upto: Key | None) -> int | None:
        """Items after `after` up to `upto` (None when Directus gives no count)."""
        query = self._query(after, upto, (), limit="1", fields=self.key_field, meta="filter_count")
        value = (self._answer(query).get("meta") or {}).get("filter_count")
        try:
            return int(str(value))
        except ValueError:
            return None

    def field_defaults(self) -> dict[str, Any]:
        """Each field's default value, from `GET /fields/<collection>` (fields without one left out)."""
        answer = self._get(f"{self.base_url}/fields/{quote(self.collection, safe='')}", {})
        fields = answer.get("data")
        if not isinstance(fields, list):
            raise DirectusFailed(f"{self.base_url}/fields did not answer like Directus' fields API (no 'data' list)")
        defaults = {}
        for field in fields:
            schema = field.get("schema") if isinstance(field, dict) else None
            if isinstance(schema, dict) and schema.get("default_value") is not None:
                defaults[str(field.get("field"))] = schema["default_value"]
        return defaults

    def _query(
        self, after: Key | None, upto: Key | None, rules: Sequence[dict[str, Any]], **query: str
    ) -> dict[str, str]:
        conditions = list(rules)
        if after is not None:
            conditions.append({self.key_field: {"_gt": after}})
        if upto is not None:
            conditions.append({self.key_field: {"_lte": upto}})
        if conditions:
            query["filter"] = _json({"_and": conditions})
        return query

    def _items(self, query: dict[str, str]) -> list[dict[str, Any]]:
        items = self._answer(query)["data"]
        for item in items:
            if not isinstance(item, dict) or item.get(self.key_field) is None:
                raise DirectusFailed(f"{self.url} answered an item without {self.key_field!r}: is it the primary key?")
        return items  # type: ignore[no-any-return]

    def _answer(self, query: dict[str, str]) -> dict[str, Any]:
        answer = self._get(self.url, query)
        if not isinstance(answer.get("data"), list):
            raise DirectusFailed(f"{self.url} did not answer like Directus' items API (no JSON 'data' list)")
        return answer

    def _get(self, url: str, query: dict[str, str]) -> dict[str, Any]:
        answer = self._fetch(url, query)
        if answer.status is None or answer.status in RETRYABLE:
            said = directus_message(answer.body) or answer.reason
            raise DirectusFailed(f"{url}: {said}", status=answer.status, retryable=True, detail=said)
        if answer.status != 200:
            said = directus_message(answer.body) or answer.reason or "no message"
            raise DirectusFailed(f"Directus answered HTTP {answer.status} ({said})", status=answer.status, detail=said)
        if not isinstance(answer.body, dict):
            raise DirectusFailed(f"{url} did not answer with a JSON object")
        return answer.body


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


# --- reading Directus from the relay --------------------------------------------------------------------
def api_secret(config: RelayConfig) -> str:
    """The secret with Directus' URL and token: the write-back's (`directus-api` without one)."""
    write_back = config.clay_callback.directus_writeback if config.clay_callback else None
    return write_back.api_secret if write_back else "directus-api"


def relay_items(config: RelayConfig, collection: str, key_field: str, *, event_id: str) -> DirectusItems:
    """A collection's items as the relay reads them: the URL and token of `api_secret`, every request
    through the outbound helpers (only to allowed URLs, no redirects), naming `event_id`.
    SecretUnavailable when the secret cannot be used."""
    from clay_relay.outbound import fetch_json
    from clay_relay.secrets import SecretUnavailable, read_json

    name = api_secret(config)
    api = read_json(name)
    if not isinstance(api, dict) or not api.get("url") or not api.get("token"):
        raise SecretUnavailable(f"secret {name!r} is not a JSON object with url and token")
    headers = {"Authorization": f"Bearer {api['token']}"}

    def fetch(url: str, query: dict[str, str]) -> Answer:
        outcome, body = fetch_json(f"{url}?{urlencode(query)}" if query else url, headers, event_id=event_id)
        if outcome.status is None and not outcome.retryable:  # refused before sending (destination_urls)
            raise DirectusFailed(f"Directus' URL refused: {outcome.reason}", detail=outcome.reason)
        if outcome.status is not None and 300 <= outcome.status < 400:
            raise DirectusFailed(outcome.reason, status=outcome.status, detail=outcome.reason)
        return Answer(outcome.status, body, outcome.reason)

    return DirectusItems(str(api["url"]), collection, key_field, fetch)
