"""Incoming webhooks whose URL is itself the secret: Slack (hot-lead messages) and Zapier (or any
catch hook) for routed leads."""

from __future__ import annotations

from typing import Any

from clay_relay.config import SlackSettings
from clay_relay.leads import EnrichedLead
from clay_relay.outbound import Outcome, post_json
from clay_relay.secrets import SecretUnavailable, read_secret


class _Unknown(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "?"


def _slack_text(value: object) -> str:
    """Lead values are data, not markup: `<!channel>` must not ping, `<url|text>` must not link."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def hot_lead_message(lead: EnrichedLead, settings: SlackSettings) -> str:
    """The configured message with the lead's fields filled in ("?" for empty or unknown ones)."""
    values = _Unknown({k: ("?" if v is None else _slack_text(v)) for k, v in lead.model_dump().items()})
    values["icp_score"] = f"{lead.icp_score:g}"
    return settings.message.format_map(values)


def post_to_hook(url_secret: str, payload: dict[str, Any], *, event_id: str) -> Outcome:
    try:
        url = read_secret(url_secret).strip()
    except SecretUnavailable as error:
        return Outcome(delivered=False, retryable=True, reason=str(error), reached=False)
    return post_json(url, payload, event_id=event_id)
