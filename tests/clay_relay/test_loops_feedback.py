"""What an authentic Loops event becomes besides a Clay row (clay_relay.loops_feedback, through the
Loops forwarder's handler over moto): the email outcomes a configuration keeps are stages of the
lead's trace at one DynamoDB write each and none for the others, an event that causes deliveries is
traced by their claims at no extra write, and the feedback job carries the values to write, with
the event's time filled in."""

from __future__ import annotations

import json
import time
from unittest import mock

import pytest

from clay_relay.config import ConfigError, RelayConfig, load_config
from clay_relay.jobs import DirectusFeedbackJob, parse_job
from clay_relay.ledger import email_key
from clay_relay.ledger.timeline import resolve, timeline
from clay_relay.loops_feedback import plan_webhook
from clay_relay.loops_webhooks import parse_webhook
from clay_relay.store import RelayTable
from local_stack.sandboxes import loops_event
from relay_cli.__main__ import main as relay_main
from tests.invocations import call_handler, default_config, load_handler, relay_stack
from tests.loops_requests import SECRET, signed_webhook
from tests.queues import receive, sqs_record
from tests.queues import run_worker as worker_run
from tests.recorders import metric_names

ADA = "ada@example.com"
T = 1_800_000_000
FEEDBACK = {
    "events": {
        "contact.unsubscribed": {"email_status": "unsubscribed", "email_status_at": "{event_time}"},
        "email.hardBounced": {"email_status": "bounced", "why": "Loops said {event_type}", "suppressed": True},
    }
}


@pytest.fixture
def configure(aws, use_config, put_secret):
    def apply(**webhook: object) -> RelayConfig:
        def edit(config: dict) -> None:
            config["loops_webhook"].update(webhook)

        loaded = use_config(edit)
        put_secret("loops-webhook-secret", SECRET)
        return loaded

    return apply


@pytest.fixture
def loops(configure):
    """The forwarder without Directus feedback: each event is kept in the trace, or goes nowhere."""
    configure(directus_feedback=None)
    return load_handler("loops_forwarder")


@pytest.fixture
def feedback_loops(configure):
    configure(directus_feedback=FEEDBACK)
    return load_handler("loops_forwarder")


def fire(handler, event_type: str, email: str = ADA, webhook_id: str | None = None, **fields) -> dict:
    status, answer = call_handler(
        handler, signed_webhook(loops_event(event_type, email=email, **fields), webhook_id=webhook_id)
    )
    assert status == 202, answer
    return answer


def stages(email: str = ADA) -> list[tuple[str, str]]:
    return [(line.stage, line.outcome) for line in timeline(RelayTable(), email_key(email), time.time()).stages]


# --- email outcomes kept in the trace ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("event_type", "stage", "outcome"),
    [
        ("campaign.email.sent", "loops.email_sent", "sent"),
        ("loop.email.sent", "loops.email_sent", "sent"),
        ("transactional.email.sent", "loops.email_sent", "sent"),
        ("email.delivered", "loops.email_delivered", "delivered"),
        ("email.softBounced", "loops.email_soft_bounced", "soft-bounced"),
        ("email.hardBounced", "loops.email_hard_bounced", "hard-bounced"),
        ("email.spamReported", "loops.email_spam_reported", "spam-reported"),
        ("email.unsubscribed", "loops.email_unsubscribed", "unsubscribed"),
        ("email.resubscribed", "loops.email_resubscribed", "resubscribed"),
    ],
)
def test_an_email_outcome_kept_by_default_is_one_ledger_write_and_a_stage_of_the_lead(
    loops, aws_calls, event_type, stage, outcome
):
    answer = fire(loops, event_type)
    assert answer["kept"] == stage and answer["duplicate"] is False and "actions" not in answer
    assert aws_calls.names("dynamodb") == ["put_item"]  # its ledger entry, nothing else
    assert aws_calls.names("sqs") == []  # nothing to deliver
    assert stages() == [(stage, outcome)]


def test_a_redelivered_email_outcome_is_kept_once(loops, aws_calls):
    first = fire(loops, "email.delivered", webhook_id="msg_delivered_1")
    again = fire(loops, "email.delivered", webhook_id="msg_delivered_1")
    assert (first["duplicate"], again["duplicate"]) == (False, True)
    assert first["event_id"] == again["event_id"]
    assert stages() == [("loops.email_delivered", "delivered")]


