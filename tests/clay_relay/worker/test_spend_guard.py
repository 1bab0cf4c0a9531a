"""The Clay spend guard in the worker, over moto's queues and table and a local HTTP server standing in
for Clay: rows past a target's budget are held (never dropped) and go out, oldest first, once the
budget allows; a person who already went to a target is not sent there again, whichever path brings
them; a target in shadow mode sends nothing and spends nothing, yet the ledger says what it would do."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from clay_relay.clay import ClayWebhook
from clay_relay.delivery_queue import DeliveryQueue
from clay_relay.jobs import ClayRowJob, parse_job
from clay_relay.ledger import directus_alias, email_key, lead_ref
from clay_relay.ledger.timeline import timeline
from clay_relay.runtime import get_runtime
from clay_relay.spend.budget import set_limits
from clay_relay.spend.usage import target_spend
from clay_relay.store import RelayTable
from tests.clay_relay.worker.conftest import CLAY_PATH
from tests.destinations import Answer
from tests.queues import delays, end_delays, receive, received_records, run_worker
from tests.recorders import RecordingClient, metric_names

OTHER_PATH = "/clay/webhooks/contacts-1"


@pytest.fixture
def relay(aws, http_stub, put_secret, use_config, relay_env):
    """The `leads` target on the local server, and a second target `contacts`; `configure(edit)`
    changes relay.json's `leads` target (and anything else) for the next batch."""
    put_secret("clay-webhooks-leads", [{"url": http_stub.url(CLAY_PATH), "token": "clay-token-1"}])
    put_secret("clay-webhooks-contacts", [{"url": http_stub.url(OTHER_PATH)}])
    relay_env(CLAY_BUDGET_CACHE_SECONDS=0)

    def configure(**leads) -> None:
        def edit(config: dict) -> None:
            config["clay_targets"]["leads"].update(leads)
            config["clay_targets"]["contacts"] = {"webhooks_secret": "clay-webhooks-contacts"}
            config["delivery"]["budget_hold_seconds"] = 7
            # Updates go as they came (their full rows are worker.full_rows' and test_full_rows')
            config["directus_sources"]["leads"]["on_update"] = "changed"

        use_config(edit)
        relay_env(CLAY_BUDGET_CACHE_SECONDS=0)

    configure()
    return configure


def row(
    n: int,
    email: str | None = None,
    *,
    target: str = "leads",
    update: bool = False,
    accepted_at: float | None = None,
    **fields,
) -> ClayRowJob:
    email = email or f"lead{n}@example.com"
    return ClayRowJob(
        event_id=f"event-{n:04d}-{uuid.uuid4().hex[:8]}",
        origin="directus/leads",
        target=target,
        row={"email": email, "directus_id": n, **fields},
        lead=lead_ref(
            email,
            aliases=[directus_alias("leads", n)],
            accepted="directus.accepted",
            detail={"event": "leads.items.update" if update else "leads.items.create"},
        ),
        accepted_at=accepted_at or time.time(),
    )


def work(aws, *jobs: ClayRowJob) -> set[str]:
    """One worker batch over these jobs (pacing and breaker at rest); the message ids it kept."""
    get_runtime().pacer.reset()
    get_runtime().breaker.reset()
    queue = aws.ref("DeliveryQueue")
    DeliveryQueue().enqueue(list(jobs))
    return run_worker(received_records(queue, len(jobs)))


def dynamodb_calls() -> list[tuple[str, dict]]:
    """Every DynamoDB call the relay makes from now on (with the configuration now in force)."""
    calls: list[tuple[str, dict]] = []
    clients = get_runtime().aws
    clients._clients["dynamodb"] = RecordingClient(clients.client("dynamodb"), calls)
    return calls


def sent(stub, path: str = CLAY_PATH) -> list[str]:
    return [request.json()["email"] for request in stub.posted_to(path)]


def stages(email: str) -> list[tuple[str, str, dict]]:
    found = timeline(RelayTable(), email_key(email), time.time())
    return [(line.stage, line.outcome, line.detail) for line in found.stages]


def spend(target: str = "leads"):
    return target_spend(RelayTable(), target, get_runtime().config.clay_targets[target], time.time())


