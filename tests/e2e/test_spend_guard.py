"""The Clay spend guard through a running local stack, as the issue's "done when" says: with a budget of
5 rows a day, eight distinct creates give 5 Clay rows and 3 held; `relay --local clay budget …
--rows-per-day 10` delivers the 3 within a minute; the same person sent again (another case, extra
whitespace) gives no second row; a target in shadow mode sends nothing, yet `relay --local trace` shows
the decision."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.e2e.conftest import E2E_DELIVERY, RunningStack, start_stack

TOKEN = "spend-directus-token"
CONFIG = {
    "directus_sources": {
        "budgeted": {"clay_target": "budgeted", "collection": "leads"},
        "leads": {"clay_target": "leads", "collection": "leads"},
        "trial": {"clay_target": "trial", "collection": "leads"},
    },
    "clay_targets": {
        "budgeted": {"webhooks_secret": "clay-webhooks-budgeted", "budget": {"rows_per_day": 5}},
        "leads": {"webhooks_secret": "clay-webhooks-leads"},
        "trial": {"webhooks_secret": "clay-webhooks-trial", "mode": "shadow"},
    },
    # budget_hold_seconds and the workers' budget cache keep their defaults (30 s, 15 s): a raise must
    # reach held rows within a minute as deployed.
    "delivery": {**E2E_DELIVERY, "retry_horizon_seconds": 30},
}
SECRETS = f"""
DIRECTUS_TOKENS={TOKEN}
CLAY_WEBHOOKS_BUDGETED=[{{"url": "{{sandbox}}/clay/webhooks/budgeted-1"}}]
CLAY_WEBHOOKS_LEADS=[{{"url": "{{sandbox}}/clay/webhooks/spend-leads-1"}}]
CLAY_WEBHOOKS_TRIAL=[{{"url": "{{sandbox}}/clay/webhooks/trial-1"}}]
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> RunningStack:
    # One worker: moto's server applies a conditional update in two steps, so two workers could both
    # pass one condition there (DynamoDB cannot); the unit tests count under concurrent workers.
    yield from start_stack(tmp_path_factory.mktemp("spend-stack"), config=CONFIG, secrets=SECRETS, workers=1)


def relay(capsys, stack: RunningStack, *command: str) -> tuple[int, object]:
    """`relay --local --json COMMAND…` in-process: its exit status and printed JSON."""
    capsys.readouterr()
    code = stack.relay("--json", *command)
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else None


def create(stack: RunningStack, source: str, key: str, email: str) -> None:
    body = {"event": "leads.items.create", "collection": "leads", "key": key, "payload": {"email": email}}
    answer = stack.post_directus(body, source=source, token=TOKEN)
    assert answer.status_code == 202, answer.text


def rows(stack: RunningStack, path: str) -> list[dict]:
    return [d for d in stack.deliveries(destination="clay") if d["path"] == path and d["row_created"]]


def stages(capsys, stack: RunningStack, email: str) -> list[dict]:
    code, found = relay(capsys, stack, "trace", email, "--reveal")
    return found["stages"] if code == 0 else []


def test_a_daily_budget_holds_the_rows_past_it_and_a_raise_delivers_them_within_a_minute(stack, capsys):
    tag = uuid.uuid4().hex[:8]
    emails = [f"b{n}-{tag}@example.com" for n in range(8)]
    for n, email in enumerate(emails):
        create(stack, "budgeted", f"{tag}-{n}", email)

    def held() -> int:
        [spend] = relay(capsys, stack, "clay", "spend", "budgeted")[1]
        return spend["held"] if len(rows(stack, "/clay/webhooks/budgeted-1")) == 5 else 0

    stack.wait_for(lambda: held() == 3, timeout=60)
    [spend] = relay(capsys, stack, "clay", "spend", "budgeted")[1]
    assert spend["held"] == 3, (spend, len(rows(stack, "/clay/webhooks/budgeted-1")))
    assert (spend["sent"]["today"], spend["left"]["today"], spend["held"]) == (5, 0, 3)
    assert len(rows(stack, "/clay/webhooks/budgeted-1")) == 5

    raised = time.monotonic()
    code, changed = relay(capsys, stack, "clay", "budget", "budgeted", "--rows-per-day", "10")
    assert code == 0 and changed["budget"]["rows_per_day"] == 10
    assert stack.wait_for(lambda: len(rows(stack, "/clay/webhooks/budgeted-1")) == 8, timeout=60, interval=1)
    with capsys.disabled():
        print(f"\nheld rows delivered {time.monotonic() - raised:.1f} s after the raise")
    assert sorted(d["body"]["email"] for d in rows(stack, "/clay/webhooks/budgeted-1")) == sorted(emails)
    assert stack.wait_for(lambda: relay(capsys, stack, "clay", "spend", "budgeted")[1][0]["held"] == 0)


def test_the_same_person_in_another_case_with_extra_whitespace_gives_no_second_row(stack, capsys):
    tag = uuid.uuid4().hex[:8]
    create(stack, "leads", f"{tag}-1", f"Ada.Lovelace-{tag}@Example.com")
    assert stack.wait_for(lambda: len(rows(stack, "/clay/webhooks/spend-leads-1")) == 1)
    create(stack, "leads", f"{tag}-2", f"  ada.lovelace-{tag}@EXAMPLE.com  ")
    email = f"ada.lovelace-{tag}@example.com"
    skipped = stack.wait_for(lambda: [s for s in stages(capsys, stack, email) if s["stage"] == "clay.skipped"])
    assert skipped and skipped[0]["outcome"] == "skipped" and skipped[0]["detail"]["reason"] == "same person"
    [delivered] = [s for s in stages(capsys, stack, email) if s["stage"] == "clay.delivered"]
    assert skipped[0]["detail"]["earlier_event_id"] == delivered["event_id"]
    assert len(rows(stack, "/clay/webhooks/spend-leads-1")) == 1


def test_a_target_in_shadow_mode_sends_nothing_yet_the_trace_shows_the_decision(stack, capsys):
    tag = uuid.uuid4().hex[:8]
    email = f"grace-{tag}@example.com"
    create(stack, "trial", tag, email)
    shadow = stack.wait_for(lambda: [s for s in stages(capsys, stack, email) if s["stage"] == "clay.shadow"])
    assert shadow and (shadow[0]["outcome"], shadow[0]["detail"]["would"]) == ("shadowed", "send")
    assert [d for d in stack.deliveries(destination="clay") if d["path"] == "/clay/webhooks/trial-1"] == []
    code, status = relay(capsys, stack, "status")
    assert code == 0
    assert [s["mode"] for s in status["clay_spend"] if s["target"] == "trial"] == ["shadow"]
    [spend] = relay(capsys, stack, "clay", "spend", "trial")[1]
    assert spend["shadow_would_send"]["today"] >= 1 and spend["sent"]["today"] == 0
