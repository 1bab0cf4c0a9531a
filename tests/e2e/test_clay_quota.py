"""Clay's 50,000-submissions-per-URL limit, scaled down to 5: never exceeded, the next URL of the
pool takes over, and rows wait (never dropped) when the whole pool is used up, until the hold
horizon; then they are dead-lettered saying how long they waited, and `relay status` counted them."""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections import Counter

import pytest

from tests.e2e.conftest import E2E_CONFIG, E2E_SECRETS, RunningStack, start_stack

HOLD_HORIZON_SECONDS = 12


@pytest.fixture(scope="module")
def short_hold_stack(tmp_path_factory) -> RunningStack:
    """A stack whose `tiny` target has one URL taking one submission, and rows that wait for quota
    at most 12 s after they were accepted, checking again every 3 s (delayed most of the time, as
    with the default 900 s, so that `relay status`, which takes a second, sees them)."""
    config = copy.deepcopy(E2E_CONFIG)
    config["directus_sources"]["tiny"] = {"clay_target": "tiny", "collection": "tiny"}
    config["clay_targets"]["tiny"] = {"webhooks_secret": "clay-webhooks-tiny", "submission_limit": 1}
    config["delivery"].update(hold_seconds=3, hold_horizon_seconds=HOLD_HORIZON_SECONDS)
    secrets = E2E_SECRETS + 'CLAY_WEBHOOKS_TINY=[{"url": "{sandbox}/clay/webhooks/tiny-1"}]\n'
    # One worker: moto's server does not serialise two conditional updates of one item arriving at
    # once (DynamoDB does), so two workers could both take the one submission.
    yield from start_stack(tmp_path_factory.mktemp("short-hold-stack"), config=config, secrets=secrets, workers=1)


def test_quota_is_never_exceeded_the_pool_rotates_and_held_rows_resume(small_quota_stack):
    stack = small_quota_stack
    tag = uuid.uuid4().hex[:8]
    for key in range(12):
        answer = stack.post_directus(
            {
                "event": "leads.items.create",
                "collection": "leads",
                "key": key,
                "payload": {"email": f"q{key}-{tag}@example.com"},
            },
            source="quota",
        )
        assert answer.status_code == 202

    def quota_rows():
        """Rows Clay took: a request its rate limit refused (429) is no submission, and comes again."""
        return [
            d
            for d in stack.deliveries(destination="clay")
            if d["path"].startswith("/clay/webhooks/quota-") and 200 <= d["status"] < 300
        ]

    stack.wait_for(lambda: len(quota_rows()) >= 10, timeout=30)
    stack.wait_for(lambda: False, timeout=3)  # held rows must not sneak through
    per_url = Counter(d["path"] for d in quota_rows())
    assert per_url == {"/clay/webhooks/quota-1": 5, "/clay/webhooks/quota-2": 5}
    assert all(d["row_created"] for d in quota_rows()), "no submission went past a URL's limit"

    # The operator adds a URL to the pool: the two held rows go there, none is lost or doubled.
    secrets = stack.aws("secretsmanager")
    name = "clay-relay-local/clay-webhooks-quota"
    pool = json.loads(secrets.get_secret_value(SecretId=name)["SecretString"])
    pool.append({"url": pool[0]["url"].replace("quota-1", "quota-3")})
    secrets.put_secret_value(SecretId=name, SecretString=json.dumps(pool))

    stack.wait_for(lambda: len(quota_rows()) >= 12, timeout=30)
    per_url = Counter(d["path"] for d in quota_rows())
    assert per_url["/clay/webhooks/quota-3"] == 2
    emails = [d["body"]["email"] for d in quota_rows()]
    assert sorted(emails) == sorted(f"q{key}-{tag}@example.com" for key in range(12))


def test_a_row_held_past_the_hold_horizon_is_dead_lettered_saying_so_and_status_counted_it_meanwhile(
    short_hold_stack, capsys
):
    stack = short_hold_stack

    def relay_json(*command: str) -> dict:
        capsys.readouterr()
        assert stack.relay("--json", *command) == 0
        return json.loads(capsys.readouterr().out)

    tag = uuid.uuid4().hex[:8]
    for key in range(2):
        payload = {"email": f"t{key}-{tag}@example.com"}
        event = {"event": "tiny.items.create", "collection": "tiny", "key": key, "payload": payload}
        assert stack.post_directus(event, source="tiny").status_code == 202

    def tiny_rows() -> list[dict]:
        return stack.deliveries(destination="clay", path="/clay/webhooks/tiny-1")

    assert stack.wait_for(lambda: len(tiny_rows()) == 1, timeout=30)

    def held() -> dict:
        return relay_json("status")["held_for_quota"]

    assert stack.wait_for(lambda: held()["rows"] == 1, timeout=HOLD_HORIZON_SECONDS), held()

    def quota_letters() -> list[dict]:
        letters = relay_json("dlq", "list")["letters"]
        return [letter for letter in letters if "for Clay quota" in (letter.get("reason") or "")]

    [letter] = stack.wait_for(quota_letters, timeout=60)
    reason = letter["reason"]
    waited = re.match(r"waited (\d+) s for Clay quota \(held (\d+) times; hold_horizon_seconds is 12\)", reason)
    assert waited, reason
    assert int(waited[1]) >= HOLD_HORIZON_SECONDS and int(waited[2]) >= 2, "held, again and again, then given up"
    assert "Clay target 'tiny' is used up" in reason and "relay clay add-webhook tiny" in reason
    assert (letter["destination"], letter["origin"]) == ("clay", "directus/tiny")

    assert stack.wait_for(lambda: held()["rows"] == 0, timeout=30), ("not held again", held(), quota_letters())
    assert len(tiny_rows()) == 1, "the dead-lettered row never reached Clay"
