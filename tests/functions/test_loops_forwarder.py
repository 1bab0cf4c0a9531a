"""The Loops forwarder (functions/loops_forwarder, route `ANY /loops/{route}`), driven with API
Gateway HTTP API v2 events over moto:

- POST /loops/webhook: Loops' account webhook, Standard Webhooks signed (signed here by the
  reference implementation). Verified before anything else: a rejected request makes no DynamoDB
  or SQS call. contact.created becomes a Clay row, deduplicated on webhook-id; an authentic event
  that goes nowhere is still answered 202.
- POST /loops/contacts and /loops/events: Clay → Loops behind a static token, checked the way
  Loops will check them (422 naming the field), delivered by the worker with the relay's API key.
"""

from __future__ import annotations

import json
import time

import boto3
import pytest

from clay_relay import loops
from clay_relay.errors import InvalidPayload
from clay_relay.jobs import ClayRowJob, LoopsContactJob, LoopsEventJob, content_id, parse_job
from clay_relay.worker import handle_batch
from tests.destinations import LOOPS_API_KEY
from tests.invocations import call_handler, load_handler
from tests.loops_requests import (
    CLAY_TOKEN,
    CLAY_TOKEN_NEXT,
    OTHER_SECRET,
    SECRET,
    UNRELATED_SECRET,
    clay_request,
    contact_created,
    local_env,
    loops_event_body,
    loops_request,
    new_webhook_id,
    reference_headers,
    sample_event,
    signed_webhook,
)
from tests.queues import queue_attribute, receive, sqs_record
from tests.recorders import emf_metrics, metric_names

CLAY_PATH = "/clay/webhooks/leads-1"
WEBHOOK_FIELDS = {
    "email": "email",
    "firstName": "first_name",
    "lastName": "last_name",
    "source": "loops_source",
    "userGroup": "loops_user_group",
}
CONTACT_FROM_CLAY = {"email": "alan.turing@example.com", "firstName": "Alan", "mailingLists": {"cm4list0001": True}}
EVENT_FROM_CLAY = {
    "email": "alan.turing@example.com",
    "eventName": "demo_requested",
    "eventProperties": {"plan": "enterprise", "seats": 40},
}


# --- fixtures and helpers ----------------------------------------------------------------------------
@pytest.fixture
def handler(aws):
    """lambda_handler of a fresh copy of the function's module (a new execution environment)."""
    return load_handler("loops_forwarder")


@pytest.fixture
def configure(aws, use_config, put_secret):
    """relay.json with the Loops sections as given (None removes a section), the Loops signing
    secret and the Clay tokens set."""

    def apply(webhook: dict | None = None, forwarding: dict | None = None, *, remove: tuple[str, ...] = ()):
        def edit(config: dict) -> None:
            config["loops_webhook"] = {
                "signing_secret": "loops-webhook-secret",
                "clay_target": "leads",
                "fields": WEBHOOK_FIELDS,
                "forward_events": [],
                **(webhook or {}),
            }
            config["loops_forwarding"] = {
                "tokens_secret": "clay-callback-tokens",
                "token_header": "authorization",
                **(forwarding or {}),
            }
            for section in remove:
                config.pop(section)

        loaded = use_config(edit)
        put_secret("loops-webhook-secret", SECRET)
        put_secret("clay-callback-tokens", f"{CLAY_TOKEN},{CLAY_TOKEN_NEXT}")
        return loaded

    return apply


@pytest.fixture
def configured(configure):
    return configure()


@pytest.fixture
def clay(aws, http_stub, put_secret):
    """The `leads` target's pool: one URL on the local HTTP stub, answering 200."""
    put_secret("clay-webhooks-leads", [{"url": http_stub.url(CLAY_PATH), "token": "clay-token-1"}])
    return http_stub


def queued_messages(aws) -> list[dict]:
    return receive(aws.ref("DeliveryQueue"))


def queued(aws) -> list:
    return [parse_job(message["Body"]) for message in queued_messages(aws)]


def run_worker(aws, messages: list[dict]) -> set[str]:
    """The delivery worker over these received messages; the message ids it reports as failed."""
    records = [sqs_record(message, aws.ref("DeliveryQueue")) for message in messages]
    return {item["itemIdentifier"] for item in handle_batch({"Records": records}, None)["batchItemFailures"]}


