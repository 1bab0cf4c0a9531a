"""A relay whose Directus is the sandbox (its Flow not wired: a test sends a Flow's event itself, or
lets it be lost) and whose Clay is a local stub: what the sweep's tests and `relay status`'s drive."""

from __future__ import annotations

import json
from dataclasses import dataclass

from clay_relay.reconcile import checkpoint as checkpoints
from clay_relay.reconcile import sweep_source
from clay_relay.runtime import get_runtime
from tests.destinations import DIRECTUS_API_TOKEN, Destinations, StubServer
from tests.invocations import call_handler, directus_flow_event, load_handler
from tests.queues import receive, run_worker, sqs_record

CLAY_PATH = "/clay/webhooks/leads-1"


@dataclass
class DirectusRelay:
    """The relay, its sandbox Directus and its Clay."""

    aws: object
    directus_sandbox: Destinations
    clay: StubServer

    @property
    def items(self):
        return self.directus_sandbox.sandboxes.directus

    def create(self, **fields) -> dict:
        """An item created through Directus' API (its Flow's event is the test's to send, or lose)."""
        answer = self.items.receive("POST", ["directus", "items", "leads"], self._auth, json.dumps(fields).encode())
        assert answer.status == 200, answer.body
        return answer.body["data"]

    def update(self, key: int, **fields) -> dict:
        path = ["directus", "items", "leads", str(key)]
        answer = self.items.receive("PATCH", path, self._auth, json.dumps(fields).encode())
        assert answer.status == 200, answer.body
        return answer.body["data"]

    @property
    def _auth(self) -> dict:
        return {"authorization": f"Bearer {DIRECTUS_API_TOKEN}"}

    def flow(self, action: str, key: int, payload: dict) -> dict:
        """The Flow's event reaches the relay, and the worker delivers it: the receiver's answer."""
        shape = {"key": key} if action == "create" else {"keys": [str(key)]}
        body = {"event": f"leads.items.{action}", "collection": "leads", "payload": payload, **shape}
        event = directus_flow_event(body)
        status, answer = call_handler(load_handler("directus_trigger"), event)
        assert status == 202, answer
        self.work()
        return answer

    def work(self) -> set[str]:
        """The worker over everything queued now (the messages it reports failed)."""
        queue = self.aws.ref("DeliveryQueue")
        failed: set[str] = set()
        while messages := receive(queue):
            failed |= run_worker(received_records_of(queue, messages))
        return failed

    def sweep(self, source: str = "leads", *, time_left=lambda: 600.0) -> dict:
        """One sweep of the source, due or not: what it answered."""
        runtime = get_runtime()
        checkpoint = checkpoints.load(runtime.table, [source])[source]
        return sweep_source(runtime, source, runtime.config.directus_sources[source], checkpoint, time_left)

    def checkpoint(self, source: str = "leads") -> checkpoints.Checkpoint:
        return checkpoints.load(get_runtime().table, [source])[source]

    def rows(self) -> list[dict]:
        """What Clay received, in order."""
        return [request.json() for request in self.clay.posted_to(CLAY_PATH)]

    def queued(self) -> int:
        """Messages on the delivery queue now (received, then left to come back)."""
        return len(receive(self.aws.ref("DeliveryQueue")))


def received_records_of(queue: str, messages: list[dict]) -> list[dict]:
    return [sqs_record(message, queue) for message in messages]
