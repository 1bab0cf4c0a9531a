"""POST /loops/contacts and /loops/events: Clay writes contacts and events to Loops through the
relay, which keeps the Loops API key.

authenticate (token) → check the request as Loops will → duplicate check → enqueue → receipt
"""

from __future__ import annotations

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from clay_relay import intake, loops
from clay_relay.auth import require_token
from clay_relay.config import LoopsForwarding
from clay_relay.http_api import configured_section, json_object
from clay_relay.jobs import LoopsContactJob, LoopsEventJob, content_id
from clay_relay.ledger import lead_ref
from clay_relay.receivers.receipts import ForwardingReceipt
from clay_relay.runtime import Runtime


def forward_loops_contact(runtime: Runtime, request: APIGatewayProxyEventV2) -> ForwardingReceipt:
    """A contact to create or update in Loops (`PUT /v1/contacts/update`)."""
    return _forward(runtime, request, LoopsContactJob)


def forward_loops_event(runtime: Runtime, request: APIGatewayProxyEventV2) -> ForwardingReceipt:
    """An event to send to Loops (`POST /v1/events/send`)."""
    return _forward(runtime, request, LoopsEventJob)


def _forward(
    runtime: Runtime, request: APIGatewayProxyEventV2, kind: type[LoopsContactJob] | type[LoopsEventJob]
) -> ForwardingReceipt:
    settings: LoopsForwarding = configured_section(runtime.config, "loops_forwarding")
    require_token(request.headers, settings.tokens_secret, header=settings.token_header)
    payload = loops.forwarded_request(json_object(request), event=kind is LoopsEventJob)
    origin = "loops/events" if kind is LoopsEventJob else "loops/contacts"
    job = kind(
        event_id=content_id(origin, payload),
        origin=origin,
        dedupe_window_seconds=settings.dedupe_window_seconds,
        payload=payload,
        lead=lead_ref(payload.get("email")),
    )
    (accepted,) = intake.accept([job], table=runtime.table, queue=runtime.queue)
    return ForwardingReceipt(event_id=job.event_id, duplicate=accepted.duplicate)
