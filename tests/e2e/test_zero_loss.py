"""Zero loss under faults and crashes: a few hundred events through every flow of the local stack
while every kind of fault is injected and delivery workers are killed mid-batch. Afterwards every
accepted job is delivered or dead-lettered (none lost), and no destination received an event twice
unless the repeat was harmless: absorbed by an idempotency key (Clay's auto-dedupe on the row's
`relay_event_id`, Loops' `Idempotency-Key` → 409) or an idempotent request (Loops' contact PUT,
Directus' PATCH). Slack and Zapier, which have neither, never receive anything twice. Items created
in the sandbox Directus go through its Flow, which never retries: those the crashing receivers
dropped are found by the reconciliation sweep, and every item becomes exactly one Clay row. It
prints the counts."""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import requests

from clay_relay.jobs import content_id
from tests.e2e.conftest import E2E_CONFIG, E2E_DELIVERY, RunningStack, start_stack

DIRECTUS_EVENTS = 120
DIRECTUS_ITEMS = 30  # created in the sandbox Directus: its Flow calls the relay, once
CLAY_LEADS = 64  # a quarter each: hot outreach, outreach, nurture, skipped
LOOPS_WEBHOOKS = 40
LOOPS_FORWARDED = 40
DRAIN_TIMEOUT = 300

# Write-backs go to a collection without a Flow (its items are made by the test, no echo).
ZERO_LOSS_CONFIG = copy.deepcopy(E2E_CONFIG)
ZERO_LOSS_CONFIG["clay_callback"]["directus_writeback"]["collection"] = "accounts"
# Transient faults are retried until they pass; only what can never succeed is dead-lettered. While a
# destination is down only its probe calls it, so a count of faults (Clay's fifteen 503s) lasts that many
# probes: one a second.
ZERO_LOSS_CONFIG["delivery"] = {**E2E_DELIVERY, "retry_horizon_seconds": 120, "max_backoff_seconds": 4}

FAULTS_FROM_THE_START = [  # a destination's faults apply in this order
    {"destination": "receiver", "mode": "crash", "times": 10},
    {"destination": "clay", "mode": "down", "times": 3},
    {"destination": "clay", "status": 503, "times": 15},
    {"destination": "loops", "mode": "timeout", "times": 4, "delay": 2},
    {"destination": "slack", "status": 503, "times": 2},
    {"destination": "slack", "mode": "timeout", "times": 1, "delay": 2},
    {"destination": "zapier", "status": 400, "times": 2},
    {"destination": "directus", "status": 502, "times": 3},
    {"destination": "worker", "mode": "crash", "times": 6},
    {"destination": "worker", "mode": "crash", "times": 4, "after": "delivery"},
]
FAULTS_HALFWAY = [
    {"destination": "receiver", "mode": "crash", "times": 6},
    {"destination": "clay", "mode": "down", "seconds": 3},
    {"destination": "loops", "mode": "rate_limit", "times": 3},
    {"destination": "zapier", "mode": "down", "seconds": 2},
    {"destination": "worker", "mode": "crash", "times": 6},
    {"destination": "worker", "mode": "crash", "times": 4, "after": "delivery"},
]
KILL_LINE = "[worker] killed mid-batch"
RECEIVER_KILL_LINE = "[receiver] killed"
DIED = 502  # API Gateway's answer when the Lambda died
SENDER_TRIES = 12  # more than the receiver crashes injected: every request gets through in the end


def until_answered(send: Callable[[], requests.Response]) -> requests.Response:
    """Sends again while the receiver died (502), as Loops and other retrying senders do."""
    for _ in range(SENDER_TRIES):
        answer = send()
        if answer.status_code != DIED:
            return answer
    return answer


@dataclass(frozen=True)
class Job:
    destination: str
    event_id: str


@dataclass
class Ledger:
    """What the relay accepted (from its 202 answers), per job."""

    jobs: set[Job] = field(default_factory=set)
    rejected: list[str] = field(default_factory=list)
    items: list[int] = field(default_factory=list)  # sandbox Directus items: their rows are the Flow's or the sweep's

    def take(self, answer: requests.Response, destination: str) -> None:
        """The jobs an answer says were accepted: one (`destination`), one per Directus item, or,
        for the Clay callback, one per action (their ids derived from the lead's, as the relay does)."""
        if answer.status_code != 202:
            self.rejected.append(f"{answer.status_code} {answer.text[:200]}")
            return
        body = answer.json()
        if "actions" in body:
            self.jobs.update(Job(CALLBACK_DESTINATIONS[k], content_id(body["event_id"], k)) for k in body["actions"])
        elif "rows" in body:
            self.jobs.update(Job(destination, row["event_id"]) for row in body["rows"])
        else:
            self.jobs.add(Job(destination, body["event_id"]))


