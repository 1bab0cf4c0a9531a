"""The delivery worker carrying out the Clay callback's jobs over real (moto) queues, against
local_stack's sandboxes for Loops, Slack, Zapier and Directus: delivered once; 409 from Loops for
an event it already has is delivered; 400/401/403 and jobs whose destination was unconfigured go
to the dead-letter queue with the reason at once; 429, 5xx and unfilled secrets are retried later."""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import datetime

import boto3
import pytest

from clay_relay import loops
from clay_relay.config import ClayCallback
from clay_relay.delivery_queue import DeliveryQueue
from clay_relay.enrichment import enrichment_jobs
from clay_relay.jobs import (
    ClayRowJob,
    DirectusPatchJob,
    LoopsContactJob,
    LoopsEventJob,
    SlackMessageJob,
    ZapierPostJob,
    parse_job,
)
from clay_relay.leads import parse_lead
from clay_relay.store import RelayTable
from clay_relay.worker import batch
from tests.destinations import DIRECTUS_API_TOKEN, LOOPS_API_KEY, SLACK_PATH, ZAPIER_PATH, Answer, StubServer
from tests.invocations import default_config
from tests.queues import make_visible_again, message_attribute, receive, received_records, run_worker, sqs_record

EVENT = {"email": "ada@example.com", "eventName": "clay_outreach", "eventProperties": {"icpScore": 85}}
CONTACT = {"email": "ada@example.com", "source": "clay-relay", "mailingLists": {"nurture": True}}


def event_id() -> str:
    return uuid.uuid4().hex


def loops_event(payload: dict | None = None) -> LoopsEventJob:
    return LoopsEventJob(event_id=event_id(), origin="clay/enriched", payload=EVENT if payload is None else payload)


def deliver(queue_url: str, *jobs) -> tuple[set[str], list[dict]]:
    DeliveryQueue().enqueue(list(jobs))
    records = received_records(queue_url, len(jobs))
    return run_worker(records), records


def dead_letters(queues) -> list[dict]:
    return receive(queues[1])


def statuses(destinations, destination: str) -> list[int]:
    return [d["status"] for d in destinations.received(destination)]


def retried(aws_calls) -> dict[str, int]:
    """receipt handle → visibility timeout the worker set (its next attempt)."""
    return {
        entry["ReceiptHandle"]: entry["VisibilityTimeout"]
        for call in aws_calls.sqs_calls("change_message_visibility_batch")
        for entry in call["Entries"]
    }


# --- Loops -------------------------------------------------------------------------------------------
def test_an_outreach_event_reaches_loops_with_the_api_key_and_its_event_id_as_idempotency_key(destinations, queues):
    lead = parse_lead({"email": "Ada@Example.com", "first_name": "Ada", "icp_score": "85"})
    _, _, _, [job] = enrichment_jobs(lead, ClayCallback())
    failures, _ = deliver(queues[0], job)
    assert failures == set()
    [sent] = destinations.received("loops")
    assert (sent["method"], sent["path"], sent["status"]) == ("POST", "/loops/api/v1/events/send", 200)
    assert sent["headers"]["authorization"] == f"Bearer {LOOPS_API_KEY}"
    assert sent["headers"]["idempotency-key"] == job.event_id
    assert destinations.sandboxes.loops.events == [job.payload]
    assert dead_letters(queues) == []


def test_a_nurture_contact_is_put_into_loops_in_the_nurture_list(destinations, queues):
    job = LoopsContactJob(event_id=event_id(), origin="clay/enriched", payload=CONTACT)
    failures, _ = deliver(queues[0], job)
    assert failures == set()
    [sent] = destinations.received("loops")
    assert (sent["method"], sent["path"], sent["status"]) == ("PUT", "/loops/api/v1/contacts/update", 200)
    assert destinations.sandboxes.loops.contacts["ada@example.com"]["mailingLists"] == {"nurture": True}


