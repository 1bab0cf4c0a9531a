"""`relay backfill directus`: the sandbox Directus' items API it reads, keyset paging, the
checkpoint, the quota arithmetic, and whole runs against a stand-in of the relay's Directus route
that keeps the worker's Clay quota accounting (`ClayQuota.allocate`) in moto."""

from __future__ import annotations

import io
import json
import os
import signal
import time
from collections.abc import Callable

import boto3
import pytest
import requests

from clay_relay.clay import ClayQuota, ClayWebhook
from clay_relay.config import ClayTarget, RelayConfig
from clay_relay.jobs import content_id
from clay_relay.pacing import interval_seconds
from clay_relay.store import RelayTable
from relay_cli import CommandError, backfill, retries
from relay_cli.__main__ import parser
from relay_cli.backfill import Checkpoint, Outcome, Progress, choose_source, quota_left
from relay_cli.backfill.command import paced_rate
from relay_cli.clay_pool import pool_use
from relay_cli.directus_items import DirectusError, DirectusItems
from relay_cli.retries import Redirected, Retrying, Unanswered
from tests.destinations import DIRECTUS_API_TOKEN, Answer, Received, StubServer
from tests.invocations import default_config, relay_stack

RELAY_TOKEN = "directus-token-current"  # tests/conftest.py's TEST_SECRETS


# --- the sandbox Directus' items API ---------------------------------------------------------------
def _list(destinations, query: str = "", token: str | None = DIRECTUS_API_TOKEN) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"{destinations.base}/directus/items/leads?{query}", headers=headers, timeout=5)


def test_the_sandbox_lists_items_with_directus_query_semantics(destinations):
    stored = destinations.sandboxes.directus.seed("leads", [{"email": f"lead{n}@example.com"} for n in range(1, 13)])
    assert [item["id"] for item in stored] == list(range(1, 13))

    def ids(query: str) -> list:
        answer = _list(destinations, query)
        assert answer.status_code == 200, answer.text
        return [item["id"] for item in answer.json()["data"]]

    assert ids("") == list(range(1, 13))
    assert ids("limit=3&offset=4") == [5, 6, 7]
    assert ids("limit=5&page=3") == [11, 12], "page counts from 1 and wins over offset"
    assert ids("sort=-id&limit=2") == [12, 11]
    assert ids("filter[id][_gt]=9") == [10, 11, 12], "bracket form; the value is cast like the field"
    assert ids("filter[id][_in]=2,4") == [2, 4]
    assert ids("filter=" + json.dumps({"_and": [{"id": {"_gt": 3}}, {"id": {"_lte": 5}}]})) == [4, 5]
    assert ids("filter=" + json.dumps({"_or": [{"id": {"_eq": 1}}, {"email": {"_eq": "lead7@example.com"}}]})) == [1, 7]
    assert ids("limit=-1&sort=id") == list(range(1, 13))
    assert ids("limit=0") == []

    answer = _list(destinations, "filter[id][_lt]=4&meta=filter_count,total_count&fields=email&limit=1").json()
    assert answer == {"data": [{"email": "lead1@example.com"}], "meta": {"filter_count": 3, "total_count": 12}}
    assert "meta" not in _list(destinations, "limit=1").json(), "meta only when asked for"
    assert set(_list(destinations, "meta=*&limit=1").json()["meta"]) == {"filter_count", "total_count"}


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("limit=ten", '"limit" must be a number'),
        ("limit=-2", '"limit" must be greater than or equal to -1'),
        ("offset=-1", '"offset" must be greater than or equal to 0'),
        ("filter={oops", "Invalid JSON for filter object"),
        ("filter[id][_like]=3", 'Invalid filter operator "_like"'),
        ("filter[id][_gt]=", "You can't filter for an empty string"),
        ("meta=everything", '"meta" must be one of'),
    ],
)
def test_the_sandbox_refuses_a_query_directus_would_refuse(destinations, query, reason):
    answer = _list(destinations, query)
    assert answer.status_code == 400
    error = answer.json()["errors"][0]
    assert error["extensions"]["code"] == "INVALID_QUERY"
    assert reason in error["message"]


