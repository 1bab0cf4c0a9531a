"""The reconciliation sweep: Directus never retries, so the events its Flow failed to deliver are found
in the collection itself. Each lost create and each lost mapped-field update becomes one Clay row,
the one the Flow's event would have made; what the Flow did deliver, the relay's own write-backs and
edits of unmapped fields are never sent again."""

from __future__ import annotations

import json
from collections import Counter
from urllib.parse import parse_qs, urlsplit

import pytest

from clay_relay import item_state
from clay_relay.ledger import email_key
from clay_relay.ledger.timeline import timeline
from clay_relay.store import RelayTable
from tests.destinations import Answer
from tests.directus_relay import DirectusRelay as Relay

ENRICHMENT = {"icp_score": 91, "industry": "Software", "personalized_opener": "Loved your talk."}  # the write-back's


def test_the_first_sweep_starts_watching_and_sends_nothing_from_before(relay: Relay):
    relay.create(email="before@example.com", first_name="Old")
    assert relay.sweep() == {"lag_seconds": 0.0}
    assert relay.checkpoint().since is not None
    assert relay.queued() == 0 and relay.rows() == []


def test_creates_the_flow_never_delivered_become_one_row_each_after_the_next_sweep(relay: Relay):
    relay.sweep()
    lost = [relay.create(email=f"lost{n}@example.com", first_name=f"Lost {n}") for n in range(5)]
    delivered = relay.create(email="flow@example.com", first_name="Flow")
    relay.flow("create", delivered["id"], {"email": "flow@example.com", "first_name": "Flow"})
    assert len(relay.rows()) == 1

    result = relay.sweep()
    assert (result["listed"], result["created"], result["seen"]) == (6, 5, 1)
    assert relay.work() == set()
    rows = relay.rows()[1:]
    assert sorted(row["email"] for row in rows) == [f"lost{n}@example.com" for n in range(5)]
    first = next(row for row in rows if row["directus_id"] == lost[0]["id"])
    assert first == {
        "email": "lost0@example.com",
        "first_name": "Lost 0",
        "last_name": None,
        "company_name": None,
        "company_domain": None,
        "job_title": None,
        "directus_event": "leads.items.create",
        "directus_collection": "leads",
        "directus_id": lost[0]["id"],
        "relay_event_id": item_state.create_event_id("directus/leads", "leads", lost[0]["id"]),
    }
    stages = [line.stage for line in timeline(RelayTable(), email_key("lost0@example.com"), 2e9).stages]
    assert stages[:2] == ["directus.reconciled", "clay.delivered"]

    again = relay.sweep()
    assert again.get("created", 0) == 0 and relay.queued() == 0, "the next window starts after this one"
    assert relay.checkpoint().recovered_total == 5


def test_a_create_the_flow_delivers_after_the_sweep_queued_it_is_still_one_row(relay: Relay):
    """The Flow's event late (a slow receiver) and the sweep's row: the same event id, one claim."""
    relay.sweep()
    item = relay.create(email="race@example.com")
    assert relay.sweep()["created"] == 1
    relay.flow("create", item["id"], {"email": "race@example.com"})
    assert [row["email"] for row in relay.rows()] == ["race@example.com"]


def test_the_relays_own_write_back_is_not_taken_for_a_change(relay: Relay):
    relay.sweep()
    item = relay.create(email="ada@example.com", first_name="Ada")
    relay.flow("create", item["id"], {"email": "ada@example.com", "first_name": "Ada"})
    relay.update(item["id"], **ENRICHMENT)  # the write-back; its echo is skipped by the receiver

    result = relay.sweep()
    assert (result["listed"], result["seen"], result.get("updated", 0)) == (1, 1, 0)
    assert relay.queued() == 0 and len(relay.rows()) == 1


def test_an_edit_of_fields_the_source_does_not_map_is_not_a_change(relay: Relay):
    relay.sweep()
    item = relay.create(email="ada@example.com", first_name="Ada")
    relay.flow("create", item["id"], {"email": "ada@example.com", "first_name": "Ada"})
    relay.update(item["id"], notes="met at the conference", status="qualified")
    assert relay.sweep()["seen"] == 1 and relay.queued() == 0


def test_a_field_the_create_left_to_its_default_is_not_a_change(relay: Relay):
    relay.items.defaults["leads"] = {"website": "https://unknown.example"}
    relay.sweep()
    item = relay.create(email="ada@example.com")
    relay.flow("create", item["id"], {"email": "ada@example.com"})
    relay.update(item["id"], **ENRICHMENT)
    assert relay.sweep()["seen"] == 1 and relay.queued() == 0