def test_a_redelivered_event_that_loops_already_has_is_answered_409_and_counts_as_delivered(
    destinations, queues, aws_calls
):
    failures, records = deliver(queues[0], loops_event())
    assert failures == set()
    make_visible_again(queues[0], records)  # e.g. the Lambda died before SQS deleted the message
    [again] = received_records(queues[0], 1)
    assert again["attributes"]["ApproximateReceiveCount"] == "2"

    assert run_worker([again]) == set()
    assert statuses(destinations, "loops") == [200, 409]
    assert len(destinations.sandboxes.loops.events) == 1
    assert dead_letters(queues) == []
    assert retried(aws_calls) == {}


def test_the_same_event_under_two_job_ids_reaches_loops_once(destinations, queues):
    first = loops_event()
    second = first.model_copy(update={"job_id": uuid.uuid4().hex})
    failures, _ = deliver(queues[0], first, second)
    assert failures == set()
    assert statuses(destinations, "loops") == [200]
    assert dead_letters(queues) == []


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({**EVENT, "eventProperties": {"personalizedOpener": "x" * 600}}, "too long (max 500 characters)"),
        ({"eventName": "clay_outreach"}, "An email or userId is required"),
    ],
    ids=["value over 500 characters", "no email"],
)
def test_a_loops_400_is_dead_lettered_at_once_with_loops_message(destinations, queues, payload, message):
    job = loops_event(payload)
    failures, _ = deliver(queues[0], job)
    assert failures == set()
    [letter] = dead_letters(queues)
    assert parse_job(letter["Body"]) == job
    reason = message_attribute(letter, "reason")
    assert "400" in reason and message in reason
    assert message_attribute(letter, "attempts") == "1"
    assert message_attribute(letter, "destination") == "loops"
    assert message_attribute(letter, "origin") == "clay/enriched"
    assert statuses(destinations, "loops") == [400]


def test_a_wrong_loops_api_key_is_dead_lettered_with_the_reason(destinations, queues, put_secret):
    put_secret("loops-api-key", "a-revoked-key")
    failures, _ = deliver(queues[0], loops_event())
    assert failures == set()
    [letter] = dead_letters(queues)
    reason = message_attribute(letter, "reason")
    assert "401" in reason and "Invalid API key" in reason
    assert "a-revoked-key" not in reason


def fill_loops_rate_limit(destinations) -> None:
    """Ten requests in the current second, as a burst leaves them (stamped ahead so that a slow
    run cannot let them age out: no timing involved)."""
    sandbox = destinations.sandboxes.loops
    sandbox._recent.extend([time.monotonic() + 60] * sandbox.limit_per_second)


@pytest.mark.parametrize("limited_by", ["the sandbox's 10 requests/s", "an injected rate-limit fault"])
def test_loops_rate_limiting_with_429_is_retried_later_not_dead_lettered(destinations, queues, aws_calls, limited_by):
    if limited_by == "the sandbox's 10 requests/s":
        fill_loops_rate_limit(destinations)
    else:
        destinations.sandboxes.add_fault({"destination": "loops", "mode": "rate_limit", "times": 1})
    failures, records = deliver(queues[0], loops_event())
    assert failures == {records[0]["messageId"]}
    assert statuses(destinations, "loops") == [429]
    delays = retried(aws_calls)
    assert 1 <= delays[records[0]["receiptHandle"]] <= 30  # attempt 1: at most min_backoff_seconds
    assert dead_letters(queues) == []
    assert destinations.sandboxes.loops.events == []


def test_a_loops_5xx_is_retried_and_delivered_once_loops_recovers(destinations, queues, aws_calls):
    destinations.sandboxes.add_fault({"destination": "loops", "status": 503, "times": 1})
    failures, records = deliver(queues[0], loops_event())
    assert failures == {records[0]["messageId"]}
    assert records[0]["receiptHandle"] in retried(aws_calls)
    assert dead_letters(queues) == []

    make_visible_again(queues[0], records)
    assert run_worker(received_records(queues[0], 1)) == set()
    assert statuses(destinations, "loops") == [503, 200]
    assert len(destinations.sandboxes.loops.events) == 1


