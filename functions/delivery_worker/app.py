"""DeliveryWorkerFunction: SQS batches of delivery jobs → Clay (partial batch failures reported)."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from clay_relay.observability import logger, metrics, tracer
from clay_relay.worker import handle_batch


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return handle_batch(event, context)