def come_back_now(aws, messages: list[dict]) -> None:
    """What SQS does when a message's visibility timeout ends: it can be received again."""
    sqs = boto3.client("sqs")
    for message in messages:
        sqs.change_message_visibility(
            QueueUrl=aws.ref("DeliveryQueue"), ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )


def no_aws_call(aws_calls) -> bool:
    return aws_calls.dynamodb == [] and aws_calls.sqs == []


def is_rejection(body: dict, error: str) -> bool:
    return body.get("error") == error and isinstance(body.get("message"), str) and body["message"] != ""


# --- POST /loops/webhook: accepted ---------------------------------------------------------------------
def test_a_fresh_contact_created_is_answered_202_and_queued_as_one_clay_row(handler, configured, aws):
    webhook_id = new_webhook_id()
    status, answer = call_handler(handler, signed_webhook(contact_created(), webhook_id=webhook_id))
    assert status == 202
    assert answer == {
        "accepted": True,
        "webhook_id": webhook_id,
        "event_id": content_id("loops/webhook", webhook_id),
        "duplicate": False,
        "actions": ["clay"],
    }
    [job] = queued(aws)
    assert isinstance(job, ClayRowJob)
    assert (job.event_id, job.target, job.origin) == (answer["event_id"], "leads", "loops/webhook")
    assert job.row == {
        "email": "grace.hopper@example.com",
        "first_name": "Grace",
        "last_name": "Hopper",
        "loops_source": "API",
        "loops_user_group": "",
        "loops_event": "contact.created",
        "loops_contact_id": "cm4contact0001",
        "loops_event_time": 1734425918,
    }


def test_the_same_webhook_id_after_the_worker_claimed_it_is_a_duplicate_and_not_queued_again(
    handler, configured, aws, clay, aws_calls
):
    webhook_id = new_webhook_id()
    call_handler(handler, signed_webhook(contact_created(), webhook_id=webhook_id))
    messages = queued_messages(aws)
    assert run_worker(aws, messages) == set()
    assert [r.json()["email"] for r in clay.posted_to(CLAY_PATH)] == ["grace.hopper@example.com"]
    aws_calls.dynamodb.clear()
    aws_calls.sqs.clear()

    # Loops delivers it again (a retry is signed anew, with a later timestamp).
    again = signed_webhook(contact_created(), webhook_id=webhook_id, timestamp=int(time.time()) + 1)
    status, answer = call_handler(handler, again)

    assert status == 202
    assert answer["duplicate"] is True
    assert answer["event_id"] == content_id("loops/webhook", webhook_id)
    assert aws_calls.names("sqs") == []  # nothing queued
    assert aws_calls.names("dynamodb") == ["batch_get_item"]  # one read, no write
    assert queue_attribute(aws.ref("DeliveryQueue"), "ApproximateNumberOfMessages") == 0


def test_a_different_webhook_id_with_the_same_body_is_a_new_event(handler, configured, aws, clay):
    call_handler(handler, signed_webhook(contact_created()))
    run_worker(aws, queued_messages(aws))
    status, answer = call_handler(handler, signed_webhook(contact_created()))
    assert (status, answer["duplicate"]) == (202, False)
    assert len(queued(aws)) == 1


@pytest.mark.parametrize(
    "stored",
    [f"{SECRET},{OTHER_SECRET}", json.dumps([SECRET, OTHER_SECRET])],
    ids=["comma-separated", "JSON list"],
)
def test_with_two_signing_secrets_stored_a_webhook_signed_with_either_is_accepted(
    handler, configured, aws, put_secret, stored
):
    put_secret("loops-webhook-secret", stored)
    for secret in (SECRET, OTHER_SECRET):
        status, answer = call_handler(handler, signed_webhook(contact_created(), secret))
        assert (status, answer["duplicate"]) == (202, False), secret
    assert len(queued(aws)) == 2


def test_a_base64_encoded_body_is_verified_over_the_bytes_loops_sent(handler, configured, aws):
    status, _ = call_handler(handler, signed_webhook(contact_created(), base64_encoded=True))
    assert status == 202
    assert len(queued(aws)) == 1