def test_a_loops_api_key_still_holding_the_placeholder_is_retried_until_it_is_filled(
    destinations, queues, put_secret, logs
):
    put_secret("loops-api-key", "REPLACE_ME")
    failures, records = deliver(queues[0], loops_event())
    assert failures == {records[0]["messageId"]}
    assert dead_letters(queues) == []
    assert destinations.received("loops") == []
    # Loops cannot be called until the key is filled in: the job is parked (see test_parking.py).
    [warning] = [line for line in logs.lines if line["message"] == "parked while its destination is down"]
    assert "placeholder" in warning["reason"]

    put_secret("loops-api-key", LOOPS_API_KEY)
    make_visible_again(queues[0], records)
    assert run_worker(received_records(queues[0], 1)) == set()
    assert statuses(destinations, "loops") == [200]


# --- Slack and Zapier --------------------------------------------------------------------------------
@pytest.fixture
def zapier_on(use_config):
    use_config(lambda c: c["clay_callback"].update(zapier={"webhook_secret": "zapier-webhook-url"}))


def test_a_hot_lead_message_answered_ok_by_slack_is_delivered(destinations, queues):
    job = SlackMessageJob(event_id=event_id(), origin="clay/enriched", text="Hot lead: Grace Hopper (ICP 95)")
    failures, _ = deliver(queues[0], job)
    assert failures == set()
    [sent] = destinations.received("slack")
    assert (sent["path"], sent["status"]) == (SLACK_PATH, 200)
    assert sent["body"] == {"text": "Hot lead: Grace Hopper (ICP 95)"}
    assert dead_letters(queues) == []


def test_a_message_slack_refuses_with_no_text_is_dead_lettered(destinations, queues):
    failures, _ = deliver(queues[0], SlackMessageJob(event_id=event_id(), origin="clay/enriched", text=""))
    assert failures == set()
    [letter] = dead_letters(queues)
    assert "400" in message_attribute(letter, "reason") and "no_text" in message_attribute(letter, "reason")
    assert message_attribute(letter, "destination") == "slack"


def test_a_lead_posted_to_zapier_is_delivered(destinations, queues, zapier_on):
    payload = {"email": "ada@example.com", "icp_score": 85.0, "route": "outreach", "hot": False}
    failures, _ = deliver(queues[0], ZapierPostJob(event_id=event_id(), origin="clay/enriched", payload=payload))
    assert failures == set()
    [sent] = destinations.received("zapier")
    assert (sent["path"], sent["status"], sent["body"]) == (ZAPIER_PATH, 200, payload)


def test_a_zapier_5xx_is_retried(destinations, queues, zapier_on):
    destinations.sandboxes.add_fault({"destination": "zapier", "status": 502, "times": 1})
    job = ZapierPostJob(event_id=event_id(), origin="clay/enriched", payload={"email": "ada@example.com"})
    failures, records = deliver(queues[0], job)
    assert failures == {records[0]["messageId"]}
    assert dead_letters(queues) == []


# --- Directus write-back -----------------------------------------------------------------------------
def patch_job(item_id: str = "7") -> DirectusPatchJob:
    return DirectusPatchJob(
        event_id=event_id(),
        origin="clay/enriched",
        collection="leads",
        item_id=item_id,
        fields={"icp_score": 91.0, "industry": "Software"},
    )


def test_the_write_back_patches_the_item_with_the_api_token_and_the_fields(destinations, queues):
    destinations.sandboxes.directus.items[("leads", "7")] = {"id": 7, "email": "ada@example.com"}
    failures, _ = deliver(queues[0], patch_job())
    assert failures == set()
    [sent] = destinations.received("directus")
    assert (sent["method"], sent["path"], sent["status"]) == ("PATCH", "/directus/items/leads/7", 200)
    assert sent["headers"]["authorization"] == f"Bearer {DIRECTUS_API_TOKEN}"
    assert sent["body"] == {"icp_score": 91.0, "industry": "Software"}
    assert destinations.sandboxes.directus.items[("leads", "7")]["industry"] == "Software"


def test_a_write_back_answered_204_is_delivered(aws, queues, http_stub, put_secret):
    http_stub.answer("/items/leads/7", Answer(204, body=b""))
    put_secret("directus-api", {"url": http_stub.url(""), "token": "t"})
    failures, _ = deliver(queues[0], patch_job())
    assert failures == set()
    assert [(r.method, r.path) for r in http_stub.received] == [("PATCH", "/items/leads/7")]
    assert dead_letters(queues) == []