# --- budgets ----------------------------------------------------------------------------------------
def test_rows_past_the_daily_budget_are_held_not_sent_and_not_lost(relay, aws, http_stub):
    relay(budget={"rows_per_day": 5})
    assert work(aws, *(row(n) for n in range(8))) == set()
    assert len(sent(http_stub)) == 5
    held = delays(aws.ref("DeliveryQueue"))
    assert [seconds for _, seconds in held] == [7, 7, 7]  # budget_hold_seconds, not hold_seconds
    assert all(parse_job(body).budget_held for body, _ in held)
    assert receive(aws.ref("DeadLetterQueue")) == []
    figures = spend()
    assert (figures.sent_today, figures.sent_month, figures.left_today, figures.held) == (5, 5, 0, 3)


def test_held_rows_go_out_oldest_first_when_the_budget_is_raised_at_run_time(relay, aws, http_stub):
    relay(budget={"rows_per_day": 2})
    start = time.time() - 100
    rows = [row(n, accepted_at=start + n) for n in range(6)]
    work(aws, *reversed(rows))  # the queue's order is not the rows' order
    assert sorted(sent(http_stub)) == ["lead0@example.com", "lead1@example.com"]  # the budget goes to the oldest
    set_limits(RelayTable(), "leads", {"rows_per_day": 5})  # relay clay budget leads --rows-per-day 5
    end_delays(aws.ref("DeliveryQueue"))
    assert work_visible(aws) == set()
    assert sorted(sent(http_stub)[2:]) == ["lead2@example.com", "lead3@example.com", "lead4@example.com"]
    assert spend().held == 1
    set_limits(RelayTable(), "leads", {"rows_per_day": None})  # no daily limit any more
    end_delays(aws.ref("DeliveryQueue"))
    work_visible(aws)
    assert len(sent(http_stub)) == 6 and spend().held == 0


def work_visible(aws) -> set[str]:
    get_runtime().pacer.reset()
    queue = aws.ref("DeliveryQueue")
    return run_worker(received_records(queue, len(receive_peek(queue))))


