"""No secret, token, API key, signing secret, full email address or request body reaches the logs.

Every flow runs with valid requests: the Directus trigger, the Clay callback (token and HMAC
signature), the Loops webhook (signed by the reference implementation; a hard bounce written back
into Directus, every event forwarded to another endpoint) and the Clay → Loops routes; then the
delivery worker delivers every job to the local stack's sandboxes (Clay, Loops, Slack, Zapier,
Directus, the forward receiver), and a few deliveries fail the ways destinations fail (an error that
echoes the lead's email, a 5xx, a refused API key). Rejected requests run too. Everything written is
scanned: the Powertools JSON logs (at DEBUG), the EMF metrics and anything else on stdout/stderr,
and every other logger from INFO up.
"""

from __future__ import annotations

import base64
import json
import logging
import re

import pytest

from clay_relay.jobs import DESTINATIONS
from clay_relay.observability import logger
from tests.contract.attack_requests import (
    DIRECTUS_TOKEN,
    HMAC_KEY,
    SECRETS,
    hmac_signature,
    raw,
    request,
    signed_by_hmac,
)
from tests.destinations import DIRECTUS_API_TOKEN, LOOPS_API_KEY, SLACK_PATH, ZAPIER_PATH, Answer
from tests.invocations import LambdaContext, load_handler
from tests.loops_requests import CLAY_TOKEN, SECRET, contact_created, loops_event_body
from tests.queues import receive, sqs_record
from tests.queues import run_worker as run_worker_batch

CLAY_WEBHOOK_PATH = "/clay/webhooks/leads-secret-slug-3f9a"
CLAY_WEBHOOK_TOKEN = "clay-webhook-auth-token-7c1e"
FORWARD_PATH = "/forward/archive-secret-slug-51d0"
FORWARD_SECRET = "whsec_" + base64.b64encode(b"forward-endpoint-signing-key-04!").decode()
OPENER = "Loved your keynote on compilers at PyCon, the part on ranges especially"
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")  # masked ones (a***@…) do not match

HOT = {
    "email": "Ada.Lovelace@example.com",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "company_name": "Analytical Engines",
    "job_title": "CTO",
    "employee_count": "1,200",
    "industry": "Computing",
    "linkedin_url": "https://www.linkedin.com/in/ada-lovelace-1815",
    "icp_score": "95",
    "personalized_opener": OPENER,
    "directus_id": 7,
}
NURTURE = {"email": "alan.turing@example.com", "first_name": "Alan", "icp_score": "65", "company_name": "Bletchley"}
SKIP = {"email": "charles.babbage@example.com", "icp_score": 10}
SKIP_WITHOUT_EMAIL = {"lead_id": "lead-0042", "icp_score": 10}
SIGNED_LEAD = {"email": "edsger.dijkstra@example.com", "first_name": "Edsger", "icp_score": 85}
DIRECTUS_EVENTS = [
    {
        "event": "leads.items.create",
        "collection": "leads",
        "key": 7,
        "payload": {"email": "grace.hopper@example.com", "first_name": "Grace", "company": "US Navy"},
    },
    {"event": "leads.items.update", "collection": "leads", "keys": ["7"], "payload": {"job_title": "Rear Admiral"}},
    {"event": "leads.items.delete", "collection": "leads", "keys": ["7"], "payload": ["7"]},
]
LOOPS_CONTACT = {"email": "margaret.hamilton@example.com", "firstName": "Margaret", "mailingLists": {"list1": True}}
LOOPS_EVENT = {"email": "katherine.johnson@example.com", "eventName": "demo_requested", "eventProperties": {"seats": 4}}
WEBHOOK_CONTACT = {
    "id": "cm4contact0042",
    "email": "barbara.liskov@example.com",
    "firstName": "Barbara",
    "lastName": "Liskov",
    "source": "form",
    "userGroup": "",
}


@pytest.fixture
def everything_logged(logs, capsys, caplog):
    """All that was written, as one text: the relay's logger (at DEBUG, the most the LogLevel
    parameter allows), stdout and stderr (EMF metrics), and every other logger from INFO up."""
    level = logger.log_level
    logger.setLevel(logging.DEBUG)
    caplog.set_level(logging.INFO)

    def text() -> str:
        out, err = capsys.readouterr()
        return "\n".join([logs.text, out, err, caplog.text])

    yield text
    logger.setLevel(level)