def test_a_write_back_to_an_unknown_item_is_dead_lettered_with_directus_403(destinations, queues):
    failures, _ = deliver(queues[0], patch_job(item_id="999"))
    assert failures == set()
    [letter] = dead_letters(queues)
    reason = message_attribute(letter, "reason")
    assert "403" in reason and "FORBIDDEN" in reason
    assert message_attribute(letter, "destination") == "directus"


def test_a_write_back_with_the_placeholder_api_secret_is_retried(destinations, queues, put_secret):
    put_secret("directus-api", "REPLACE_ME")
    failures, records = deliver(queues[0], patch_job())
    assert failures == {records[0]["messageId"]}
    assert dead_letters(queues) == []


@pytest.mark.parametrize("item_id", ["..", ".", "7/../..", "%2e%2e"])
def test_an_old_write_back_job_with_an_item_id_that_escapes_the_path_is_dead_lettered_unsent(
    destinations, queues, item_id
):
    """Queued before item keys were checked, or replayed from the dead letters: refused as it is read."""
    body = patch_job().model_dump(mode="json") | {"item_id": item_id}
    boto3.client("sqs").send_message(QueueUrl=queues[0], MessageBody=json.dumps(body))
    assert run_worker(received_records(queues[0], 1)) == set()
    assert destinations.received("directus") == [], f"no PATCH of {item_id!r}'s parent path"
    [letter] = dead_letters(queues)
    assert "not a Directus item key" in message_attribute(letter, "reason")


# --- redirects: never followed, whatever the destination --------------------------------------------
@pytest.fixture
def elsewhere():
    """Where a redirect points: a second server, which must receive nothing."""
    server = StubServer().start()
    yield server
    server.stop()


def job_for(destination: str, first: StubServer, put_secret, relay_env, use_config):
    """A job for `destination`, whose configured URL (secret or LOOPS_API_BASE) is on `first`."""
    if destination == "clay":
        put_secret("clay-webhooks-leads", [{"url": first.url("/clay/webhooks/leads-1"), "token": "clay-token-1"}])
        row = {"email": "ada@example.com"}
        return ClayRowJob(event_id=event_id(), origin="directus/leads", target="leads", row=row)
    if destination in ("loops_event", "loops_contact"):
        relay_env(LOOPS_API_BASE=first.url("/loops/api"))
        put_secret("loops-api-key", LOOPS_API_KEY)
        if destination == "loops_event":
            return loops_event()
        return LoopsContactJob(event_id=event_id(), origin="clay/enriched", payload=CONTACT)
    if destination == "slack":
        put_secret("slack-webhook-url", first.url(SLACK_PATH))
        return slack_job()
    if destination == "zapier":
        use_config(lambda c: c["clay_callback"].update(zapier={"webhook_secret": "zapier-webhook-url"}))
        put_secret("zapier-webhook-url", first.url(ZAPIER_PATH))
        return ZapierPostJob(event_id=event_id(), origin="clay/enriched", payload={"email": "ada@example.com"})
    put_secret("directus-api", {"url": first.url("/directus"), "token": DIRECTUS_API_TOKEN})
    return patch_job()


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("destination", ["clay", "loops_event", "loops_contact", "slack", "zapier", "directus"])
def test_a_redirect_is_never_followed_but_dead_lettered_at_once_naming_it(
    aws, queues, http_stub, elsewhere, put_secret, relay_env, use_config, destination, status
):
    job = job_for(destination, http_stub, put_secret, relay_env, use_config)
    http_stub.default = Answer(status, headers={"Location": elsewhere.url("/collect?token=stolen")})

    failures, _ = deliver(queues[0], job)

    assert failures == set(), "not retried: the next attempt would be redirected again"
    assert len(http_stub.received) == 1
    assert elsewhere.received == [], "neither the lead nor the token reached the redirect's target"
    [letter] = dead_letters(queues)
    reason = message_attribute(letter, "reason")
    host = elsewhere.url("").removeprefix("http://")
    assert f"redirect refused: HTTP {status} to {host}" in reason
    assert "stolen" not in reason, "the Location's host only, never its path or query"
    assert message_attribute(letter, "destination") == job.destination
    assert parse_job(letter["Body"]) == job