CALLBACK_DESTINATIONS = {
    "loops_event": "loops",
    "loops_contact": "loops",
    "slack_message": "slack",
    "zapier_post": "zapier",
    "directus_patch": "directus",
}


def inject(stack: RunningStack, faults: list[dict]) -> None:
    for fault in faults:
        answer = requests.post(f"{stack.gateway}/_local/faults", json=fault, timeout=5)
        assert answer.status_code == 201, answer.text


def send_everything(stack: RunningStack, ledger: Ledger) -> None:
    run = uuid.uuid4().hex[:8]
    account_ids = [
        requests.post(
            f"{stack.sandboxes}/directus/items/accounts",
            json={"name": f"account {n}"},
            headers={"Authorization": "Bearer e2e-directus-api-token"},
            timeout=5,
        ).json()["data"]["id"]
        for n in range(CLAY_LEADS - 8)  # the last 8 leads name items that do not exist: 403, dead-lettered
    ]
    requests_to_send = []
    for n in range(DIRECTUS_ITEMS):
        item = {"email": f"i{n}-{run}@example.com", "first_name": "Item", "company": f"Flow {n}"}
        requests_to_send.append(lambda i=item: ledger.items.append(create_item(stack, i)))
    for n in range(DIRECTUS_EVENTS):
        event = {
            "event": "leads.items.create",
            "collection": "leads",
            "key": f"{run}-{n}",
            "payload": {"email": f"d{n}-{run}@example.com", "first_name": "Ada", "company": f"Co {n}"},
        }
        requests_to_send.append(lambda e=event: ledger.take(until_answered(lambda: stack.post_directus(e)), "clay"))
    for n in range(CLAY_LEADS):
        lead = {
            "email": f"c{n}-{run}@example.com",
            "first_name": "Grace",
            "company_name": f"Compiler {n}",
            "icp_score": str((95, 85, 60, 20)[n % 4]),
            "industry": "Software",
            "directus_id": account_ids[n] if n < len(account_ids) else 900_000 + n,
        }
        requests_to_send.append(lambda b=lead: ledger.take(until_answered(lambda: stack.post_lead(b)), "by action"))
    for n in range(LOOPS_WEBHOOKS):
        contact = {"contact": {"email": f"w{n}-{run}@example.com", "firstName": "Lin", "id": f"c-{run}-{n}"}}
        requests_to_send.append(lambda c=contact: fire_loops_webhook(stack, c, ledger))
    for n in range(LOOPS_FORWARDED):
        route, body = (
            ("contacts", {"email": f"f{n}-{run}@example.com", "firstName": "Kay", "plan": "pro"})
            if n % 2
            else ("events", {"email": f"f{n}-{run}@example.com", "eventName": "trial_started"})
        )
        requests_to_send.append(
            lambda r=route, b=body: ledger.take(until_answered(lambda: forward_to_loops(stack, r, b)), "loops")
        )

    # Interleave the flows, as real traffic would; the second half under more faults and crashes.
    ordered = [requests_to_send[i] for i in sorted(range(len(requests_to_send)), key=lambda i: (i * 7919) % 263)]
    half = len(ordered) // 2
    inject(stack, FAULTS_FROM_THE_START)
    for send in ordered[:half]:
        send()
    inject(stack, FAULTS_HALFWAY)
    for send in ordered[half:]:
        send()


def create_item(stack: RunningStack, fields: dict) -> int:
    """As a Directus user would (again when Directus itself answered 502: an injected fault)."""
    for _ in range(SENDER_TRIES):
        answer = requests.post(
            f"{stack.sandboxes}/directus/items/leads",
            json=fields,
            headers={"Authorization": "Bearer e2e-directus-api-token"},
            timeout=10,
        )
        if answer.status_code == 200:
            key = int(answer.json()["data"]["id"])
            # Its Flow's request is answered (or dropped) before the next request: it meets the faults in turn.
            assert stack.wait_for(lambda k=key: stack.deliveries(destination="directus_flow", body__key=k), 30)
            return key
    raise AssertionError(f"the sandbox Directus refused to create an item: {answer.status_code}")


def item_rows(stack: RunningStack, keys: list[int]) -> Counter:
    """Rows Clay kept per sandbox item (the leads target's)."""
    return Counter(
        d["body"]["directus_id"]
        for d in stack.deliveries(destination="clay", status=200)
        if d.get("row_created") and d["path"] == "/clay/webhooks/leads-1" and d["body"].get("directus_id") in keys
    )


def fire_loops_webhook(stack: RunningStack, contact: dict, ledger: Ledger) -> None:
    """The sandbox Loops sends a signed contact.created to the relay; its answer is the relay's."""
    for _ in range(SENDER_TRIES):
        fired = requests.post(f"{stack.gateway}/_local/loops/webhook", json=contact, timeout=30).json()
        if fired["status"] != DIED:
            break
    if fired["status"] != 202:
        ledger.rejected.append(f"{fired['status']} {fired['answer']}")
        return
    ledger.jobs.add(Job("clay", fired["answer"]["event_id"]))


