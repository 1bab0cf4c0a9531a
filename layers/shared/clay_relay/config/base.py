"""What every model of relay.json shares: strictness (unknown keys are errors) and the two named string types."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
SecretName = Annotated[str, Field(pattern=r"^[A-Za-z0-9/_+=.@-]{1,512}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