def test_a_mapped_field_update_the_flow_lost_becomes_a_full_row_after_the_next_sweep(relay: Relay):
    relay.sweep()
    item = relay.create(email="ada@example.com", first_name="Ada")
    relay.flow("create", item["id"], {"email": "ada@example.com", "first_name": "Ada"})
    relay.update(item["id"], job_title="CTO")  # the Flow's event is lost
    relay.update(item["id"], **ENRICHMENT)  # and the write-back comes after it

    assert relay.sweep()["updated"] == 1
    assert relay.work() == set()
    [_, row] = relay.rows()
    assert (row["email"], row["first_name"], row["job_title"], row["directus_event"]) == (
        "ada@example.com",
        "Ada",
        "CTO",
        "leads.items.update",
    )
    assert relay.sweep().get("updated", 0) == 0


def test_an_update_the_flow_delivered_is_not_sent_again(relay: Relay):
    relay.sweep()
    item = relay.create(email="ada@example.com", first_name="Ada")
    relay.flow("create", item["id"], {"email": "ada@example.com", "first_name": "Ada"})
    relay.update(item["id"], job_title="CTO")
    relay.flow("update", item["id"], {"job_title": "CTO"})
    relay.update(item["id"], **ENRICHMENT)
    assert relay.sweep()["seen"] == 1 and relay.queued() == 0
    assert len(relay.rows()) == 2


def test_an_item_created_before_the_sweep_began_and_changed_now_is_left_alone_and_counted(relay: Relay):
    """Its create is not in the ledger (before the relay, or before this version): the relay cannot
    tell a mapped change from any other, and sends nothing rather than a row Clay may already have."""
    old = relay.create(email="old@example.com")
    relay.sweep()
    relay.update(old["id"], job_title="CTO")
    assert relay.sweep()["unverifiable"] == 1 and relay.queued() == 0


def test_a_row_held_for_clay_quota_is_waiting_not_missing(relay: Relay, put_secret):
    relay.sweep()
    put_secret("clay-webhooks-leads", [])  # no URL: rows wait
    item = relay.create(email="held@example.com")
    relay.flow("create", item["id"], {"email": "held@example.com"})
    result = relay.sweep()
    assert (result["waiting"], result.get("created", 0)) == (1, 0)


def test_a_source_with_changed_rows_only_sweeps_creates(relay: Relay, use_config):
    use_config(lambda c: c["directus_sources"]["leads"].update(on_update="changed"))
    relay.sweep()
    item = relay.create(email="ada@example.com")
    relay.flow("create", item["id"], {"email": "ada@example.com"})
    relay.update(item["id"], job_title="CTO")
    lost = relay.create(email="lost@example.com")
    relay.directus_sandbox.sandboxes.deliveries.clear()
    result = relay.sweep()
    assert (result["listed"], result["created"], result.get("updated", 0)) == (2, 1, 0)
    [listing, *_] = [d["path"] for d in relay.directus_sandbox.received("directus") if d["method"] == "GET"]
    asked = parse_qs(urlsplit(listing).query)
    assert "date_updated" not in asked["fields"][0] and "date_updated" not in asked["filter"][0]
    relay.work()
    assert relay.rows()[-1]["directus_id"] == lost["id"]


def test_a_collection_without_dates_is_swept_for_new_keys_one_sweep_late(relay: Relay, use_config):
    """Without date_created the sweep cannot tell a lost create from one whose Flow event is still on
    its way: it checks the items that existed at its previous run."""
    use_config(lambda c: c["directus_sources"]["leads"].update(created_field=None, updated_field=None))
    relay.items.undated.add("leads")
    relay.create(email="before@example.com")
    relay.sweep()  # starts after key 1
    lost = relay.create(email="lost@example.com")
    assert relay.sweep().get("created", 0) == 0, "not yet: it may be on its way"
    assert relay.sweep()["created"] == 1
    relay.work()
    assert [row["directus_id"] for row in relay.rows()] == [lost["id"]]


def test_a_window_the_invocation_has_no_time_to_finish_is_finished_by_the_next_one(relay: Relay):
    relay.sweep()
    lost = [relay.create(email=f"l{n}@example.com") for n in range(250)]
    pages = iter([1.0, 1.0, 1.0, 0.0])  # time enough for the lease and two pages of 100
    first = relay.sweep(time_left=lambda: next(pages, 0.0))
    assert (first["created"], first["unfinished"]) == (200, "out of time: the next run goes on from where it stopped")
    assert relay.checkpoint().cursor_after == lost[199]["id"]
    assert relay.sweep()["created"] == 50
    assert relay.checkpoint().cursor_upto is None
    relay.work()
    assert Counter(row["directus_id"] for row in relay.rows()) == {item["id"]: 1 for item in lost}


