"""What the relay does with an enriched lead, decided at the edge as one job per action: a Loops
event (outreach) or contact (nurture), nothing for a skipped lead, a Slack message for a hot one,
Zapier for the configured routes, a Directus write-back for a lead that names its item; each job
with an event id derived from the lead's content (or its explicit lead_id), never the clock."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from clay_relay.config import ClayCallback, DirectusWriteBack, LoopsSettings, Routing, SlackSettings, ZapierSettings
from clay_relay.enrichment import ORIGIN, enrichment_jobs, lead_event_id
from clay_relay.jobs import DirectusPatchJob, LoopsContactJob, LoopsEventJob, SlackMessageJob, ZapierPostJob
from clay_relay.leads import parse_lead
from tests.invocations import default_config

ADA = {
    "email": "ada@example.com",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "company_name": "Analytical Engines",
    "job_title": "CTO",
    "employee_count": 1200,
    "industry": "Software",
    "linkedin_url": "https://www.linkedin.com/in/ada",
    "personalized_opener": "Loved your notes on the engine.",
    "icp_score": 85,
}
LOOPS_ONLY = ClayCallback()  # no Slack, Zapier or write-back
SHIPPED = ClayCallback.model_validate(default_config()["clay_callback"])  # Slack and write-back on


def jobs_for(cells: dict, settings: ClayCallback = LOOPS_ONLY, **overrides):
    decision, event_id, _, jobs = enrichment_jobs(parse_lead({**cells, **overrides}), settings)
    return decision, event_id, jobs


def kinds(jobs) -> list[str]:
    return [job.kind for job in jobs]


def with_settings(**sections) -> ClayCallback:
    return LOOPS_ONLY.model_copy(update=sections)


# --- one job per action, by route --------------------------------------------------------------------
def test_an_outreach_lead_becomes_one_loops_event_with_the_configured_event_name():
    settings = with_settings(loops=LoopsSettings(outreach_event_name="start_outreach"))
    decision, _, jobs = jobs_for(ADA, settings)
    assert (decision.route, decision.hot) == ("outreach", False)
    [job] = jobs
    assert isinstance(job, LoopsEventJob)
    assert job.payload == {
        "email": "ada@example.com",
        "eventName": "start_outreach",
        "firstName": "Ada",
        "lastName": "Lovelace",
        "eventProperties": {
            "firstName": "Ada",
            "lastName": "Lovelace",
            "companyName": "Analytical Engines",
            "jobTitle": "CTO",
            "industry": "Software",
            "employeeCount": 1200,
            "linkedinUrl": "https://www.linkedin.com/in/ada",
            "icpScore": 85,
            "personalizedOpener": "Loved your notes on the engine.",
        },
    }
    assert job.origin == ORIGIN == "clay/enriched"


def test_an_outreach_event_leaves_out_missing_names_and_properties():
    _, _, [job] = jobs_for({"email": "ada@example.com", "icp_score": "80"})
    assert job.payload == {
        "email": "ada@example.com",
        "eventName": "clay_outreach",
        "eventProperties": {"icpScore": 80},
    }


def test_a_nurture_lead_becomes_a_loops_contact_in_the_nurture_mailing_list():
    settings = with_settings(loops=LoopsSettings(nurture_mailing_list_id="list-nurture", source="clay"))
    decision, _, jobs = jobs_for(ADA, settings, icp_score="65")
    assert decision.route == "nurture"
    [job] = jobs
    assert isinstance(job, LoopsContactJob)
    assert job.payload == {
        "email": "ada@example.com",
        "source": "clay",
        "firstName": "Ada",
        "lastName": "Lovelace",
        "companyName": "Analytical Engines",
        "jobTitle": "CTO",
        "industry": "Software",
        "employeeCount": 1200,
        "linkedinUrl": "https://www.linkedin.com/in/ada",
        "icpScore": 65,
        "mailingLists": {"list-nurture": True},
    }


def test_a_nurture_contact_joins_no_mailing_list_when_none_is_configured():
    _, _, [job] = jobs_for(ADA, icp_score=50)
    assert "mailingLists" not in job.payload
    assert job.payload["source"] == "clay-relay"


def test_a_skipped_lead_gets_no_job_at_all_even_with_every_destination_configured():
    settings = with_settings(
        slack=SlackSettings(),
        zapier=ZapierSettings(),
        directus_writeback=DirectusWriteBack(collection="leads", fields={"icp_score": "icp_score"}),
        routing=Routing(hot_min_score=10),
    )
    decision, event_id, jobs = jobs_for(ADA, settings, icp_score=49, directus_id=7)
    assert (decision.route, decision.hot) == ("skip", False)
    assert jobs == []
    assert event_id  # still identified, for the answer and the logs


# --- Slack for hot leads -----------------------------------------------------------------------------
def test_a_hot_lead_also_gets_a_slack_message_with_the_configured_message_filled_in():
    settings = with_settings(slack=SlackSettings())
    decision, _, jobs = jobs_for(ADA, settings, icp_score="95")
    assert decision.hot is True
    assert kinds(jobs) == ["loops_event", "slack_message"]
    slack = jobs[1]
    assert isinstance(slack, SlackMessageJob)
    assert slack.text == ":fire: Hot lead: Ada Lovelace, CTO at Analytical Engines (ICP 95)"


def test_a_slack_message_shows_a_question_mark_for_missing_fields_and_unknown_placeholders():
    settings = with_settings(slack=SlackSettings(message="{first_name} {last_name} <{email}> {industry} {nickname}"))
    _, _, jobs = jobs_for({"email": "ada@example.com", "first_name": "Ada", "icp_score": 92}, settings)
    assert jobs[1].text == "Ada ? <ada@example.com> ? ?"


def test_a_slack_message_shows_a_fractional_score_as_is_and_a_whole_one_without_decimals():
    settings = with_settings(slack=SlackSettings(message="ICP {icp_score}"))
    assert jobs_for(ADA, settings, icp_score="92.5")[2][1].text == "ICP 92.5"
    assert jobs_for(ADA, settings, icp_score=100.0)[2][1].text == "ICP 100"


def test_a_lead_that_is_not_hot_gets_no_slack_message():
    _, _, jobs = jobs_for(ADA, with_settings(slack=SlackSettings()), icp_score=89)
    assert kinds(jobs) == ["loops_event"]


def test_a_hot_lead_gets_no_slack_message_when_slack_is_not_configured():
    decision, _, jobs = jobs_for(ADA, LOOPS_ONLY, icp_score=99)
    assert decision.hot is True
    assert kinds(jobs) == ["loops_event"]


# --- Zapier for configured routes --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("routes", "score", "posted"),
    [
        (("outreach", "nurture"), 85, True),
        (("outreach", "nurture"), 60, True),
        (("outreach",), 60, False),
        (("nurture",), 85, False),
        (("nurture",), 60, True),
        ((), 85, False),
    ],
)
def test_a_lead_is_posted_to_zapier_only_for_the_configured_routes(routes, score, posted):
    _, _, jobs = jobs_for(ADA, with_settings(zapier=ZapierSettings(routes=routes)), icp_score=score)
    assert ("zapier_post" in kinds(jobs)) is posted


def test_the_zapier_post_is_the_cleaned_lead_with_its_route_and_hotness():
    settings = with_settings(zapier=ZapierSettings())
    _, _, jobs = jobs_for(ADA, settings, icp_score=" 91 ", email=" Ada@Example.com", directus_id="7")
    [zapier] = [job for job in jobs if isinstance(job, ZapierPostJob)]
    assert zapier.payload == {
        **ADA,
        "icp_score": 91.0,
        "directus_id": "7",
        "route": "outreach",
        "hot": True,
    }


def test_zapier_cannot_be_configured_for_skipped_leads_because_a_skipped_lead_goes_nowhere():
    with pytest.raises(ValidationError):
        ZapierSettings(routes=("skip",))
    _, _, jobs = jobs_for(ADA, with_settings(zapier=ZapierSettings(routes=("outreach", "nurture"))), icp_score=10)
    assert jobs == []


# --- Directus write-back -----------------------------------------------------------------------------
WRITE_BACK = DirectusWriteBack(
    collection="leads", fields={"icp_score": "score", "industry": "sector", "linkedin_url": "linkedin"}
)


def test_a_lead_with_a_directus_id_is_written_back_with_its_mapped_fields():
    _, _, jobs = jobs_for(ADA, with_settings(directus_writeback=WRITE_BACK), directus_id=7)
    [patch] = [job for job in jobs if isinstance(job, DirectusPatchJob)]
    assert (patch.collection, patch.item_id) == ("leads", "7")
    assert patch.fields == {"score": 85.0, "sector": "Software", "linkedin": "https://www.linkedin.com/in/ada"}


def test_a_write_back_leaves_out_mapped_fields_the_lead_has_no_value_for():
    cells = {"email": "ada@example.com", "icp_score": 85, "industry": "", "directus_id": "a1b2"}
    _, _, jobs = jobs_for(cells, with_settings(directus_writeback=WRITE_BACK))
    [patch] = [job for job in jobs if isinstance(job, DirectusPatchJob)]
    assert patch.fields == {"score": 85.0}
    assert patch.item_id == "a1b2"


def test_a_lead_without_a_directus_id_is_not_written_back():
    _, _, jobs = jobs_for(ADA, with_settings(directus_writeback=WRITE_BACK))
    assert "directus_patch" not in kinds(jobs)


def test_a_lead_with_no_value_for_any_mapped_field_is_not_written_back():
    settings = with_settings(directus_writeback=DirectusWriteBack(collection="leads", fields={"industry": "sector"}))
    _, _, jobs = jobs_for({"email": "ada@example.com", "icp_score": 85, "directus_id": 7}, settings)
    assert kinds(jobs) == ["loops_event"]


def test_the_shipped_configuration_gives_a_hot_lead_of_directus_every_action_but_zapier():
    decision, _, jobs = jobs_for(ADA, SHIPPED, icp_score=95, directus_id=7)
    assert (decision.route, decision.hot) == ("outreach", True)
    assert kinds(jobs) == ["loops_event", "slack_message", "directus_patch"]
    assert all(job.dedupe_window_seconds == SHIPPED.dedupe_window_seconds for job in jobs)


# --- event ids ---------------------------------------------------------------------------------------
def event_ids(cells: dict, settings: ClayCallback = SHIPPED) -> tuple[str, list[str]]:
    _, event_id, jobs = jobs_for(cells, settings)
    return event_id, [job.event_id for job in jobs]


def test_the_same_lead_sent_again_gets_the_same_event_ids():
    hot = {**ADA, "icp_score": 95, "directus_id": 7}
    assert event_ids(hot) == event_ids(dict(hot))


def test_a_score_sent_as_a_string_is_the_same_lead_as_the_number():
    assert event_ids({**ADA, "icp_score": "85"}) == event_ids({**ADA, "icp_score": 85})
    assert event_ids({**ADA, "icp_score": " 85.0 "}) == event_ids({**ADA, "icp_score": 85})


def test_email_case_and_whitespace_do_not_make_another_lead():
    assert event_ids({**ADA, "email": "  ADA@Example.com "}) == event_ids(ADA)


def test_empty_cells_and_unknown_columns_do_not_make_another_lead():
    assert event_ids({**ADA, "job_title": "", "clay_row": "r1"}) == event_ids(
        {k: v for k, v in ADA.items() if k != "job_title"}
    )


def test_a_lead_with_different_content_gets_different_event_ids():
    first, first_jobs = event_ids(ADA)
    second, second_jobs = event_ids({**ADA, "icp_score": 86})
    assert first != second
    assert not set(first_jobs) & set(second_jobs)


def test_each_action_of_a_lead_has_its_own_event_id():
    _, ids = event_ids(
        {**ADA, "icp_score": 95, "directus_id": 7}, SHIPPED.model_copy(update={"zapier": ZapierSettings()})
    )
    assert len(ids) == 4
    assert len(set(ids)) == 4


def test_an_explicit_lead_id_wins_over_the_content():
    first, _ = event_ids({**ADA, "lead_id": "clay-row-1"})
    changed, _ = event_ids({**ADA, "lead_id": "clay-row-1", "icp_score": 99, "industry": "Robotics"})
    other, _ = event_ids({**ADA, "lead_id": "clay-row-2"})
    assert first == changed
    assert first != other
    assert first != event_ids(ADA)[0]


def test_the_event_id_is_a_function_of_the_cleaned_lead():
    lead = parse_lead({**ADA, "email": " ADA@example.com"})
    assert lead_event_id(lead) == lead_event_id(parse_lead(ADA))


# --- Loops' 500-character limit ----------------------------------------------------------------------
def test_values_longer_than_500_characters_are_fitted_to_500_in_the_loops_event():
    long_opener, long_url = "o" * 600, "https://www.linkedin.com/in/" + "a" * 900
    _, _, [job] = jobs_for(ADA, personalized_opener=long_opener, linkedin_url=long_url)
    properties = job.payload["eventProperties"]
    assert len(properties["personalizedOpener"]) == 500
    assert properties["personalizedOpener"] == "o" * 499 + "…"
    assert len(properties["linkedinUrl"]) == 500
    assert properties["linkedinUrl"].startswith("https://www.linkedin.com/in/aaa")


def test_values_longer_than_500_characters_are_fitted_to_500_in_the_loops_contact():
    _, _, [job] = jobs_for(ADA, icp_score=60, linkedin_url="https://x.io/" + "a" * 1000)
    assert len(job.payload["linkedinUrl"]) == 500


def test_a_value_of_exactly_500_characters_is_sent_whole():
    opener = "o" * 500
    _, _, [job] = jobs_for(ADA, personalized_opener=opener)
    assert job.payload["eventProperties"]["personalizedOpener"] == opener


def test_the_write_back_and_zapier_post_keep_the_full_value():
    settings = with_settings(
        zapier=ZapierSettings(),
        directus_writeback=DirectusWriteBack(collection="leads", fields={"personalized_opener": "opener"}),
    )
    _, _, jobs = jobs_for(ADA, settings, personalized_opener="o" * 600, directus_id=7)
    by_kind = {job.kind: job for job in jobs}
    assert by_kind["zapier_post"].payload["personalized_opener"] == "o" * 600
    assert by_kind["directus_patch"].fields == {"opener": "o" * 600}
