"""POST /loops/webhook: Loops' account webhook (Standard Webhooks signed) becomes a Clay row.

authenticate (signature, timestamp) → read the event → row (or ignored, also when too big for
Clay) → duplicate check on webhook-id → enqueue → receipt. An authentic event is always a 202,
even when ignored: a 4xx would make Loops retry it or disable the endpoint (see
clay_relay.loops_webhooks).
"""

from __future__ import annotations

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from clay_relay import intake, loops_webhooks
from clay_relay.auth import require_webhook_signature
from clay_relay.config import LoopsWebhook
from clay_relay.http_api import configured_section, json_object, raw_body
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
        job = loops_webhooks.clay_row_job(event, webhook_id, settings)
        loops_webhooks.check_row_fits(job, runtime.config.clay_targets[settings.clay_target])
    except loops_webhooks.Ignored as ignored:
        count("LoopsWebhooksIgnored")
        return LoopsWebhookReceipt(webhook_id=webhook_id, ignored=str(ignored))
    (accepted,) = intake.accept([job], table=runtime.table, queue=runtime.queue)
    logger.info(
        "loops webhook accepted",
        extra={"event": event.eventName, "event_id": job.event_id, "duplicate": accepted.duplicate},
    )
    return LoopsWebhookReceipt(webhook_id=webhook_id, event_id=job.event_id, duplicate=accepted.duplicate)
