"""EnrichmentOverdueFunction (scheduled): leads that went to Clay and never came back enriched.

Publishes `EnrichmentOverdue` (how many round trips are past their target's `enrichment_sla_minutes`,
per target; 0 when none, which clears the alarm) and logs each overdue lead (email masked). One
Query of the ledger's `overdue` partition: its cost grows with the overdue leads, not with all leads.
"""

from aws_lambda_powertools.utilities.typing import LambdaContext

from clay_relay.ledger.overdue import report_overdue
from clay_relay.observability import logger, metrics, tracer
from clay_relay.runtime import get_runtime


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return report_overdue(get_runtime())
