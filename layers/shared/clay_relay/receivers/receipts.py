"""Receipts: what a receiver answers (202) for each outcome of a request it accepted or knowingly
let pass. Their JSON, without the fields an outcome leaves unset, is the answer's body (see
http_api.receipt_response), and the field order is the body's key order.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

# defer_build: a model's schema is built when first used, so a function builds only its own
# receipts' (cold start), not all of them at import.
FROZEN = ConfigDict(frozen=True, defer_build=True)


class Receipt(BaseModel):
    model_config = FROZEN

    accepted: Literal[True] = True


class RowReceipt(BaseModel):
    model_config = FROZEN

    event_id: str
    duplicate: bool


class DirectusReceipt(Receipt):
    """A Directus event: its rows (one per item; past clay_relay.fan_out.ANSWERED_ROWS only their
    count), or why it was skipped (then no rows)."""

    event_id: str  # the single row's when there is one, else the whole event's
    duplicate: bool  # every row was a duplicate
    skipped: str | None = None
    rows: list[RowReceipt] | None = None
    row_count: int | None = None


class LeadReceipt(Receipt):
    """An enriched lead (shown in the Clay cell): its route and the actions it was queued for."""

    route: Literal["outreach", "nurture", "skip"]  # clay_relay.leads.Route (not imported: cold start)
    hot: bool
    actions: list[str]
    event_id: str
    duplicate: bool


class LoopsWebhookReceipt(Receipt):
    """A Loops webhook: what it was queued for (`actions`), the ledger stage it was kept as (`kept`),
    or why it goes nowhere (`ignored`)."""

    webhook_id: str
    event_id: str | None = None
    duplicate: bool | None = None
    actions: list[str] | None = None
    kept: str | None = None
    ignored: str | None = None


class ForwardingReceipt(Receipt):
    """A contact or event from Clay, queued for Loops."""

    event_id: str
    duplicate: bool
