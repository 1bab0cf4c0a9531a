"""DirectusReconcileFunction (scheduled every 5 minutes): the reconciliation sweep of each Directus
source that is due (`reconcile_minutes`). Directus never retries, so the events the relay missed are
found in the collection itself and queued as the Clay rows the Flow's events would have made.

The use case is clay_relay.reconcile; it publishes ReconciledEvents, ReconcileLagSeconds and
ReconcileFailing (the alarm's) per source, and answers what each source's sweep did.
"""

from aws_lambda_powertools.utilities.typing import LambdaContext

from clay_relay.observability import logger, metrics, tracer
from clay_relay.reconcile import reconcile
from clay_relay.runtime import get_runtime


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return reconcile(get_runtime(), context)