def test_the_sandbox_wants_its_token_and_seeding_fires_no_flow(destinations, http_stub):
    directus = destinations.sandboxes.directus
    directus.flows["leads"] = (http_stub.url("/directus/leads"), "flow-token")
    directus.seed("leads", [{"id": 40, "email": "old@example.com"}, {"id": "abc", "email": "text-key@example.com"}])

    assert _list(destinations, token=None).status_code == 401
    assert _list(destinations, token="wrong").json()["errors"][0]["extensions"]["code"] == "INVALID_CREDENTIALS"
    created = requests.post(
        f"{destinations.base}/directus/items/leads",
        json={"email": "new@example.com"},
        headers={"Authorization": f"Bearer {DIRECTUS_API_TOKEN}"},
        timeout=5,
    ).json()["data"]
    assert created["id"] == 41, "ids continue after the seeded ones"
    deadline = time.monotonic() + 5
    while not http_stub.received and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    assert [r.path for r in http_stub.received] == ["/directus/leads"], "only the API-created item fired the Flow"
    with pytest.raises(ValueError, match="JSON objects"):
        directus.seed("leads", ["not an item"])


# --- reading Directus -------------------------------------------------------------------------------
def _items(
    destinations, collection: str = "leads", *, token: str = DIRECTUS_API_TOKEN, base: str | None = None, **retrying
) -> DirectusItems:
    return DirectusItems(base or f"{destinations.base}/directus", token, collection, http=Retrying(**retrying))


def test_keyset_pages_follow_the_key_up_to_the_upper_bound(destinations):
    destinations.sandboxes.directus.seed("leads", [{"email": f"l{n}@example.com"} for n in range(1, 26)])
    items = _items(destinations)

    assert items.last_key() == 25
    assert items.count(None, 20) == 20
    assert items.count(8, 20) == 12
    keys, after = [], None
    while page := items.page(after, 20, 8):
        keys.append([item["id"] for item in page])
        after = page[-1]["id"]
    assert keys == [list(range(1, 9)), list(range(9, 17)), list(range(17, 21))]
    assert page == [] and after == 20
    destinations.sandboxes.directus.seed("leads", [{"email": "late@example.com"}])
    assert items.page(20, 20, 8) == [], "an item created after the backfill began is the Flow's to send"
    assert _items(destinations, "empty").last_key() is None


def test_directus_errors_say_what_to_do_and_never_show_the_token(destinations, closed_port_url):
    with pytest.raises(DirectusError, match=r"HTTP 401 .*--directus-token") as refused:
        _items(destinations, token="a-secret-token").page(None, None, 10)
    assert "a-secret-token" not in str(refused.value) and "a-secret-token" not in repr(_items(destinations))
    with pytest.raises(DirectusError, match=r"HTTP 404 .*base URL"):
        _items(destinations, base=destinations.base).page(None, None, 10)
    with pytest.raises(Unanswered, match="unreachable"):
        _items(destinations, base=closed_port_url, sleep=lambda s: None, attempts=2).page(None, None, 10)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_refused_naming_where_it_pointed_and_never_followed(http_stub, status):
    elsewhere = StubServer().start()
    try:
        http_stub.default = Answer(status, headers={"Location": elsewhere.url("/items/leads?access_token=x")})
        items = DirectusItems(http_stub.url(""), "a-secret-token", "leads", http=Retrying(sleep=lambda s: None))
        with pytest.raises(Redirected, match=rf"redirect refused: HTTP {status} to 127\.0\.0\.1:\d+") as refused:
            items.page(None, None, 10)
        assert len(http_stub.received) == 1, "not retried either"
        assert elsewhere.received == [], "the token never went to the redirect's target"
        assert "access_token" not in str(refused.value)
    finally:
        elsewhere.stop()


def test_transient_directus_failures_are_retried_with_backoff(destinations):
    destinations.sandboxes.directus.seed("leads", [{"email": "a@example.com"}])
    destinations.sandboxes.add_fault({"destination": "directus", "status": 503, "times": 2})
    waits: list[float] = []
    assert [i["id"] for i in _items(destinations, sleep=waits.append).page(None, None, 10)] == [1]
    assert len(waits) == 2 and all(0 < w <= 2 for w in waits)

    destinations.sandboxes.add_fault({"destination": "directus", "mode": "rate_limit", "times": 5})
    with pytest.raises(Unanswered, match="after 3 attempts; last: HTTP 429"):
        _items(destinations, sleep=lambda s: None, attempts=3).page(None, None, 10)


