"""The `relay` command against moto: dead letters replayed with every attribute kept (so the worker
takes them for replayed jobs) and never lost, Clay pools read and grown without printing a token,
the destinations' last failures noted only when a destination failed."""

from __future__ import annotations

import argparse
import io
import json
import uuid
from time import time

import boto3
import pytest

from clay_relay.clay import ClayWebhook
from clay_relay.delivery_queue import DeadLetter, DeliveryQueue
from clay_relay.jobs import LoopsEventJob, SlackMessageJob, dump_job
from clay_relay.store import Failure, RelayTable
from clay_relay.worker import Plan
from relay_cli import CommandError, clay_pool, dead_letters, send, status
from relay_cli.output import duration, mask_url, parse_since
from relay_cli.stack import Stack, StackError
from tests.destinations import Answer, StubServer
from tests.invocations import relay_stack
from tests.queues import receive, received_records, run_worker, sqs_record

POOL_SECRET = "clay-webhooks-leads"


@pytest.fixture
def stack(aws) -> Stack:
    """The `relay` command's view of the moto stack (AWS answered in-process by moto)."""
    return relay_stack(aws, local=True)


def dead_letter(reason: str, job=None) -> str:
    """Puts a dead letter as the worker does; returns its job's event id."""
    job = job or LoopsEventJob(
        event_id=f"event-{uuid.uuid4().hex[:12]}",
        origin="loops/events",
        payload={"email": "ada.lovelace@example.com", "eventName": "demo"},
    )
    DeliveryQueue().dead_letter(
        [DeadLetter(body=dump_job(job), reason=reason, attempts=3, destination=job.destination, origin=job.origin)]
    )
    return job.event_id


def options(**given) -> argparse.Namespace:
    defaults = {
        "destination": None,
        "origin": None,
        "since": None,
        "ids": [],
        "limit": None,
        "unconfirmed": False,
        "dry_run": False,
        "json": True,
        "reveal": False,
    }
    return argparse.Namespace(**{**defaults, **given})


