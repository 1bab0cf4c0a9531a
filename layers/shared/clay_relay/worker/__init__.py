"""The delivery worker: carries out a batch of queued jobs (Clay rows; Loops events and contacts,
Slack messages, Zapier posts, Directus write-backs), reporting partial failures.

A batch goes through named phases, one module each:
1. `claims`: bundles are unpacked, each job's event is claimed (a second copy is a duplicate), the
   spend guard (`guard`) decides which Clay rows may go (shadow mode, one row per person, budgets), and
   Clay submissions are reserved per target in one conditional update per URL (or rows are held);
2. `lanes`: the jobs are delivered, one thread per lane, paced, behind a circuit breaker and the
   invocation's deadline, each by its kind's delivery function (`destinations.DELIVERIES`);
3. `settlement`: what the batch decided (`batch`: each message's `Settlement`, or its retry,
   deferral or parking) is carried out in batch calls, and SQS is told which messages it keeps;
4. `parking`: a lane that was down and went well again has its parked jobs released.
Before the claims, `full_rows` reads the items of Directus updates (sources with `on_update: full`),
one request per batch and collection, so each such row is its item as it is now.
Anything that cannot be settled is reported as a batch item failure, so SQS keeps it: an accepted
event is delivered or dead-lettered, never dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clay_relay.clay import ClayQuota
from clay_relay.runtime import Runtime, get_runtime
from clay_relay.spend.budget import BudgetLimits
from clay_relay.worker.batch import Plan, Postponement, Settlement
from clay_relay.worker.claims import plan_batch
from clay_relay.worker.lanes import Deadline, deliver_by_lane
from clay_relay.worker.parking import release_recovered
from clay_relay.worker.settlement import settle_batch

if TYPE_CHECKING:
    from typing import Any

    from clay_relay.worker.batch import SqsRecord
    from clay_relay.worker.settlement import BatchResponse

__all__ = ["Plan", "Postponement", "Settlement", "deliver_batch", "handle_batch"]


def handle_batch(event: dict[str, Any], context: object) -> BatchResponse:
    """The SQS event source's batch → `{"batchItemFailures": [...]}` (the messages SQS keeps)."""
    return deliver_batch(event.get("Records", []), context, get_runtime())


def deliver_batch(records: list[SqsRecord], context: object, runtime: Runtime) -> BatchResponse:
    config = runtime.config
    quota = ClayQuota(runtime.table, runtime.clay_used_up)
    budgets = BudgetLimits(runtime.table, runtime.settings.clay_budget_cache_seconds, runtime.clay_budgets)
    batch = plan_batch(records, config, runtime.table, quota, budgets, runtime.settings.enrichment_sla_seconds)
    deadline = Deadline.of(context, runtime.settings.outbound_timeout_seconds)
    deliver_by_lane(batch, runtime, deadline)
    response = settle_batch(batch, runtime.queue, runtime.table, quota, config)
    release_recovered(batch, runtime, deadline.seconds_left())
    return response
