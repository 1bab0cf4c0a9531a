"""ClayCallbackFunction: POST /clay/enriched. Clay's HTTP API column sends enriched leads.

The use case is clay_relay.receivers.enriched_lead; the resolver (clay_relay.http_api) answers
other methods, the route's 404 while relay.json has no `clay_callback`, and every rejection.
"""

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from clay_relay.http_api import receipt_response, relay_api
from clay_relay.observability import logger, metrics, tracer
from clay_relay.receivers.enriched_lead import receive_enriched_lead
from clay_relay.runtime import get_runtime

app = relay_api()


@app.receiver("/clay/enriched", section="clay_callback")
@tracer.capture_method
def enriched_lead() -> Response:
    return receipt_response(receive_enriched_lead(get_runtime(), app.current_event))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
