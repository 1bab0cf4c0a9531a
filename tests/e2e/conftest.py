"""The local stack, started as `make run` starts it (a subprocess of `python -m local_stack run`),
on free ports, with a test configuration whose retries and holds are seconds instead of minutes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from local_stack.process import StackFailed, StackProcess, stack_process
from relay_cli.__main__ import main

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "e2e-directus-token"
LOOPS_WEBHOOK_SECRET = "whsec_ZTJlLWxvb3BzLXdlYmhvb2stc2lnbmluZy1rZXktMDAwMQ=="
FORWARD_SECRET = "whsec_ZTJlLWZvcndhcmQtZW5kcG9pbnQtc2lnbmluZy1rZXk="  # the archive endpoint's own

E2E_CONFIG = {
    "directus_sources": {
        "leads": {
            "clay_target": "leads",
            "collection": "leads",
            "fields": {
                "email": "email",
                "first_name": "first_name",
                "last_name": "last_name",
                "company": "company_name",
                "website": "company_domain",
                "job_title": "job_title",
            },
            "metadata": {"event": "directus_event", "collection": "directus_collection", "key": "directus_id"},
        },
        # A second route for the same collection (the sandbox's Flow calls only the first): its own sweep
        # would take every item of the collection for one its Flow lost.
        "quota": {"clay_target": "quota", "collection": "leads", "reconcile_minutes": None},
    },
    "clay_targets": {
        "leads": {"webhooks_secret": "clay-webhooks-leads"},
        "quota": {"webhooks_secret": "clay-webhooks-quota", "submission_limit": 5},
        "loops_contacts": {"webhooks_secret": "clay-webhooks-loops-contacts"},
    },
    "clay_callback": {
        "hmac_secret": "clay-callback-hmac-keys",
        "loops": {"outreach_event_name": "clay_outreach", "nurture_mailing_list_id": "nurture-list"},
        "slack": {"message": "Hot lead: {first_name} {last_name}, {job_title} at {company_name} (ICP {icp_score})"},
        "zapier": {"routes": ["outreach", "nurture"]},
        "directus_writeback": {
            "collection": "leads",
            "fields": {"icp_score": "icp_score", "industry": "industry", "personalized_opener": "opener"},
        },
    },
    "loops_webhook": {
        "clay_target": "loops_contacts",
        "fields": ["email", "firstName", "lastName", "companyName"],
        "directus_feedback": {
            "events": {
                "contact.unsubscribed": {"email_status": "unsubscribed", "email_status_at": "{event_time}"},
                "email.resubscribed": {"email_status": "subscribed", "email_status_at": "{event_time}"},
                "email.hardBounced": {"email_status": "bounced", "email_status_at": "{event_time}"},
                "email.spamReported": {"email_status": "complained", "email_status_at": "{event_time}"},
            }
        },
        "forward": [
            {
                "name": "archive",
                "url_secret": "loops-forward-archive-url",
                "signing_secret": "loops-forward-archive-secret",
                "events": ["email.delivered", "email.hardBounced"],
            }
        ],
    },
    "loops_forwarding": {},
    # A destination that is down is probed every second (parking): within the 5 s horizon.
    "delivery": {
        "retry_horizon_seconds": 5,
        "min_backoff_seconds": 1,
        "max_backoff_seconds": 2,
        "hold_seconds": 2,
        "probe_seconds": 1,
    },
}

_QUOTA_POOL = '[{"url": "{sandbox}/clay/webhooks/quota-1", "token": "q1"}, {"url": "{sandbox}/clay/webhooks/quota-2"}]'
E2E_SECRETS = f"""
DIRECTUS_TOKENS={TOKEN},local-directus-token
CLAY_WEBHOOKS_LEADS=[{{"url": "{{sandbox}}/clay/webhooks/leads-1", "token": "clay-e2e-1"}}]
CLAY_WEBHOOKS_QUOTA={_QUOTA_POOL}
CLAY_CALLBACK_TOKENS=local-clay-callback-token
CLAY_CALLBACK_HMAC_KEYS=e2e-signing-key
LOOPS_API_KEY=e2e-loops-key
SLACK_WEBHOOK_URL={{sandbox}}/slack/webhooks/hot-leads
ZAPIER_WEBHOOK_URL={{sandbox}}/zapier/hooks/catch
DIRECTUS_API={{"url": "{{sandbox}}/directus", "token": "e2e-directus-api-token"}}
CLAY_WEBHOOKS_LOOPS_CONTACTS=[{{"url": "{{sandbox}}/clay/webhooks/loops-contacts"}}]
LOOPS_WEBHOOK_SECRET={LOOPS_WEBHOOK_SECRET}
LOOPS_FORWARD_ARCHIVE_URL={{sandbox}}/forward/archive
LOOPS_FORWARD_ARCHIVE_SECRET={FORWARD_SECRET}
"""


class RunningStack(StackProcess):
    """The running stack, with what the tests send to it and read from it."""

    def post_lead(self, body: object, *, token: str = "local-clay-callback-token", **kwargs) -> requests.Response:
        return requests.post(
            f"{self.gateway}/clay/enriched",
            json=body,
            headers={"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})},
            timeout=10,
            **kwargs,
        )

    def post_directus(self, body: object, *, source: str = "leads", token: str = TOKEN, **kwargs) -> requests.Response:
        return requests.post(
            f"{self.gateway}/directus/{source}",
            json=body,
            headers={"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})},
            timeout=10,
            **kwargs,
        )

    def deliveries(self, **match) -> list[dict]:
        entries = requests.get(f"{self.gateway}/_local/deliveries", timeout=5).json()
        return [e for e in entries if all(_get(e, k) == v for k, v in match.items())]

    def replay(self, event_file: str) -> tuple[int, dict]:
        """`python -m local_stack replay events/<event_file>.json` against this stack."""
        result = subprocess.run(
            [sys.executable, "-m", "local_stack", "replay", f"events/{event_file}.json", "--url", self.gateway],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        status_line, _, body = result.stdout.partition("\n")
        return int(status_line.split()[1]), json.loads(body)

    def invoke(self, function: str, event_file: str) -> dict:
        """`python -m local_stack invoke FUNCTION events/<event_file>.json` using this stack: the answer."""
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "local_stack",
                "invoke",
                function,
                f"events/{event_file}.json",
                "--state-file",
                str(self.state_file),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout[result.stdout.index("{\n") :])

    def relay(self, *argv: str) -> int:
        """`relay --local ARGV…` against this stack, in-process: its exit status."""
        return main(["--local", "--state-file", str(self.state_file), *argv])

    def wait_for(self, predicate, timeout: float = 20.0, interval: float = 0.2):
        """Polls until predicate() is truthy; returns its value (or the last one on timeout)."""
        deadline = time.monotonic() + timeout
        value = predicate()
        while not value and time.monotonic() < deadline:
            time.sleep(interval)
            value = predicate()
        return value


def _get(entry: dict, dotted: str) -> object:
    value: object = entry
    for part in dotted.split("__"):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def start_stack(
    folder: Path,
    *,
    config: dict = E2E_CONFIG,
    secrets: str = E2E_SECRETS,
    workers: int = 2,
    clay_limit: int = 50_000,
    outbound_timeout: int = 1,
    extra_args: tuple = (),
):
    """Starts `python -m local_stack run` on free ports; yields a RunningStack; stops it (SIGTERM).
    Its output goes to `stack.log` in `folder`."""
    options = ("--workers", str(workers), "--clay-limit", str(clay_limit), *extra_args)
    options += ("--env", f"OUTBOUND_TIMEOUT_SECONDS={outbound_timeout}")
    try:
        with stack_process(folder, config, secrets, *options) as running:
            yield RunningStack(**vars(running))
    except StackFailed as error:
        pytest.fail(str(error))


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> RunningStack:
    yield from start_stack(tmp_path_factory.mktemp("stack"))


@pytest.fixture(scope="module")
def small_quota_stack(tmp_path_factory) -> RunningStack:
    """A stack whose sandbox Clay URLs take 5 submissions each, like the `quota` target's limit."""
    yield from start_stack(tmp_path_factory.mktemp("quota-stack"), clay_limit=5)