def test_a_body_with_non_ascii_text_is_verified_over_its_utf8_bytes(handler, configured, aws):
    body = json.dumps(
        contact_created({"id": "c1", "email": "jose@example.com", "firstName": "José"}), ensure_ascii=False
    )
    status, _ = call_handler(handler, signed_webhook(body))
    assert status == 202
    [job] = queued(aws)
    assert job.row["first_name"] == "José"


def test_another_event_type_is_answered_202_ignored_and_not_queued(handler, configured, aws, aws_calls):
    webhook_id = new_webhook_id()
    status, answer = call_handler(
        handler, signed_webhook(loops_event_body("contact.unsubscribed"), webhook_id=webhook_id)
    )
    assert status == 202
    assert answer["accepted"] is True and answer["webhook_id"] == webhook_id
    assert "contact.unsubscribed" in answer["ignored"]
    assert "event_id" not in answer
    assert no_aws_call(aws_calls)


def test_an_event_type_listed_in_forward_events_is_queued_as_a_row(handler, configure, aws):
    configure({"forward_events": ["contact.unsubscribed"]})
    status, answer = call_handler(handler, signed_webhook(loops_event_body("contact.unsubscribed")))
    assert (status, answer["duplicate"]) == (202, False)
    [job] = queued(aws)
    assert job.row["email"] == "grace.hopper@example.com"
    assert job.row["loops_event"] == "contact.unsubscribed"


def test_an_authentic_body_that_is_no_loops_event_is_answered_202_ignored(handler, configured, aws, aws_calls):
    status, answer = call_handler(handler, signed_webhook({"hello": "world"}))
    assert status == 202
    assert "not a Loops webhook event" in answer["ignored"]
    assert no_aws_call(aws_calls)


def test_a_contact_whose_row_is_bigger_than_clay_accepts_is_answered_202_ignored_and_not_queued(
    handler, configure, aws, aws_calls
):
    """`max_row_bytes` (100 KB) was checked for Directus rows only: a 200 KB custom property went to Clay."""
    configure({"fields": None})
    contact = {**contact_created()["contact"], "notes": "x" * 200_000}
    status, answer = call_handler(handler, signed_webhook(contact_created(contact)))
    assert status == 202
    assert "Clay accepts at most 100000" in answer["ignored"]
    assert aws_calls.sqs == [] and queued(aws) == []


def test_prototype_keys_are_left_out_of_a_contacts_row(handler, configure, aws):
    configure({"fields": None})
    contact = {**contact_created()["contact"], "__proto__": {"admin": True}, "prefs": {"constructor": {"x": 1}}}
    status, _ = call_handler(handler, signed_webhook(contact_created(contact)))
    assert status == 202
    [job] = queued(aws)
    assert "__proto__" not in job.row and job.row["prefs"] == {}
    assert job.row["email"] == contact["email"]


def test_an_unknown_schema_version_is_still_accepted_queued_and_counted(handler, configured, aws, capsys):
    capsys.readouterr()
    status, answer = call_handler(handler, signed_webhook(contact_created(webhookSchemaVersion="2.0.0")))
    assert (status, answer["duplicate"]) == (202, False)
    assert len(queued(aws)) == 1
    assert "LoopsWebhookUnknownSchema" in metric_names(capsys.readouterr().out)


# --- POST /loops/webhook: refused (401, before any DynamoDB or SQS call) ------------------------------------
def forged() -> dict:
    raw = json.dumps(contact_created())
    headers = reference_headers(SECRET, raw, webhook_id=new_webhook_id())
    return loops_request("webhook", raw.replace("grace.hopper@", "mallory@"), headers=headers)


def unsigned() -> dict:
    return loops_request("webhook", contact_created())


def without(header: str):
    def event() -> dict:
        sent = signed_webhook(contact_created())
        del sent["headers"][header]
        return sent

    return event


REFUSED = {
    "forged (body changed)": forged,
    "stale (an hour old)": lambda: signed_webhook(contact_created(), timestamp=int(time.time()) - 3600),
    "future (an hour ahead)": lambda: signed_webhook(contact_created(), timestamp=int(time.time()) + 3600),
    "unsigned": unsigned,
    "signature header missing": without("webhook-signature"),
    "signed with another secret": lambda: signed_webhook(contact_created(), UNRELATED_SECRET),
}