def peek(queue_url: str) -> list[dict]:
    """The messages now visible on the queue, left visible."""
    messages = receive(queue_url)
    for message in messages:
        boto3.client("sqs").change_message_visibility(
            QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    return messages


def run_json(capsys, command, stack: Stack, **given) -> tuple[int | None, dict]:
    capsys.readouterr()
    code = command(stack, options(**given))
    return code, json.loads(capsys.readouterr().out)


def test_a_replayed_letter_keeps_every_attribute_and_the_worker_takes_it_for_a_replayed_job(stack, aws, capsys):
    dead_letter("loops answered HTTP 400: invalid email for ada.lovelace@example.com")
    [original] = peek(aws.ref("DeadLetterQueue"))

    code, report = run_json(capsys, dead_letters.replay_letters, stack)

    assert code == 0
    assert report["replayed"] == {"loops": 1} and report["left_in_dead_letter_queue"] == 0
    [replayed] = receive(aws.ref("DeliveryQueue"))
    assert replayed["Body"] == original["Body"]
    assert replayed["MessageAttributes"] == original["MessageAttributes"]
    assert set(replayed["MessageAttributes"]) == {"reason", "attempts", "destination", "origin", "failed_at"}
    assert Plan(sqs_record(replayed, aws.ref("DeliveryQueue"))).replayed, "the worker reads `reason` for a replay"
    assert receive(aws.ref("DeadLetterQueue")) == []


def test_unconfirmed_posts_are_skipped_unless_named_and_a_dry_run_changes_nothing(stack, aws, capsys):
    slack = SlackMessageJob(event_id=f"event-{uuid.uuid4().hex[:12]}", origin="clay/enriched", text="Hot lead")
    dead_letter("unconfirmed: the worker stopped while sending it", slack)
    dead_letter("loops answered HTTP 400: bad event")

    code, dry = run_json(capsys, dead_letters.replay_letters, stack, dry_run=True)
    assert code == 0 and dry["replayed"] == {"loops": 1} and len(dry["skipped_unconfirmed"]) == 1
    assert len(peek(aws.ref("DeadLetterQueue"))) == 2, "a dry run leaves every letter there, visible at once"
    assert receive(aws.ref("DeliveryQueue")) == []

    code, first = run_json(capsys, dead_letters.replay_letters, stack)
    assert first["replayed"] == {"loops": 1} and first["left_in_dead_letter_queue"] == 1

    [unconfirmed_id] = first["skipped_unconfirmed"]
    code, second = run_json(capsys, dead_letters.replay_letters, stack, ids=[unconfirmed_id])
    assert code == 0 and second["replayed"] == {"slack": 1} and second["left_in_dead_letter_queue"] == 0


def test_a_letter_the_delivery_queue_refuses_stays_in_the_dead_letter_queue(stack, aws, capsys, monkeypatch):
    dead_letter("loops answered HTTP 400: bad event")
    real = stack.sqs

    class Refusing:
        def __getattr__(self, name):
            return getattr(real, name)

        def send_message_batch(self, QueueUrl, Entries):
            return {"Failed": [{"Id": e["Id"], "SenderFault": False, "Code": "InternalError"} for e in Entries]}

    monkeypatch.setattr(stack, "sqs", Refusing())
    code, report = run_json(capsys, dead_letters.replay_letters, stack)

    assert code == 1 and len(report["failed"]) == 1 and report["replayed"] == {}
    assert receive(aws.ref("DeliveryQueue")) == []
    assert len(peek(aws.ref("DeadLetterQueue"))) == 1, "visible again at once, not lost"


def test_dead_letters_are_listed_filtered_and_shown_with_emails_masked(stack, capsys):
    dead_letter("loops answered HTTP 400: invalid email ada.lovelace@example.com")

    _, listed = run_json(capsys, dead_letters.list_letters, stack, limit=50)
    [letter] = listed["letters"]
    assert letter["destination"] == "loops" and letter["origin"] == "loops/events" and letter["attempts"] == 3
    assert "a***@example.com" in letter["reason"] and "ada.lovelace" not in letter["reason"]
    assert run_json(capsys, dead_letters.list_letters, stack, limit=50, destination="clay")[1]["matching"] == 0
    assert run_json(capsys, dead_letters.list_letters, stack, limit=50, origin="loops")[1]["matching"] == 1
    assert run_json(capsys, dead_letters.list_letters, stack, limit=50, since="1h")[1]["matching"] == 1

    _, shown = run_json(capsys, dead_letters.show_letter, stack, id=letter["id"])
    assert shown["body"]["payload"]["email"] == "a***@example.com"
    assert shown["attributes"]["destination"] == "loops"
    _, revealed = run_json(capsys, dead_letters.show_letter, stack, id=letter["id"], reveal=True)
    assert revealed["body"]["payload"]["email"] == "ada.lovelace@example.com"
    with pytest.raises(CommandError, match="no dead letter"):
        dead_letters.show_letter(stack, options(id="no-such-id"))


EVERY_FORM = ["Jürgen.Müller@bücher.de", '"john doe"@example.com', "user@[127.0.0.1]", "ops@localhost"]


def test_every_form_of_address_is_masked_in_what_dlq_and_status_print(stack, capsys):
    for address in EVERY_FORM:
        job = LoopsEventJob(
            event_id=f"event-{uuid.uuid4().hex[:12]}", origin="loops/events", payload={"email": address}
        )
        dead_letter(f"loops answered HTTP 400: invalid email {address}", job)
    # A last failure noted before masking knew these forms is masked when printed.
    RelayTable().note_failures(
        {"loops": Failure(f"loops answered HTTP 400: {EVERY_FORM[2]}", "dead-lettered", "x", time())}
    )

    printed = []
    _, listed = run_json(capsys, dead_letters.list_letters, stack, limit=50)
    printed.append(json.dumps(listed, ensure_ascii=False))
    for letter in listed["letters"]:
        printed.append(
            json.dumps(run_json(capsys, dead_letters.show_letter, stack, id=letter["id"])[1], ensure_ascii=False)
        )
        dead_letters.show_letter(stack, options(id=letter["id"], json=False))
        printed.append(capsys.readouterr().out)
    status.run(stack, argparse.Namespace(json=False))
    printed.append(capsys.readouterr().out)
    printed.append(json.dumps(run_json(capsys, status.run, stack)[1], ensure_ascii=False))
    text = "\n".join(printed)
    for address in EVERY_FORM:
        assert address not in text and json.dumps(address, ensure_ascii=False)[1:-1] not in text
    assert "J***@bücher.de" in text and "j***@example.com" in text and "u***@[…]" in text and "o***@localhost" in text

    revealed = [
        run_json(capsys, dead_letters.show_letter, stack, id=letter["id"], reveal=True)[1]
        for letter in listed["letters"]
    ]
    assert sorted(letter["body"]["payload"]["email"] for letter in revealed) == sorted(EVERY_FORM)


def test_relay_send_prints_email_addresses_masked_unless_asked(aws, http_stub, capsys):
    http_stub.default = Answer(202, body=b'{"accepted": true, "echo": "Jurgen.Muller@bucher.de"}')
    stack = relay_stack(aws, api_url=http_stub.url(""), local=True)
    data = json.dumps({"email": "Jürgen.Müller@bücher.de"})
    for as_json in (True, False):
        args = argparse.Namespace(source=None, event="create", key="7", data=data, json=as_json, reveal=False)
        assert send.send_directus(stack, args) == 0
        printed = capsys.readouterr().out
        assert "Müller@" not in printed and "Muller@" not in printed
    args = argparse.Namespace(source=None, event="create", key="7", data=data, json=True, reveal=True)
    send.send_directus(stack, args)
    assert json.loads(capsys.readouterr().out)["sent"]["payload"]["email"] == "Jürgen.Müller@bücher.de"


def test_the_clay_pool_shows_the_first_url_with_submissions_left_as_current_and_never_a_token(
    stack, put_secret, capsys
):
    urls = [f"https://api.clay.com/v3/sources/webhook/pull-in-data-{n}-abcdef{n}" for n in range(1, 4)]
    put_secret(POOL_SECRET, [{"url": urls[0], "token": "secret-token-1"}, urls[1], {"url": urls[2]}])
    table = RelayTable()
    table.reserve_submissions(ClayWebhook(urls[0]).webhook_id, 50_000, 50_000, "leads")
    table.reserve_submissions(ClayWebhook(urls[1]).webhook_id, 10, 50_000, "leads")

    summary = clay_pool.pool_summary(stack, "leads", stack.config.clay_targets["leads"])
    assert [(w["used"], w["remaining"], w["current"]) for w in summary["webhooks"]] == [
        (50_000, 0, False),
        (10, 49_990, True),
        (0, 50_000, False),
    ]
    assert summary["current"] == 2 and summary["remaining"] == 99_990
    clay_pool.list_pools(stack, argparse.Namespace(target=None, json=False))
    printed = capsys.readouterr().out
    assert "api.clay.com/…bcdef2" in printed and "current" in printed and "used up" in printed
    assert "secret-token-1" not in printed and urls[0] not in printed


def test_add_webhook_appends_to_the_pool_and_refuses_what_would_break_it(stack, put_secret, capsys, monkeypatch):
    put_secret(POOL_SECRET, [])

    def add(url, token=None, target="leads", local=True):
        stack.local = local
        return clay_pool.add_webhook(stack, argparse.Namespace(target=target, url=url, token=token, json=False))

    monkeypatch.setattr("sys.stdin", io.StringIO("token-from-stdin\n"))
    add("https://api.clay.com/v3/sources/webhook/new-1", token="-")
    pool = json.loads(stack.read_secret(POOL_SECRET))
    assert pool == [{"url": "https://api.clay.com/v3/sources/webhook/new-1", "token": "token-from-stdin"}]
    assert "token-from-stdin" not in capsys.readouterr().out

    with pytest.raises(CommandError, match="already in the pool"):
        add("https://api.clay.com/v3/sources/webhook/new-1/")
    with pytest.raises(CommandError, match="https"):
        add("http://api.clay.com/v3/sources/webhook/new-2", local=False)
    with pytest.raises(CommandError, match="no clay target"):
        add("https://api.clay.com/v3/sources/webhook/new-3", target="nope")
    assert len(json.loads(stack.read_secret(POOL_SECRET))) == 1


INTERNAL_TARGETS = [
    "http://169.254.169.254/latest/meta-data/",
    "https://169.254.169.254/latest/meta-data/",
    "https://10.0.0.8/hook",
    "https://0xa000008/hook",
    "https://192.168.1.20/hook",
    "https://[fe80::1]/hook",
    "https://[::ffff:169.254.169.254]/hook",
    "https://metadata.google.internal/hook",
]


@pytest.mark.parametrize("url", INTERNAL_TARGETS)
@pytest.mark.parametrize("local", [False, True], ids=["deployed", "local"])
def test_add_webhook_refuses_internal_targets_saying_why(stack, put_secret, url, local):
    put_secret(POOL_SECRET, [])
    stack.local = local
    with pytest.raises(CommandError, match="not a public") as refused:
        clay_pool.add_webhook(stack, argparse.Namespace(target="leads", url=url, token=None, json=False))
    assert "latest/meta-data" not in str(refused.value)
    assert json.loads(stack.read_secret(POOL_SECRET)) == []


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1]:3001/clay/webhooks/x",
        "http://127.0.0.1:3001/clay/webhooks/x",
        "http://0x7f000001:3001/clay/webhooks/x",
        "http://2130706433:3001/clay/webhooks/x",
        "http://0177.0.0.1:3001/clay/webhooks/x",
    ],
)
def test_add_webhook_takes_this_machine_only_for_the_local_stack(stack, put_secret, url):
    put_secret(POOL_SECRET, [])
    stack.local = False
    with pytest.raises(CommandError, match="this machine, not a public host"):
        clay_pool.add_webhook(stack, argparse.Namespace(target="leads", url=url, token=None, json=False))
    stack.local = True
    clay_pool.add_webhook(stack, argparse.Namespace(target="leads", url=url, token=None, json=False))
    assert json.loads(stack.read_secret(POOL_SECRET)) == [{"url": url}]


