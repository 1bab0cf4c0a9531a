"""The relay's Directus route, called for each item exactly as a Directus Flow calls it for a create."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import requests

from relay_cli import CommandError
from relay_cli.retries import Retrying
from relay_cli.send import directus_body, encode

# The relay's answers that say something is wrong with every item (a setting), not with this one.
FATAL_RELAY_STATUSES = {
    401: "the source's token was refused",
    403: "forbidden",
    404: "no such source or route",
    405: "method not allowed",
    415: "unsupported content type",
}


@dataclass(frozen=True)
class Outcome:
    status: str  # "sent", "duplicate", "skipped" or "refused"
    detail: str = ""


class RelayError(CommandError):
    """The relay refuses every item (a setting): no item can go through until that is fixed."""


class RelayDirectusRoute:
    """`POST {api}/directus/{source}`, exactly as a Directus Flow calls it for a create."""

    def __init__(self, api_url: str, source: str, token: str, http: Retrying):
        self.url = f"{api_url.rstrip('/')}/directus/{quote(source, safe='')}"
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "User-Agent": "clay-relay-backfill",
            "X-Relay-Origin": "backfill",  # the lead ledger's stage is `backfill`, not `directus.accepted`
        }
        self._http = http

    def __repr__(self) -> str:  # never the token
        return f"RelayDirectusRoute({self.url!r})"

    def send(self, collection: str, key: object, item: dict) -> Outcome:
        if isinstance(key, bool) or not isinstance(key, int | str):
            return Outcome("refused", f"the key {key!r} is neither an integer nor a string")
        data = encode(directus_body("create", collection, key, item))
        response = self._http.request("POST", self.url, data=data, headers=self._headers, reason=_relay_reason)
        status = response.status_code
        if 200 <= status < 300:
            try:
                answer = response.json()
            except ValueError:
                answer = {}
            answer = answer if isinstance(answer, dict) else {}
            if answer.get("skipped"):
                return Outcome("skipped", str(answer["skipped"]))
            return Outcome("duplicate" if answer.get("duplicate") else "sent", str(answer.get("event_id", "")))
        if status in FATAL_RELAY_STATUSES:
            raise RelayError(
                f"the relay answered {status} at {self.url} ({FATAL_RELAY_STATUSES[status]}: "
                f"{_relay_reason(response)}): no item can go through until that is fixed"
            )
        return Outcome("refused", f"HTTP {status} {_relay_reason(response)}")


def _relay_reason(response: requests.Response) -> str:
    try:
        answer = response.json()
        text = f"{answer.get('error', '')}: {answer.get('message', '')}"
        if answer.get("fields"):
            text += " " + "; ".join(f"{f.get('field')}: {f.get('problem')}" for f in answer["fields"])
        return text
    except (ValueError, AttributeError, TypeError):
        return response.text[:200].strip()
