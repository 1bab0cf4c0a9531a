"""AWS SDK clients, all from one botocore session: its endpoint and service data load once per
cold start, not once per client.

botocore directly, not boto3: `import boto3` also imports s3transfer and multiprocessing, ~90 ms
of every cold start for nothing the relay uses (bench/handlers.py measures it). Clients read the
same environment boto3's would (region, credentials, AWS_ENDPOINT_URL)."""

from __future__ import annotations

import threading
from functools import cache

import botocore.session

_lock = threading.Lock()  # the worker's lanes may ask for a client at once; botocore's session isn't thread-safe


@cache
def session() -> botocore.session.Session:
    return botocore.session.get_session()


def client(service: str):
    with _lock:
        return session().create_client(service)