@pytest.mark.parametrize("make_event", REFUSED.values(), ids=REFUSED.keys())
def test_an_unauthentic_webhook_is_401_with_a_json_error_and_no_aws_call(handler, configured, aws_calls, make_event):
    status, answer = call_handler(handler, make_event())
    assert status == 401
    assert is_rejection(answer, "unauthorized")
    assert no_aws_call(aws_calls)


def test_without_a_usable_signing_secret_every_webhook_is_401(handler, configured, aws_calls, put_secret):
    for stored in ("REPLACE_ME", "whsec_ab!c"):  # the template's placeholder, a malformed secret
        put_secret("loops-webhook-secret", stored)
        status, answer = call_handler(handler, signed_webhook(contact_created()))
        assert (status, answer["message"]) == (401, "signature verification is not configured"), stored
    assert no_aws_call(aws_calls)


def test_a_signature_valid_for_another_webhook_id_is_401(handler, configured, aws_calls):
    sent = signed_webhook(contact_created())
    sent["headers"]["webhook-id"] = new_webhook_id()
    assert call_handler(handler, sent)[0] == 401
    assert no_aws_call(aws_calls)


def test_a_timestamp_of_superscript_digits_is_401_not_500(handler, configured, aws_calls):
    sent = signed_webhook(contact_created())
    sent["headers"]["webhook-timestamp"] = "²"
    status, answer = call_handler(handler, sent)
    assert (status, answer["message"]) == (401, "webhook-timestamp is not a unix timestamp")
    assert no_aws_call(aws_calls)


# --- the tolerance (LOOPS_WEBHOOK_TOLERANCE_SECONDS) and the shipped sample events -----------------------------
@pytest.fixture
def sample_secret(configured, put_secret):
    """The signing secret the events/loops/*.json samples were signed with (local.env)."""
    put_secret("loops-webhook-secret", local_env("LOOPS_WEBHOOK_SECRET"))


def test_tolerance_0_accepts_the_fixed_timestamp_sample_event(handler, sample_secret, relay_env, aws):
    relay_env(LOOPS_WEBHOOK_TOLERANCE_SECONDS=0)
    status, answer = call_handler(handler, sample_event("contact-created"))
    assert status == 202
    assert answer["webhook_id"] == "msg_2p6ZkD1yLocalCreated0001" and answer["duplicate"] is False
    [job] = queued(aws)
    assert job.row["email"] == "grace.hopper@example.com"
    assert job.row["loops_event_time"] == 1795435200


def test_the_default_tolerance_refuses_the_fixed_timestamp_sample_event_as_stale(handler, sample_secret, aws_calls):
    status, answer = call_handler(handler, sample_event("contact-created"))
    assert status == 401
    assert "too old" in answer["message"]
    assert no_aws_call(aws_calls)


def test_tolerance_0_still_refuses_the_forged_sample_event(handler, sample_secret, relay_env, aws_calls):
    relay_env(LOOPS_WEBHOOK_TOLERANCE_SECONDS=0)
    status, answer = call_handler(handler, sample_event("bad-signature"))
    assert (status, answer["message"]) == (401, "no valid signature")
    assert no_aws_call(aws_calls)


def test_a_shorter_tolerance_refuses_a_webhook_the_default_would_accept(handler, configured, relay_env, aws_calls):
    relay_env(LOOPS_WEBHOOK_TOLERANCE_SECONDS=60)
    status, _ = call_handler(handler, signed_webhook(contact_created(), timestamp=int(time.time()) - 240))
    assert status == 401
    assert no_aws_call(aws_calls)


# --- forwarded_request: Clay's contacts and events checked as Loops will check them ------------------------------
def problems(body: dict, *, event: bool) -> list[str]:
    with pytest.raises(InvalidPayload) as invalid:
        loops.forwarded_request(body, event=event)
    assert invalid.value.status == 422
    return [problem["field"] for problem in invalid.value.fields]


