"""What the worker's tests share: the queues, and Clay's `leads` target on a local server."""

from __future__ import annotations

import pytest

CLAY_PATH = "/clay/webhooks/leads-1"
POOL_SECRET = "clay-webhooks-leads"


@pytest.fixture
def clay(aws, http_stub, put_secret):
    """The `leads` target's pool: one URL on the local server (answering 200 unless told), token clay-token-1."""
    put_secret(POOL_SECRET, [{"url": http_stub.url(CLAY_PATH), "token": "clay-token-1"}])
    return http_stub


@pytest.fixture
def queues(aws):
    """The delivery queue's URL and its dead-letter queue's."""
    return aws.ref("DeliveryQueue"), aws.ref("DeadLetterQueue")
