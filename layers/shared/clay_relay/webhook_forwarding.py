"""Copies of Loops' events for the other endpoints of `loops_webhook.forward` (Loops allows one
webhook endpoint per account; the relay is it, and fans each event out).

Each copy is the event exactly as Loops sent it, signed anew with the endpoint's own Standard
Webhooks secret (every active one, for rotation) at the time it is sent, so the endpoint can verify
the relay as it would verify Loops: `webhook-id` stays Loops' own (what receivers deduplicate on),
`webhook-timestamp` is now, `webhook-signature` is `v1,<base64 HMAC-SHA256>` over
`{id}.{timestamp}.{body}`. The URL comes from the endpoint's secret, never from the event.
"""

from __future__ import annotations

import time

from clay_relay.config import ForwardEndpoint
from clay_relay.jobs import LoopsForwardJob
from clay_relay.outbound import Outcome, send_body
from clay_relay.secrets import SecretUnavailable, read_secret, read_tokens
from clay_relay.standard_webhooks import sign


def forward_event(job: LoopsForwardJob, endpoint: ForwardEndpoint) -> Outcome:
    try:
        url = read_secret(endpoint.url_secret).strip()
        secrets = read_tokens(endpoint.signing_secret)
        timestamp = int(time.time())
        body = job.body.encode("utf-8")
        signatures = " ".join(sign(secret, job.webhook_id, timestamp, body) for secret in secrets)
    except SecretUnavailable as error:
        return Outcome(delivered=False, retryable=True, reason=str(error), reached=False)
    except ValueError as error:  # a secret that is no `whsec_<base64>`: waits until it is fixed
        reason = f"secret {endpoint.signing_secret!r} of forward endpoint {endpoint.name!r} is unusable: {error}"
        return Outcome(delivered=False, retryable=True, reason=reason, reached=False)
    headers = {
        "Content-Type": "application/json",
        "webhook-id": job.webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signatures,
    }
    return send_body("POST", url, body, headers, event_id=job.event_id)