def test_a_failing_sweep_says_why_keeps_its_place_and_the_next_one_recovers(relay: Relay, put_secret):
    relay.sweep()
    since = relay.checkpoint().since
    relay.create(email="lost@example.com")
    put_secret("directus-api", {"url": f"{relay.directus_sandbox.base}/directus", "token": "revoked"})
    result = relay.sweep()
    assert "HTTP 401 (INVALID_CREDENTIALS: Invalid user credentials.)" in result["error"]
    checkpoint = relay.checkpoint()
    assert checkpoint.failing and checkpoint.since == since and "INVALID_CREDENTIALS" in checkpoint.last_error

    put_secret("directus-api", {"url": f"{relay.directus_sandbox.base}/directus", "token": "directus-api-token"})
    assert relay.sweep()["created"] == 1
    assert not relay.checkpoint().failing


def test_a_source_under_way_in_another_invocation_is_left_alone(relay: Relay):
    from clay_relay.reconcile import checkpoint as checkpoints
    from clay_relay.runtime import get_runtime

    relay.sweep()
    held = checkpoints.take_lease(get_runtime().table, relay.checkpoint(), 1e9, 3e9)
    assert held
    assert relay.sweep() == "another sweep of it is under way"


@pytest.mark.parametrize(("changed", "updated"), [(0, False), (100, False), (100, True)])
def test_a_sweep_costs_requests_in_proportion_to_the_changed_items(relay: Relay, aws_calls, changed, updated):
    """Directus: one request per 100 items listed (and the empty page that ends the window); DynamoDB:
    one read of the checkpoint, a write to take it, a BatchGetItem per 100 claims (a new item's create,
    an updated one's create and update), a write to save it. Nothing grows with the collection."""
    relay.create(email="long-ago@example.com")
    relay.sweep()
    for n in range(changed):
        item = relay.create(email=f"seen{n}@example.com")
        relay.flow("create", item["id"], {"email": f"seen{n}@example.com"})
        if updated:
            relay.update(item["id"], **ENRICHMENT)
    relay.directus_sandbox.sandboxes.deliveries.clear()
    aws_calls.dynamodb.clear()
    aws_calls.sqs.clear()

    result = relay.sweep()
    assert result.get("seen", 0) == changed
    reads = [d for d in relay.directus_sandbox.received("directus") if d["method"] == "GET"]
    assert len(reads) == 1 + changed // 100
    claims = -(-changed * (2 if updated else 1) // 100)
    assert Counter(aws_calls.names("dynamodb")) == {"batch_get_item": 1 + claims, "update_item": 2}
    assert aws_calls.names("sqs") == []


def test_an_item_too_big_for_a_clay_row_is_counted_refused_and_the_rest_go(relay: Relay):
    relay.sweep()
    relay.create(email="big@example.com", company="x" * 100_001)
    relay.create(email="small@example.com")
    result = relay.sweep()
    assert (result["created"], result["refused"]) == (1, 1)
    relay.work()
    assert [row["email"] for row in relay.rows()] == ["small@example.com"]


def test_a_refused_listing_says_which_token_and_fields_to_check(relay: Relay, put_secret, http_stub):
    """Directus answers 403 for a field the collection does not have, as for one the token may not read."""
    relay.sweep()
    refusal = {
        "errors": [{"message": "You don't have permission to access this.", "extensions": {"code": "FORBIDDEN"}}]
    }
    http_stub.answer("/cms/items/leads", Answer(403, body=json.dumps(refusal).encode()))
    put_secret("directus-api", {"url": http_stub.url("/cms"), "token": "t"})
    error = relay.sweep()["error"]
    assert "HTTP 403 (FORBIDDEN: You don't have permission to access this.)" in error
    assert "read collection 'leads' and its fields id, date_created, date_updated" in error
    assert "set created_field / updated_field to null" in error


def test_a_source_that_accepts_any_collection_is_not_swept(relay: Relay, use_config):
    from clay_relay.reconcile import swept_sources
    from clay_relay.runtime import get_runtime

    use_config(lambda c: c["directus_sources"]["leads"].update(collection=None))
    assert swept_sources(get_runtime()) == {}
