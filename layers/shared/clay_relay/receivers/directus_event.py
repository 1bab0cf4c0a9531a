"""POST /directus/{source}: a Directus Flow's item event becomes one Clay row per item.

source's config → authenticate → validate → fields (or skipped) → how many items (fan_out) → rows →
their sizes (each, and all together: fan_out) → duplicate check → enqueue → receipt (rows listed up
to fan_out.ANSWERED_ROWS)
"""

from __future__ import annotations

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from clay_relay import directus, fan_out, intake
from clay_relay.auth import require_token
from clay_relay.errors import UnknownRoute
from clay_relay.http_api import json_object
from clay_relay.jobs import content_id
from clay_relay.ledger import Stage
from clay_relay.observability import count, logger
from clay_relay.receivers.receipts import DirectusReceipt, RowReceipt
from clay_relay.runtime import Runtime

BACKFILL_HEADER = "x-relay-origin"  # `relay backfill` sends "backfill": the ledger's stage says so


def receive_directus_event(runtime: Runtime, source: str, request: APIGatewayProxyEventV2) -> DirectusReceipt:
    config = runtime.config
    source_config = config.directus_sources.get(source)
    if source_config is None:
        raise UnknownRoute(f"no Directus source named {source!r} is configured")
    require_token(request.headers, source_config.tokens_secret)
    body = json_object(request)
    event = directus.parse_event(body)
    event_id = content_id(f"directus/{source}", body)
    target = config.clay_targets[source_config.clay_target]
    try:
        fields = directus.row_fields(source_config, event, config.write_back_fields(event.collection))
    except directus.Skipped as skipped:
        count("EventsSkipped")
        return DirectusReceipt(event_id=event_id, duplicate=False, skipped=str(skipped))
    fan_out.check_item_count(len(event.item_keys))
    stage: Stage = "backfill" if request.headers.get(BACKFILL_HEADER) == "backfill" else "directus.accepted"
    jobs = directus.row_jobs(source, source_config, event, fields, email_column=target.email_column, stage=stage)
    row_bytes = fan_out.check_rows(target, jobs)
    accepted = intake.accept(jobs, table=runtime.table, queue=runtime.queue)
    # One row answers with its own id (the one its Clay row carries); several, with the event's.
    answered_id = accepted[0].job.event_id if len(accepted) == 1 else event_id
    logger.info(
        "directus event accepted",
        extra={
            "source": source,
            "event": event.event,
            "event_id": answered_id,
            "rows": len(accepted),
            "row_bytes": row_bytes,
        },
    )
    listed = len(accepted) <= fan_out.ANSWERED_ROWS
    return DirectusReceipt(
        event_id=answered_id,
        duplicate=all(a.duplicate for a in accepted),
        rows=[RowReceipt(event_id=a.job.event_id, duplicate=a.duplicate) for a in accepted] if listed else None,
        row_count=None if listed else len(accepted),
    )
