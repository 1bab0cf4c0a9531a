"""The items of a Directus collection, read through its REST API in primary-key order.

    GET {directus}/items/{collection}?sort=<key>&limit=<n>&filter={"_and": [{<key>: {"_gt": <after>}},
                                                                      {<key>: {"_lte": <upto>}}]}

Keyset paging (each page starts after the last key of the one before) stays correct while items are
added or deleted, which offsets do not. The token is a static one; it is never printed.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import requests

from relay_cli import CommandError
from relay_cli.retries import Retrying

Key = int | str


class DirectusError(CommandError):
    """Directus refused a request or answered unlike its items API, with what to do about it."""


def _reason(response: requests.Response) -> str:
    try:
        error = response.json()["errors"][0]
        return f"{error['extensions']['code']}: {error['message']}"
    except (ValueError, KeyError, IndexError, TypeError):
        return response.text[:200].strip() or response.reason or "no message"


class DirectusItems:
    """Pages through `GET /items/<collection>` in primary-key order."""

    def __init__(self, base_url: str, token: str, collection: str, key_field: str = "id", *, http: Retrying):
        self.base_url = base_url.rstrip("/")
        self.collection = collection
        self.key_field = key_field
        self.url = f"{self.base_url}/items/{quote(collection, safe='')}"
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._http = http

    def __repr__(self) -> str:  # never the token
        return f"DirectusItems({self.url!r})"

    def last_key(self) -> Key | None:
        """The highest key of the collection now (None: it is empty)."""
        data = self._get({"sort": f"-{self.key_field}", "limit": 1, "fields": self.key_field})["data"]
        return data[0].get(self.key_field) if data else None

    def count(self, after: Key | None, upto: Key | None) -> int | None:
        """Items after `after` up to `upto` (None when Directus gives no count)."""
        query = self._query(after, upto, limit=1, fields=self.key_field, meta="filter_count", sort=self.key_field)
        value = (self._get(query).get("meta") or {}).get("filter_count")
        try:
            return int(value)
        except (TypeError, ValueError):
            return None

    def page(self, after: Key | None, upto: Key | None, size: int) -> list[dict]:
        """The next `size` items after `after` (up to `upto`), in key order."""
        items = self._get(self._query(after, upto, sort=self.key_field, limit=size, fields="*"))["data"]
        for item in items:
            key = item.get(self.key_field) if isinstance(item, dict) else None
            if key is None:
                raise DirectusError(f"{self.url} answered an item without {self.key_field!r}: is it the primary key?")
            if type(key) is type(after) and key <= after:  # type: ignore[operator]
                raise DirectusError(f"{self.url} ignored the filter (item {key!r} is not after {after!r})")
        return items

    def _query(self, after: Key | None, upto: Key | None, **query: object) -> dict:
        rules = []
        if after is not None:
            rules.append({self.key_field: {"_gt": after}})
        if upto is not None:
            rules.append({self.key_field: {"_lte": upto}})
        if rules:
            query["filter"] = json.dumps({"_and": rules}, separators=(",", ":"))
        return query

    def _get(self, query: dict) -> dict:
        response = self._http.request("GET", self.url, params=query, headers=self._headers, reason=_reason)
        if response.status_code != 200:
            raise self._refused(response)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not (isinstance(answer, dict) and isinstance(answer.get("data"), list)):
            raise DirectusError(f"{self.url} did not answer like Directus' items API (no JSON 'data' list)")
        return answer

    def _refused(self, response: requests.Response) -> DirectusError:
        status = response.status_code
        if status == 401:
            hint = "the token is wrong or expired: give a static token with --directus-token or DIRECTUS_TOKEN"
        elif status == 403:
            hint = (
                f"the collection {self.collection!r} does not exist, or the token's access policy may not "
                f"read it (the write-back token may only update: give one that may read)"
            )
        elif status == 404:
            hint = f"is {self.base_url} the Directus base URL (without /items)?"
        elif status == 400:
            hint = f"does the collection have the field {self.key_field!r}? (--key-field names its primary key)"
        else:
            hint = "see Directus' logs"
        return DirectusError(f"Directus answered HTTP {status} ({_reason(response)}) for {self.url}: {hint}")
