"""Enriched leads as Clay's HTTP API column sends them: numbers as strings, empty cells as "" or
null, stray whitespace and mixed-case emails are all accepted; what cannot be a lead (no email, no
usable ICP score) is a 422 naming the field. Then the route each lead takes by its ICP score."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from clay_relay.config import ConfigError, Routing
from clay_relay.errors import InvalidPayload
from clay_relay.leads import EnrichedLead, decide, parse_lead

OPTIONAL = [
    "first_name",
    "last_name",
    "company_name",
    "job_title",
    "employee_count",
    "industry",
    "linkedin_url",
    "personalized_opener",
    "directus_id",
    "lead_id",
]


def lead(**cells: object) -> EnrichedLead:
    return parse_lead({"email": "ada@example.com", "icp_score": 85, **cells})


def rejected(body: dict) -> InvalidPayload:
    with pytest.raises(InvalidPayload) as error:
        parse_lead(body)
    assert error.value.status == 422
    return error.value


def problems_of(error: InvalidPayload) -> dict[str, str]:
    """field (its first part: `directus_id.str` is `directus_id`) → problem."""
    return {entry["field"].split(".")[0]: entry["problem"] for entry in error.fields}


# --- coercion of Clay's cells ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cell", "score"),
    [("85", 85), (" 85 ", 85), ("85.5", 85.5), ("85%", 85), (85, 85), (85.0, 85), ("0", 0), ("100", 100)],
)
def test_icp_score_is_read_from_numbers_and_numeric_strings(cell, score):
    assert lead(icp_score=cell).icp_score == score


@pytest.mark.parametrize("cell", ["1,200", "1200", 1200, 1200.0, " 1,200 "])
def test_employee_count_is_read_from_numbers_and_strings_with_thousands_separators(cell):
    assert lead(employee_count=cell).employee_count == 1200


@pytest.mark.parametrize("name", OPTIONAL)
def test_an_empty_cell_sent_as_null_is_a_missing_value(name):
    assert getattr(lead(**{name: None}), name) is None


@pytest.mark.parametrize("name", OPTIONAL)
@pytest.mark.parametrize("cell", ["", "   "], ids=["empty", "blank"])
def test_an_empty_cell_sent_as_an_empty_string_is_a_missing_value(name, cell):
    assert getattr(lead(**{name: cell}), name) is None


def test_a_lead_with_only_email_and_score_is_a_lead_with_every_other_field_missing():
    only = parse_lead({"email": "ada@example.com", "icp_score": "85"})
    assert all(getattr(only, name) is None for name in OPTIONAL)


def test_stray_whitespace_is_stripped_from_text_cells():
    cleaned = lead(first_name="  Ada ", last_name="\tLovelace\n", company_name=" Analytical Engines ", job_title=" CTO")
    assert (cleaned.first_name, cleaned.last_name) == ("Ada", "Lovelace")
    assert (cleaned.company_name, cleaned.job_title) == ("Analytical Engines", "CTO")


def test_email_is_stripped_and_lower_cased():
    assert lead(email=" Ada@Example.COM ").email == "ada@example.com"


@pytest.mark.parametrize(("cell", "expected"), [("42", "42"), (" 42 ", "42"), (42, 42), ("a1b2-c3", "a1b2-c3")])
def test_directus_id_may_be_a_string_or_an_integer(cell, expected):
    assert lead(directus_id=cell).directus_id == expected


def test_unknown_columns_of_the_clay_table_are_ignored():
    with_extras = lead(clay_row_id="r_123", enrichment_status="done", nested={"a": 1})
    assert with_extras == lead()
    assert "clay_row_id" not in with_extras.model_dump()


def test_a_lead_is_named_by_its_first_and_last_name_or_else_its_email():
    assert lead(first_name="Ada", last_name="Lovelace").name == "Ada Lovelace"
    assert lead(first_name="Ada").name == "Ada"
    assert lead().name == "ada@example.com"


# --- rejections --------------------------------------------------------------------------------------
@pytest.mark.parametrize("email", ["", "   ", None], ids=["empty", "blank", "null"])
def test_a_lead_with_an_empty_email_cell_is_422_saying_it_needs_an_email(email):
    problems = problems_of(rejected({"email": email, "icp_score": 85}))
    assert problems == {"email": "a lead needs an email address"}


def test_a_lead_without_an_email_column_is_422_naming_the_email():
    assert set(problems_of(rejected({"icp_score": 85}))) == {"email"}


def test_a_lead_without_an_email_column_says_it_needs_an_email():
    assert problems_of(rejected({"icp_score": 85}))["email"] == "a lead needs an email address"


@pytest.mark.parametrize("email", ["ada", "ada@example", "ada @example.com", "@example.com", 42, ["ada@example.com"]])
def test_an_invalid_email_is_422_naming_the_email(email):
    problems = problems_of(rejected({"email": email, "icp_score": 85}))
    assert problems["email"] == "not an email address"


@pytest.mark.parametrize(
    "score", [None, "", "   ", "high", "85 points", "1e2", [85], {"value": 85}], ids=lambda s: repr(s)
)
def test_a_missing_empty_or_non_numeric_icp_score_is_422_naming_the_score(score):
    problems = problems_of(rejected({"email": "ada@example.com", "icp_score": score}))
    assert set(problems) == {"icp_score"}
    assert problems["icp_score"]


def test_a_lead_without_any_icp_score_is_422_naming_the_score():
    problems = problems_of(rejected({"email": "ada@example.com"}))
    assert set(problems) == {"icp_score"}


def test_a_null_icp_score_says_a_score_is_needed_to_route_the_lead():
    problems = problems_of(rejected({"email": "ada@example.com", "icp_score": None}))
    assert problems["icp_score"] == "an ICP score is needed to route the lead"


@pytest.mark.parametrize("score", [100.5, "101", -1, "-0.5", 1000])
def test_an_icp_score_outside_0_to_100_is_422(score):
    assert set(problems_of(rejected({"email": "ada@example.com", "icp_score": score}))) == {"icp_score"}


@pytest.mark.parametrize("score", [True, False])
def test_a_boolean_icp_score_is_422_not_read_as_1_or_0(score):
    assert set(problems_of(rejected({"email": "ada@example.com", "icp_score": score}))) == {"icp_score"}


@pytest.mark.parametrize("count", ["about 50", "50+", "-3", True])
def test_a_non_numeric_or_negative_employee_count_is_422_naming_it(count):
    error = rejected({"email": "ada@example.com", "icp_score": 85, "employee_count": count})
    assert set(problems_of(error)) == {"employee_count"}


@pytest.mark.parametrize(
    "score",
    [
        "\uff19\uff10",
        "\u0669\u0660",
        "\u096f\u0966",
        "1,0,0",
        "9,0",
        " 9 0 ",
        "9 0",
        "90,",
        ",90",
        "1,00",
        "9\u200b0",
        "90.",
        "+90",
    ],
    ids=lambda s: repr(s),
)
def test_an_icp_score_in_other_digits_or_with_stray_separators_is_422_not_read_as_a_hot_lead(score):
    """Fullwidth "90" and "1,0,0" were read as 90 and 100: a lead routed hot on a guess."""
    problems = problems_of(rejected({"email": "ada@example.com", "icp_score": score}))
    assert set(problems) == {"icp_score"}
    assert "ASCII digits" in problems["icp_score"]


@pytest.mark.parametrize("count", ["1,200,000", "12,345", 10_000_000, "10,000,000"])
def test_an_employee_count_with_commas_between_thousands_is_read(count):
    assert lead(employee_count=count).employee_count == int(str(count).replace(",", ""))


@pytest.mark.parametrize("count", [1e308, 10_000_001, "10,000,001", 1.7976931348623157e308, "\uff11\uff12"])
def test_an_employee_count_no_company_has_is_422_naming_it_not_sent_to_loops(count):
    """1e308 became a 309-digit integer in the Loops contact."""
    error = rejected({"email": "ada@example.com", "icp_score": 85, "employee_count": count})
    problems = problems_of(error)
    assert set(problems) == {"employee_count"}
    assert len(problems["employee_count"]) < 120  # says the bound, not 309 digits


@pytest.mark.parametrize(
    "email",
    [
        "ada\x00@example.com",
        "ada\u200b@example.com",
        "ada@exam\u202eple.com",
        "\ufeffada@example.com",
        "ada@\u2060x.io",
    ],
    ids=["NUL", "zero-width space", "RTL override", "byte order mark", "word joiner"],
)
def test_an_email_with_an_invisible_or_control_character_is_422_naming_it(email):
    problems = problems_of(rejected({"email": email, "icp_score": 85}))
    assert "invisible or control character" in problems["email"]


@pytest.mark.parametrize("email", ["Jürgen.Müller@bücher.de", "ada+clay@example.co.uk", "o'brien@example.ie"])
def test_an_email_in_letters_of_any_script_is_accepted(email):
    assert lead(email=email).email == email.lower()


def test_a_fractional_directus_id_is_422_naming_it():
    error = rejected({"email": "ada@example.com", "icp_score": 85, "directus_id": 7.5})
    assert set(problems_of(error)) == {"directus_id"}


def test_every_problem_of_a_lead_is_named_at_once():
    error = rejected({"email": "nope", "icp_score": "high", "employee_count": "many"})
    assert set(problems_of(error)) == {"email", "icp_score", "employee_count"}
    assert error.to_body()["error"] == "invalid_payload"
    assert all(entry["problem"] for entry in error.to_body()["fields"])


# --- routing -----------------------------------------------------------------------------------------
DEFAULT_ROUTING = Routing()  # outreach ≥ 80, nurture ≥ 50, hot ≥ 90


@pytest.mark.parametrize(
    ("score", "route", "hot"),
    [
        (100, "outreach", True),
        (90, "outreach", True),
        (89.9, "outreach", False),
        (89, "outreach", False),
        (80, "outreach", False),
        (79.9, "nurture", False),
        (50, "nurture", False),
        (49.9, "skip", False),
        (49, "skip", False),
        (0, "skip", False),
    ],
)
def test_a_lead_is_routed_by_its_score_with_inclusive_thresholds(score, route, hot):
    decision = decide(lead(icp_score=score), DEFAULT_ROUTING)
    assert (decision.route, decision.hot) == (route, hot)


def test_thresholds_are_configurable():
    routing = Routing(outreach_min_score=70, nurture_min_score=30, hot_min_score=75)
    assert decide(lead(icp_score=75), routing).route == "outreach"
    assert decide(lead(icp_score=75), routing).hot is True
    assert decide(lead(icp_score=69), routing).route == "nurture"
    assert decide(lead(icp_score=30), routing).route == "nurture"
    assert decide(lead(icp_score=29), routing).route == "skip"


def test_a_nurture_lead_is_hot_when_the_hot_threshold_is_below_outreach():
    decision = decide(lead(icp_score=65), Routing(hot_min_score=60))
    assert (decision.route, decision.hot) == ("nurture", True)


def test_a_skipped_lead_is_never_hot():
    decision = decide(lead(icp_score=20), Routing(hot_min_score=10))
    assert (decision.route, decision.hot) == ("skip", False)


def test_equal_nurture_and_outreach_thresholds_leave_no_nurture_route():
    routing = Routing(outreach_min_score=60, nurture_min_score=60)
    assert decide(lead(icp_score=60), routing).route == "outreach"
    assert decide(lead(icp_score=59.9), routing).route == "skip"


def test_routing_rejects_a_nurture_threshold_above_the_outreach_threshold():
    with pytest.raises(ValidationError, match="nurture_min_score must not be above outreach_min_score"):
        Routing(outreach_min_score=60, nurture_min_score=70)


@pytest.mark.parametrize("threshold", [-1, 101])
def test_routing_rejects_thresholds_outside_0_to_100(threshold):
    with pytest.raises(ValidationError):
        Routing(hot_min_score=threshold)


def test_a_relay_json_with_inverted_thresholds_fails_to_load(use_config):
    with pytest.raises(ConfigError, match="nurture_min_score"):
        use_config(lambda c: c["clay_callback"]["routing"].update(nurture_min_score=90, outreach_min_score=80))


def test_every_lead_field_a_write_back_may_name_is_a_field_of_the_lead():
    """config.LeadField (the keys directus_writeback.fields accepts) cannot drift from EnrichedLead."""
    from typing import get_args

    from clay_relay.config import LeadField

    assert set(get_args(LeadField)) == set(EnrichedLead.model_fields) - {"directus_id", "lead_id"}
