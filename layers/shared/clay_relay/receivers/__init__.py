"""What the relay does with each sender's request: one use case per module, each a function of
(runtime, request) that authenticates, validates, deduplicates, enqueues and returns a receipt
(receipts) for every outcome, accepted, duplicate, skipped or ignored. Rejections are raised as
clay_relay.errors, which the resolver (clay_relay.http_api) answers.

- directus_event    POST /directus/{source}: a Directus Flow's item event → Clay rows
- enriched_lead     POST /clay/enriched: an enriched lead from Clay → Loops, Slack, Zapier, Directus
- loops_webhook     POST /loops/webhook: Loops' signed account webhook → a Clay row, Directus
                    feedback, copies for other endpoints, or an email outcome kept in the ledger
- loops_forwarding  POST /loops/contacts, /loops/events: Clay → Loops, the API key kept in the relay
- receipts          the answers (202) of all of them

Nothing is imported here: a function loads only the use cases it serves (cold start).
"""
