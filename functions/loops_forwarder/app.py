"""LoopsForwarderFunction: the /loops/... routes.

POST /loops/webhook   Loops' account webhook (Standard Webhooks signed) → a Clay row
                      (use case: clay_relay.receivers.loops_webhook)
POST /loops/contacts  Clay → Loops contact (create/update), the Loops API key stays in the relay
POST /loops/events    Clay → Loops event (both: clay_relay.receivers.loops_forwarding)

The resolver (clay_relay.http_api) answers other methods, a route's 404 while its relay.json
section is absent, and every rejection.
"""

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from clay_relay.http_api import receipt_response, relay_api
from clay_relay.observability import logger, metrics, tracer
from clay_relay.receivers.loops_forwarding import forward_loops_contact, forward_loops_event
from clay_relay.receivers.loops_webhook import receive_loops_webhook
from clay_relay.runtime import get_runtime

app = relay_api()


@app.receiver("/loops/webhook", section="loops_webhook")
@tracer.capture_method
def loops_webhook() -> Response:
    return receipt_response(receive_loops_webhook(get_runtime(), app.current_event))


@app.receiver("/loops/contacts", section="loops_forwarding")
@tracer.capture_method
def loops_contact() -> Response:
    return receipt_response(forward_loops_contact(get_runtime(), app.current_event))


@app.receiver("/loops/events", section="loops_forwarding")
@tracer.capture_method
def loops_event() -> Response:
    return receipt_response(forward_loops_event(get_runtime(), app.current_event))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