@pytest.mark.parametrize("event", [False, True], ids=["contact", "event"])
@pytest.mark.parametrize(
    "identity",
    [{}, {"email": ""}, {"email": "   "}, {"userId": ""}, {"email": None, "userId": None}, {"email": 42}],
    ids=["none", "empty email", "blank email", "empty userId", "nulls", "numeric email"],
)
def test_without_an_email_or_a_user_id_the_email_field_is_named(identity, event):
    body = {"firstName": "Alan", "eventName": "demo_requested", **identity}
    assert problems(body, event=event) == ["email"]


@pytest.mark.parametrize("identity", [{"email": "alan@example.com"}, {"userId": "user-42"}])
def test_an_email_or_a_user_id_is_enough(identity):
    assert (
        loops.forwarded_request({**identity, "eventName": "demo_requested"}, event=True)["eventName"]
        == "demo_requested"
    )


@pytest.mark.parametrize("event", [False, True], ids=["contact", "event"])
@pytest.mark.parametrize(
    ("identity", "named"),
    [
        ({"email": {}, "userId": "user-42"}, ["email"]),
        ({"email": "alan@example.com", "userId": 42}, ["userId"]),
        ({"email": ["alan@example.com"]}, ["email"]),
        ({"userId": True}, ["userId", "email"]),
    ],
    ids=["object email beside a user id", "numeric user id beside an email", "list email", "boolean user id"],
)
def test_an_email_or_user_id_that_is_no_string_is_named_even_beside_a_good_one(identity, named, event):
    """Found by the fuzzing: Loops refuses such a contact or event, so it would only reach the DLQ."""
    assert problems({"eventName": "demo_requested", **identity}, event=event) == named


@pytest.mark.parametrize(
    "identity", [{"email": None, "userId": "user-42"}, {"email": "alan@example.com", "userId": None}]
)
def test_a_null_beside_a_good_identity_is_accepted(identity):
    assert loops.forwarded_request(identity, event=False) == identity


@pytest.mark.parametrize("name", [None, "", "   ", 7], ids=["missing", "empty", "blank", "number"])
def test_an_event_without_an_event_name_names_event_name(name):
    body = {"email": "alan@example.com"} if name is None else {"email": "alan@example.com", "eventName": name}
    assert problems(body, event=True) == ["eventName"]


def test_a_contact_needs_no_event_name():
    assert loops.forwarded_request({"email": "alan@example.com"}, event=False) == {"email": "alan@example.com"}


@pytest.mark.parametrize("event", [False, True], ids=["contact", "event"])
def test_a_501_character_value_is_named(event):
    body = {"email": "alan@example.com", "eventName": "demo", "notes": "x" * 501}
    assert problems(body, event=event) == ["notes"]


def test_a_501_character_value_inside_event_properties_is_named_with_its_path():
    body = {"email": "alan@example.com", "eventName": "demo", "eventProperties": {"plan": "p", "opener": "x" * 501}}
    assert problems(body, event=True) == ["eventProperties.opener"]


def test_a_500_character_value_is_accepted_top_level_and_nested():
    body = {"email": "alan@example.com", "eventName": "demo", "notes": "x" * 500, "eventProperties": {"o": "y" * 500}}
    assert loops.forwarded_request(body, event=True) == body


EMOJI = "\U0001f600"  # two UTF-16 code units: two characters to Loops (JavaScript's string length)


@pytest.mark.parametrize("event", [False, True], ids=["contact", "event"])
@pytest.mark.parametrize(
    "value", ["x" * 499 + EMOJI, EMOJI * 251], ids=["499 characters and an emoji", "251 emoji (502 to Loops)"]
)
def test_the_500_character_limit_is_counted_as_loops_counts_in_utf_16_code_units(value, event):
    body = {"email": "alan@example.com", "eventName": "demo", "notes": value, "eventProperties": {"o": value}}
    # (a contact has no eventProperties: there it is a nested object, itself named)
    assert problems(body, event=event) == (["notes", "eventProperties.o"] if event else ["notes", "eventProperties"])


def test_500_characters_outside_the_basic_plane_are_500_code_units_and_accepted():
    body = {"email": "alan@example.com", "eventName": "demo", "notes": "é" * 500, "tag": EMOJI * 250}
    assert loops.forwarded_request(body, event=True) == body