# --- destination URLs: https:// to public hosts only ---------------------------------------------------
ALL_DESTINATIONS = ["clay", "loops_event", "loops_contact", "slack", "zapier", "directus"]


@pytest.mark.parametrize("destination", ALL_DESTINATIONS)
def test_a_deployed_relay_sends_nothing_to_this_machine_and_dead_letters_the_job_naming_the_host(
    aws, queues, http_stub, put_secret, relay_env, use_config, destination
):
    job = job_for(destination, http_stub, put_secret, relay_env, use_config)
    relay_env(ALLOW_LOCAL_DESTINATIONS="false")  # as deployed: the template's value

    failures, _ = deliver(queues[0], job)

    assert failures == set()
    assert http_stub.received == []
    [letter] = dead_letters(queues)
    reason = message_attribute(letter, "reason")
    assert "destination URL refused: 127.0.0.1 is this machine, not a public host" in reason
    assert parse_job(letter["Body"]) == job, "kept whole: replayed once the URL is fixed"


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "https://0xa9fea9fe/",
        "https://[::ffff:10.0.0.1]/",
        "https://10.1.2.3/",
    ],
)
def test_no_internal_address_is_ever_called_even_where_local_destinations_are_allowed(aws, queues, put_secret, url):
    put_secret("slack-webhook-url", url)
    failures, _ = deliver(queues[0], slack_job())
    assert failures == set()
    [letter] = dead_letters(queues)
    reason = message_attribute(letter, "reason")
    assert reason.startswith("slack answered destination URL refused: ")
    assert "latest" not in reason, "the host is named, never the rest of the URL"


def test_a_job_refused_for_its_url_is_delivered_when_replayed_after_the_secret_is_fixed(
    aws, queues, http_stub, put_secret
):
    put_secret("slack-webhook-url", "https://10.1.2.3/hooks/slack")
    deliver(queues[0], slack_job())
    [letter] = dead_letters(queues)

    put_secret("slack-webhook-url", http_stub.url(SLACK_PATH))
    assert run_worker([sqs_record(letter, queues[0])]) == set()
    assert [r.path for r in http_stub.received] == [SLACK_PATH]


def test_a_redirected_slack_message_can_be_replayed_once_its_url_is_fixed(
    aws, queues, http_stub, elsewhere, put_secret
):
    """Dead-lettered by a redirect, the message was never sent: its claim is released for the replay."""
    put_secret("slack-webhook-url", http_stub.url(SLACK_PATH))
    http_stub.default = Answer(308, headers={"Location": elsewhere.url(SLACK_PATH)})
    deliver(queues[0], slack_job())
    [letter] = dead_letters(queues)

    put_secret("slack-webhook-url", elsewhere.url(SLACK_PATH))
    assert run_worker([sqs_record(letter, queues[0])]) == set()
    assert [r.path for r in elsewhere.received] == [SLACK_PATH]


# --- destinations removed from the configuration -----------------------------------------------------
@pytest.mark.parametrize(
    ("section", "job"),
    [
        ("slack", SlackMessageJob(event_id="slack-event-1", origin="clay/enriched", text="hi")),
        ("zapier", ZapierPostJob(event_id="zapier-event-1", origin="clay/enriched", payload={"a": 1})),
        (
            "directus_writeback",
            DirectusPatchJob(event_id="patch-event-1", origin="clay/enriched", collection="c", item_id="1", fields={}),
        ),
    ],
    ids=["slack", "zapier", "directus_writeback"],
)
def test_a_job_whose_destination_is_no_longer_configured_is_dead_lettered_saying_so(
    destinations, queues, use_config, section, job
):
    use_config(lambda c: c["clay_callback"].update({section: None}))
    failures, _ = deliver(queues[0], job)
    assert failures == set()
    [letter] = dead_letters(queues)
    assert "no longer configured" in message_attribute(letter, "reason")
    assert job.kind in message_attribute(letter, "reason")
    assert destinations.sandboxes.deliveries.all() == []


