"""What the relay makes of Loops' account webhooks: contact.created becomes a Clay row of the
configured columns plus metadata, deduplicated on webhook-id; other event types become rows only
when listed in `forward_events`; an unreadable body is ignored (answered 2xx), an unknown
webhookSchemaVersion is logged and counted but accepted."""

from __future__ import annotations

import pytest

from clay_relay.config import LoopsMetadataColumns, LoopsWebhook
from clay_relay.jobs import ClayRowJob, content_id
from clay_relay.loops_webhooks import Ignored, clay_row_job, parse_webhook
from clay_relay.observability import metrics
from tests.loops_requests import CONTACT, IDENTITY, contact_created, loops_event_body
from tests.recorders import metric_names

FIELDS = {
    "email": "email",
    "firstName": "first_name",
    "lastName": "last_name",
    "source": "loops_source",
    "userGroup": "loops_user_group",
}
SETTINGS = LoopsWebhook(clay_target="leads", fields=FIELDS)
METADATA = {"loops_event": "contact.created", "loops_contact_id": "cm4contact0001", "loops_event_time": 1734425918}


def row_job(body: dict, settings: LoopsWebhook = SETTINGS, webhook_id: str = "msg_0001") -> ClayRowJob:
    return clay_row_job(parse_webhook(body), webhook_id, settings)


@pytest.fixture
def emitted(capsys):
    """Names of the metrics counted since the test began (Powertools prints them as EMF on flush)."""
    metrics.clear_metrics()

    def names() -> list[str]:
        metrics.flush_metrics()
        return metric_names(capsys.readouterr().out)

    yield names
    metrics.clear_metrics()


# --- contact.created -----------------------------------------------------------------------------------
def test_contact_created_becomes_a_row_of_the_mapped_columns_and_the_metadata_columns():
    job = row_job(contact_created())
    assert job.row == {
        "email": "grace.hopper@example.com",
        "first_name": "Grace",
        "last_name": "Hopper",
        "loops_source": "API",
        "loops_user_group": "",
        **METADATA,
    }


def test_the_row_goes_to_the_configured_clay_target_with_the_configured_dedupe_window():
    settings = LoopsWebhook(clay_target="signups", dedupe_window_seconds=3600)
    job = row_job(contact_created(), settings)
    assert (job.target, job.origin, job.dedupe_window_seconds) == ("signups", "loops/webhook", 3600)


def test_a_list_of_fields_keeps_their_names():
    job = row_job(contact_created(), LoopsWebhook(clay_target="leads", fields=["email", "companyName", "mailingLists"]))
    assert job.row == {
        "email": "grace.hopper@example.com",
        "companyName": "Compiler Co",
        "mailingLists": {"cm4list0001": True},
        **METADATA,
    }


def test_no_fields_mapping_keeps_every_contact_field_custom_ones_included():
    job = row_job(contact_created(), LoopsWebhook(clay_target="leads", fields=None))
    assert job.row == {**CONTACT, **METADATA}


def test_a_mapped_field_the_contact_lacks_is_left_out_not_sent_empty():
    contact = {k: v for k, v in CONTACT.items() if k != "lastName"}
    job = row_job(contact_created(contact))
    assert "last_name" not in job.row
    assert job.row["first_name"] == "Grace"


def test_metadata_columns_take_the_configured_names():
    metadata = LoopsMetadataColumns(event="event", contact_id="loops_id", event_time="happened_at")
    job = row_job(contact_created(), LoopsWebhook(clay_target="leads", fields=["email"], metadata=metadata))
    assert job.row == {
        "email": "grace.hopper@example.com",
        "event": "contact.created",
        "loops_id": "cm4contact0001",
        "happened_at": 1734425918,
    }


@pytest.mark.parametrize("column", ["event", "contact_id", "event_time"])
def test_a_null_metadata_column_is_left_out_of_the_row(column):
    metadata = LoopsMetadataColumns(**{column: None})
    job = row_job(contact_created(), LoopsWebhook(clay_target="leads", fields=["email"], metadata=metadata))
    assert f"loops_{column}" not in job.row
    assert len(job.row) == 3  # email and the two other metadata columns