@pytest.mark.parametrize("event", [False, True], ids=["contact", "event"])
@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"tags": ["x" * 501]}, "tags"),
        ({"tags": ["vip", "beta"]}, "tags"),
        ({"company": {"name": "Acme"}}, "company"),
        ({"k" * 600: "v"}, "k" * 60 + "…"),
    ],
    ids=["a long string in an array", "an array", "a nested object", "a key of 600 characters"],
)
def test_a_property_loops_cannot_hold_is_named(extra, named, event):
    """Loops' properties are flat strings, numbers, booleans or null, named by keys of at most 500 characters."""
    assert problems({"email": "alan@example.com", "eventName": "demo", **extra}, event=event) == [named]


@pytest.mark.parametrize(
    ("properties", "named"),
    [({"plan": {"tier": "x"}}, "eventProperties.plan"), ({"k" * 501: 1}, "eventProperties." + "k" * 60 + "…")],
    ids=["a nested object", "a key of 501 characters"],
)
def test_an_event_property_loops_cannot_hold_is_named_with_its_path(properties, named):
    assert problems({"email": "alan@example.com", "eventName": "demo", "eventProperties": properties}, event=True) == [
        named
    ]


@pytest.mark.parametrize("event", [False, True], ids=["contact", "event"])
@pytest.mark.parametrize(
    "email",
    [
        "alan",
        "alan@example",
        "alan@@example.com",
        "alan\x00@example.com",
        "al\u200ban@example.com",
        "alan@exa\u202emple.com",
    ],
    ids=["no domain", "no dot", "two @", "NUL", "zero-width space", "RTL override"],
)
def test_an_email_that_is_not_an_address_is_named(email, event):
    assert problems({"email": email, "eventName": "demo"}, event=event) == ["email"]


@pytest.mark.parametrize("event", [False, True], ids=["contact", "event"])
@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"__proto__": {"admin": True}}, "__proto__"),
        ({"constructor": "x"}, "constructor"),
        ({"mailingLists": {"__proto__": True}}, "mailingLists.__proto__"),
        ({"eventProperties": {"prototype": 1}}, "eventProperties.prototype"),
    ],
    ids=["__proto__", "constructor", "__proto__ in mailingLists", "prototype in eventProperties"],
)
def test_a_key_javascript_reads_as_the_prototype_is_named(body, named, event):
    sent = {"email": "alan@example.com", "eventName": "demo", **body}
    assert named in problems(sent, event=event)


@pytest.mark.parametrize("event", [False, True], ids=["contact", "event"])
@pytest.mark.parametrize("subscribed", ["yes", 1, None, {"on": True}])
def test_a_mailing_list_that_is_not_true_or_false_is_named(subscribed, event):
    body = {"email": "alan@example.com", "eventName": "demo", "mailingLists": {"cm4list0001": subscribed}}
    assert problems(body, event=event) == ["mailingLists.cm4list0001"]


@pytest.mark.parametrize("value", [["plan"], "plan=enterprise", 3, True], ids=["list", "string", "number", "bool"])
def test_event_properties_that_are_not_an_object_are_named(value):
    assert problems({"email": "a@example.com", "eventName": "demo", "eventProperties": value}, event=True) == [
        "eventProperties"
    ]


@pytest.mark.parametrize("event", [False, True], ids=["contact", "event"])
@pytest.mark.parametrize("value", [["cm4list0001"], "cm4list0001", None], ids=["list", "string", "null"])
def test_mailing_lists_that_are_not_an_object_are_named(event, value):
    body = {"email": "a@example.com", "eventName": "demo", "mailingLists": value}
    assert problems(body, event=event) == ["mailingLists"]


def test_every_problem_of_a_request_is_named_at_once():
    body = {"eventProperties": [], "mailingLists": "x", "notes": "x" * 501}
    assert sorted(problems(body, event=True)) == ["email", "eventName", "eventProperties", "mailingLists", "notes"]


def test_an_accepted_request_keeps_every_field_and_strips_the_email():
    body = {**EVENT_FROM_CLAY, "email": "  alan.turing@example.com\n", "mailingLists": {"l1": True}, "custom": 1}
    payload = loops.forwarded_request(body, event=True)
    assert payload == {**body, "email": "alan.turing@example.com"}
    assert body["email"] == "  alan.turing@example.com\n"  # the caller's dict is left alone