# --- the checkpoint ------------------------------------------------------------------------------------
def test_the_checkpoint_is_written_atomically_and_read_back(tmp_path):
    path = backfill.checkpoint_path(tmp_path, "clay-relay", "leads", "crm/leads")
    assert path.name == "clay-relay-leads-crm_leads.json"
    checkpoint = Checkpoint("clay-relay", "leads", "crm/leads", "leads", "id", "https://cms", upper_key=300)
    checkpoint.record(1, Outcome("sent"))
    checkpoint.record(2, Outcome("duplicate"))
    checkpoint.record(3, Outcome("refused", "HTTP 413 payload_too_large: …"))
    checkpoint.save(path)

    again = Checkpoint.load(path)
    assert again == checkpoint
    assert (again.last_key, again.handled, again.refused_items) == (
        3,
        3,
        [{"key": 3, "reason": "HTTP 413 payload_too_large: …"}],
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name], "no temporary file left behind"
    assert Checkpoint.load(tmp_path / "none.json") is None
    path.write_text("{half a file")
    with pytest.raises(CommandError, match="--restart starts over"):
        Checkpoint.load(path)


# --- the quota ---------------------------------------------------------------------------------------
def test_what_a_target_can_take_is_its_urls_left_less_the_queue_and_the_reserve(aws, put_secret):
    target = ClayTarget(webhooks_secret="clay-webhooks-leads", submission_limit=10)
    urls = ["https://api.clay.com/v3/sources/webhook/a", "https://api.clay.com/v3/sources/webhook/b"]
    put_secret("clay-webhooks-leads", [{"url": urls[0], "token": "t"}, urls[1]])
    table = RelayTable(aws.environment["RELAY_TABLE"])
    table.reserve_submissions(ClayWebhook(urls[0]).webhook_id, 7, 10, "leads")
    sqs = boto3.client("sqs")
    for delay in (0, 0, 0, 60):
        sqs.send_message(QueueUrl=aws.ref("DeliveryQueue"), MessageBody="{}", DelaySeconds=delay)

    stack = relay_stack(aws)
    left = quota_left(stack, target, reserve=2)
    assert (left.on_urls, left.urls, left.queued, left.reserve, left.budget) == (13, 2, 4, 2, 7)
    assert [(url.used, url.remaining) for url in pool_use(stack, target)] == [(7, 3), (0, 10)], "as relay clay list"

    table.reserve_submissions(ClayWebhook(urls[1]).webhook_id, 10, 10, "leads")
    assert quota_left(stack, target, reserve=2).budget == 0

    assert backfill.default_reserve(ClayTarget(webhooks_secret="s")) == 500, "1 % of 50,000"
    assert backfill.default_reserve(target) == 0
    put_secret("clay-webhooks-leads", [])
    assert quota_left(stack, target, reserve=0) == backfill.QuotaLeft(on_urls=0, urls=0, queued=4, reserve=0)
    put_secret("clay-webhooks-leads", [{"token": "t"}])
    with pytest.raises(CommandError, match="without a URL"):
        quota_left(stack, target, reserve=0)


# --- choosing the source ----------------------------------------------------------------------------
def _config(**sources) -> RelayConfig:
    return RelayConfig.model_validate(
        {
            "directus_sources": sources,
            "clay_targets": {"leads": {"webhooks_secret": "a"}, "other": {"webhooks_secret": "b"}},
        }
    )