@pytest.mark.parametrize(
    "event_type", ["email.opened", "email.clicked", "contact.unsubscribed", "mailingList.subscribed"]
)
def test_an_event_the_configuration_does_not_keep_costs_no_write_at_all(loops, aws_calls, event_type):
    answer = fire(loops, event_type)
    assert "go nowhere" in answer["ignored"] and "event_id" not in answer
    assert aws_calls.names() == []


def test_opens_and_clicks_are_kept_when_the_configuration_asks(configure, aws_calls):
    configure(keep_email_events=["email.opened", "email.clicked"], directus_feedback=None)
    loops = load_handler("loops_forwarder")
    assert fire(loops, "email.opened")["kept"] == "loops.email_opened"
    assert fire(loops, "email.clicked")["kept"] == "loops.email_clicked"
    assert "ignored" in fire(loops, "email.delivered")  # no longer kept: the list replaces the default
    assert stages() == [("loops.email_opened", "opened"), ("loops.email_clicked", "clicked")]


def test_the_kept_stage_names_the_email_and_what_sent_it(loops):
    fire(loops, "email.softBounced", sourceType="transactional", transactionalId="cm4transactional1")
    [line] = timeline(RelayTable(), email_key(ADA), time.time()).stages
    assert line.detail["type"] == "email.softBounced"
    assert (line.detail["source"], line.detail["transactional_id"]) == ("transactional", "cm4transactional1")
    assert line.detail["subject"] == "Welcome aboard" and line.detail["email_message_id"]
    assert line.detail["contact_id"] and line.detail["webhook_id"]


def test_a_kept_event_is_found_by_its_event_id(loops):
    answer = fire(loops, "email.delivered")
    assert resolve(RelayTable(), answer["event_id"]) == email_key(ADA)


def test_a_failing_ledger_write_is_logged_and_the_event_still_answered_202(loops, logs, capsys):
    capsys.readouterr()
    with mock.patch.object(RelayTable, "claim", side_effect=RuntimeError("DynamoDB is down")):
        answer = fire(loops, "email.hardBounced")
    assert answer["kept"] == "loops.email_hard_bounced"
    assert "could not write the ledger's email outcome; delivery goes on" in logs.messages("WARNING")
    assert "LedgerWriteFailed" in metric_names(capsys.readouterr().out)


def test_relay_trace_shows_the_email_stages(loops, aws, capsys):
    fire(loops, "campaign.email.sent", campaignId="cm4campaign0001")
    fire(loops, "email.delivered")
    fire(loops, "email.hardBounced")
    capsys.readouterr()
    with mock.patch("relay_cli.__main__.local_stack", return_value=relay_stack(aws, local=True)):
        assert relay_main(["--local", "trace", ADA]) == 0
    printed = capsys.readouterr().out
    for stage, outcome in (
        ("loops.email_sent", "sent"),
        ("loops.email_delivered", "delivered"),
        ("loops.email_hard_bounced", "hard-bounced"),
    ):
        assert stage in printed and outcome in printed
    assert "campaign_id=cm4campaign0001" in printed
    assert ADA not in printed  # masked


# --- events that cause deliveries are traced by their claims ------------------------------------------------
def test_an_event_that_causes_a_delivery_is_traced_by_its_claim_at_no_extra_write(feedback_loops, aws, aws_calls):
    answer = fire(feedback_loops, "email.hardBounced", eventTime=T)
    assert answer["actions"] == ["directus_feedback"] and "kept" not in answer
    assert "put_item" not in aws_calls.names("dynamodb")  # the receiver only checked for a duplicate
    queue = aws.ref("DeliveryQueue")
    [message] = receive(queue)
    aws_calls.dynamodb.clear()
    worker_run([sqs_record(message, queue)])
    claims = [call for name, call in aws_calls.dynamodb if name == "put_item"]
    assert len(claims) == 1 and claims[0]["Item"]["accepted"]["M"]["stage"]["S"] == "loops.email_hard_bounced"
    assert stages()[0] == ("loops.email_hard_bounced", "hard-bounced")


