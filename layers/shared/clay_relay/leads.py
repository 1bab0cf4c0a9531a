"""Enriched leads as Clay's HTTP API column sends them, and where each one goes.

Clay inserts cell values as written: numbers often arrive as strings ("85", "1,200"), empty cells
as "" or null, with stray whitespace and mixed-case emails. The model accepts all of that and
rejects, with a 422 naming the field, what cannot be a lead (no email, no usable ICP score) and
numbers it would have to guess at: digits of other scripts (fullwidth or Arabic-Indic 90), separators that group
no thousands ("1,0,0", " 9 0 "), an employee count no company has.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from clay_relay import email_address
from clay_relay.config import Routing
from clay_relay.errors import InvalidPayload, validation_fields
from clay_relay.item_keys import ItemKey

if TYPE_CHECKING:
    from typing import Any

# ASCII digits only (\d and float() also take fullwidth or Arabic-Indic digits); commas only between thousands.
NUMBER = re.compile(r"-?(?:[0-9]+|[0-9]{1,3}(?:,[0-9]{3})+)(?:\.[0-9]+)?")
# No company employs more (the largest about 2.3 million): a bigger count is an enrichment error,
# and 1e308 would reach Loops as a 309-digit integer.
MAX_EMPLOYEES = 10_000_000
Route = Literal["outreach", "nurture", "skip"]


def _number(value: object, field: str) -> float | None:
    """85, 85.0, "85", " 85 ", "85%", "1,200" → a number; None or "" → None."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        value = str(value).strip().removesuffix("%").rstrip()
        if not NUMBER.fullmatch(value):
            raise ValueError(f"{field} must be a number (ASCII digits, commas only between thousands)")
        value = value.replace(",", "")
    try:
        number = float(value)
    except OverflowError:  # an int of 400 digits
        number = math.inf
    if not math.isfinite(number):  # "9" * 400 is inf as a float: no count, and int() of it would raise
        raise ValueError(f"{field} is out of range")
    return number


class EnrichedLead(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    # Defaults of None so a missing column gets the same clear message as an empty cell.
    email: str = Field(default=None, max_length=320, validate_default=True)
    icp_score: float = Field(default=None, ge=0, le=100, validate_default=True)
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    company_name: str | None = Field(default=None, max_length=300)
    job_title: str | None = Field(default=None, max_length=300)
    employee_count: int | None = Field(default=None, ge=0, le=MAX_EMPLOYEES)
    industry: str | None = Field(default=None, max_length=300)
    linkedin_url: str | None = Field(default=None, max_length=2000)
    personalized_opener: str | None = Field(default=None, max_length=5000)
    directus_id: ItemKey | None = None  # a path segment of the write-back: only safe keys
    lead_id: str | None = Field(default=None, max_length=200, description="explicit id for deduplication")

    # Before-validators run last-defined first: the field-specific ones below strip for themselves.
    @field_validator("*", mode="before")
    @classmethod
    def _empty_cells_are_missing(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip()
            return value or None
        return value

    @field_validator("email", mode="before")
    @classmethod
    def _email(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip()
        if not value:
            raise ValueError("a lead needs an email address")
        if not isinstance(value, str):
            raise ValueError("not an email address")
        problem = email_address.problem(value)
        if problem:
            raise ValueError(problem)
        return value.lower()

    @field_validator("icp_score", mode="before")
    @classmethod
    def _score(cls, value: object) -> object:
        score = _number(value, "icp_score")
        if score is None:
            raise ValueError("an ICP score is needed to route the lead")
        return score

    @field_validator("employee_count", mode="before")
    @classmethod
    def _employees(cls, value: object) -> object:
        count = _number(value, "employee_count")
        if count is not None and not 0 <= count <= MAX_EMPLOYEES:
            shown = f"{count:,.0f}" if abs(count) < 1e15 else f"{count:g}"
            raise ValueError(f"employee_count must be between 0 and {MAX_EMPLOYEES:,}, not {shown}")
        return None if count is None else int(count)

    @property
    def name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part) or self.email


def parse_lead(body: dict[str, Any]) -> EnrichedLead:
    try:
        return EnrichedLead.model_validate(body)
    except ValidationError as error:
        fields = validation_fields(error)
        raise InvalidPayload("the body is not an enriched lead", fields=fields) from None


@dataclass(frozen=True)
class Decision:
    route: Route
    hot: bool


def decide(lead: EnrichedLead, routing: Routing) -> Decision:
    if lead.icp_score >= routing.outreach_min_score:
        route: Route = "outreach"
    elif lead.icp_score >= routing.nurture_min_score:
        route = "nurture"
    else:
        route = "skip"
    return Decision(route=route, hot=route != "skip" and lead.icp_score >= routing.hot_min_score)