def test_the_source_is_the_one_that_sends_the_collection_to_the_target():
    config = _config(
        leads={"clay_target": "leads", "collection": "leads"},
        anything={"clay_target": "leads"},
        people={"clay_target": "other", "collection": "people"},
    )
    assert choose_source(config, "leads", "leads", None)[0] == "leads", "an exact match before a catch-all"
    assert choose_source(config, "accounts", "leads", None)[0] == "anything"
    assert choose_source(config, "leads", "leads", "anything")[0] == "anything"
    exact = _config(people={"clay_target": "other", "collection": "people"})
    with pytest.raises(CommandError, match=r"no Directus source sends collection 'people' to target 'leads'.*people"):
        choose_source(exact, "people", "leads", None)
    with pytest.raises(CommandError, match="source 'people' does not send"):
        choose_source(config, "leads", "leads", "people")
    with pytest.raises(CommandError, match=r"no Clay target 'nope'.*leads, other"):
        choose_source(config, "leads", "nope", None)
    two = _config(a={"clay_target": "leads", "collection": "leads"}, b={"clay_target": "leads", "collection": "leads"})
    with pytest.raises(CommandError, match=r"several sources .*\(a, b\): pick one with --source"):
        choose_source(two, "leads", "leads", None)
    skipping = _config(leads={"clay_target": "leads", "collection": "leads", "on_create": "skip"})
    with pytest.raises(CommandError, match="on_create: skip"):
        choose_source(skipping, "leads", "leads", None)


# --- whole runs ------------------------------------------------------------------------------------------
def _json_answer(status: int, body: dict, headers: dict[str, str] | None = None) -> Answer:
    return Answer(status, headers or {}, json.dumps(body).encode())


class FakeRelay(StubServer):
    """`POST /directus/<source>` as the backfill sees it: the source token (401), `duplicate` for
    content it already accepted, and for every new row the worker's own Clay quota reservation
    (`ClayQuota.allocate` against moto); a row that finds no quota would be held (counted)."""

    def __init__(self, target_name: str, target: ClayTarget):
        super().__init__()
        self.target_name, self.target = target_name, target
        self.accepted: list[object] = []  # keys accepted as new rows
        self.held = 0
        self.first_answers: dict[object, list[Answer]] = {}  # key → answers given before the usual one
        self.on_key: dict[object, Callable[[], object]] = {}  # key → run before answering
        self._seen: set[str] = set()
        self.start()

    @property
    def posted(self) -> list[dict]:
        """The bodies posted with the source's token, in order."""
        return [r.json() for r in self.received if r.headers.get("authorization") == f"Bearer {RELAY_TOKEN}"]

    @property
    def keys(self) -> list[object]:
        return [body["key"] for body in self.posted]

    def respond(self, request: Received) -> Answer:
        if request.headers.get("authorization") != f"Bearer {RELAY_TOKEN}":
            return _json_answer(401, {"error": "unauthorized", "message": "missing or invalid token"})
        body = request.json()
        key = body["key"]
        if hook := self.on_key.pop(key, None):
            hook()
        if self.first_answers.get(key):
            return self.first_answers[key].pop(0)
        event_id = content_id("directus/leads", body["event"], body["collection"], str(key), body["payload"])
        duplicate = event_id in self._seen
        if not duplicate:
            self._seen.add(event_id)
            self.accepted.append(key)
            if not ClayQuota(RelayTable()).allocate(self.target_name, self.target, 1):
                self.held += 1
        return _json_answer(202, {"accepted": True, "event_id": event_id, "duplicate": duplicate})


@pytest.fixture
def run(aws, destinations, put_secret, tmp_path, monkeypatch, capsys):
    """Runs `relay backfill directus leads --target leads ARGS` against the sandbox Directus and a
    FakeRelay, with a target of 10 submissions per URL and one URL in its pool; returns
    (exit status, stdout)."""
    monkeypatch.setattr(retries, "backoff", lambda attempt: 0.01)
    config = default_config()
    config["clay_targets"]["leads"]["submission_limit"] = 10
    config["delivery"]["rates_per_second"]["clay"] = 1000
    (tmp_path / "relay.json").write_text(json.dumps(config))
    put_secret("clay-webhooks-leads", [{"url": "https://api.clay.com/v3/sources/webhook/one", "token": "t1"}])
    relay = FakeRelay("leads", RelayConfig.model_validate(config).clay_targets["leads"])
    stack = relay_stack(aws, api_url=relay.url(""), config_path=tmp_path / "relay.json")
    destinations.sandboxes.directus.seed("leads", [{"email": f"lead{n}@example.com"} for n in range(1, 26)])

    def backfill_run(*options: str) -> tuple[int, str]:
        json_option = ["--json"] if "--json" in options else []
        command = ["backfill", "directus", "leads", "--target", "leads", "--state", str(tmp_path)]
        args = parser().parse_args([*json_option, *command, *(o for o in options if o != "--json")])
        capsys.readouterr()
        status = args.run(stack, args)
        return status, capsys.readouterr().out

    backfill_run.relay = relay
    backfill_run.checkpoint = lambda: Checkpoint.load(backfill.checkpoint_path(tmp_path, "test", "leads", "leads"))
    backfill_run.add_url = lambda url: put_secret(
        "clay-webhooks-leads",
        [*json.loads(stack.read_secret("clay-webhooks-leads")), {"url": url}],
    )
    yield backfill_run
    relay.stop()


