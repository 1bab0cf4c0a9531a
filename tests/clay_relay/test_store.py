"""The DynamoDB table: the worker's claim on an event (once-only delivery that still lets the same
job through again), the receiver's advisory duplicate check, and Clay quota counters that never
pass their quota."""

from __future__ import annotations

import random
import threading
import time
import types

import pytest

from clay_relay import store
from clay_relay.runtime import get_runtime
from clay_relay.store import Claim, RelayTable
from tests.recorders import RecordingClient

WINDOW = 3600


@pytest.fixture
def table(aws) -> RelayTable:
    return RelayTable()


@pytest.fixture
def clock(monkeypatch):
    """The store's clock, moved by hand (only the store's: moto keeps the real one)."""
    now = {"t": time.time()}
    monkeypatch.setattr(store.table, "time", types.SimpleNamespace(time=lambda: now["t"]))

    def advance(seconds: float) -> None:
        now["t"] += seconds

    return advance


# --- claims ----------------------------------------------------------------------------------------
def test_first_claim_of_an_event_wins(table):
    assert table.claim("event-aaaa", "job-1", WINDOW) is Claim.OWNED


def test_claim_by_another_job_of_the_same_event_is_refused(table):
    table.claim("event-aaaa", "job-1", WINDOW)
    assert table.claim("event-aaaa", "job-2", WINDOW) is Claim.DUPLICATE


def test_same_job_claims_again_on_redelivery_or_replay(table):
    assert table.claim("event-aaaa", "job-1", WINDOW) is Claim.OWNED
    assert table.claim("event-aaaa", "job-2", WINDOW) is Claim.DUPLICATE
    assert table.claim("event-aaaa", "job-1", WINDOW) is Claim.OWNED
    assert table.claim("event-aaaa", "job-1", WINDOW) is Claim.OWNED


def test_claims_of_different_events_do_not_interfere(table):
    assert table.claim("event-aaaa", "job-1", WINDOW) is Claim.OWNED
    assert table.claim("event-bbbb", "job-2", WINDOW) is Claim.OWNED


def test_another_job_may_claim_once_the_window_has_passed(table, clock):
    assert table.claim("event-aaaa", "job-1", 60) is Claim.OWNED
    clock(59)
    assert table.claim("event-aaaa", "job-2", 60) is Claim.DUPLICATE
    clock(2)
    assert table.claim("event-aaaa", "job-2", 60) is Claim.OWNED
    # and the new claim now belongs to job-2
    assert table.claim("event-aaaa", "job-1", 60) is Claim.DUPLICATE


# --- claims of jobs whose repeat would show (sending → delivered / released) -------------------------
def test_a_sending_claim_redelivered_without_an_outcome_is_unconfirmed(table):
    assert table.claim("event-aaaa", "job-1", WINDOW, sending=True) is Claim.OWNED
    assert table.claim("event-aaaa", "job-1", WINDOW, sending=True) is Claim.UNCONFIRMED, (
        "the worker stopped between the claim and the answer: the request may have gone out"
    )


def test_a_sending_claim_marked_delivered_is_never_sent_again(table):
    table.claim("event-aaaa", "job-1", WINDOW, sending=True)
    table.mark_delivered("event-aaaa")
    assert table.claim("event-aaaa", "job-1", WINDOW, sending=True) is Claim.DELIVERED
    assert table.claim("event-aaaa", "job-2", WINDOW, sending=True) is Claim.DUPLICATE


def test_a_replay_from_the_dead_letter_queue_takes_over_an_unconfirmed_claim_but_not_a_delivered_one(table):
    table.claim("event-aaaa", "job-1", WINDOW, sending=True)
    assert table.claim("event-aaaa", "job-1", WINDOW, sending=True, replayed=True) is Claim.OWNED
    table.mark_delivered("event-aaaa")
    assert table.claim("event-aaaa", "job-1", WINDOW, sending=True, replayed=True) is Claim.DELIVERED


def test_a_released_sending_claim_may_be_claimed_again_by_its_job(table):
    table.claim("event-aaaa", "job-1", WINDOW, sending=True)
    table.release("event-aaaa")
    assert table.claim("event-aaaa", "job-1", WINDOW, sending=True) is Claim.OWNED
    assert table.claim("event-aaaa", "job-2", WINDOW, sending=True) is Claim.DUPLICATE


def test_already_seen_reports_only_live_claims(table, clock):
    table.claim("event-live", "job-1", 600)
    table.claim("event-expiring", "job-2", 60)
    clock(61)
    assert table.already_seen(["event-live", "event-expiring", "event-never"]) == {"event-live"}


def test_already_seen_of_nothing_is_nothing(table):
    assert table.already_seen([]) == set()


def test_already_seen_handles_more_events_than_one_batch_read(table):
    claimed = {f"event-{n:04d}" for n in range(0, 250, 7)}
    for event_id in claimed:
        table.claim(event_id, "job", WINDOW)
    asked = [f"event-{n:04d}" for n in range(250)] + ["event-0000"]  # a repeat, too
    assert table.already_seen(asked) == claimed


def test_already_seen_treats_an_unreadable_table_as_nothing_seen(aws):
    RelayTable().claim("event-aaaa", "job-1", WINDOW)
    assert RelayTable(table_name="no-such-table").already_seen(["event-aaaa"]) == set()


