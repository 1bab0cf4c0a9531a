"""Sandbox stand-ins for the outside world, behaving like the real services where it matters, all
behind one HTTP server (`Sandboxes`, in server):

clay            Clay's table webhooks: auth token, 100 KB, rate limit, submission limit, auto-dedupe
clay_column     Clay's HTTP API column: calls the relay's /clay/enriched back for each row kept
loops           Loops' API (events, contacts: API key, limits, Idempotency-Key) and its signed webhooks
loops_events    Loops' webhook events, every type, as Loops sends them
hooks           Slack and Zapier incoming webhooks, and a receiver of forwarded Loops events
directus        Directus' items API, and the Flow that fires at the relay after a write
directus_query  Directus' list query language (limit, offset, page, sort, filter, fields, meta)
faults          injected faults (a status, a timeout, a closed connection, a function crash)
deliveries      the log of every request received
"""

from local_stack.sandboxes.answers import Answer
from local_stack.sandboxes.clay import CLAY_MAX_BODY, ClaySandbox
from local_stack.sandboxes.clay_column import HttpApiColumn, icp_score_for
from local_stack.sandboxes.deliveries import DeliveryLog
from local_stack.sandboxes.directus import DirectusSandbox
from local_stack.sandboxes.faults import Fault
from local_stack.sandboxes.hooks import forward_receive, slack_receive, zapier_receive
from local_stack.sandboxes.loops import LOOPS_MAX_VALUE, LoopsSandbox
from local_stack.sandboxes.loops_events import loops_event
from local_stack.sandboxes.server import Sandboxes

__all__ = [
    "CLAY_MAX_BODY",
    "LOOPS_MAX_VALUE",
    "Answer",
    "ClaySandbox",
    "DeliveryLog",
    "DirectusSandbox",
    "Fault",
    "HttpApiColumn",
    "LoopsSandbox",
    "Sandboxes",
    "forward_receive",
    "icp_score_for",
    "loops_event",
    "slack_receive",
    "zapier_receive",
]
