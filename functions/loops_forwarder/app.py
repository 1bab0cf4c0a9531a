"""LoopsForwarderFunction: the /loops/... routes.

POST /loops/webhook   Loops' account webhook (Standard Webhooks signed) → contact.created → Clay row
POST /loops/contacts  Clay → Loops contact (create/update), the Loops API key stays in the relay
POST /loops/events    Clay → Loops event
"""

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from clay_relay import intake, loops, loops_webhooks
from clay_relay.auth import require_token, require_webhook_signature
from clay_relay.config import RelayConfig
from clay_relay.errors import MethodNotAllowed, UnknownRoute
from clay_relay.http_api import ALLOWED_ELSEWHERE, json_object, json_response, raw_body, relay_api
from clay_relay.jobs import LoopsContactJob, LoopsEventJob, content_id
from clay_relay.observability import count, logger, metrics, tracer
from clay_relay.runtime import get_runtime

app = relay_api()


def _config() -> RelayConfig:
    return get_runtime().config


@app.post("/loops/webhook")
@tracer.capture_method
def receive_loops_webhook() -> Response:
    settings = _config().loops_webhook
    if settings is None:
        raise UnknownRoute("the Loops webhook is not configured (relay.json has no loops_webhook)")
    body = raw_body(app.current_event)
    webhook_id = require_webhook_signature(
        app.current_event.headers,
        body,
        settings.signing_secret,
        tolerance_seconds=get_runtime().settings.loops_webhook_tolerance_seconds,
    )
    try:
        event = loops_webhooks.parse_webhook(json_object(app.current_event, body))
        job = loops_webhooks.clay_row_job(event, webhook_id, settings)
    except loops_webhooks.Ignored as ignored:
        count("LoopsWebhooksIgnored")
        return json_response(202, {"accepted": True, "webhook_id": webhook_id, "ignored": str(ignored)})
    (accepted,) = intake.accept([job])
    logger.info("loops webhook accepted", extra={"event": event.eventName, "duplicate": accepted.duplicate})
    return json_response(
        202, {"accepted": True, "webhook_id": webhook_id, "event_id": job.event_id, "duplicate": accepted.duplicate}
    )


def _forward(kind: type[LoopsContactJob] | type[LoopsEventJob]) -> Response:
    settings = _config().loops_forwarding
    if settings is None:
        raise UnknownRoute("forwarding to Loops is not configured (relay.json has no loops_forwarding)")
    require_token(app.current_event.headers, settings.tokens_secret, header=settings.token_header)
    payload = loops.forwarded_request(json_object(app.current_event), event=kind is LoopsEventJob)
    origin = "loops/events" if kind is LoopsEventJob else "loops/contacts"
    job = kind(
        event_id=content_id(origin, payload),
        origin=origin,
        dedupe_window_seconds=settings.dedupe_window_seconds,
        payload=payload,
    )
    (accepted,) = intake.accept([job])
    return json_response(202, {"accepted": True, "event_id": job.event_id, "duplicate": accepted.duplicate})


@app.post("/loops/contacts")
@tracer.capture_method
def forward_contact() -> Response:
    return _forward(LoopsContactJob)


@app.post("/loops/events")
@tracer.capture_method
def forward_event() -> Response:
    return _forward(LoopsEventJob)


@app.route("/loops/<route>", method=ALLOWED_ELSEWHERE)
def wrong_method(route: str) -> Response:
    if route not in ("webhook", "contacts", "events"):
        raise UnknownRoute("no such route")
    raise MethodNotAllowed("use POST")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
