"""The lead ledger: every stage a lead goes through, with its time and outcome, in the relay's table.

A lead is its normalised email (hashed in keys: `email#<sha-256>`). Stages that know only a
Directus item (`directus#<collection>/<key>`) or a Loops contact (`loops-contact#<id>`) are kept
under that alias, and joined to the email through the stages that know both (`link#<alias>` items).

The ledger costs (almost) nothing extra because it is the claims the worker already writes: each
claim of a job that carries a `LeadRef` holds the lead's key (`lead`, the partition key of the
table's `lead-timeline` index, sorted by `at`), the stage it delivers and the stage that accepted
it. On top of that, per batch and only where they apply:
- one BatchWriteItem, before Clay rows are sent, opens their round trips (`trip#<email hash>`, in
  the index under `overdue` until the due time) and writes the links of new aliases;
- the enrichment callback closes the round trip with one write (its `clay.enriched` stage);
- failures (retries, holds, dead letters) add their own entries, in one BatchWriteItem per batch.
A lead's timeline is one Query of the index (plus one per alias). A ledger write that fails is
logged and counted (`LedgerWriteFailed`); it never delays or loses an event.
"""

from __future__ import annotations

from clay_relay.ledger.entries import (
    DELIVERY_STAGES,
    INDEX,
    OVERDUE,
    LeadRef,
    Stage,
    contact_alias,
    directus_alias,
    email_hash,
    email_key,
    lead_ref,
    normalise_email,
)

__all__ = [
    "DELIVERY_STAGES",
    "INDEX",
    "OVERDUE",
    "LeadRef",
    "Stage",
    "contact_alias",
    "directus_alias",
    "email_hash",
    "email_key",
    "lead_ref",
    "normalise_email",
]
