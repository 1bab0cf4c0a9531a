"""clay-relay shared layer: everything the Lambda handlers have in common.

Modules, one concern each:
- runtime            what lives from one invocation to the next, built once per execution
                     environment: settings, config, AWS clients, HTTP session, secrets cache,
                     pacer, breaker (tests start a fresh one)
- settings           typed environment of a function (each variable declared once, validated
                     when the runtime is built)
- config             the declarative relay configuration (relay.json)
- secrets            secrets by name, resolved at run time with caching
- aws_clients        the AWS SDK clients, from one botocore session
- auth               static bearer tokens, the relay's signature, Standard Webhooks: who may call
- relay_signature    the relay's timestamped HMAC signature (`x-relay-signature: t=…,v1=…`)
- standard_webhooks  Standard Webhooks signatures (Loops)
- http_api           the HTTP edge: resolver (senders' POST routes, their 405s, the 404 of an
                     unconfigured route), body limits, JSON errors, receipts answered as 202
- receivers          one use case per sender's route, each returning a typed receipt:
    directus_event     POST /directus/{source}
    enriched_lead      POST /clay/enriched
    loops_webhook      POST /loops/webhook (Clay rows, Directus feedback, forwards, email outcomes)
    loops_forwarding   POST /loops/contacts, /loops/events
    receipts           the 202 answers of all of them
- directus           Directus item events → Clay rows; the write-back into items
- directus_items     the one reader of Directus items (full rows, the sweep, `relay backfill`)
- item_state         a Directus item's state as compared, and the event ids of its rows (create, update)
- item_keys          Directus item keys: which values may name an item (a segment of the write-back's path)
- leads              enriched leads from Clay and their routing by ICP score
- email_address      what the relay takes for an email address (no invisible characters)
- javascript         how the JavaScript services it feeds read values: UTF-16 length, prototype keys
- enrichment         the jobs an enriched lead becomes
- loops              Loops' API (contacts, events) and requests forwarded to it
- loops_webhooks     Loops' account webhooks → Clay rows
- loops_feedback     what else a Loops event becomes: its stage in the lead's trace, Directus
                     feedback, copies for the forward endpoints
- directus_feedback  Loops' feedback written into the lead's Directus items, in event-time order
- webhook_forwarding Loops' events re-signed for the forward endpoints
- hooks              Slack and Zapier incoming webhooks
- jobs               the delivery jobs carried by the queue
- intake             accepting jobs: duplicate check + enqueue (the runtime's table and queue)
- fan_out            what one request may cause: rows per request, their bytes together, rows answered
- store              the only package that talks to DynamoDB:
    access             the client, batch reads and writes, ConditionFailed
    table              RelayTable: claims, the advisory duplicate check, items by key, updates, the index
    counters           Clay quota per webhook URL (reserved atomically), each destination's last failure
    parking            lanes that are down (their probe, their release) and the receipts of their parked jobs
- ledger             the lead ledger: every stage of a lead, in the claims the worker writes
    entries            lead keys, the LeadRef a job carries, stages as DynamoDB items
    writes             claims' entries, Clay round trips and links, failures, the enrichment
    timeline           which lead a person means, its timeline, overdue round trips, erasure
    overdue            the scheduled check that publishes EnrichmentOverdue
- reconcile          the Directus reconciliation sweep (scheduled): events the Flow never delivered
    checkpoint         a source's checkpoint item, its lease and its last result
    sweep              one source's sweep: its window (or new keys), paged through directus_items
    missing            which listed items hold an event the relay has not seen (their claims)
- delivery_queue     the only module that talks to SQS
- outbound           the only module that talks HTTP to the outside world
- destination_urls   where the relay may send: https:// to public hosts (this machine too, where allowed)
- clay               the Clay webhook pool, quota accounting and row delivery
- spend              the Clay spend guard:
    budget             rows per UTC day and month per target, counted atomically per batch; run-time changes
    persons            one row per person: the targets a person went to, kept in its round trip
    usage              what a target sent, held, skipped and shadowed; the month's projection
- pacing             per-destination rate limits shared out over the workers; the circuit breaker
- backoff            how long a failed or throttled delivery waits (exponential, with jitter)
- errors             domain errors, each with its HTTP answer
- worker             the SQS delivery worker, a phase per module:
    batch              the plan of a batch: each message's settlement (an enum) and what it records
    full_rows          before the claims: Directus updates read as their items are now
    claims             claiming events, reserving Clay submissions, holding rows
    guard              the spend guard of the batch's Clay rows: shadow mode, one row per person, budgets
    lanes              a thread per lane (destination or Clay workspace): pacing, breaker, deadline
    destinations       the registry: job kind → its delivery function
    settlement         settling the batch in batch calls: retry delays, dead letters, held rows, budgets
    parking            a down lane's jobs parked (one probe), and released at its rate when it is back
- observability      logger, metrics, tracer (emails masked)
- tracing            the tracing mode (template parameter `Tracing`): what the handlers' tracer does
"""