# --- POST /loops/contacts and /loops/events ------------------------------------------------------------
FORWARDED = [("contacts", LoopsContactJob, CONTACT_FROM_CLAY), ("events", LoopsEventJob, EVENT_FROM_CLAY)]


@pytest.mark.parametrize(("route", "kind", "body"), FORWARDED, ids=["contacts", "events"])
def test_a_valid_request_from_clay_is_202_and_queued_as_a_loops_job_with_its_payload(
    handler, configured, aws, route, kind, body
):
    status, answer = call_handler(handler, clay_request(route, {**body, "email": " alan.turing@example.com "}))
    assert status == 202
    assert answer == {"accepted": True, "event_id": content_id(f"loops/{route}", body), "duplicate": False}
    [job] = queued(aws)
    assert isinstance(job, kind)
    assert (job.event_id, job.origin, job.payload) == (answer["event_id"], f"loops/{route}", body)


def test_the_second_token_of_a_rotation_is_accepted(handler, configured, aws):
    for route, _, body in FORWARDED:
        assert call_handler(handler, clay_request(route, body, token=CLAY_TOKEN_NEXT))[0] == 202, route


def test_the_shipped_sample_requests_from_clay_are_accepted(handler, configured, aws):
    for name in ("contact-from-clay", "event-from-clay"):
        assert call_handler(handler, sample_event(name))[0] == 202, name
    assert sorted(job.kind for job in queued(aws)) == ["loops_contact", "loops_event"]


@pytest.mark.parametrize(
    ("route", "token"),
    [("contacts", None), ("events", ""), ("events", "wrong-token"), ("contacts", f"{CLAY_TOKEN}x")],
    ids=["no token", "empty token", "wrong token", "token with a suffix"],
)
def test_a_request_from_clay_without_a_valid_token_is_401_and_makes_no_aws_call(
    handler, configured, aws_calls, route, token
):
    status, answer = call_handler(handler, clay_request(route, EVENT_FROM_CLAY, token=token))
    assert status == 401
    assert is_rejection(answer, "unauthorized")
    assert no_aws_call(aws_calls)


def test_the_token_is_checked_before_the_body(handler, configured, aws_calls):
    assert call_handler(handler, clay_request("events", {"nothing": "valid"}, token="wrong-token"))[0] == 401


@pytest.mark.parametrize(
    ("route", "body", "field"),
    [
        ("contacts", {"firstName": "Alan"}, "email"),
        ("events", {"email": "alan@example.com", "eventName": "  "}, "eventName"),
        ("events", {**EVENT_FROM_CLAY, "eventProperties": {"opener": "x" * 501}}, "eventProperties.opener"),
        ("contacts", {**CONTACT_FROM_CLAY, "mailingLists": ["cm4list0001"]}, "mailingLists"),
    ],
    ids=["contact without email", "event with blank eventName", "event value too long", "mailingLists a list"],
)
def test_an_invalid_request_from_clay_is_422_naming_the_field_and_nothing_is_queued(
    handler, configured, aws_calls, route, body, field
):
    status, answer = call_handler(handler, clay_request(route, body))
    assert status == 422
    assert answer["error"] == "invalid_payload"
    assert field in [problem["field"] for problem in answer["fields"]]
    assert no_aws_call(aws_calls)


def test_a_body_that_is_not_json_is_400(handler, configured, aws_calls):
    status, answer = call_handler(handler, clay_request("events", "{not json"))
    assert status == 400 and answer["error"] == "malformed_request"
    assert no_aws_call(aws_calls)


# --- routes and configuration ----------------------------------------------------------------------------
@pytest.fixture
def routes_only(function_env, use_config):
    """The function without AWS (an AWS call would fail): for answers given before any."""
    use_config()
    return load_handler("loops_forwarder")


@pytest.mark.parametrize(
    ("route", "method"), [("webhook", "GET"), ("contacts", "PUT"), ("events", "DELETE")], ids=lambda v: v
)
def test_another_method_on_a_loops_route_is_405(routes_only, route, method):
    status, answer = call_handler(routes_only, loops_request(route, method=method))
    assert status == 405
    assert is_rejection(answer, "method_not_allowed")


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_an_unknown_loops_route_is_404(routes_only, method):
    status, answer = call_handler(routes_only, loops_request("nothing", {"eventName": "x"}, method=method))
    assert status == 404
    assert is_rejection(answer, "not_found")


