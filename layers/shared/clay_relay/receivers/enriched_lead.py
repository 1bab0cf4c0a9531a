"""POST /clay/enriched: an enriched lead from Clay's HTTP API column, routed by its ICP score.

authenticate (token or HMAC) → validate the lead → route → duplicate check → enqueue → receipt
(the receipt is what the Clay cell shows). What each route sends is clay_relay.enrichment's.
"""

from __future__ import annotations

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from clay_relay import intake
from clay_relay.auth import require_token_or_signature
from clay_relay.config import ClayCallback
from clay_relay.enrichment import enrichment_jobs
from clay_relay.http_api import configured_section, json_object, raw_body
from clay_relay.leads import parse_lead
from clay_relay.ledger.writes import close_round_trip
from clay_relay.observability import count, logger
from clay_relay.receivers.receipts import LeadReceipt
from clay_relay.runtime import Runtime
from clay_relay.spend.persons import kept_days


def receive_enriched_lead(runtime: Runtime, request: APIGatewayProxyEventV2) -> LeadReceipt:
    settings: ClayCallback = configured_section(runtime.config, "clay_callback")
    body = raw_body(request)
    require_token_or_signature(
        request.headers,
        body,
        tokens_secret=settings.tokens_secret,
        token_header=settings.token_header,
        hmac_secret=settings.hmac_secret,
        hmac_header=settings.hmac_header,
        accept_body_only=settings.hmac_accept_body_only,
    )
    lead = parse_lead(json_object(request, body))
    decision, event_id, ledger_lead, jobs = enrichment_jobs(lead, settings)
    accepted = intake.accept(jobs, table=runtime.table, queue=runtime.queue) if jobs else []
    close_round_trip(runtime.table, ledger_lead, event_id, ledger_lead.detail, kept_days(runtime.config))
    duplicate = bool(accepted) and all(a.duplicate for a in accepted)
    count(f"Leads{decision.route.capitalize()}")
    logger.info(
        "enriched lead accepted",
        extra={
            "route": decision.route,
            "hot": decision.hot,
            "score": lead.icp_score,
            "event_id": event_id,
            "duplicate": duplicate,
        },
    )
    return LeadReceipt(
        route=decision.route,
        hot=decision.hot,
        actions=[a.job.kind for a in accepted],
        event_id=event_id,
        duplicate=duplicate,
    )