def test_all_metadata_null_leaves_only_the_mapped_fields():
    metadata = LoopsMetadataColumns(event=None, contact_id=None, event_time=None)
    job = row_job(contact_created(), LoopsWebhook(clay_target="leads", fields=["email"], metadata=metadata))
    assert job.row == {"email": "grace.hopper@example.com"}


def test_the_contact_id_column_falls_back_to_the_contact_identity():
    contact = {k: v for k, v in CONTACT.items() if k != "id"}
    job = row_job(contact_created(contact, contactIdentity={**IDENTITY, "id": "cm4identity9"}))
    assert job.row["loops_contact_id"] == "cm4identity9"


def test_the_contact_record_id_wins_over_the_contact_identity():
    job = row_job(contact_created(contactIdentity={**IDENTITY, "id": "cm4identity9"}))
    assert job.row["loops_contact_id"] == "cm4contact0001"


@pytest.mark.parametrize(
    "body",
    [
        {k: v for k, v in contact_created().items() if k != "contact"},
        {**contact_created(), "contact": None},
        contact_created(contact={}),
    ],
    ids=["no contact", "null contact", "empty contact"],
)
def test_contact_created_without_a_contact_record_is_ignored(body):
    with pytest.raises(Ignored, match="without a contact record"):
        row_job(body)


# --- the event id: the webhook-id, never the content or the clock ---------------------------------------------
def test_the_same_webhook_id_gives_the_same_event_id_whatever_the_body():
    first = row_job(contact_created(), webhook_id="msg_same")
    resent = row_job(
        contact_created({**CONTACT, "firstName": "Amazing Grace"}, eventTime=1734429999), webhook_id="msg_same"
    )
    assert first.event_id == resent.event_id
    assert first.job_id != resent.job_id


def test_different_webhook_ids_give_different_event_ids_for_the_same_body():
    assert (
        row_job(contact_created(), webhook_id="msg_one").event_id
        != row_job(contact_created(), webhook_id="msg_two").event_id
    )


def test_the_event_id_is_derived_from_the_origin_and_the_webhook_id():
    assert row_job(contact_created(), webhook_id="msg_x").event_id == content_id("loops/webhook", "msg_x")


# --- other event types ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "event_name", ["contact.unsubscribed", "contact.deleted", "email.opened", "testing.testEvent", "contact.updated"]
)
def test_other_event_types_are_ignored_unless_forwarded(event_name):
    with pytest.raises(Ignored, match=r"forward_events") as ignored:
        row_job(loops_event_body(event_name))
    assert event_name in str(ignored.value)


def test_an_event_type_not_in_forward_events_is_ignored_when_others_are_forwarded():
    settings = LoopsWebhook(clay_target="leads", forward_events=("contact.unsubscribed",))
    with pytest.raises(Ignored):
        row_job(loops_event_body("contact.deleted"), settings)


def test_a_forwarded_event_becomes_a_row_of_its_contact_identity_and_its_own_fields():
    settings = LoopsWebhook(clay_target="leads", fields=None, forward_events=("contact.mailingList.subscribed",))
    mailing_list = {"id": "cm4list0001", "name": "Newsletter", "description": None, "isPublic": True}
    job = row_job(loops_event_body("contact.mailingList.subscribed", mailingList=mailing_list), settings)
    assert job.row == {
        "id": "cm4contact0001",
        "email": "grace.hopper@example.com",
        "userId": None,
        "mailingList": mailing_list,
        "loops_event": "contact.mailingList.subscribed",
        "loops_contact_id": "cm4contact0001",
        "loops_event_time": 1734425999,
    }
    assert job.target == "leads"


def test_a_forwarded_event_goes_through_the_fields_mapping_too():
    settings = LoopsWebhook(clay_target="leads", fields=FIELDS, forward_events=("contact.unsubscribed",))
    job = row_job(loops_event_body("contact.unsubscribed"), settings)
    assert job.row == {
        "email": "grace.hopper@example.com",
        "loops_event": "contact.unsubscribed",
        "loops_contact_id": "cm4contact0001",
        "loops_event_time": 1734425999,
    }


