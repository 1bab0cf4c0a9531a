"""Loops' API (`https://app.loops.so/api`, base overridable with LOOPS_API_BASE): contacts and events.

What its answers mean for delivery: 200 delivered; 409 on `events/send` means the Idempotency-Key
was used within 24 h, i.e. this very event was already sent (delivered, not an error); 429 and
5xx are retried (after `x-ratelimit-*` says so); 400 (the message names the problem) and 401 (bad
API key) cannot succeed by retrying and go to the dead-letter queue with Loops' message.
"""

from __future__ import annotations

import os

from clay_relay.config import LoopsSettings
from clay_relay.jobs import LoopsContactJob, LoopsEventJob
from clay_relay.leads import EnrichedLead
from clay_relay.outbound import Outcome, send_json
from clay_relay.secrets import SecretUnavailable, read_secret

DEFAULT_API_BASE = "https://app.loops.so/api"
MAX_VALUE_LENGTH = 500  # Loops rejects longer values

# EnrichedLead field → Loops contact property (firstName/lastName are Loops' own).
CONTACT_PROPERTIES = {
    "first_name": "firstName",
    "last_name": "lastName",
    "company_name": "companyName",
    "job_title": "jobTitle",
    "industry": "industry",
    "employee_count": "employeeCount",
    "linkedin_url": "linkedinUrl",
    "icp_score": "icpScore",
}


def _fit(value: object) -> object:
    if isinstance(value, str) and len(value) > MAX_VALUE_LENGTH:
        return value[: MAX_VALUE_LENGTH - 1] + "…"
    return value


def contact_properties(lead: EnrichedLead) -> dict:
    values = {prop: _fit(getattr(lead, field)) for field, prop in CONTACT_PROPERTIES.items()}
    return {k: v for k, v in values.items() if v is not None}


def event_payload(lead: EnrichedLead, settings: LoopsSettings) -> dict:
    properties = contact_properties(lead)
    event_properties = {**properties, "personalizedOpener": _fit(lead.personalized_opener)}
    return {
        "email": lead.email,
        "eventName": settings.outreach_event_name,
        **{k: v for k, v in properties.items() if k in ("firstName", "lastName")},
        "eventProperties": {k: v for k, v in event_properties.items() if v is not None},
    }


def contact_payload(lead: EnrichedLead, settings: LoopsSettings) -> dict:
    payload = {"email": lead.email, "source": settings.source, **contact_properties(lead)}
    if settings.nurture_mailing_list_id:
        payload["mailingLists"] = {settings.nurture_mailing_list_id: True}
    return payload


def _call(method: str, path: str, settings: LoopsSettings, payload: dict, headers: dict | None = None) -> Outcome:
    try:
        api_key = read_secret(settings.api_key_secret).strip()
    except SecretUnavailable as error:
        return Outcome(delivered=False, retryable=True, reason=str(error), reached=False)
    base = os.environ.get("LOOPS_API_BASE", DEFAULT_API_BASE).rstrip("/")
    return send_json(method, f"{base}{path}", payload, {"Authorization": f"Bearer {api_key}", **(headers or {})})


def send_event(job: LoopsEventJob, settings: LoopsSettings) -> Outcome:
    outcome = _call("POST", "/v1/events/send", settings, job.payload, {"Idempotency-Key": job.event_id})
    if outcome.status == 409:
        return Outcome(
            delivered=True, retryable=False, reason="already sent (Idempotency-Key seen by Loops)", status=409
        )
    return outcome


def update_contact(job: LoopsContactJob, settings: LoopsSettings) -> Outcome:
    return _call("PUT", "/v1/contacts/update", settings, job.payload)
