"""ClayCallbackFunction: POST /clay/enriched — Clay's HTTP API column sends enriched leads.

authenticate (token or HMAC) → validate the lead → route by ICP score → duplicate check → enqueue
→ 202 {"accepted", "route", "actions", "event_id", "duplicate"} (shown in the Clay cell)
"""

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from clay_relay import intake
from clay_relay.auth import require_token_or_signature
from clay_relay.enrichment import enrichment_jobs
from clay_relay.errors import MethodNotAllowed, UnknownRoute
from clay_relay.http_api import ALLOWED_ELSEWHERE, json_object, json_response, raw_body, relay_api
from clay_relay.leads import parse_lead
from clay_relay.observability import count, logger, metrics, tracer
from clay_relay.runtime import get_runtime

app = relay_api()


@app.post("/clay/enriched")
@tracer.capture_method
def receive_enriched_lead() -> Response:
    settings = get_runtime().config.clay_callback
    if settings is None:
        raise UnknownRoute("the Clay callback is not configured (relay.json has no clay_callback)")
    body = raw_body(app.current_event)
    require_token_or_signature(
        app.current_event.headers,
        body,
        tokens_secret=settings.tokens_secret,
        token_header=settings.token_header,
        hmac_secret=settings.hmac_secret,
        hmac_header=settings.hmac_header,
    )
    lead = parse_lead(json_object(app.current_event, body))
    decision, event_id, jobs = enrichment_jobs(lead, settings)
    accepted = intake.accept(jobs) if jobs else []
    duplicate = bool(accepted) and all(a.duplicate for a in accepted)
    count(f"Leads{decision.route.capitalize()}")
    logger.info(
        "enriched lead accepted",
        extra={"route": decision.route, "hot": decision.hot, "score": lead.icp_score, "duplicate": duplicate},
    )
    return json_response(
        202,
        {
            "accepted": True,
            "route": decision.route,
            "hot": decision.hot,
            "actions": [a.job.kind for a in accepted],
            "event_id": event_id,
            "duplicate": duplicate,
        },
    )


@app.route("/clay/enriched", method=ALLOWED_ELSEWHERE)
def wrong_method() -> Response:
    raise MethodNotAllowed("use POST")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