def test_a_forwarded_event_is_deduplicated_on_its_webhook_id_too():
    settings = LoopsWebhook(clay_target="leads", forward_events=("contact.unsubscribed",))
    first = row_job(loops_event_body("contact.unsubscribed"), settings, webhook_id="msg_u")
    again = row_job(loops_event_body("contact.unsubscribed", eventTime=1), settings, webhook_id="msg_u")
    assert first.event_id == again.event_id


@pytest.mark.parametrize("event_name", ["email.opened", "campaign.email.sent"])
def test_a_forwarded_email_event_keeps_the_contacts_email_address(event_name):
    settings = LoopsWebhook(clay_target="leads", fields=FIELDS, forward_events=(event_name,))
    email = {"id": "cm4email0001", "emailMessageId": "cm4message0001", "subject": "Welcome aboard"}
    body = loops_event_body(event_name, sourceType="campaign", campaignId="cm4campaign01", email=email)
    assert row_job(body, settings).row["email"] == "grace.hopper@example.com"


# --- parsing -------------------------------------------------------------------------------------------
def test_event_specific_fields_are_kept_on_the_parsed_event():
    event = parse_webhook(loops_event_body("contact.mailingList.subscribed", mailingList={"id": "l1"}))
    assert event.model_extra == {"mailingList": {"id": "l1"}}
    assert event.contactIdentity.email == "grace.hopper@example.com"


@pytest.mark.parametrize("version", ["2.0.0", "1.0", "1.0.1"], ids=lambda v: f"version {v}")
def test_an_unknown_schema_version_is_accepted_logged_and_counted(version, logs, emitted):
    event = parse_webhook(contact_created(webhookSchemaVersion=version))
    assert event.eventName == "contact.created"
    assert "LoopsWebhookUnknownSchema" in emitted()
    [warning] = [line for line in logs.lines if line["message"] == "unknown Loops webhookSchemaVersion"]
    assert warning["level"] == "WARNING" and warning["version"] == version


def test_a_missing_schema_version_is_counted_as_unknown_but_accepted(emitted):
    body = {k: v for k, v in contact_created().items() if k != "webhookSchemaVersion"}
    assert row_job(body).row["first_name"] == "Grace"
    assert "LoopsWebhookUnknownSchema" in emitted()


def test_an_unknown_schema_version_still_makes_a_row(emitted):
    assert row_job(contact_created(webhookSchemaVersion="9.9.9")).row["email"] == "grace.hopper@example.com"


def test_the_known_schema_version_is_not_counted(logs, emitted):
    parse_webhook(contact_created())
    assert "LoopsWebhookUnknownSchema" not in emitted()
    assert logs.messages("WARNING") == []


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"hello": "world"},
        {"eventName": None},
        {"eventName": 42},
        {"eventName": "contact.created", "contact": "grace.hopper@example.com"},
        {"eventName": "contact.unsubscribed", "contactIdentity": ["cm4contact0001"]},
        {"eventName": "contact.created", "eventTime": "yesterday"},
    ],
    ids=["empty", "not Loops", "null eventName", "numeric eventName", "contact string", "identity list", "bad time"],
)
def test_an_unreadable_body_is_ignored_and_counted(body, emitted):
    with pytest.raises(Ignored, match="not a Loops webhook event"):
        parse_webhook(body)
    assert "LoopsWebhooksUnreadable" in emitted()


def test_a_contact_created_is_a_new_lead_and_a_forwarded_event_a_change_of_one():
    """The spend guard skips a new lead whose person already went to Clay, never a deliberate change."""
    assert row_job(contact_created()).lead_update is False
    forwarding = LoopsWebhook(clay_target="leads", forward_events=["email.opened"])
    assert row_job(loops_event_body("email.opened", email={"subject": "Hi"}), forwarding).lead_update is True
