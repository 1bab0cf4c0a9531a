"""clay-relay shared layer: everything the Lambda handlers have in common.

Modules, one concern each:
- settings           typed environment of a function (validated once, at first use)
- config             the declarative relay configuration (relay.json)
- secrets            secrets by name, resolved at run time with caching
- auth               static bearer tokens and HMAC over the raw body
- standard_webhooks  Standard Webhooks signatures (Loops)
- http_api           the HTTP edge: resolver (senders' POST routes, their 405s, the 404 of an
                     unconfigured route), body limits, JSON errors, receipts answered as 202
- receivers          one use case per sender's route, each returning a typed receipt:
    directus_event     POST /directus/{source}
    enriched_lead      POST /clay/enriched
    loops_webhook      POST /loops/webhook
    loops_forwarding   POST /loops/contacts, /loops/events
    receipts           the 202 answers of all of them
- directus           Directus item events → Clay rows; the write-back into items
- leads              enriched leads from Clay and their routing by ICP score
- enrichment         the jobs an enriched lead becomes
- loops              Loops' API (contacts, events) and requests forwarded to it
- loops_webhooks     Loops' account webhooks → Clay rows
- hooks              Slack and Zapier incoming webhooks
- jobs               the delivery jobs carried by the queue
- intake             accepting jobs: duplicate check + enqueue (the runtime's table and queue)
- store              the only module that talks to DynamoDB
- delivery_queue     the only module that talks to SQS
- outbound           the only module that talks HTTP to the outside world
- clay               the Clay webhook pool, quota accounting and row delivery
- pacing             per-destination rate limits shared out over the workers
- worker             the SQS delivery worker
- observability      logger, metrics, tracer (emails masked)
"""
