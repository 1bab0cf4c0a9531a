"""The sandbox Directus as the sweep needs it: items keep date_created and date_updated, the items API
filters on them, `/fields` gives defaults, and its Flow never retries: a non-2xx answer (or none)
drops the event, and the delivery log says so."""

from __future__ import annotations

import json
import time

from local_stack.sandboxes import Sandboxes
from local_stack.sandboxes.directus_query import query_object
from tests.destinations import Answer, StubServer

AUTH = {"authorization": "Bearer token"}


def sandbox() -> Sandboxes:
    sandboxes = Sandboxes()
    sandboxes.directus.token = "token"
    return sandboxes


def call(sandboxes: Sandboxes, method: str, path: str, body: dict | None = None, query: str = ""):
    parts = path.strip("/").split("/")
    data = json.dumps(body).encode() if body is not None else b""
    return sandboxes.directus.receive(method, parts, AUTH, data, query=query)


def test_items_keep_when_they_were_created_and_last_updated_and_filter_on_it():
    sandboxes = sandbox()
    first = call(sandboxes, "POST", "directus/items/leads", {"email": "a@x.io"}).body["data"]
    assert first["date_created"].endswith("Z") and first["date_updated"] is None
    second = call(sandboxes, "POST", "directus/items/leads", {"email": "b@x.io"}).body["data"]
    updated = call(sandboxes, "PATCH", "directus/items/leads/1", {"job_title": "CTO"}).body["data"]
    assert updated["date_updated"] >= second["date_created"]

    since = second["date_created"]
    rule = json.dumps({"_or": [{"date_created": {"_gte": since}}, {"date_updated": {"_gte": since}}]})
    found = call(sandboxes, "GET", "directus/items/leads", query=f"filter={rule}&sort=id").body["data"]
    assert [item["id"] for item in found] == [1, 2], "the one updated since, the one created since"
    assert query_object("filter[date_updated][_null]=true") == {"filter": {"date_updated": {"_null": "true"}}}


def test_an_undated_collection_has_no_dates_and_fields_give_defaults():
    sandboxes = sandbox()
    sandboxes.directus.undated.add("plain")
    sandboxes.directus.defaults["plain"] = {"status": "new"}
    item = call(sandboxes, "POST", "directus/items/plain", {"email": "a@x.io"}).body["data"]
    assert item == {"id": 1, "status": "new", "email": "a@x.io"}
    fields = call(sandboxes, "GET", "directus/fields/plain").body["data"]
    assert fields == [{"field": "status", "schema": {"default_value": "new"}}]


def test_the_flow_never_retries_and_the_log_says_which_events_it_dropped():
    relay = StubServer().start()
    sandboxes = sandbox()
    try:
        relay.answer("/directus/leads", Answer(502), Answer(202))
        sandboxes.directus.flows["leads"] = (relay.url("/directus/leads"), "flow-token")
        for email in ("lost@x.io", "kept@x.io"):
            answer = call(sandboxes, "POST", "directus/items/leads", {"email": email})
            answer.then()  # what the server does after answering
        deadline = time.monotonic() + 10
        while len(sandboxes.deliveries.all()) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        flows = [d for d in sandboxes.deliveries.all() if d["destination"] == "directus_flow"]
        assert [(d["status"], d["dropped"], d["body"]["payload"]["email"]) for d in flows] == [
            (502, True, "lost@x.io"),
            (202, False, "kept@x.io"),
        ]
        assert len(relay.received) == 2, "each event was sent once: no retry"
    finally:
        relay.stop()
