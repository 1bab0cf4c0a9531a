"""EnrichmentOverdueFunction: run by EventBridge Scheduler (template.yaml, rate(5 minutes)) to find
leads delivered to Clay whose enrichment callback has not come back in time.

A placeholder until the overdue check of issue 14 lands: it logs its run and finds nothing.
"""

from aws_lambda_powertools.utilities.typing import LambdaContext

from clay_relay.observability import logger


@logger.inject_lambda_context
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    logger.info("overdue enrichment check (placeholder)", extra={"overdue": 0})
    return {"overdue": 0}