def test_a_backfill_stops_before_the_quota_runs_out_and_resumes_when_a_url_is_added(run):
    status, out = run()
    assert status == 3
    assert "stopped: target leads has 0 submissions left" in out
    assert "`relay clay add-webhook leads URL`, then run the same command again to resume after item 10" in out
    assert run.relay.accepted == list(range(1, 11)) and run.relay.held == 0, "not one row past the quota"

    status, out = run()
    assert status == 3 and run.relay.accepted == list(range(1, 11)), "still no room: nothing sent"

    run.add_url("https://api.clay.com/v3/sources/webhook/two")
    assert run()[0] == 3
    run.add_url("https://api.clay.com/v3/sources/webhook/three")
    status, out = run()
    assert status == 0 and "done: 25 items handed over: 25 sent, 0 already sent" in out
    assert run.relay.accepted == list(range(1, 26)) and run.relay.held == 0
    assert run.relay.keys == list(range(1, 26)), "each item was posted once"
    assert run.relay.posted[0] == {
        "event": "leads.items.create",
        "collection": "leads",
        "key": 1,
        "payload": {"email": "lead1@example.com", "id": 1},
    }
    checkpoint = run.checkpoint()
    assert (checkpoint.last_key, checkpoint.upper_key, checkpoint.sent, checkpoint.finished_at is not None) == (
        25,
        25,
        25,
        True,
    )
    assert run()[0] == 0 and len(run.relay.keys) == 25, "a finished backfill sends nothing more"


def test_the_reserve_and_the_queue_are_left_alone(run, aws):
    sqs = boto3.client("sqs")
    for _ in range(3):
        sqs.send_message(QueueUrl=aws.ref("DeliveryQueue"), MessageBody="{}")
    status, out = run("--reserve", "2")
    assert status == 3
    assert run.relay.accepted == [1, 2, 3, 4, 5], "10 left, less 3 queued jobs and 2 in reserve"
    assert "has 0 submissions left (5 on its 1 webhook URL, less 3 jobs queued and 2 in reserve)" in out


def test_ctrl_c_stops_after_the_request_in_flight_and_the_next_run_resumes_there(run):
    run.relay.on_key[7] = lambda: os.kill(os.getpid(), signal.SIGINT)  # while the relay handles item 7
    status, out = run("--page-size", "4")
    assert status == 130
    assert "interrupted: 7 items handed over" in out and "run the same command again to resume after item 7" in out
    assert run.checkpoint().last_key == 7
    assert run.relay.keys == list(range(1, 8)), "item 7 finished, nothing after it"

    run.add_url("https://api.clay.com/v3/sources/webhook/two")
    run.add_url("https://api.clay.com/v3/sources/webhook/three")
    status, out = run("--page-size", "4")
    assert status == 0
    assert run.relay.keys == list(range(1, 26)), "no item sent twice"


def test_an_item_sent_again_after_a_lost_checkpoint_is_a_duplicate(run, tmp_path):
    run.add_url("https://api.clay.com/v3/sources/webhook/two")
    run.add_url("https://api.clay.com/v3/sources/webhook/three")
    assert run("--limit", "12")[0] == 0
    checkpoint = run.checkpoint()
    checkpoint.last_key, checkpoint.sent = 9, 9  # as if the run died before recording items 10-12
    checkpoint.save(backfill.checkpoint_path(tmp_path, "test", "leads", "leads"))

    status, out = run("--json")
    summary = json.loads(out.splitlines()[-1])
    assert status == 0
    assert (summary["state"], summary["sent"], summary["duplicates"], summary["handled"]) == ("done", 22, 3, 25)
    assert run.relay.accepted == list(range(1, 26)), "the relay's dedupe answered the three again as duplicates"