def test_without_a_loops_webhook_section_the_webhook_route_is_404_saying_so(handler, configure, aws_calls):
    configure(remove=("loops_webhook",))
    status, answer = call_handler(handler, signed_webhook(contact_created()))
    assert status == 404
    assert "loops_webhook" in answer["message"] and "not configured" in answer["message"]
    assert no_aws_call(aws_calls)


def test_without_a_loops_forwarding_section_the_forwarding_routes_are_404_saying_so(handler, configure, aws_calls):
    configure(remove=("loops_forwarding",))
    for route, _, body in FORWARDED:
        status, answer = call_handler(handler, clay_request(route, body))
        assert status == 404, route
        assert "loops_forwarding" in answer["message"] and "not configured" in answer["message"]
    assert no_aws_call(aws_calls)


def test_without_a_loops_webhook_section_forwarding_still_works(handler, configure, aws):
    configure(remove=("loops_webhook",))
    assert call_handler(handler, clay_request("events", EVENT_FROM_CLAY))[0] == 202


# --- the worker delivers forwarded jobs to Loops ---------------------------------------------------------
def loops_requests(destinations, route: str) -> list[dict]:
    return [d for d in destinations.received("loops") if d["path"].endswith(route)]


def test_a_forwarded_event_reaches_loops_with_the_api_key_and_its_event_id_as_idempotency_key(
    handler, configured, destinations, aws
):
    _, answer = call_handler(handler, clay_request("events", EVENT_FROM_CLAY))
    assert run_worker(aws, queued_messages(aws)) == set()
    [sent] = loops_requests(destinations, "/v1/events/send")
    assert sent["status"] == 200
    assert sent["headers"]["idempotency-key"] == answer["event_id"]
    assert sent["headers"]["authorization"] == f"Bearer {LOOPS_API_KEY}"
    assert sent["body"] == EVENT_FROM_CLAY
    assert destinations.sandboxes.loops.events == [EVENT_FROM_CLAY]


def test_a_forwarded_event_redelivered_after_success_gets_409_and_counts_as_delivered(
    handler, configured, destinations, aws, logs, capsys
):
    _, answer = call_handler(handler, clay_request("events", EVENT_FROM_CLAY))
    messages = queued_messages(aws)
    assert run_worker(aws, messages) == set()

    come_back_now(aws, messages)  # e.g. the worker died before SQS deleted the message
    redelivered = queued_messages(aws)
    assert redelivered[0]["Attributes"]["ApproximateReceiveCount"] == "2"
    capsys.readouterr()
    assert run_worker(aws, redelivered) == set()

    assert [d["status"] for d in loops_requests(destinations, "/v1/events/send")] == [200, 409]
    assert destinations.sandboxes.loops.events == [EVENT_FROM_CLAY]
    delivered = [line for line in logs.lines if line["message"] == "delivered"]
    assert [(line["event_id"], line["status"]) for line in delivered] == [
        (answer["event_id"], 200),
        (answer["event_id"], 409),
    ]
    counted = emf_metrics(capsys.readouterr().out)
    assert [m["dimensions"].get("destination") for m in counted if m["name"] == "Delivered"] == ["loops"]
    assert not {"DeadLettered", "DeliveryRetried"} & {m["name"] for m in counted}
    assert receive(aws.ref("DeadLetterQueue")) == []


def test_a_forwarded_contact_is_put_into_loops_with_its_mailing_lists(handler, configured, destinations, aws):
    call_handler(handler, clay_request("contacts", CONTACT_FROM_CLAY))
    assert run_worker(aws, queued_messages(aws)) == set()
    [sent] = loops_requests(destinations, "/v1/contacts/update")
    assert (sent["method"], sent["status"]) == ("PUT", 200)
    assert "idempotency-key" not in sent["headers"]
    assert destinations.sandboxes.loops.contacts["alan.turing@example.com"]["mailingLists"] == {"cm4list0001": True}
