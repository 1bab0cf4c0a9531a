"""The use cases behind the routes (clay_relay.receivers), called with a runtime and a request as
the resolver calls them: every outcome is a typed receipt, and a receipt's JSON without its unset
fields is the answer's body, keys in the order senders have always seen."""

from __future__ import annotations

import pytest
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from clay_relay.errors import Unauthorized, UnknownRoute
from clay_relay.jobs import content_id
from clay_relay.receivers.directus_event import receive_directus_event
from clay_relay.receivers.enriched_lead import receive_enriched_lead
from clay_relay.receivers.loops_forwarding import forward_loops_contact, forward_loops_event
from clay_relay.receivers.loops_webhook import receive_loops_webhook
from clay_relay.receivers.receipts import (
    DirectusReceipt,
    ForwardingReceipt,
    LeadReceipt,
    LoopsWebhookReceipt,
)
from clay_relay.runtime import get_runtime
from tests.contract.attack_requests import DIRECTUS_EVENT, LEAD, LOOPS_CONTACT, LOOPS_EVENT, SECRETS, request
from tests.loops_requests import contact_created, loops_event_body


@pytest.fixture
def runtime(aws, put_secret, use_config):
    use_config()
    for name, value in SECRETS.items():
        put_secret(name, value)
    return get_runtime()


def sent(route: str, body: object = None, **changes) -> APIGatewayProxyEventV2:
    return APIGatewayProxyEventV2(request(route, body, **changes))


def body_of(receipt) -> list[tuple[str, object]]:
    """The answer's body as key/value pairs in order (what http_api.receipt_response sends)."""
    return list(receipt.model_dump(mode="json", exclude_none=True).items())


def test_a_directus_event_of_one_item_is_receipted_with_its_rows_id(runtime):
    receipt = receive_directus_event(runtime, "leads", sent("directus"))
    assert isinstance(receipt, DirectusReceipt)
    [row] = receipt.rows
    assert [key for key, _ in body_of(receipt)] == ["accepted", "event_id", "duplicate", "rows"]
    assert (receipt.event_id, receipt.duplicate, row.duplicate) == (row.event_id, False, False)


def test_a_directus_event_of_several_items_is_receipted_with_the_events_id(runtime):
    body = {**DIRECTUS_EVENT, "event": "leads.items.update", "keys": [2, "3"], "payload": {"first_name": "A"}}
    receipt = receive_directus_event(runtime, "leads", sent("directus", body))
    assert receipt.event_id == content_id("directus/leads", body)
    assert len(receipt.rows) == 2


def test_a_skipped_directus_event_is_receipted_with_why_and_no_rows(runtime):
    body = {**DIRECTUS_EVENT, "event": "leads.items.update", "keys": ["2"], "payload": {"unmapped": 1}}
    receipt = receive_directus_event(runtime, "leads", sent("directus", body))
    assert body_of(receipt) == [
        ("accepted", True),
        ("event_id", content_id("directus/leads", body)),
        ("duplicate", False),
        ("skipped", "no mapped field changed"),
    ]


def test_an_unknown_directus_source_is_refused_before_authentication(runtime):
    with pytest.raises(UnknownRoute, match="no Directus source named 'nope'"):
        receive_directus_event(runtime, "nope", sent("directus", headers={"authorization": None}))


def test_an_enriched_lead_is_receipted_with_its_route_and_actions(runtime):
    receipt = receive_enriched_lead(runtime, sent("clay", {**LEAD, "icp_score": 95}))
    assert isinstance(receipt, LeadReceipt)
    assert [key for key, _ in body_of(receipt)] == ["accepted", "route", "hot", "actions", "event_id", "duplicate"]
    assert (receipt.route, receipt.hot, receipt.duplicate) == ("outreach", True, False)


def test_a_lead_below_every_threshold_is_receipted_as_skip_with_no_actions(runtime):
    receipt = receive_enriched_lead(runtime, sent("clay", {**LEAD, "icp_score": "12"}))
    assert (receipt.route, receipt.hot, receipt.actions, receipt.duplicate) == ("skip", False, [], False)


def test_a_loops_contact_created_is_receipted_with_its_webhook_id_and_row(runtime):
    receipt = receive_loops_webhook(runtime, sent("loops-webhook", contact_created()))
    assert isinstance(receipt, LoopsWebhookReceipt)
    assert [key for key, _ in body_of(receipt)] == ["accepted", "webhook_id", "event_id", "duplicate", "actions"]
    assert receipt.event_id == content_id("loops/webhook", receipt.webhook_id)
    assert receipt.actions == ["clay"]


def test_a_loops_email_outcome_kept_for_the_trace_is_receipted_with_its_stage(runtime):
    receipt = receive_loops_webhook(runtime, sent("loops-webhook", loops_event_body("email.delivered")))
    assert [key for key, _ in body_of(receipt)] == ["accepted", "webhook_id", "event_id", "duplicate", "kept"]
    assert (receipt.kept, receipt.event_id) == (
        "loops.email_delivered",
        content_id("loops/webhook", receipt.webhook_id),
    )


def test_an_ignored_loops_webhook_is_receipted_with_why_and_no_row(runtime):
    receipt = receive_loops_webhook(runtime, sent("loops-webhook", loops_event_body("email.opened")))
    assert [key for key, _ in body_of(receipt)] == ["accepted", "webhook_id", "ignored"]
    assert "email.opened events go nowhere" in receipt.ignored


def test_an_unsigned_loops_webhook_is_refused(runtime):
    with pytest.raises(Unauthorized):
        receive_loops_webhook(runtime, sent("loops-webhook", signed=False))


@pytest.mark.parametrize(
    ("forward", "route", "body"),
    [(forward_loops_contact, "loops-contacts", LOOPS_CONTACT), (forward_loops_event, "loops-events", LOOPS_EVENT)],
)
def test_a_forwarded_contact_or_event_is_receipted_with_its_content_id(runtime, forward, route, body):
    receipt = forward(runtime, sent(route, body))
    assert isinstance(receipt, ForwardingReceipt)
    assert body_of(receipt) == [
        ("accepted", True),
        ("event_id", content_id(route.replace("-", "/"), body)),
        ("duplicate", False),
    ]


def test_a_use_case_called_without_its_section_refuses_with_the_routes_404(aws, use_config):
    use_config(lambda config: config.pop("loops_forwarding"))
    with pytest.raises(UnknownRoute, match=r"forwarding to Loops is not configured"):
        forward_loops_event(get_runtime(), sent("loops-events"))
