"""DirectusTriggerFunction: POST /directus/{source} — Directus Flow webhooks become Clay rows.

authenticate → validate → map → duplicate check → enqueue → 202 {"event_id", "duplicate", ...}
"""

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from clay_relay import directus, intake
from clay_relay.auth import require_token
from clay_relay.clay import check_row_size
from clay_relay.errors import MethodNotAllowed, UnknownRoute
from clay_relay.http_api import ALLOWED_ELSEWHERE, json_object, json_response, relay_api
from clay_relay.jobs import content_id
from clay_relay.observability import count, logger, metrics, tracer
from clay_relay.runtime import get_runtime

app = relay_api()


@app.post("/directus/<source>")
@tracer.capture_method
def receive_directus_event(source: str) -> Response:
    config = get_runtime().config
    source_config = config.directus_sources.get(source)
    if source_config is None:
        raise UnknownRoute(f"no Directus source named {source!r} is configured")
    require_token(app.current_event.headers, source_config.tokens_secret)
    body = json_object(app.current_event)
    event = directus.parse_event(body)
    event_id = content_id(f"directus/{source}", body)
    try:
        jobs = directus.clay_jobs(source, source_config, event, config.write_back_fields(event.collection))
    except directus.Skipped as skipped:
        count("EventsSkipped")
        return json_response(202, {"accepted": True, "event_id": event_id, "duplicate": False, "skipped": str(skipped)})
    for job in jobs:
        check_row_size(config.clay_targets[source_config.clay_target], job.row, job.event_id)
    accepted = intake.accept(jobs)
    logger.info("directus event accepted", extra={"source": source, "event": event.event, "rows": len(accepted)})
    return json_response(
        202,
        {
            "accepted": True,
            "event_id": accepted[0].job.event_id if len(accepted) == 1 else event_id,
            "duplicate": all(a.duplicate for a in accepted),
            "rows": [{"event_id": a.job.event_id, "duplicate": a.duplicate} for a in accepted],
        },
    )


@app.route("/directus/<source>", method=ALLOWED_ELSEWHERE)
def wrong_method(source: str) -> Response:
    raise MethodNotAllowed("use POST")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
