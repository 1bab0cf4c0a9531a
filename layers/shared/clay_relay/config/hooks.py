"""The hot-lead Slack message and the Zapier catch hook of enriched leads."""

from __future__ import annotations

import string
from typing import Literal

from pydantic import Field, field_validator

from clay_relay.config.base import SecretName, _Strict


class SlackSettings(_Strict):
    """The Slack message that announces hot leads."""

    webhook_secret: SecretName = Field(
        default="slack-webhook-url", description="secret with the Slack incoming webhook URL"
    )
    message: str = Field(
        default=":fire: Hot lead: {first_name} {last_name}, {job_title} at {company_name} (ICP {icp_score})",
        description="the message; placeholders: any EnrichedLead field, e.g. `{email}` `{industry}` "
        "`{linkedin_url}` (`?` when empty). Only plain placeholders: `{employee_count:,}` is refused when the "
        "configuration loads",
    )

    @field_validator("message")
    @classmethod
    def _plain_placeholders(cls, message: str) -> str:
        """Only plain `{field}` placeholders: a format spec such as `{employee_count:,}` would fail
        on a lead whose field is empty, so it is refused when the configuration loads."""
        for _, field, spec, conversion in string.Formatter().parse(message):
            if field is not None and (spec or conversion or not field.isidentifier()):
                raise ValueError(
                    f"use plain placeholders like {{first_name}}, not {{{field}{':' + spec if spec else ''}}}"
                )
        return message


class ZapierSettings(_Strict):
    """Posts each routed lead (plus `route` and `hot`) to a Zapier catch hook, or any webhook."""

    webhook_secret: SecretName = Field(default="zapier-webhook-url", description="secret with the catch hook's URL")
    routes: tuple[Literal["outreach", "nurture"], ...] = Field(
        default=("outreach", "nurture"),
        description="the routes whose leads are posted: `outreach`, `nurture` or both (skipped leads go nowhere)",
    )
