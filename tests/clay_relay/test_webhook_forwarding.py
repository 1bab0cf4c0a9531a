"""The one Loops webhook fanned out (`loops_webhook.forward`), through the real forwarder and worker
against moto and the sandbox's forward receiver: each endpoint gets the event types it names, byte
for byte as Loops sent them, re-signed with its own Standard Webhooks secret (verified here by the
`standardwebhooks` reference implementation, an independent peer), under Loops' own webhook-id;
retried, paced and dead-lettered per endpoint like every destination."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from clay_relay.config import ConfigError, load_config
from clay_relay.jobs import LoopsForwardJob
from clay_relay.ledger import email_key
from clay_relay.ledger.timeline import timeline
from clay_relay.store import RelayTable
from clay_relay.worker.lanes import lane_of
from local_stack.sandboxes import loops_event
from tests.destinations import Answer
from tests.invocations import call_handler, default_config, load_handler
from tests.loops_requests import SECRET, signed_webhook, whsec
from tests.queues import make_visible_again, receive, sqs_record
from tests.queues import run_worker as worker_run
from tests.recorders import metric_names

ZAPIER_SECRET = whsec(b"zapier-endpoint-signing-key-0001")
ARCHIVE_SECRET = whsec(b"archive-endpoint-signing-key-002")
ARCHIVE_NEXT = whsec(b"archive-endpoint-signing-key-003")
FORWARD = [
    {
        "name": "zapier",
        "url_secret": "forward-zapier-url",
        "signing_secret": "forward-zapier-secret",
        "events": ["email.hardBounced", "email.spamReported"],
    },
    {
        "name": "archive",
        "url_secret": "forward-archive-url",
        "signing_secret": "forward-archive-secret",
        "events": ["*"],
    },
]


@pytest.fixture
def configure(aws, destinations, use_config, put_secret):
    def apply(forward: list[dict] = FORWARD) -> None:
        def edit(config: dict) -> None:
            config["loops_webhook"]["forward"] = forward
            config["loops_webhook"]["directus_feedback"] = None  # the copies alone

        use_config(edit)
        put_secret("loops-webhook-secret", SECRET)
        put_secret("forward-zapier-url", f"{destinations.base}/forward/zapier")
        put_secret("forward-zapier-secret", ZAPIER_SECRET)
        put_secret("forward-archive-url", f"{destinations.base}/forward/archive")
        put_secret("forward-archive-secret", ARCHIVE_SECRET)

    return apply


@pytest.fixture
def loops(configure):
    configure()
    return load_handler("loops_forwarder")


def fire(handler, body: dict | str, webhook_id: str | None = None) -> dict:
    status, answer = call_handler(handler, signed_webhook(body, webhook_id=webhook_id))
    assert status == 202, answer
    return answer


def drain(aws) -> None:
    queue = aws.ref("DeliveryQueue")
    for _ in range(10):
        messages = receive(queue)
        if not messages:
            return
        worker_run([sqs_record(message, queue) for message in messages])


def forwarded(destinations, endpoint: str) -> list[dict]:
    return [d for d in destinations.received("forward") if d["path"] == f"/forward/{endpoint}"]


def verified(secret: str, delivery: dict) -> dict:
    """The body, as the endpoint's receiver verifies it with the reference implementation."""
    headers = {name: delivery["headers"][name] for name in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    return Webhook(secret).verify(delivery["raw"], headers)


# --- what each endpoint gets ------------------------------------------------------------------------------
def test_an_endpoint_gets_the_event_as_loops_sent_it_signed_with_its_own_secret(loops, aws, destinations):
    raw = json.dumps(loops_event("email.hardBounced", email="ada@example.com"), ensure_ascii=False, indent=1)
    answer = fire(loops, raw, webhook_id="msg_bounce_0001")
    assert answer["actions"] == ["forward:zapier", "forward:archive"]
    drain(aws)

    [delivery] = forwarded(destinations, "zapier")
    assert delivery["raw"] == raw  # byte for byte: its signature is over exactly this
    assert verified(ZAPIER_SECRET, delivery) == json.loads(raw)
    assert delivery["headers"]["webhook-id"] == "msg_bounce_0001"  # Loops' own: what receivers deduplicate on
    with pytest.raises(WebhookVerificationError):
        verified(SECRET, delivery)  # re-signed: Loops' secret stays with the relay
    with pytest.raises(WebhookVerificationError):
        verified(ARCHIVE_SECRET, delivery)  # and each endpoint has its own
    [archived] = forwarded(destinations, "archive")
    assert verified(ARCHIVE_SECRET, archived)["eventName"] == "email.hardBounced"


def test_an_endpoint_gets_only_the_event_types_it_names(loops, aws, destinations):
    fire(loops, loops_event("email.opened"))
    fire(loops, loops_event("mailingList.subscribed"))
    drain(aws)
    assert forwarded(destinations, "zapier") == []
    assert [d["body"]["eventName"] for d in forwarded(destinations, "archive")] == [
        "email.opened",
        "contact.mailingList.subscribed",
    ]


def test_an_event_type_loops_may_add_later_is_answered_202_counted_and_forwarded_to_every_type_endpoints(
    loops, aws, destinations, capsys
):
    capsys.readouterr()
    answer = fire(loops, {**loops_event("contact.unsubscribed"), "eventName": "contact.merged"})
    assert answer["actions"] == ["forward:archive"]
    assert "LoopsWebhookUnknownType" in metric_names(capsys.readouterr().out)
    drain(aws)
    assert [d["body"]["eventName"] for d in forwarded(destinations, "archive")] == ["contact.merged"]


def test_while_an_endpoint_secret_rotates_each_active_secret_signs(loops, aws, destinations, put_secret):
    put_secret("forward-archive-secret", f"{ARCHIVE_SECRET},{ARCHIVE_NEXT}")
    fire(loops, loops_event("email.delivered"))
    drain(aws)
    [delivery] = forwarded(destinations, "archive")
    assert len(delivery["headers"]["webhook-signature"].split()) == 2
    for secret in (ARCHIVE_SECRET, ARCHIVE_NEXT):
        assert verified(secret, delivery)["eventName"] == "email.delivered"


def test_a_loops_redelivery_is_forwarded_once(loops, aws, destinations):
    body = loops_event("email.spamReported")
    fire(loops, body, webhook_id="msg_spam_1")
    drain(aws)
    assert fire(loops, body, webhook_id="msg_spam_1")["duplicate"] is True
    drain(aws)
    assert len(forwarded(destinations, "zapier")) == 1


# --- retried, paced, dead-lettered per endpoint ----------------------------------------------------------
def test_a_failing_endpoint_is_retried_signed_anew_and_holds_up_no_other(
    loops, aws, destinations, http_stub, put_secret
):
    put_secret("forward-zapier-url", http_stub.answer("/hook", Answer(503), Answer(200)))
    fire(loops, loops_event("email.hardBounced"))
    queue = aws.ref("DeliveryQueue")
    records = [sqs_record(message, queue) for message in receive(queue)]
    failed = worker_run(records)
    assert len(failed) == 1  # the zapier copy comes back later
    assert len(forwarded(destinations, "archive")) == 1  # the other endpoint got its copy meanwhile
    make_visible_again(queue, [r for r in records if r["messageId"] in failed])
    drain(aws)
    first, second = http_stub.posted_to("/hook")
    for attempt in (first, second):
        assert Webhook(ZAPIER_SECRET).verify(attempt.body.decode(), attempt.headers)["eventName"] == "email.hardBounced"
    assert receive(aws.ref("DeadLetterQueue")) == []


def test_an_endpoint_that_refuses_the_event_dead_letters_it_with_its_answer(loops, aws, http_stub, put_secret):
    put_secret("forward-zapier-url", http_stub.answer("/hook", Answer(410, body=b'{"error": "hook deleted"}')))
    fire(loops, loops_event("email.hardBounced"))
    drain(aws)
    [letter] = receive(aws.ref("DeadLetterQueue"))
    reason = letter["MessageAttributes"]["reason"]["StringValue"]
    assert reason.startswith("forward answered HTTP 410") and "hook deleted" in reason


def test_an_endpoint_removed_from_the_configuration_dead_letters_the_copies_still_queued(loops, configure, aws):
    fire(loops, loops_event("email.hardBounced"))
    configure(forward=[FORWARD[1]])
    drain(aws)
    [letter] = receive(aws.ref("DeadLetterQueue"))
    assert "loops_forward is no longer configured" in letter["MessageAttributes"]["reason"]["StringValue"]


def test_each_endpoint_is_a_lane_of_its_own(tmp_path):
    config = config_with(FORWARD, tmp_path)
    jobs = [
        LoopsForwardJob(event_id=f"event-{name}-0001", origin="loops/webhook", endpoint=name, webhook_id="m", body="{}")
        for name in ("zapier", "archive")
    ]
    assert [lane_of(job, config) for job in jobs] == ["forward:zapier", "forward:archive"]


def test_the_copies_are_in_the_leads_trace(loops, aws):
    fire(loops, loops_event("email.spamReported", email="grace@example.com"))
    drain(aws)
    found = timeline(RelayTable(), email_key("grace@example.com"), time.time())
    first = found.stages[0]
    assert (first.stage, first.outcome) == ("loops.email_spam_reported", "spam-reported")
    copies = sorted((line.detail["endpoint"], line.outcome) for line in found.stages if line.stage == "forward")
    assert copies == [("archive", "delivered"), ("zapier", "delivered")]


# --- configuration ----------------------------------------------------------------------------------------
def config_with(forward: list[dict], folder: Path):
    config = default_config()
    config["loops_webhook"]["forward"] = forward
    path = folder / "relay.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return load_config(path)


@pytest.mark.parametrize(
    ("forward", "says"),
    [
        ([{**FORWARD[0], "events": ["email.bounced"]}], "'email.bounced' is no Loops event type"),
        ([FORWARD[0], {**FORWARD[1], "name": "zapier"}], "each forward endpoint needs a name of its own"),
        ([{**FORWARD[0], "events": []}], "loops_webhook.forward.0.events"),
        ([{k: v for k, v in FORWARD[0].items() if k != "signing_secret"}], "signing_secret"),
    ],
)
def test_a_forward_endpoint_that_makes_no_sense_stops_the_configuration_saying_why(forward, says, tmp_path):
    with pytest.raises(ConfigError, match=says):
        config_with(forward, tmp_path)