def test_the_feedback_job_carries_the_values_with_the_event_time_and_type_filled_in(feedback_loops, aws):
    fire(feedback_loops, "email.hardBounced", eventTime=T)
    fire(feedback_loops, "contact.unsubscribed", eventTime=T)
    bounced, unsubscribed = (parse_job(m["Body"]) for m in receive(aws.ref("DeliveryQueue")))
    assert isinstance(bounced, DirectusFeedbackJob)
    assert bounced.fields == {"email_status": "bounced", "why": "Loops said email.hardBounced", "suppressed": True}
    assert unsubscribed.fields == {"email_status": "unsubscribed", "email_status_at": "2027-01-15T08:00:00Z"}
    assert (bounced.collection, bounced.email, bounced.event_time) == ("leads", ADA, T)
    assert (unsubscribed.rank, bounced.rank) == (0, 1)  # their order in the configuration


def test_a_mailing_list_event_is_matched_under_either_of_its_names(configure, aws):
    configure(
        directus_feedback={"events": {"mailingList.unsubscribed": {"newsletter": False}}},
        keep_email_events=["contact.mailingList.subscribed"],
    )
    loops = load_handler("loops_forwarder")
    assert fire(loops, "contact.mailingList.unsubscribed")["actions"] == ["directus_feedback"]
    assert fire(loops, "mailingList.subscribed")["kept"] == "loops.list_subscribed"


def test_an_event_without_a_time_is_ordered_by_when_it_arrived(configure):
    config = configure(directus_feedback=FEEDBACK)
    before = time.time()
    event = parse_webhook({**loops_event("contact.unsubscribed", email=ADA), "eventTime": None})
    [job] = plan_webhook(event, "msg_1", b"{}", config, config.loops_webhook).jobs
    assert isinstance(job, DirectusFeedbackJob) and job.event_time >= before


# --- configuration ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("feedback", "says"),
    [
        ({"events": {"email.bounced": {"s": 1}}}, "'email.bounced' is no Loops event type"),
        ({"events": {}}, "at least 1 item"),
        ({"events": {"email.hardBounced": {}}}, "name at least one field to set"),
        ({"events": {"email.hardBounced": {"s": "{email}"}}}, "the placeholders are"),
        ({"events": {"email.hardBounced": {"s": "{event_time:%Y}"}}}, "the placeholders are"),
        ({"events": {"email.hardBounced": {"s": "{"}}}, "write"),
        ({"events": {"email.hardBounced": {"id": "x"}}}, "'id' is the item's key"),
        ({"events": {"email.hardBounced": {"s": "x"}}, "colection": "leads"}, "colection"),
    ],
)
def test_directus_feedback_that_makes_no_sense_stops_the_configuration_saying_why(feedback, says, tmp_path):
    with pytest.raises(ConfigError, match=says):
        config_with(tmp_path, directus_feedback=feedback)


def test_directus_feedback_without_a_write_back_must_name_its_collection(tmp_path):
    feedback = {"events": {"email.hardBounced": {"s": "bounced"}}}
    with pytest.raises(ConfigError, match="needs a collection"):
        config_with(tmp_path, directus_feedback=feedback, clay_callback=None)
    config = config_with(tmp_path, directus_feedback={**feedback, "collection": "people"}, clay_callback=None)
    target = config.feedback_target()
    assert (target.collection, target.api_secret) == ("people", "directus-api")


def test_the_feedback_fields_count_as_the_relays_own_writes_in_their_collection(tmp_path):
    config = config_with(tmp_path, directus_feedback=FEEDBACK)
    assert {"email_status", "email_status_at", "why", "suppressed", "icp_score"} <= config.write_back_fields("leads")
    assert config.write_back_fields("people") == set()


def test_an_unknown_kept_event_type_stops_the_configuration(tmp_path):
    with pytest.raises(ConfigError, match=r"'email\.read' is no Loops event type"):
        config_with(tmp_path, keep_email_events=["email.read"])


def config_with(folder, **changes: object) -> RelayConfig:
    config = default_config()
    for key, value in changes.items():
        if key in ("clay_callback",):
            config[key] = value
        else:
            config["loops_webhook"][key] = value
    path = folder / "relay.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return load_config(path)
