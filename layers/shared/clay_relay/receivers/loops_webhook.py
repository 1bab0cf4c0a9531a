"""POST /loops/webhook: Loops' account webhook (Standard Webhooks signed): a Clay row for
contact.created, Directus feedback for suppression events, copies for the other endpoints, and the
email outcomes kept in the lead ledger.

authenticate (signature, timestamp) → read the event → its jobs (clay_relay.loops_feedback; a row
too big for Clay is ignored) → duplicate check on webhook-id → enqueue → receipt; an event that
causes no job but is kept is one ledger write. An authentic event is always a 202, even when it goes
nowhere: a 4xx would make Loops retry it or disable the endpoint (see clay_relay.loops_webhooks).
"""

from __future__ import annotations

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from clay_relay import intake, loops_feedback, loops_webhooks
from clay_relay.auth import require_webhook_signature
from clay_relay.config import LOOPS_EVENT_TYPES, LoopsWebhook, canonical_event_type
from clay_relay.http_api import configured_section, json_object, raw_body
from clay_relay.ledger.writes import record_observed
from clay_relay.observability import count, logger
from clay_relay.receivers.receipts import LoopsWebhookReceipt
from clay_relay.runtime import Runtime


def receive_loops_webhook(runtime: Runtime, request: APIGatewayProxyEventV2) -> LoopsWebhookReceipt:
    settings: LoopsWebhook = configured_section(runtime.config, "loops_webhook")
    body = raw_body(request)
    webhook_id = require_webhook_signature(
        request.headers,
        body,
        settings.signing_secret,
        tolerance_seconds=runtime.settings.loops_webhook_tolerance_seconds,
    )
    try:
        event = loops_webhooks.parse_webhook(json_object(request, body))
    except loops_webhooks.Ignored as ignored:
        count("LoopsWebhooksIgnored")
        return LoopsWebhookReceipt(webhook_id=webhook_id, ignored=str(ignored))
    if canonical_event_type(event.eventName) not in LOOPS_EVENT_TYPES:
        count("LoopsWebhookUnknownType")
        logger.warning("unknown Loops event type", extra={"event": event.eventName[:100]})
    plan = loops_feedback.plan_webhook(event, webhook_id, body, runtime.config, settings)
    if plan.jobs:
        accepted = intake.accept(plan.jobs, table=runtime.table, queue=runtime.queue)
        duplicate = all(a.duplicate for a in accepted)
        logger.info(
            "loops webhook accepted",
            extra={"event": event.eventName, "event_id": plan.event_id, "duplicate": duplicate},
        )
        return LoopsWebhookReceipt(
            webhook_id=webhook_id,
            event_id=plan.event_id,
            duplicate=duplicate,
            actions=loops_feedback.actions_of(plan.jobs),
        )
    if plan.keep and plan.lead is not None:
        new = record_observed(
            runtime.table,
            plan.lead,
            plan.stage,
            plan.event_id,
            retention_days=runtime.config.ledger_retention_days,
            window_seconds=settings.dedupe_window_seconds,
        )
        return LoopsWebhookReceipt(webhook_id=webhook_id, event_id=plan.event_id, duplicate=not new, kept=plan.stage)
    count("LoopsWebhooksIgnored")
    return LoopsWebhookReceipt(webhook_id=webhook_id, ignored=plan.not_sent or "nothing to do")