# --- Clay quota ------------------------------------------------------------------------------------
def test_reservation_is_granted_in_full_while_quota_remains(table):
    first = table.reserve_submissions("hook-a", 4, 10, "leads")
    assert (first.granted, first.used_before, first.used_after, first.exhausted) == (4, 0, 4, False)
    second = table.reserve_submissions("hook-a", 6, 10, "leads")
    assert (second.granted, second.used_before, second.used_after, second.exhausted) == (6, 4, 10, True)
    assert table.submissions_used("hook-a") == 10


def test_reservation_is_partial_when_fewer_remain(table):
    table.reserve_submissions("hook-a", 8, 10, "leads")
    partial = table.reserve_submissions("hook-a", 5, 10, "leads")
    assert (partial.granted, partial.used_before, partial.used_after, partial.exhausted) == (2, 8, 10, True)
    assert table.submissions_used("hook-a") == 10


def test_reservation_is_zero_when_the_quota_is_used_up(table):
    table.reserve_submissions("hook-a", 10, 10, "leads")
    none = table.reserve_submissions("hook-a", 1, 10, "leads")
    assert (none.granted, none.used_after, none.exhausted) == (0, 10, True)
    assert table.submissions_used("hook-a") == 10


def test_counters_are_kept_per_webhook(table):
    table.reserve_submissions("hook-a", 10, 10, "leads")
    assert table.reserve_submissions("hook-b", 3, 10, "leads").granted == 3
    assert table.submissions_used("hook-b") == 3
    assert table.submissions_used("hook-never") == 0


def test_first_reservation_of_a_webhook_never_passes_the_quota(table):
    reservation = table.reserve_submissions("hook-new", 10, 5, "leads")
    assert reservation.granted == 5
    assert table.submissions_used("hook-new") == 5


def test_release_gives_submissions_back(table):
    table.reserve_submissions("hook-a", 10, 10, "leads")
    table.release_submissions("hook-a", 4)
    assert table.submissions_used("hook-a") == 6
    again = table.reserve_submissions("hook-a", 10, 10, "leads")
    assert (again.granted, again.used_after) == (4, 10)


def test_releasing_nothing_changes_nothing(table):
    table.reserve_submissions("hook-a", 3, 10, "leads")
    table.release_submissions("hook-a", 0)
    assert table.submissions_used("hook-a") == 3


def test_concurrent_reservations_never_pass_the_quota_and_use_it_all(table, monkeypatch):
    """8 workers x 50 reservations of 1-10 on a quota of 1000: exactly 1000 granted, never more used.

    moto's in-process DynamoDB evaluates a condition and applies the update as two Python steps,
    so two threads can both pass the same condition (unlike DynamoDB, where one conditional write
    is atomic). Each request is therefore made atomic, as DynamoDB makes it, by a lock around the
    moto call; the relay's own code runs free between requests, which is what is under test."""
    clients = get_runtime().aws
    atomic_requests = threading.Lock()
    clients._clients["dynamodb"] = RecordingClient(clients.client("dynamodb"), [], atomic_requests)
    quota, grants, lock = 1000, [], threading.Lock()

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(50):
            reservation = table.reserve_submissions("hook-busy", rng.randint(1, 10), quota, "leads")
            with lock:
                grants.append(reservation)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(grants) == 400
    assert sum(r.granted for r in grants) == quota
    assert max(r.used_after for r in grants) <= quota
    assert all(r.granted >= 0 and r.used_before + r.granted == r.used_after for r in grants if r.granted)
    assert table.submissions_used("hook-busy") == quota


# --- items written in batches, updated one by one ---------------------------------------------------
def test_a_batch_write_names_each_key_once_and_writes_its_last_put(table):
    """Two Clay rows of one person in one batch open one round trip. DynamoDB refuses a batch write
    that names a key twice (moto does not), which lost the whole batch's ledger writes."""
    calls: list = []
    clients = get_runtime().aws
    clients._clients["dynamodb"] = RecordingClient(clients.client("dynamodb"), calls)
    first = {"pk": {"S": "trip#ada"}, "event_id": {"S": "first"}}
    last = {"pk": {"S": "trip#ada"}, "event_id": {"S": "last"}}
    table.write_batch([first, {"pk": {"S": "link#x"}}, last], deletes=["trip#ada", "link#gone"])
    [(_, request)] = [call for call in calls if call[0] == "batch_write_item"]
    [requests] = request["RequestItems"].values()
    keys = [(r.get("PutRequest", {}).get("Item") or r["DeleteRequest"]["Key"])["pk"]["S"] for r in requests]
    assert sorted(keys) == ["link#gone", "link#x", "trip#ada"]
    assert table.get("trip#ada")["event_id"]["S"] == "last"


def test_a_conditional_update_that_fails_says_what_the_item_was_and_changes_nothing(table):
    table.update("count#a", "ADD n :one", {":one": {"N": "1"}})
    with pytest.raises(store.ConditionFailed) as failed:
        table.update("count#a", "ADD n :one", {":one": {"N": "1"}}, condition="n < :one")
    assert failed.value.item["n"] == {"N": "1"}
    assert table.update("count#a", "ADD n :one", {":one": {"N": "1"}})["n"] == {"N": "2"}