@pytest.fixture
def relay(aws, destinations, use_config, put_secret):
    """Every route configured (Zapier on for both routes, HMAC signatures accepted) with its secrets,
    and the Clay table's webhook URL (with its token) on the Clay sandbox."""

    def edit(config: dict) -> None:
        config["clay_callback"]["hmac_secret"] = "clay-callback-hmac-keys"
        config["clay_callback"]["zapier"] = {"webhook_secret": "zapier-webhook-url", "routes": ["outreach", "nurture"]}
        config["loops_webhook"]["forward"] = [
            {"name": "archive", "url_secret": "forward-url", "signing_secret": "forward-secret", "events": ["*"]}
        ]

    use_config(edit)
    put_secret("forward-url", destinations.base + FORWARD_PATH)
    put_secret("forward-secret", FORWARD_SECRET)
    for name, value in SECRETS.items():
        put_secret(name, value)
    put_secret("clay-webhooks-leads", [{"url": destinations.base + CLAY_WEBHOOK_PATH, "token": CLAY_WEBHOOK_TOKEN}])
    destinations.sandboxes.clay.tokens = {CLAY_WEBHOOK_PATH.rsplit("/", 1)[-1]: CLAY_WEBHOOK_TOKEN}
    destinations.sandboxes.directus.items[("leads", "7")] = {"id": 7, "email": "ada.lovelace@example.com"}
    handlers = {name: load_handler(name) for name in ("directus_trigger", "clay_callback", "loops_forwarder")}

    def send(event: dict) -> dict:
        function = {"directus": "directus_trigger", "clay": "clay_callback", "loops": "loops_forwarder"}
        answer = handlers[function[event["rawPath"].split("/")[1]]](event, LambdaContext())
        return {"status": answer["statusCode"], "body": json.loads(answer["body"])}

    return send


def deliver_everything(aws) -> int:
    """The delivery worker over every queued job, batch after batch, until the queue is empty (jobs
    that will be retried are hidden by the worker). Returns how many jobs it took up."""
    queue, taken = aws.ref("DeliveryQueue"), 0
    while messages := receive(queue):
        run_worker_batch([sqs_record(message, queue) for message in messages], LambdaContext())
        taken += len(messages)
    return taken


def secrets_in_play(destinations) -> list[str]:
    """Every secret value of the run, and what derives from one (a signing key, the URL paths that
    are the secret of an incoming webhook)."""
    whsec_key = SECRET.removeprefix("whsec_")
    values = [
        DIRECTUS_TOKEN,
        "directus-token-next",
        CLAY_TOKEN,
        "clay-callback-token-next",
        HMAC_KEY,
        SECRET,
        whsec_key,
        base64.b64decode(whsec_key).decode(),
        LOOPS_API_KEY,
        DIRECTUS_API_TOKEN,
        CLAY_WEBHOOK_TOKEN,
        CLAY_WEBHOOK_PATH,
        SLACK_PATH,
        ZAPIER_PATH,
        destinations.base + SLACK_PATH,
        FORWARD_PATH,
        FORWARD_SECRET,
        FORWARD_SECRET.removeprefix("whsec_"),
        base64.b64decode(FORWARD_SECRET.removeprefix("whsec_")).decode(),
    ]
    return values


def assert_clean(text: str, secrets: list[str], bodies: list[bytes]) -> None:
    leaked = [secret for secret in secrets if secret in text]
    assert leaked == [], f"secrets in the logs: {leaked}"
    assert EMAIL.findall(text) == [], "an email address in clear text"
    for body in bodies:
        forms = [body.decode("utf-8", "replace")]
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict | list) and parsed:
            forms += [json.dumps(parsed), json.dumps(parsed, separators=(",", ":")), repr(parsed)]
        for form in forms:
            for written in (form, json.dumps(form)[1:-1]):  # as is, or inside a JSON string of a log line
                assert written not in text, f"a request body in the logs: {written[:80]}"