def test_a_masked_url_never_shows_credentials_or_the_query():
    masked = mask_url("https://user:s3cret@api.clay.com/v3/sources/webhook/pull-in-data-123456?auth=tok3n")
    assert masked == "api.clay.com/…123456?…"
    assert mask_url("https://[::1]:8443/hooks/abcdef") == "[::1]:8443/…abcdef"
    assert mask_url("https://api.clay.com:port/x") == "?/…"


def test_a_destination_last_failure_is_noted_and_an_older_one_never_replaces_it(aws):
    table = RelayTable()
    table.note_failures({"loops": Failure("loops answered HTTP 503", "retrying", "clay/enriched", 2_000.0)})
    table.note_failures({"loops": Failure("loops answered HTTP 500", "retrying", "clay/enriched", 1_000.0)})
    assert table.last_failures(["loops", "clay"]) == {
        "loops": Failure("loops answered HTTP 503", "retrying", "clay/enriched", 2_000.0)
    }


def test_the_worker_notes_a_failure_only_in_a_batch_where_the_destination_failed(aws, aws_calls, http_stub, put_secret):
    from tests.clay_relay.worker.test_worker import row_job

    path = "/clay/webhooks/leads-1"
    put_secret(POOL_SECRET, [{"url": http_stub.url(path), "token": "clay-token-1"}])
    queue = aws.ref("DeliveryQueue")

    DeliveryQueue().enqueue([row_job(1)])
    run_worker(received_records(queue, 1))
    keys = [kwargs.get("Key", {}).get("pk", {}).get("S", "") for _, kwargs in aws_calls.dynamodb]
    assert not [key for key in keys if key.startswith("status#")], "a batch that went well writes nothing more"

    http_stub.answer(path, Answer(400, body=b'{"error":"bad row"}'))
    DeliveryQueue().enqueue([row_job(2)])
    run_worker(received_records(queue, 1))
    [failure] = RelayTable().last_failures(["clay"]).values()
    assert failure.kind == "dead-lettered" and "clay answered HTTP 400" in failure.error
    assert failure.origin == "directus/leads"