def test_jobs_of_a_removed_clay_callback_are_dead_lettered_saying_so(destinations, queues, use_config):
    use_config(lambda c: c.update(clay_callback=None))
    failures, _ = deliver(queues[0], SlackMessageJob(event_id=event_id(), origin="clay/enriched", text="hi"))
    assert failures == set()
    [letter] = dead_letters(queues)
    assert "no longer configured" in message_attribute(letter, "reason")


# --- a whole lead ------------------------------------------------------------------------------------
def test_every_action_of_a_hot_lead_is_delivered_to_its_destination_in_one_batch(destinations, queues, zapier_on):
    destinations.sandboxes.directus.items[("leads", "7")] = {"id": 7}
    settings = ClayCallback.model_validate({**default_config()["clay_callback"], "zapier": {}})
    cells = {"email": "grace@example.com", "first_name": "Grace", "icp_score": "95", "directus_id": 7}
    _, _, _, jobs = enrichment_jobs(parse_lead(cells), settings)
    assert [job.kind for job in jobs] == ["loops_event", "slack_message", "zapier_post", "directus_patch"]

    failures, _ = deliver(queues[0], *jobs)
    assert failures == set()
    delivered = [d["destination"] for d in destinations.sandboxes.deliveries.all() if d["status"] == 200]
    assert sorted(delivered) == ["directus", "loops", "slack", "zapier"]
    assert dead_letters(queues) == []


def test_one_destination_failing_does_not_hold_back_the_others_in_its_batch(destinations, queues, aws_calls):
    destinations.sandboxes.add_fault({"destination": "slack", "status": 503, "times": 1})
    slack = SlackMessageJob(event_id=event_id(), origin="clay/enriched", text="hi")
    loops = loops_event()
    DeliveryQueue().enqueue([loops, slack])
    records = received_records(queues[0], 2)
    [slack_record] = [r for r in records if parse_job(r["body"]).kind == "slack_message"]
    assert run_worker(records) == {slack_record["messageId"]}
    assert statuses(destinations, "loops") == [200]
    assert dead_letters(queues) == []


# --- isolation: a destination that hangs or fails costs the others nothing ---------------------------
def delivered_at(destinations, destination: str) -> list[datetime]:
    return [datetime.fromisoformat(d["at"]) for d in destinations.received(destination) if d["status"] == 200]


def test_a_destination_that_hangs_does_not_delay_the_others_in_its_batch(destinations, queues, relay_env):
    relay_env(OUTBOUND_TIMEOUT_SECONDS="2")
    destinations.sandboxes.add_fault({"destination": "slack", "mode": "timeout", "times": 1, "delay": 3})
    slack = SlackMessageJob(event_id=event_id(), origin="clay/enriched", text="hi")
    failures, records = deliver(queues[0], slack, loops_event())

    [slack_record] = [r for r in records if parse_job(r["body"]).kind == "slack_message"]
    assert failures == {slack_record["messageId"]}
    [hung] = destinations.received("slack")
    [loops_delivered] = delivered_at(destinations, "loops")
    assert (loops_delivered - datetime.fromisoformat(hung["at"])).total_seconds() < 1.5, (
        "Loops was served while Slack kept the request waiting for its 2 s timeout, not after it"
    )


def test_after_a_destination_fails_its_other_jobs_in_the_batch_wait_without_being_sent(destinations, queues, aws_calls):
    destinations.sandboxes.add_fault({"destination": "loops", "status": 503, "times": 1})
    failures, records = deliver(queues[0], loops_event(), loops_event(), loops_event())

    assert failures == {r["messageId"] for r in records}
    assert statuses(destinations, "loops") == [503], "one request spent on a failing destination, not three"
    assert set(retried(aws_calls)) == {r["receiptHandle"] for r in records}
    assert dead_letters(queues) == []


def test_the_waiting_jobs_are_sent_once_the_destinations_cool_down_is_over(destinations, queues):
    destinations.sandboxes.add_fault({"destination": "loops", "status": 503, "times": 1})
    _, records = deliver(queues[0], loops_event(), loops_event(), loops_event())

    make_visible_again(queues[0], records)
    assert run_worker(received_records(queues[0], 3)) == set()
    assert statuses(destinations, "loops") == [503, 200, 200, 200]
    assert len(destinations.sandboxes.loops.events) == 3