def test_refused_items_are_listed_and_transient_failures_retried(run):
    run.add_url("https://api.clay.com/v3/sources/webhook/two")
    run.add_url("https://api.clay.com/v3/sources/webhook/three")
    relay = run.relay
    relay.first_answers[3] = [_json_answer(503, {"error": "temporarily_unavailable", "message": "retry"})]
    relay.first_answers[5] = [_json_answer(429, {"message": "Too Many Requests"}, {"Retry-After": "0"})]
    refusal = {"error": "payload_too_large", "message": "the Clay row would be 120000 bytes"}
    relay.first_answers[7] = [_json_answer(413, refusal)]

    status, out = run()
    assert status == 4
    assert "refused by the relay (1;" in out and "item 7: HTTP 413 payload_too_large: the Clay row would be" in out
    assert relay.keys.count(3) == 2 and relay.keys.count(5) == 2
    assert relay.accepted == [k for k in range(1, 26) if k != 7]
    assert run.checkpoint().refused_items == [{"key": 7, "reason": "HTTP 413 payload_too_large: " + refusal["message"]}]


def test_a_refused_token_stops_the_backfill_with_an_error(run, put_secret):
    put_secret("directus-tokens", "not-the-relays-token")
    with pytest.raises(CommandError, match=r"the relay answered 401 .*source's token was refused"):
        run()
    assert run.relay.keys == [] and run.checkpoint().last_key is None


def test_dry_run_sends_nothing_and_limit_stops_early(run):
    status, out = run("--dry-run")
    assert status == 0
    assert "dry run: 25 items of 'leads' to send from the first item up to item 25" in out
    assert "target 'leads' can take 10 more" in out and "would stop after 10 items" in out
    assert run.relay.keys == [] and run.checkpoint() is None

    status, out = run("--json", "--limit", "4")
    summary = json.loads(out.splitlines()[-1])
    assert status == 0 and (summary["state"], summary["sent"], summary["last_key"], summary["left"]) == (
        "limit",
        4,
        4,
        21,
    )
    with pytest.raises(CommandError, match="above the Clay rate"):
        run("--rate", "5000")


@pytest.mark.parametrize("wanted", [0.5, 1, 2.5, 2.85, 4.75, 5, 9.5])
def test_the_backfill_is_paced_like_the_workers_and_never_faster_than_its_rate(wanted):
    assert 1 / interval_seconds(paced_rate(10, None), workers=1) == pytest.approx(9.5), "95 % of the Clay rate"
    assert wanted - 0.95 <= 1 / interval_seconds(paced_rate(10, wanted), workers=1) <= wanted + 1e-6


# --- the progress bar -------------------------------------------------------------------------------------
class _Stream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def test_the_progress_bar_redraws_on_a_terminal_and_prints_lines_elsewhere():
    now = [0.0]
    checkpoint = Checkpoint("s", "leads", "leads", "leads", "id", "https://cms", upper_key=100, sent=40)
    terminal = Progress(_Stream(tty=True), "leads → leads", 100, clock=lambda: now[0])
    for _ in range(10):
        now[0] += 0.5
        checkpoint.sent += 1
        terminal.update(checkpoint)
    terminal.close(checkpoint)
    drawn = terminal.stream.getvalue()
    assert drawn.count("\r") == 11 and drawn.endswith("\n")
    last = drawn.rsplit("\r\033[K", 1)[-1]
    assert "[############............] 50/100  50%  2.0/s sent 50, duplicates 0, refused 0 ETA 25 s" in last

    log = Progress(_Stream(tty=False), "leads → leads", 100, every=4, clock=lambda: now[0])
    for _ in range(10):
        checkpoint.sent += 1
        log.update(checkpoint)
    log.close(checkpoint)
    assert "\r" not in log.stream.getvalue() and len(log.stream.getvalue().splitlines()) == 3
