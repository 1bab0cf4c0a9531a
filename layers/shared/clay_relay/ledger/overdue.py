"""The scheduled check for round trips that are overdue: a lead delivered to Clay whose enrichment
callback has not arrived within its target's `enrichment_sla_minutes`.

Clay's HTTP API column does not retry and shows its error only in the cell; a Clay URL can drop rows
while answering 200; a row Clay never finishes enriching (credits ran out, a column erred) never calls
back. Each of those ends here: `EnrichmentOverdue` > 0 fires the alarm, and `relay leads --overdue`
lists the leads. A late callback closes the round trip, and the next check no longer counts it.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING

from clay_relay.ledger.timeline import overdue_leads
from clay_relay.observability import MetricUnit, gauge, logger, mask_email

if TYPE_CHECKING:
    from clay_relay.runtime import Runtime


def report_overdue(runtime: Runtime) -> dict[str, object]:
    now = time.time()
    leads = overdue_leads(runtime.table, now)
    per_target = Counter(lead.target for lead in leads)
    for target in sorted(set(runtime.config.clay_targets) | set(per_target)):
        gauge(
            "EnrichmentOverdue", per_target[target], MetricUnit.Count, destination="clay", breakdown={"target": target}
        )
    for lead in leads[:100]:  # the rest are in `relay leads --overdue`
        logger.warning(
            "lead went to Clay and never came back enriched",
            extra={
                "email": mask_email(lead.email or ""),
                "target": lead.target,
                "event_id": lead.event_id,
                "directus": lead.directus,
                "overdue_seconds": round(now - lead.due_at),
            },
        )
    return {"overdue": len(leads), "per_target": dict(per_target)}
