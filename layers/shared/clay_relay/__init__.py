"""clay-relay shared layer: everything the Lambda handlers have in common.

Modules, one concern each:
- settings       typed environment of a function (validated once, at first use)
- config         the declarative relay configuration (sources, Clay targets, field mappings)
- secrets        secrets by name, resolved at run time with caching
- auth           request authentication (static bearer tokens)
- http_api       the HTTP edge: resolver, body limits, JSON errors
- directus       Directus payload models and their mapping to Clay rows
- jobs           the delivery jobs carried by the queue
- intake         accepting jobs: duplicate check + enqueue
- store          the only module that talks to DynamoDB
- delivery_queue the only module that talks to SQS
- outbound       the only module that talks HTTP to the outside world
- clay           the Clay webhook pool, quota accounting and row delivery
- worker         the SQS delivery worker
- observability  logger, metrics, tracer (emails masked)
"""