def receive_peek(queue_url: str) -> list[dict]:
    import boto3

    messages = receive(queue_url)
    for message in messages:
        boto3.client("sqs").change_message_visibility(
            QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    return messages


def test_the_monthly_budget_holds_too_and_both_are_counted_in_one_update(relay, aws, http_stub):
    relay(budget={"rows_per_day": 10, "rows_per_month": 3})
    calls = dynamodb_calls()
    work(aws, *(row(n) for n in range(4)))
    assert len(sent(http_stub)) == 3
    updates = [call for call in calls if call[0] == "update_item" and "clay-budget#" in json.dumps(call)]
    assert len(updates) == 2  # the reservation (refused once, then 3 granted), nothing else
    figures = spend()
    assert (figures.sent_today, figures.sent_month, figures.left_month, figures.held) == (3, 3, 0, 1)


def test_a_budget_of_zero_holds_every_row(relay, aws, http_stub):
    relay(budget={"rows_per_day": 0})
    work(aws, row(1), row(2))
    assert sent(http_stub) == [] and spend().held == 2


def test_without_a_budget_rows_are_still_counted_for_relay_clay_spend(relay, aws, http_stub):
    work(aws, row(1), row(2))
    figures = spend()
    assert (figures.sent_today, figures.sent_month, figures.left_today, figures.held) == (2, 2, None, 0)
    assert figures.projected_month >= 2


def test_budget_counted_for_a_row_that_never_reached_clay_is_given_back(relay, aws, http_stub):
    relay(budget={"rows_per_day": 5})
    http_stub.answer(CLAY_PATH, Answer(429, headers={"Retry-After": "1"}))
    work(aws, row(1))
    assert spend().sent_today == 0  # deferred: not sent, so not spent


def test_a_row_held_for_its_pool_gives_its_budget_back(relay, aws, http_stub):
    relay(budget={"rows_per_day": 5})
    webhook = ClayWebhook(http_stub.url(CLAY_PATH))
    RelayTable().reserve_submissions(webhook.webhook_id, 50_000, 50_000, "leads")
    work(aws, row(1))
    assert sent(http_stub) == [] and spend().sent_today == 0 and spend().held == 0
    [(body, seconds)] = delays(aws.ref("DeliveryQueue"))
    assert seconds == get_runtime().config.delivery.hold_seconds and not parse_job(body).budget_held


def test_a_row_that_waited_days_for_its_budget_is_still_retried_when_clay_fails(relay, aws, http_stub):
    """A monthly budget holds rows for weeks. Once the budget lets a row go, a failure retries it for
    retry_horizon_seconds (24 h) from the end of that wait, not from when it was accepted."""
    relay(budget={"rows_per_day": 0})
    work(aws, row(1, accepted_at=time.time() - 3 * 86_400))  # held for its budget since three days
    set_limits(RelayTable(), "leads", {"rows_per_day": 5})
    http_stub.answer(CLAY_PATH, Answer(503))
    end_delays(aws.ref("DeliveryQueue"))
    assert len(work_visible(aws)) == 1  # comes back for a retry
    assert receive(aws.ref("DeadLetterQueue")) == []
    assert len(http_stub.posted_to(CLAY_PATH)) == 1


def test_a_row_that_waited_days_for_its_budget_may_still_wait_for_clay_quota(relay, aws, http_stub):
    """hold_horizon_seconds (72 h) bounds a wait for a Clay URL with quota left, not a wait for a budget."""
    relay(budget={"rows_per_day": 0})
    work(aws, row(1, accepted_at=time.time() - 4 * 86_400))  # held for its budget since four days
    set_limits(RelayTable(), "leads", {"rows_per_day": 5})
    webhook = ClayWebhook(http_stub.url(CLAY_PATH))
    RelayTable().reserve_submissions(webhook.webhook_id, 50_000, 50_000, "leads")  # the pool is used up
    end_delays(aws.ref("DeliveryQueue"))
    assert work_visible(aws) == set()
    assert receive(aws.ref("DeadLetterQueue")) == []
    [(body, seconds)] = delays(aws.ref("DeliveryQueue"))
    assert seconds == get_runtime().config.delivery.hold_seconds and parse_job(body).holds == 1


def test_crossing_80_and_95_percent_of_a_budget_is_counted_once_each(relay, aws, http_stub, capsys):
    relay(budget={"rows_per_day": 20})
    work(aws, *(row(n) for n in range(10)))  # 50 %
    capsys.readouterr()
    work(aws, *(row(n) for n in range(10, 17)))  # 85 %
    assert "ClayBudgetPassed80Percent" in metric_names(capsys.readouterr().out)
    work(aws, row(17), row(18), row(19))  # 100 %
    names = metric_names(capsys.readouterr().out)
    assert "ClayBudgetPassed95Percent" in names and "ClayBudgetPassed80Percent" not in names
    assert "ClayBudgetUsedPercent" in names


def test_a_held_row_is_recorded_in_the_ledger_once_with_what_it_waits_for(relay, aws):
    relay(budget={"rows_per_day": 0})
    calls = dynamodb_calls()
    work(aws, row(1))
    end_delays(aws.ref("DeliveryQueue"))
    work_visible(aws)  # held again: no second ledger write
    [(_, outcome, detail)] = [line for line in stages("lead1@example.com") if line[0] == "clay.held"]
    assert (outcome, detail) == ("held", {"target": "leads", "for": "budget"})
    ledger_writes = [call for call in calls if call[0] == "batch_write_item"]
    assert len(ledger_writes) == 1


# --- one row per person -------------------------------------------------------------------------------
def test_the_same_person_is_not_sent_again_whatever_case_or_whitespace(relay, aws, http_stub, capsys):
    first = row(1, "Ada@Example.com")
    work(aws, first)
    capsys.readouterr()
    work(aws, row(2, "  ada@EXAMPLE.com "))
    assert sent(http_stub) == ["Ada@Example.com"]
    assert "ClayRowsSkippedSamePerson" in metric_names(capsys.readouterr().out)
    skipped = [line for line in stages("ada@example.com") if line[0] == "clay.skipped"]
    assert skipped == [
        ("clay.skipped", "skipped", {"target": "leads", "earlier_event_id": first.event_id, "reason": "same person"})
    ]
    assert receive(aws.ref("DeliveryQueue")) == []  # settled, not waiting
    assert spend().skipped_today == 1 and spend().sent_today == 1


def test_two_rows_of_one_person_in_one_batch_send_one(relay, aws, http_stub):
    start = time.time() - 10
    work(aws, row(2, "ada@example.com", accepted_at=start + 1), row(1, "ADA@example.com", accepted_at=start))
    assert sent(http_stub) == ["ADA@example.com"]  # the older one


def test_two_copies_of_one_event_in_a_batch_are_one_row_not_a_skip(relay, aws, http_stub):
    first = row(1, "ada@example.com")
    work(aws, first, first.model_copy(update={"job_id": uuid.uuid4().hex}))
    assert sent(http_stub) == ["ada@example.com"]
    assert [stage for stage, _, _ in stages("ada@example.com")] == ["directus.accepted", "clay.delivered"]


def test_a_loops_contact_created_of_a_person_a_flow_already_sent_is_skipped(relay, aws, http_stub):
    """One row per person whichever path brings the lead: here a Flow's create, then Loops' webhook."""
    from clay_relay.config import LoopsWebhook
    from clay_relay.loops_webhooks import clay_row_job, parse_webhook
    from tests.loops_requests import CONTACT, contact_created

    first = row(1, "ada@example.com")
    work(aws, first)
    body = contact_created({**CONTACT, "email": " Ada@Example.com"})
    work(aws, clay_row_job(parse_webhook(body), "msg_spend_0001", LoopsWebhook(clay_target="leads")))
    assert sent(http_stub) == ["ada@example.com"]
    skipped = [detail for stage, _, detail in stages("ada@example.com") if stage == "clay.skipped"]
    assert skipped == [{"target": "leads", "earlier_event_id": first.event_id, "reason": "same person"}]


def refused_for_good(aws, http_stub, job: ClayRowJob) -> dict:
    """The job, refused by Clay (400): its dead letter, taken off the dead-letter queue."""
    import boto3

    http_stub.answer(CLAY_PATH, Answer(400))
    work(aws, job)
    http_stub.answer(CLAY_PATH, Answer(200))
    [letter] = receive(aws.ref("DeadLetterQueue"))
    boto3.client("sqs").delete_message(QueueUrl=aws.ref("DeadLetterQueue"), ReceiptHandle=letter["ReceiptHandle"])
    return letter


def replay(aws, letter: dict) -> None:
    """As `relay dlq replay` moves a letter back (with its reason), and a worker batch over it."""
    import boto3

    boto3.client("sqs").send_message(
        QueueUrl=aws.ref("DeliveryQueue"), MessageBody=letter["Body"], MessageAttributes=letter["MessageAttributes"]
    )
    get_runtime().pacer.reset()
    get_runtime().breaker.reset()
    run_worker(received_records(aws.ref("DeliveryQueue"), 1))


def test_a_replayed_row_goes_unless_its_person_went_meanwhile(relay, aws, http_stub):
    """A dead letter never reached Clay, so its person was not counted: replayed, it goes; replayed
    after another row of the same person went, it is skipped like any new lead of that person."""
    replay(aws, refused_for_good(aws, http_stub, row(1, "ada@example.com")))
    assert sent(http_stub) == ["ada@example.com", "ada@example.com"]  # refused (400), then replayed and sent
    letter, later = refused_for_good(aws, http_stub, row(2, "grace@example.com")), row(3, "grace@example.com")
    work(aws, later)  # the same person goes meanwhile
    replay(aws, letter)
    assert sent(http_stub).count("grace@example.com") == 2  # the refused one and the later one, not the replay
    [skipped] = [detail for stage, _, detail in stages("grace@example.com") if stage == "clay.skipped"]
    assert skipped == {"target": "leads", "earlier_event_id": later.event_id, "reason": "same person", "replayed": True}


def test_an_update_of_a_person_is_sent_unless_the_target_skips_updates_too(relay, aws, http_stub):
    work(aws, row(1, "ada@example.com"))
    work(aws, row(2, "ada@example.com", update=True, company="Analytical Engines"))
    assert len(sent(http_stub)) == 2
    relay(person_dedupe_updates=True)
    work(aws, row(3, "ada@example.com", update=True, company="Difference Engines"))
    assert len(sent(http_stub)) == 2


def test_a_person_goes_again_once_the_window_is_over_or_the_guard_is_off(relay, aws, http_stub):
    work(aws, row(1, "ada@example.com"))
    trip = RelayTable().get(f"trip#{email_key('ada@example.com').removeprefix('email#')}")
    entry = trip["sent"]["M"]["leads"]["M"]
    entry["at"] = {"N": str(time.time() - 31 * 86_400)}  # the row went 31 days ago
    RelayTable().put(trip)
    work(aws, row(2, "ada@example.com"))
    assert len(sent(http_stub)) == 2
    relay(person_dedupe_days=0)
    work(aws, row(3, "ada@example.com"))
    assert len(sent(http_stub)) == 3


def test_one_row_per_person_is_per_target(relay, aws, http_stub):
    work(aws, row(1, "ada@example.com"), row(2, "ada@example.com", target="contacts"))
    assert sent(http_stub) == ["ada@example.com"] and sent(http_stub, OTHER_PATH) == ["ada@example.com"]
    # Both targets are remembered (one round trip item per person): each skips the person now.
    work(aws, row(3, "ada@example.com"), row(4, "ada@example.com", target="contacts"))
    assert len(sent(http_stub)) == 1 and len(sent(http_stub, OTHER_PATH)) == 1


def test_the_enrichment_callback_closing_the_round_trip_keeps_the_person_as_sent(relay, aws, http_stub):
    from clay_relay.ledger.writes import close_round_trip

    work(aws, row(1, "ada@example.com"))
    lead = lead_ref("ada@example.com", accepted="clay.enriched")
    close_round_trip(RelayTable(), lead, "callback-event-1", {"route": "outreach", "score": 85}, 30)
    work(aws, row(2, "ada@example.com"))
    assert len(sent(http_stub)) == 1


def test_a_row_that_never_reached_clay_does_not_count_its_person_as_sent(relay, aws, http_stub):
    http_stub.answer(CLAY_PATH, Answer(400))
    work(aws, row(1, "ada@example.com"))  # refused for good: dead-lettered
    http_stub.answer(CLAY_PATH, Answer(200))
    work(aws, row(2, "ada@example.com"))
    assert len(sent(http_stub)) == 2
    assert receive(aws.ref("DeadLetterQueue"))  # the first, with its reason


def test_a_row_dead_lettered_before_it_was_sent_leaves_its_persons_round_trip_as_it_is(relay, aws, http_stub):
    """The round trip is an earlier row's, and the enrichment callback may be closing it at that very
    moment: the worker does not write back the copy it read."""
    work(aws, row(1, "ada@example.com"))
    trip = RelayTable().get(f"trip#{email_key('ada@example.com').removeprefix('email#')}")
    webhook = ClayWebhook(http_stub.url(CLAY_PATH))
    RelayTable().reserve_submissions(webhook.webhook_id, 50_000, 50_000, "leads")  # the pool is used up
    calls = dynamodb_calls()
    work(aws, row(2, "ada@example.com", update=True, accepted_at=time.time() - 4 * 86_400))
    assert receive(aws.ref("DeadLetterQueue"))  # it waited for Clay quota past hold_horizon_seconds
    assert not [call for name, call in calls if name == "batch_write_item" and "trip#" in json.dumps(call)]
    assert RelayTable().get(trip["pk"]["S"]) == trip


def test_the_person_check_reads_the_batch_once_and_writes_nothing_of_its_own(relay, aws):
    calls = dynamodb_calls()
    work(aws, *(row(n) for n in range(10)))
    reads = [call for call in calls if call[0] == "batch_get_item"]
    writes = [call[0] for call in calls if call[0] in ("put_item", "update_item", "batch_write_item")]
    assert len(reads) == 1
    # 10 claims, the Clay quota, the budget's counts, and one batch write (round trips, links and persons).
    assert sorted(writes) == ["batch_write_item"] + ["put_item"] * 10 + ["update_item"] * 2


# --- shadow mode --------------------------------------------------------------------------------------
def test_a_target_in_shadow_mode_sends_and_spends_nothing_yet_records_the_decision(relay, aws, http_stub, capsys):
    relay(mode="shadow", budget={"rows_per_day": 1})
    capsys.readouterr()
    first = row(1, "ada@example.com")
    work(aws, first, row(2, "ada@example.com"), row(3, "grace@example.com"))
    assert http_stub.received == []
    webhook = ClayWebhook(http_stub.url(CLAY_PATH))
    assert RelayTable().submissions_used(webhook.webhook_id) == 0
    assert receive(aws.ref("DeliveryQueue")) == []
    assert metric_names(capsys.readouterr().out).count("ClayRowsShadowed") == 3
    figures = spend()
    assert (figures.sent_today, figures.shadow_today, figures.held, figures.skipped_today) == (0, 2, 0, 0)
    ada = [line for line in stages("ada@example.com") if line[0] == "clay.shadow"]
    assert [(outcome, detail.get("would")) for _, outcome, detail in ada] == [
        ("shadowed", "send"),
        ("shadowed", "skip"),
    ]
    assert ada[1][2]["earlier_event_id"] == first.event_id
    # Nothing was sent, so the person is not remembered as sent: going live sends them.
    relay(mode="live")
    work(aws, row(4, "ada@example.com"))
    assert sent(http_stub) == ["ada@example.com"]
