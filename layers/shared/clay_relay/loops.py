"""Loops' API (`https://app.loops.so/api`, the LOOPS_API_BASE setting): contacts and events.

What its answers mean for delivery: 200 delivered; 409 on `events/send` means the Idempotency-Key
was used within 24 h, i.e. this very event was already sent (delivered, not an error); 429 and
5xx are retried (after `x-ratelimit-*` says so); 400 (the message names the problem) and 401 (bad
API key) cannot succeed by retrying and go to the dead-letter queue with Loops' message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clay_relay import email_address, javascript
from clay_relay.config import LoopsApi, LoopsSettings
from clay_relay.errors import InvalidPayload
from clay_relay.jobs import LoopsContactJob, LoopsEventJob
from clay_relay.leads import EnrichedLead
from clay_relay.outbound import Outcome, send_json
from clay_relay.runtime import get_runtime
from clay_relay.secrets import SecretUnavailable, read_secret

if TYPE_CHECKING:
    from typing import Any

MAX_VALUE_LENGTH = 500  # Loops rejects longer values (counted as JavaScript does: UTF-16 code units)

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
    return javascript.shortened(value, MAX_VALUE_LENGTH) if isinstance(value, str) else value


def contact_properties(lead: EnrichedLead) -> dict[str, object]:
    values = {prop: _fit(getattr(lead, field)) for field, prop in CONTACT_PROPERTIES.items()}
    return {k: v for k, v in values.items() if v is not None}


def event_payload(lead: EnrichedLead, settings: LoopsSettings) -> dict[str, Any]:
    properties = contact_properties(lead)
    event_properties = {**properties, "personalizedOpener": _fit(lead.personalized_opener)}
    return {
        "email": lead.email,
        "eventName": settings.outreach_event_name,
        **{k: v for k, v in properties.items() if k in ("firstName", "lastName")},
        "eventProperties": {k: v for k, v in event_properties.items() if v is not None},
    }


def contact_payload(lead: EnrichedLead, settings: LoopsSettings) -> dict[str, Any]:
    payload = {"email": lead.email, "source": settings.source, **contact_properties(lead)}
    if settings.nurture_mailing_list_id:
        payload["mailingLists"] = {settings.nurture_mailing_list_id: True}
    return payload


def _problems_of_values(values: dict[str, Any], prefix: str = "") -> list[dict[str, str]]:
    """Loops' properties are flat: each a string (at most 500 characters), number, boolean or null,
    named by a key of at most 500 characters."""
    problems = []
    for key, value in values.items():
        field = f"{prefix}{javascript.shown(key)}"
        if javascript.length(key) > MAX_VALUE_LENGTH:
            problems.append({"field": field, "problem": f"a key longer than Loops' {MAX_VALUE_LENGTH} characters"})
        if isinstance(value, dict | list):
            problems.append({"field": field, "problem": "must be a string, number, boolean or null"})
        elif isinstance(value, str) and javascript.length(value) > MAX_VALUE_LENGTH:
            problems.append({"field": field, "problem": f"longer than Loops' {MAX_VALUE_LENGTH} characters"})
    return problems


def _problems_of_mailing_lists(lists: object) -> list[dict[str, str]]:
    if not isinstance(lists, dict):
        return [{"field": "mailingLists", "problem": 'must be an object like {"<list id>": true}'}]
    problems = []
    for list_id, subscribed in lists.items():
        field = f"mailingLists.{javascript.shown(list_id)}"
        if javascript.length(list_id) > MAX_VALUE_LENGTH:
            problems.append({"field": field, "problem": f"a key longer than Loops' {MAX_VALUE_LENGTH} characters"})
        if not isinstance(subscribed, bool):
            problems.append({"field": field, "problem": "must be true (subscribe) or false (unsubscribe)"})
    return problems


def forwarded_request(body: dict[str, Any], *, event: bool) -> dict[str, Any]:
    """A contact or event from Clay, checked the way Loops will check it, so that the sender
    learns now (422 naming the field) instead of the request dying later in the dead-letter queue.
    Keys JavaScript treats as an object's prototype are refused wherever they are."""
    nested = {"mailingLists", "eventProperties"} if event else {"mailingLists"}
    problems = [
        {"field": path, "problem": "a key JavaScript reads as the object's prototype"}
        for path in javascript.prototype_keys(body)
    ]
    identity = {k: body.get(k) for k in ("email", "userId")}
    # Loops refuses an identity that is no string, even beside a good one (it would die in the DLQ).
    not_text = [field for field, value in identity.items() if value is not None and not isinstance(value, str)]
    problems += _problems_of_values({k: v for k, v in body.items() if k not in nested and k not in not_text})
    problems += [{"field": field, "problem": "must be a string"} for field in not_text]
    if not any(isinstance(v, str) and v.strip() for v in identity.values()) and "email" not in not_text:
        problems.append({"field": "email", "problem": "an email or a userId is required"})
    email = body.get("email")
    if isinstance(email, str) and email.strip() and (problem := email_address.problem(email.strip())):
        problems.append({"field": "email", "problem": problem})
    if event:
        name = body.get("eventName")
        if not (isinstance(name, str) and name.strip()):
            problems.append({"field": "eventName", "problem": "required"})
        if "eventProperties" in body:
            properties = body["eventProperties"]
            if isinstance(properties, dict):
                problems += _problems_of_values(properties, "eventProperties.")
            else:
                problems.append({"field": "eventProperties", "problem": "must be an object"})
    if "mailingLists" in body:
        problems += _problems_of_mailing_lists(body["mailingLists"])
    if problems:
        raise InvalidPayload(f"not a valid Loops {'event' if event else 'contact'}", fields=problems)
    payload = dict(body)
    if isinstance(payload.get("email"), str):
        payload["email"] = payload["email"].strip()
    return payload


def _call(
    method: str, path: str, api: LoopsApi, job: LoopsEventJob | LoopsContactJob, headers: dict[str, str] | None = None
) -> Outcome:
    try:
        api_key = read_secret(api.api_key_secret).strip()
    except SecretUnavailable as error:
        return Outcome(delivered=False, retryable=True, reason=str(error), reached=False)
    base = get_runtime().settings.loops_api_base.rstrip("/")
    headers = {"Authorization": f"Bearer {api_key}", **(headers or {})}
    return send_json(method, f"{base}{path}", job.payload, headers, event_id=job.event_id)


def send_event(job: LoopsEventJob, api: LoopsApi) -> Outcome:
    outcome = _call("POST", "/v1/events/send", api, job, {"Idempotency-Key": job.event_id})
    if outcome.status == 409:
        return Outcome(
            delivered=True, retryable=False, reason="already sent (Idempotency-Key seen by Loops)", status=409
        )
    return outcome


def update_contact(job: LoopsContactJob, api: LoopsApi) -> Outcome:
    return _call("PUT", "/v1/contacts/update", api, job)
