"""AWS SDK clients, all from one botocore session: its endpoint and service data load once per
cold start, not once per client.

botocore directly, not boto3: `import boto3` also imports s3transfer and multiprocessing, ~90 ms
of every cold start for nothing the relay uses (bench/handlers.py measures it). Clients read the
same environment boto3's would (region, credentials, AWS_ENDPOINT_URL)."""

from __future__ import annotations

import threading
from typing import Any

import botocore.session


class AwsClients:
    """One client per service, created on first use (the worker's lanes may ask at once, and a
    botocore session is not thread-safe, hence the lock)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._session: botocore.session.Session | None = None
        self._clients: dict[str, Any] = {}

    @property
    def session(self) -> botocore.session.Session:
        with self._lock:
            if self._session is None:
                self._session = botocore.session.get_session()
            return self._session

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self.session.create_client(service)
            return self._clients[service]