def forward_to_loops(stack: RunningStack, route: str, body: dict) -> requests.Response:
    return requests.post(
        f"{stack.gateway}/loops/{route}",
        json=body,
        headers={"Authorization": "Bearer local-clay-callback-token"},
        timeout=10,
    )


def wait_until_drained(stack: RunningStack) -> None:
    """Until the delivery queue holds nothing (visible, in flight or delayed) a few polls in a row."""
    sqs = stack.aws("sqs")
    url = sqs.get_queue_url(QueueName="clay-relay-local-delivery")["QueueUrl"]
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    deadline, empty_polls = time.monotonic() + DRAIN_TIMEOUT, 0
    while empty_polls < 3:
        assert time.monotonic() < deadline, f"queue not drained in {DRAIN_TIMEOUT} s"
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        empty_polls = empty_polls + 1 if not any(int(attributes[n]) for n in names) else 0
        time.sleep(1)


def dead_lettered(stack: RunningStack) -> dict[str, str]:
    """event id → reason, for every message in the dead-letter queue."""
    sqs = stack.aws("sqs")
    url = sqs.get_queue_url(QueueName="clay-relay-local-dead-letters")["QueueUrl"]
    letters: dict[str, str] = {}
    while messages := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=600
    ).get("Messages", []):
        for message in messages:
            letters[json.loads(message["Body"])["event_id"]] = message["MessageAttributes"]["reason"]["StringValue"]
    return letters


@pytest.fixture(scope="module")
def chaos_stack(tmp_path_factory) -> RunningStack:
    # A killed worker's batch comes back after the queue's visibility timeout: 20 s here (the
    # template's 360 s is six times the worker's timeout), still far above any batch's run time.
    yield from start_stack(
        tmp_path_factory.mktemp("zero-loss-stack"),
        config=ZERO_LOSS_CONFIG,
        extra_args=("--queue-visibility-timeout", "20", "--reconcile-seconds", "3"),
    )


def test_nothing_accepted_is_lost_and_nothing_is_received_twice_under_faults_and_crashes(chaos_stack):
    stack = chaos_stack
    ledger = Ledger()
    started = time.monotonic()

    send_everything(stack, ledger)
    wait_until_drained(stack)
    # The sweep finds what the Flow dropped within a few of its runs (every 3 s); then it drains again.
    stack.wait_for(lambda: set(item_rows(stack, ledger.items)) == set(ledger.items), timeout=DRAIN_TIMEOUT)
    wait_until_drained(stack)
    elapsed = time.monotonic() - started

    received: dict[Job, list[dict]] = defaultdict(list)
    for entry in stack.deliveries():
        if event_id := entry["headers"].get("x-relay-event-id"):
            received[Job(entry["destination"], event_id)].append(entry)
    letters = dead_lettered(stack)
    log = stack.log_file.read_text()
    kills, kills_after_delivery = log.count(KILL_LINE), log.count(f"{KILL_LINE} after a delivery")
    receivers_killed = log.count(RECEIVER_KILL_LINE)
    faults_hit = Counter(e.get("fault") for entries in received.values() for e in entries if e.get("fault"))
    flows_dropped = len([d for d in stack.deliveries(destination="directus_flow") if d.get("dropped")])
    per_item = item_rows(stack, ledger.items)

    delivered, lost, absorbed, idempotent_repeats, harmful = set(), [], 0, 0, []
    for job in ledger.jobs:
        entries = received[job]
        ok = [e for e in entries if 200 <= e["status"] < 300]
        if job.destination == "clay":
            kept = [e for e in ok if e.get("row_created")]
            absorbed += sum(1 for e in ok if e.get("deduplicated"))
            times = len(kept)
        elif job.destination == "loops" and any(e["path"].endswith("/events/send") for e in entries):
            absorbed += sum(1 for e in entries if e["status"] == 409)  # Idempotency-Key seen by Loops
            times = len(ok)
        else:
            times = len(ok)
            if job.destination in ("loops", "directus") and times > 1:  # PUT / PATCH of the same fields
                idempotent_repeats += times - 1
                times = 1
        if times:
            delivered.add(job)
        elif job.event_id not in letters:
            lost.append(job)
        if times > 1:
            harmful.append((job, times))
    dead = {job for job in ledger.jobs if job.event_id in letters}

    print(
        f"\nzero-loss suite: {len(ledger.jobs)} jobs accepted in {elapsed:.0f} s "
        f"({DIRECTUS_EVENTS} Directus events, {CLAY_LEADS} Clay leads, {LOOPS_WEBHOOKS} Loops webhooks, "
        f"{LOOPS_FORWARDED} Clay → Loops requests)\n"
        f"  by destination: {dict(Counter(job.destination for job in ledger.jobs))}\n"
        f"  delivered {len(delivered)}, dead-lettered {len(dead)} "
        f"(of them delivered but unconfirmed {len(delivered & dead)}), lost {len(lost)}\n"
        f"  repeats absorbed by an idempotency key {absorbed}, idempotent repeats (PUT/PATCH) "
        f"{idempotent_repeats}, harmful repeats {len(harmful)}\n"
        f"  receivers killed before queueing {receivers_killed} (answered 502, sent again); "
        f"workers killed mid-batch {kills} ({kills_after_delivery} right after a delivery); "
        f"injected faults answered {dict(faults_hit)}\n"
        f"  dead-letter reasons: {dict(Counter(reason.split(':')[0][:60] for reason in letters.values()))}\n"
        f"  sandbox Directus items {len(ledger.items)}: their Flow's events dropped {flows_dropped} (recovered by "
        f"the sweep), Clay rows per item {dict(Counter(per_item.values()))}"
    )
    assert ledger.rejected == [], "every request was accepted (after the sender's retries when a receiver died)"
    assert receivers_killed >= 10, "receivers died between their duplicate check and the queue"
    assert lost == [], "every accepted job was delivered or dead-lettered"
    assert len(delivered | dead) == len(ledger.jobs)
    assert harmful == [], "no destination received an event twice unless the repeat was harmless"
    assert kills >= 8 and kills_after_delivery >= 3, "workers were killed mid-batch, some right after a delivery"
    assert absorbed + idempotent_repeats > 0, "the crashes after a delivery caused repeats, all of them harmless"
    assert {"status", "timeout", "down"} <= set(faults_hit), "every kind of fault was answered"
    assert any(e["status"] == 429 for entries in received.values() for e in entries), "rate limits were hit"
    assert dead, "what can never succeed (Zapier 400, Directus 403) was dead-lettered"
    assert flows_dropped > 0, "the Flow dropped events while receivers died: Directus never retries"
    assert per_item == dict.fromkeys(ledger.items, 1), "every Directus item became exactly one Clay row"


