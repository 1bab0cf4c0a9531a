"""The Clay spend guard: nothing reaches Clay past a budget, twice for the same person within a
window, or at all from a target in shadow mode; such rows wait or are skipped with a reason in the
lead ledger, never silently dropped. The worker applies it (clay_relay.worker.guard); `relay clay
budget` and `relay clay spend` read and change it.

    budget   rows per UTC day and month per target, counted atomically per batch; run-time changes
    persons  one row per person: the targets a person went to, kept in the lead's round trip
    usage    what a target has sent, held, skipped and shadowed, and the month's projection
"""