def test_a_429_pauses_the_destination_instead_of_failing_the_rest_of_the_batch(destinations, queues, aws_calls):
    destinations.sandboxes.add_fault({"destination": "loops", "mode": "rate_limit", "times": 1})
    first, second, third = loops_event(), loops_event(), loops_event()
    failures, records = deliver(queues[0], first, second, third)

    [throttled] = [r for r in records if parse_job(r["body"]).job_id == first.job_id]
    assert failures == {throttled["messageId"]}
    assert statuses(destinations, "loops") == [429, 200, 200], "the others waited for the pause, then went"
    assert 1 <= retried(aws_calls)[throttled["receiptHandle"]] <= 2, "back after the pause, spread out"


class ShortOfTime:
    def get_remaining_time_in_millis(self) -> int:
        return 3_000


def test_a_worker_short_of_time_sends_nothing_more_and_hands_its_jobs_back_at_once(destinations, queues, aws_calls):
    DeliveryQueue().enqueue([loops_event(), loops_event()])
    records = received_records(queues[0], 2)

    assert run_worker(records, ShortOfTime()) == {r["messageId"] for r in records}
    assert destinations.received("loops") == [], "no request that could outlive the function"
    assert set(retried(aws_calls).values()) == {1}
    assert dead_letters(queues) == []


# --- rate limits spend time, not retries; the horizon ends them -------------------------------------
def test_a_job_deferred_by_rate_limits_many_times_is_still_retried_within_the_horizon(destinations, queues, aws_calls):
    destinations.sandboxes.add_fault({"destination": "loops", "mode": "rate_limit", "times": 1})
    DeliveryQueue().enqueue([loops_event()])
    [record] = received_records(queues[0], 1)
    record["attributes"]["ApproximateReceiveCount"] = "60"

    assert run_worker([record]) == {record["messageId"]}
    assert dead_letters(queues) == []
    assert retried(aws_calls)[record["receiptHandle"]] >= 1


def test_a_job_still_rate_limited_past_the_horizon_is_dead_lettered_with_its_attempts_and_last_error(
    destinations, queues, use_config
):
    use_config(lambda c: c["delivery"].update(retry_horizon_seconds=60))
    destinations.sandboxes.add_fault({"destination": "loops", "mode": "rate_limit", "times": 1})
    job = loops_event().model_copy(update={"accepted_at": time.time() - 61})
    failures, _ = deliver(queues[0], job)

    assert failures == set()
    [letter] = dead_letters(queues)
    reason = message_attribute(letter, "reason")
    assert re.match(r"gave up after 1 attempts in 6[1-9] s; last error: loops answered HTTP 429", reason), reason
    assert message_attribute(letter, "attempts") == "1"


# --- never twice where a repeat would show: Slack, Zapier -------------------------------------------
def slack_job() -> SlackMessageJob:
    return SlackMessageJob(event_id=event_id(), origin="clay/enriched", text="Hot lead: Grace Hopper")


def test_a_slack_message_delivered_by_a_worker_that_died_before_acknowledging_is_not_sent_again(destinations, queues):
    failures, records = deliver(queues[0], slack_job())
    assert failures == set()

    make_visible_again(queues[0], records)  # nobody deleted it: the worker died after delivering
    assert run_worker(received_records(queues[0], 1)) == set()
    assert statuses(destinations, "slack") == [200]
    assert dead_letters(queues) == []


def test_a_slack_message_whose_worker_died_mid_request_is_dead_lettered_as_unconfirmed_not_sent(destinations, queues):
    job = slack_job()
    RelayTable().claim(job.event_id, job.job_id, job.dedupe_window_seconds, sending=True)  # then the worker died
    failures, _ = deliver(queues[0], job)

    assert failures == set()
    assert destinations.received("slack") == []
    [letter] = dead_letters(queues)
    assert message_attribute(letter, "reason").startswith("unconfirmed:")
    assert "check slack, and replay it if it did not" in message_attribute(letter, "reason")