# --- a worker killed right after the destination answered: the repeat is absorbed by its key ---------
def test_a_clay_row_re_sent_after_its_worker_died_is_dropped_by_clays_auto_dedupe(chaos_stack):
    stack = chaos_stack
    requests.delete(f"{stack.gateway}/_local/faults", timeout=5)
    inject(stack, [{"destination": "worker", "mode": "crash", "times": 1, "after": "delivery"}])
    run = uuid.uuid4().hex[:8]
    event_ids = [
        stack.post_directus(
            {
                "event": "leads.items.create",
                "collection": "leads",
                "key": f"{run}-{n}",
                "payload": {"email": f"r{n}@x.io"},
            }
        ).json()["event_id"]
        for n in range(3)
    ]

    def clay_entries() -> list[dict]:
        return [e for e in stack.deliveries(destination="clay") if e["headers"].get("x-relay-event-id") in event_ids]

    entries = stack.wait_for(
        lambda: len([e for e in clay_entries() if e.get("row_created")]) == 3 and clay_entries(), 60
    )
    stack.wait_for(lambda: any(e.get("deduplicated") for e in clay_entries()), 40)
    kept = Counter(e["headers"]["x-relay-event-id"] for e in clay_entries() if e.get("row_created"))
    assert kept == dict.fromkeys(event_ids, 1), "one row per event"
    resent = [e for e in clay_entries() if e.get("deduplicated")]
    assert resent, f"the row sent before the crash was sent again, and Clay's auto-dedupe dropped it: {entries}"
    assert all(e["body"]["relay_event_id"] == e["headers"]["x-relay-event-id"] for e in resent)


def test_a_loops_event_re_sent_after_its_worker_died_is_refused_as_already_sent(chaos_stack):
    stack = chaos_stack
    requests.delete(f"{stack.gateway}/_local/faults", timeout=5)
    inject(stack, [{"destination": "worker", "mode": "crash", "times": 1, "after": "delivery"}])
    email = f"once-{uuid.uuid4().hex[:8]}@example.com"
    event_id = forward_to_loops(stack, "events", {"email": email, "eventName": "trial_started"}).json()["event_id"]

    def answers() -> list[int]:
        return [
            e["status"]
            for e in stack.deliveries(destination="loops")
            if e["headers"].get("x-relay-event-id") == event_id
        ]

    assert stack.wait_for(lambda: 409 in answers(), 60), answers()
    assert answers() == [200, 409], "sent, the worker died, sent again: Loops knew the Idempotency-Key"