def test_durations_times_and_urls_print_briefly():
    assert parse_since("90m", now=10_000) == 10_000 - 5_400
    assert parse_since("1d12h", now=200_000) == 200_000 - 129_600
    assert parse_since("2026-05-01T12:00:00Z") == parse_since("2026-05-01T12:00:00+00:00") == 1_777_636_800
    with pytest.raises(CommandError):
        parse_since("yesterday")
    assert duration(42) == "42 s" and duration(600) == "10 min" and duration(3 * 3600) == "3.0 h"
    assert mask_url("https://api.clay.com/v3/sources/webhook/pull-in-data-123456") == "api.clay.com/…123456"


def test_the_first_token_of_a_tokens_secret_is_the_one_sent(stack, put_secret):
    for value in ("one,two", " one \n two", '["one", "two"]'):
        put_secret("directus-tokens", value)
        assert stack.first_token("directus-tokens") == "one"
    for empty in (" , ", "[]", "REPLACE_ME"):
        put_secret("directus-tokens", empty)
        with pytest.raises(StackError, match=r"holds no token|is not set yet"):
            stack.first_token("directus-tokens")


def test_relay_send_refuses_a_redirect_instead_of_posting_the_signed_request_elsewhere(aws, http_stub, capsys):
    elsewhere = StubServer().start()
    try:
        http_stub.default = Answer(307, headers={"Location": elsewhere.url("/directus/leads")})
        stack = relay_stack(aws, api_url=http_stub.url(""), local=True)
        args = argparse.Namespace(source=None, event="create", key=None, data=None, json=True, reveal=False)
        with pytest.raises(CommandError, match=r"redirect refused: HTTP 307 to 127\.0\.0\.1:\d+"):
            send.send_directus(stack, args)
        assert [r.path for r in http_stub.received] == ["/directus/leads"]
        assert elsewhere.received == [], "the token went nowhere else"
    finally:
        elsewhere.stop()


