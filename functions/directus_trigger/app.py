"""DirectusTriggerFunction: POST /directus/{source}. Directus Flow webhooks become Clay rows.

The use case is clay_relay.receivers.directus_event; the resolver (clay_relay.http_api) answers
other methods and every rejection.
"""

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from clay_relay.http_api import receipt_response, relay_api
from clay_relay.observability import logger, metrics, tracer
from clay_relay.receivers.directus_event import receive_directus_event
from clay_relay.runtime import get_runtime

app = relay_api()


@app.receiver("/directus/<source>")
@tracer.capture_method
def directus_event(source: str) -> Response:
    return receipt_response(receive_directus_event(get_runtime(), source, app.current_event))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