def test_an_unconfirmed_slack_message_replayed_from_the_dead_letter_queue_is_sent(destinations, queues):
    job = slack_job()
    RelayTable().claim(job.event_id, job.job_id, job.dedupe_window_seconds, sending=True)
    deliver(queues[0], job)
    [letter] = dead_letters(queues)

    # The operator checked Slack and moves it back (a DLQ redrive keeps the message's attributes).
    redriven = sqs_record(letter, queues[0])
    assert run_worker([redriven]) == set()
    assert statuses(destinations, "slack") == [200]
    assert run_worker([redriven]) == set(), "replayed twice by mistake: still one message"
    assert statuses(destinations, "slack") == [200]


def test_a_slack_message_refused_with_a_5xx_is_sent_again_and_delivered_once(destinations, queues):
    destinations.sandboxes.add_fault({"destination": "slack", "status": 503, "times": 1})
    _, records = deliver(queues[0], slack_job())

    make_visible_again(queues[0], records)
    assert run_worker(received_records(queues[0], 1)) == set()
    assert statuses(destinations, "slack") == [503, 200]


def test_a_zapier_post_that_timed_out_is_not_posted_again_but_dead_lettered_as_unconfirmed(
    destinations, queues, zapier_on, relay_env
):
    relay_env(OUTBOUND_TIMEOUT_SECONDS="0.5")
    destinations.sandboxes.add_fault({"destination": "zapier", "mode": "timeout", "times": 1, "delay": 1.5})
    job = ZapierPostJob(event_id=event_id(), origin="clay/enriched", payload={"email": "ada@example.com"})
    failures, records = deliver(queues[0], job)
    assert failures == {records[0]["messageId"]}

    make_visible_again(queues[0], records)
    assert run_worker(received_records(queues[0], 1)) == set()
    assert len(destinations.received("zapier")) == 1, "it may have arrived: not posted a second time"
    [letter] = dead_letters(queues)
    assert message_attribute(letter, "reason").startswith("unconfirmed:")


# --- what operators count ----------------------------------------------------------------------------
@pytest.fixture
def counted(monkeypatch) -> list[tuple[str, str | None]]:
    """The worker's metrics: (name, destination)."""
    metrics: list[tuple[str, str | None]] = []
    monkeypatch.setattr(batch, "count", lambda name, value=1, *, destination=None: metrics.append((name, destination)))
    return metrics


def test_a_rate_limit_is_counted_as_a_deferral_and_an_outage_as_parked(destinations, queues, counted):
    destinations.sandboxes.add_fault({"destination": "loops", "mode": "rate_limit", "times": 1})
    destinations.sandboxes.add_fault({"destination": "slack", "status": 503, "times": 1})
    deliver(queues[0], loops_event(), slack_job())

    assert ("DeliveryDeferred", "loops") in counted
    assert ("DeliveryParked", "slack") in counted
    assert ("DeliveryRetried", "loops") not in counted, "a rate limit is not a failure"
    assert ("DeliveryParked", "loops") not in counted, "nor is it an outage"


# --- a poison job ------------------------------------------------------------------------------------
def test_a_job_whose_handling_fails_unexpectedly_does_not_hold_back_its_batch(destinations, queues, monkeypatch):
    poison = loops_event({**EVENT, "email": "poison@example.com"})
    real_send = loops.send_event

    def send_event(job, api):
        if job.event_id == poison.event_id:
            raise RuntimeError("a bug that only this job triggers")
        return real_send(job, api)

    monkeypatch.setattr(loops, "send_event", send_event)
    healthy = [loops_event({**EVENT, "email": f"lead{n}@example.com"}) for n in range(3)]
    failures, records = deliver(queues[0], healthy[0], poison, *healthy[1:], slack_job())

    [poison_record] = [r for r in records if parse_job(r["body"]).job_id == poison.job_id]
    assert failures == {poison_record["messageId"]}, "only the poison job comes back"
    assert [e["email"] for e in destinations.sandboxes.loops.events] == [f"lead{n}@example.com" for n in range(3)]
    assert statuses(destinations, "slack") == [200]
    assert dead_letters(queues) == []