def test_a_letter_the_redrive_policy_moved_is_read_from_its_job(stack, aws, capsys):
    job = LoopsEventJob(event_id=f"event-{uuid.uuid4().hex[:12]}", origin="loops/events", payload={"email": "a@b.io"})
    boto3.client("sqs").send_message(QueueUrl=aws.ref("DeadLetterQueue"), MessageBody=dump_job(job))

    _, listed = run_json(capsys, dead_letters.list_letters, stack, limit=50)
    [letter] = listed["letters"]
    assert (letter["destination"], letter["origin"]) == ("loops", "loops/events")
    assert letter["reason"] == dead_letters.NO_REASON and letter["attempts"] is None


def test_status_takes_the_oldest_message_age_from_cloudwatch_for_a_deployed_stack(stack, aws):
    stack.local = False
    assert status.oldest_age(stack) == (None, "n/a: no CloudWatch datapoint in the last 15 minutes")
    boto3.client("cloudwatch").put_metric_data(
        Namespace="AWS/SQS",
        MetricData=[
            {
                "MetricName": "ApproximateAgeOfOldestMessage",
                "Dimensions": [{"Name": "QueueName", "Value": stack.queue_url.rsplit("/", 1)[-1]}],
                "Value": 42.0,
                "Unit": "Seconds",
            }
        ],
    )
    age, source = status.oldest_age(stack)
    assert age == 42.0 and source.startswith("CloudWatch ApproximateAgeOfOldestMessage")
    stack.local = True
    assert status.oldest_age(stack) == (None, "n/a: the local stack has no CloudWatch metrics")


def test_status_prints_queues_dead_letters_last_failures_and_pools(stack, put_secret, capsys):
    put_secret(POOL_SECRET, ["https://api.clay.com/v3/sources/webhook/pull-in-data-abc123"])
    dead_letter("loops answered HTTP 400: invalid email ada.lovelace@example.com")
    RelayTable().note_failures({"loops": Failure("loops answered HTTP 400", "dead-lettered", "loops/events", time())})
    DeliveryQueue().enqueue([LoopsEventJob(event_id="event-waiting-1", origin="loops/events", payload={})])

    status.run(stack, argparse.Namespace(json=False))
    printed = capsys.readouterr().out
    assert "ready 1, in flight, waiting for a retry or parked 0" in printed
    assert "oldest message: n/a: the local stack has no CloudWatch metrics" in printed
    [row] = [line.split() for line in printed.splitlines() if line.strip().startswith("loops/events")]
    assert row[:3] == ["loops/events", "loops", "1"], "one dead letter on that flow"
    assert "dead-lettered" in printed and "a***@example.com" in printed and "ada.lovelace" not in printed
    assert "api.clay.com/…abc123" in printed and "current" in printed


def test_status_counts_the_rows_held_for_clay_quota_and_says_how_long_they_may_wait(
    stack, aws, http_stub, put_secret, capsys
):
    from tests.clay_relay.worker.test_worker import row_job

    used_up = http_stub.url("/clay/webhooks/leads-1")
    put_secret(POOL_SECRET, [used_up])
    RelayTable().reserve_submissions(ClayWebhook(used_up).webhook_id, 50_000, 50_000, "leads")
    DeliveryQueue().enqueue([row_job(1), row_job(2)])
    assert run_worker(received_records(aws.ref("DeliveryQueue"), 2)) == set()  # both held, re-queued delayed

    _, report = run_json(capsys, status.run, stack)
    assert report["held_for_quota"] == {"rows": 2, "hold_horizon_seconds": 259_200}
    status.run(stack, argparse.Namespace(json=False))
    printed = capsys.readouterr().out
    assert "Held for Clay quota: 2 row(s)" in printed and "at most 3.0 d after it was accepted" in printed
