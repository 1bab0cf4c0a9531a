"""The items of a Directus collection for `relay backfill`, read in primary-key order by the layer's one
Directus reader (clay_relay.directus_items, which the reconciliation sweep pages with too), through the
command's retrying session (relay_cli.retries: no redirect followed, transient failures tried again).
A refusal becomes a DirectusError that says what to do. The token is a static one; it is never printed.
"""

from __future__ import annotations

from clay_relay.directus_items import Answer, DirectusFailed, Key
from clay_relay.directus_items import DirectusItems as LayerItems
from clay_relay.directus_items import directus_message as _message
from relay_cli import CommandError
from relay_cli.retries import Retrying

__all__ = ["DirectusError", "DirectusItems", "Key"]


class DirectusError(CommandError):
    """Directus refused a request or answered unlike its items API, with what to do about it."""


class DirectusItems:
    """Pages through `GET /items/<collection>` in primary-key order."""

    def __init__(self, base_url: str, token: str, collection: str, key_field: str = "id", *, http: Retrying):
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

        def fetch(url: str, query: dict[str, str]) -> Answer:
            response = http.request("GET", url, params=query, headers=headers, reason=_reason)
            try:
                body = response.json()
            except ValueError:
                body = None
            return Answer(response.status_code, body, response.text[:200].strip() or response.reason or "")

        try:
            self._items = LayerItems(base_url, collection, key_field, fetch)
        except ValueError as error:
            raise DirectusError(str(error)) from None
        self.base_url, self.collection, self.key_field = self._items.base_url, collection, key_field
        self.url = self._items.url

    def __repr__(self) -> str:  # never the token
        return f"DirectusItems({self.url!r})"

    def last_key(self) -> Key | None:
        """The highest key of the collection now (None: it is empty)."""
        return self._call(self._items.last_key)

    def count(self, after: Key | None, upto: Key | None) -> int | None:
        """Items after `after` up to `upto` (None when Directus gives no count)."""
        return self._call(lambda: self._items.count(after, upto))

    def page(self, after: Key | None, upto: Key | None, size: int) -> list[dict]:
        """The next `size` items after `after` (up to `upto`), in key order."""
        return self._call(lambda: self._items.page(after, upto, size))

    def _call(self, read):
        try:
            return read()
        except DirectusFailed as failed:
            raise self._refused(failed) from None

    def _refused(self, failed: DirectusFailed) -> DirectusError:
        status = failed.status
        if status is None or status == 200:
            return DirectusError(str(failed))
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
        return DirectusError(f"Directus answered HTTP {status} ({failed.detail}) for {self.url}: {hint}")


def _reason(response) -> str:
    try:
        return _message(response.json()) or response.text[:200].strip() or response.reason or "no message"
    except ValueError:
        return response.text[:200].strip() or response.reason or "no message"
