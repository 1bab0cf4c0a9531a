"""clay_relay.errors: a model's refusal as the fields of an answer."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError, model_validator

from clay_relay.errors import validation_fields


class Lead(BaseModel):
    email: str
    score: int = 0

    @model_validator(mode="after")
    def _scored(self) -> Lead:
        if self.score < 0:
            raise ValueError("score must not be negative")
        return self


def _refusal(body: dict) -> ValidationError:
    with pytest.raises(ValidationError) as refused:
        Lead.model_validate(body)
    return refused.value


def test_each_problem_names_its_field_by_dotted_path():
    assert validation_fields(_refusal({"score": "many"})) == [
        {"field": "email", "problem": "Field required"},
        {"field": "score", "problem": "Input should be a valid integer, unable to parse string as an integer"},
    ]


def test_a_problem_with_the_whole_object_names_the_body_without_pydantics_prefix():
    refusal = _refusal({"email": "a@example.com", "score": -1})
    assert validation_fields(refusal) == [{"field": "body", "problem": "score must not be negative"}]
    assert validation_fields(refusal, whole="") == [{"field": "", "problem": "score must not be negative"}]