def test_no_secret_email_or_body_is_logged_by_any_flow_or_delivery(
    relay, aws, destinations, everything_logged, http_stub, put_secret
):
    events = [
        *[request("directus", body) for body in DIRECTUS_EVENTS],
        *[request("clay", lead) for lead in (HOT, NURTURE, SKIP)],
        signed_by_hmac(SIGNED_LEAD),
        request("loops-webhook", contact_created(WEBHOOK_CONTACT)),
        request("loops-webhook", contact_created(WEBHOOK_CONTACT, webhookSchemaVersion="2.0.0")),
        request("loops-webhook", loops_event_body("email.opened", email={"subject": "Hi"})),
        request(
            "loops-webhook",
            loops_event_body("email.hardBounced", contactIdentity={"id": "c7", "email": "Ada.Lovelace@example.com"}),
        ),
        request("loops-webhook", {"not": "a loops event"}),
        request("loops-contacts", LOOPS_CONTACT),
        request("loops-events", LOOPS_EVENT),
    ]
    for event in events:
        assert relay(event)["status"] == 202, event["rawPath"]
    assert deliver_everything(aws) >= 15

    # Deliveries that fail: a Zapier hook answering with the lead's email in its error, a Clay 503 (parked),
    # a Loops API key that was revoked.
    http_stub.answer("/zapier/broken", Answer(400, body=b'{"error": "lead alan.turing@example.com refused"}'))
    put_secret("zapier-webhook-url", http_stub.url("/zapier/broken"))
    destinations.sandboxes.add_fault({"destination": "clay", "status": 503})
    put_secret("loops-api-key", "revoked-loops-api-key-0001")
    failing = [
        request("clay", {**NURTURE, "company_name": "Bletchley Park"}),
        # Another person: Grace already went to the target, and would be skipped (one row per person).
        request("directus", {**DIRECTUS_EVENTS[0], "key": 8, "payload": {"email": "dorothy.vaughan@example.com"}}),
    ]
    for event in failing:
        assert relay(event)["status"] == 202
    assert deliver_everything(aws) >= 3

    for destination in DESTINATIONS:
        assert destinations.received(destination), f"nothing reached {destination}"
    text = everything_logged()
    assert '"message":"delivered"' in text and '"Delivered"' in text  # the scan read real logs and metrics
    assert "moved to the dead-letter queue" in text
    # Clay's 503: its row is parked while Clay is down (worker.parking), with the error as its reason.
    assert "parked while its destination is down" in text and "destination down: jobs parked until it is back" in text
    assert "a***@example.com" in text  # the refused lead's email, masked
    sent_out = [raw(d["body"]) for d in destinations.sandboxes.deliveries.all() if d["body"] is not None]
    bodies = [event_body(event) for event in events + failing] + sent_out
    assert_clean(text, [*secrets_in_play(destinations), "revoked-loops-api-key-0001", OPENER], bodies)


def test_rejected_requests_leave_no_credential_email_or_body_in_the_logs(relay, destinations, everything_logged):
    presented = ["Bearer wrong-token-3c2d1e", "Bearer directus-token-currenT", f"Bearer {CLAY_TOKEN}x"]
    events = [request(route, headers={"authorization": value}) for value in presented for route in ("directus", "clay")]
    forged = request("loops-webhook", contact_created(WEBHOOK_CONTACT))
    forged["headers"]["webhook-signature"] = "v1," + base64.b64encode(b"forged-signature-bytes-0123456789").decode()
    stale = request("loops-webhook", contact_created(WEBHOOK_CONTACT))
    stale["headers"]["webhook-timestamp"] = "1000000000"
    bad_hmac = signed_by_hmac(SIGNED_LEAD, signature=lambda body: hmac_signature(body, "an-attackers-key"))
    malformed = [
        request("directus", b'{"event": "leads.items.create", "payload": {"email": "ada@example.com" "x"}}'),
        request("clay", {"email": "not-an-email@", "icp_score": "high"}),
        request("loops-contacts", {"email": ["grace@example.com"], "note": "x" * 600}),
        request("directus", {**DIRECTUS_EVENTS[0], "collection": "secret_collection"}),
    ]
    for event in [*events, forged, stale, bad_hmac, *malformed]:
        assert 400 <= relay(event)["status"] < 500
    text = everything_logged()
    assert "request rejected" in text  # the scan read the rejections' logs
    credentials = [value.removeprefix("Bearer ") for value in presented]
    credentials += [forged["headers"]["webhook-signature"], bad_hmac["headers"]["x-relay-signature"]]
    bodies = [event_body(event) for event in [*events, forged, stale, bad_hmac, *malformed]]
    assert_clean(text, [*secrets_in_play(destinations), *credentials], bodies)


def event_body(event: dict) -> bytes:
    body = event.get("body") or ""
    return base64.b64decode(body) if event.get("isBase64Encoded") else body.encode("utf-8", "surrogateescape")


def test_the_scan_finds_a_secret_or_a_body_wherever_it_is_written(everything_logged):
    """(The scan itself: it reads the relay's logger and the others, and finds a body even inside a
    JSON string of a log line.)"""
    logger.info("lead received", extra={"token": DIRECTUS_TOKEN, "body": json.dumps(SKIP_WITHOUT_EMAIL)})
    logging.getLogger("urllib3.connectionpool").warning("POST %s", SLACK_PATH)
    print(json.dumps({"_aws": {}, "lead": LOOPS_API_KEY}))
    text = everything_logged()
    for secret in (DIRECTUS_TOKEN, SLACK_PATH, LOOPS_API_KEY):
        with pytest.raises(AssertionError, match="secrets in the logs"):
            assert_clean(text, [secret], [])
    with pytest.raises(AssertionError, match="a request body"):
        assert_clean(text, [], [raw(SKIP_WITHOUT_EMAIL)])
