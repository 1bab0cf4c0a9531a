"""`relay console` against moto, through HTTP as a browser uses it: the printed URL signs in, every
other request without the token or its cookie is refused, only the console's own host name is
answered, a replay needs a POST with the page's CSRF token, emails stay masked until revealed, the
pages show what the `relay` command shows, and the console changes nothing in the stack but the
dead letters it is asked to replay."""

from __future__ import annotations

import re
import threading
import time
import uuid
from urllib.parse import urlsplit

import pytest
import requests

from clay_relay.delivery_queue import DeadLetter, DeliveryQueue
from clay_relay.jobs import LoopsEventJob, dump_job
from clay_relay.store import RelayTable
from clay_relay.store.parking import ParkedJob
from relay_cli.console import serve
from relay_cli.output import iso
from tests.invocations import call_handler, directus_flow_event, load_handler, relay_stack
from tests.queues import receive, run_worker, sqs_record

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

EMAIL = "ada.lovelace@example.com"


@pytest.fixture
def console(aws):
    """The console on a free port of 127.0.0.1, serving in a thread; its server."""
    stack = relay_stack(aws, local=True)
    server = serve(stack, port=0, refresh=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def base(server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def signed_in(server) -> requests.Session:
    session = requests.Session()
    answer = session.get(server.url, allow_redirects=False, timeout=10)
    assert answer.status_code == 303
    return session


def dead_letter(reason: str = f"loops answered HTTP 400: bad contact {EMAIL}") -> str:
    job = LoopsEventJob(
        event_id=f"event-{uuid.uuid4().hex[:12]}",
        origin="loops/events",
        payload={"email": EMAIL, "eventName": "demo"},
    )
    DeliveryQueue().dead_letter(
        [DeadLetter(body=dump_job(job), reason=reason, attempts=3, destination="loops", origin="loops/events")]
    )
    return job.event_id


def letter_ids(html: str) -> list[str]:
    return re.findall(r'name="id" value="([^"]+)"', html)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def test_the_printed_address_signs_in_with_a_cookie_and_leaves_the_token_out_of_the_address(console):
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/\?token=[\w-]{40,}", console.url)
    answer = requests.get(console.url, allow_redirects=False, timeout=10)
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/"
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    session = signed_in(console)
    page = session.get(base(console) + "/", timeout=30)
    assert page.status_code == 200
    assert "<h1>Overview</h1>" in page.text
    assert "token" not in page.url


def test_the_token_and_the_address_change_at_every_start(aws):
    stack = relay_stack(aws, local=True)
    first, second = serve(stack, port=0), serve(stack, port=0)
    try:
        assert first.guard.token != second.guard.token
        assert first.console.csrf != second.console.csrf
    finally:
        first.server_close()
        second.server_close()


def test_it_listens_on_the_loopback_address_only(console):
    assert console.server_address[0] == "127.0.0.1"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/leads?q=ada%40example.com"),
        ("GET", "/dead-letters?reveal=all"),
        ("POST", "/dead-letters/replay"),
        ("GET", "/static/console.js"),
        ("GET", "/no-such-page"),
        ("DELETE", "/"),
        ("HEAD", "/"),
    ],
)
def test_every_request_without_the_token_or_its_cookie_is_refused(console, method, path):
    for headers in ({}, {"Cookie": "relay_console=guessed"}, {"Accept": "text/html"}):
        answer = requests.request(method, base(console) + path, headers=headers, timeout=10, allow_redirects=False)
        assert answer.status_code == 401
        if method == "HEAD":
            continue
        if "text/html" in headers.get("Accept", ""):
            assert "401" in answer.text and "Overview" not in answer.text
        else:
            assert answer.json()["error"]
    wrong = requests.get(base(console) + "/?token=" + "x" * 43, timeout=10, allow_redirects=False)
    assert wrong.status_code == 401
    assert "Set-Cookie" not in wrong.headers


def test_a_host_name_other_than_the_consoles_own_is_refused_even_with_the_cookie(console):
    session = signed_in(console)
    for host in ("evil.example.com", f"evil.example.com:{console.server_address[1]}", "127.0.0.1:1"):
        answer = session.get(base(console) + "/", headers={"Host": host}, timeout=10)
        assert answer.status_code == 421, host
    cookie = f"relay_console={console.guard.token}"
    localhost = {"Host": f"localhost:{console.server_address[1]}", "Cookie": cookie}
    assert requests.get(base(console) + "/", headers=localhost, timeout=30).ok


def test_a_replay_needs_a_post_with_the_pages_csrf_token_from_the_consoles_own_origin(console):
    dead_letter()
    session = signed_in(console)
    page = session.get(base(console) + "/dead-letters", timeout=30).text
    letter, csrf = letter_ids(page)[0], csrf_of(page)
    replay = base(console) + "/dead-letters/replay"
    form = {"id": letter, "action": "replay"}
    assert session.get(replay, params={**form, "csrf": csrf}, timeout=10).status_code == 405
    assert session.post(replay, data=form, timeout=10).status_code == 403
    assert session.post(replay, data={**form, "csrf": "x" * 43}, timeout=10).status_code == 403
    cross_site = session.post(replay, data={**form, "csrf": csrf}, headers={"Origin": "https://evil.example"})
    assert cross_site.status_code == 403
    assert len(receive(DeliveryQueue().url)) == 0  # none of those moved anything
    done = session.post(replay, data={**form, "csrf": csrf}, headers={"Origin": base(console)}, timeout=30)
    assert done.status_code == 200
    assert "Replayed 1" in done.text
    assert len(receive(DeliveryQueue().url)) == 1


def test_a_replay_preview_changes_nothing_and_offers_to_replay_what_it_listed(console):
    dead_letter()
    dead_letter()
    session = signed_in(console)
    csrf = csrf_of(session.get(base(console) + "/dead-letters", timeout=30).text)
    preview = session.post(
        base(console) + "/dead-letters/replay", data={"all": "1", "action": "preview", "csrf": csrf}, timeout=30
    )
    assert preview.status_code == 200
    assert "Would replay 2" in preview.text
    assert 'name="all" value="1"' in preview.text and ">Replay all now<" in preview.text
    assert receive(DeliveryQueue().url) == []
    done = session.post(
        base(console) + "/dead-letters/replay", data={"all": "1", "action": "replay", "csrf": csrf}, timeout=30
    )
    assert "Replayed 2" in done.text
    assert "0 left in the dead-letter queue" in done.text


def test_dead_letters_show_reason_and_job_with_emails_masked_until_revealed(console):
    dead_letter()
    session = signed_in(console)
    masked = session.get(base(console) + "/dead-letters", timeout=30).text
    assert "a***@example.com" in masked
    assert EMAIL not in masked
    letter = letter_ids(masked)[0]
    one = session.get(base(console) + "/dead-letters", params={"reveal": letter}, timeout=30).text
    assert EMAIL in one
    assert EMAIL in session.get(base(console) + "/dead-letters?reveal=all", timeout=30).text


def test_bad_forms_get_their_status_and_a_clear_message(console):
    session = signed_in(console)
    csrf = console.console.csrf
    replay = base(console) + "/dead-letters/replay"
    as_json = session.post(replay, json={"csrf": csrf, "all": "1"}, timeout=10)
    assert (as_json.status_code, as_json.json()["error"]) == (
        415,
        "send the console's form (application/x-www-form-urlencoded)",
    )
    too_big = session.post(replay, data={"csrf": csrf, "id": "x" * 70_000}, timeout=10)
    assert too_big.status_code == 413
    nothing = session.post(replay, data={"csrf": csrf, "action": "replay"}, timeout=10)
    assert nothing.status_code == 400
    assert "choose a dead letter" in nothing.json()["error"]
    wrong_action = session.post(replay, data={"csrf": csrf, "all": "1", "action": "delete"}, timeout=10)
    assert wrong_action.status_code == 400
    assert session.get(base(console) + "/nowhere", timeout=10).status_code == 404
    assert session.put(base(console) + "/", timeout=10).status_code == 405


def test_the_lead_search_shows_the_leads_timeline_masked_and_says_what_is_wrong_with_a_query(
    console, aws, destinations, put_secret
):
    put_secret("clay-webhooks-leads", [{"url": f"{destinations.base}/clay/webhooks/leads-1"}])
    event = directus_flow_event(
        {"event": "leads.items.create", "collection": "leads", "key": 7, "payload": {"email": EMAIL}}
    )
    assert call_handler(load_handler("directus_trigger"), event)[0] == 202
    queue = aws.ref("DeliveryQueue")
    run_worker([sqs_record(message, queue) for message in receive(queue)])
    session = signed_in(console)
    found = session.get(base(console) + "/leads", params={"q": EMAIL}, timeout=30)
    assert found.status_code == 200
    assert "directus.accepted" in found.text and "clay.delivered" in found.text
    timeline = found.text.split("</form>", 1)[1]  # the search box keeps what was typed
    assert EMAIL not in timeline and "a***@example.com" in timeline
    by_item = session.get(base(console) + "/leads", params={"q": "directus:leads/7", "reveal": "1"}, timeout=30)
    assert EMAIL in by_item.text
    assert session.get(base(console) + "/leads", params={"q": "nobody@example.com"}).status_code == 404
    assert session.get(base(console) + "/leads", params={"q": "directus:leads"}).status_code == 400
    assert session.get(base(console) + "/leads", params={"q": "x" * 600}).status_code == 400


def test_pages_send_no_script_but_their_own_and_may_not_be_framed(console):
    answer = signed_in(console).get(base(console) + "/", timeout=30)
    policy = answer.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "form-action 'self'" in policy
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["Referrer-Policy"] == "same-origin"
    assert "<script" not in answer.text.replace('<script src="/static/console.js" defer></script>', "")


def test_the_console_reads_the_stack_and_changes_nothing_but_the_dead_letters_it_replays(console, aws):
    """Every AWS call of a session through every page and a replay: reads, and the replay's moves."""
    calls: list[str] = []
    stack = console.console.stack
    for client in (stack.sqs, stack.dynamodb, stack.secretsmanager, stack.cloudwatch):
        client.meta.events.register("before-call", lambda model, **_: calls.append(model.name))
    dead_letter()
    session = signed_in(console)
    session.get(base(console) + "/", timeout=30)
    session.get(base(console) + "/leads", params={"q": EMAIL}, timeout=30)
    page = session.get(base(console) + "/dead-letters", params={"reveal": "all"}, timeout=30).text
    session.post(
        base(console) + "/dead-letters/replay",
        data={"id": letter_ids(page)[0], "action": "replay", "csrf": csrf_of(page)},
        timeout=30,
    )
    reads = {"GetQueueAttributes", "ReceiveMessage", "ChangeMessageVisibilityBatch", "GetItem", "BatchGetItem"}
    reads |= {"Query", "GetSecretValue", "GetMetricData"}
    replay = {"SendMessageBatch", "DeleteMessageBatch"}
    assert set(calls) <= reads | replay, set(calls) - reads - replay
    assert replay <= set(calls)


def test_the_overview_shows_what_relay_status_shows_and_the_activity_of_the_day(console, aws):
    dead_letter()
    cloudwatch = console.console.stack.cloudwatch
    cloudwatch.put_metric_data(
        Namespace="ClayRelay/test",
        MetricData=[
            {
                "MetricName": "Delivered",
                "Dimensions": [{"Name": "destination", "Value": "loops"}, {"Name": "service", "Value": "clay-relay"}],
                "Value": 7,
                "Unit": "Count",
                "Timestamp": time.time() - 120,
            }
        ],
    )
    page = signed_in(console).get(base(console) + "/", timeout=30).text
    for section in (
        "Last 24 hours",
        "Delivery queue",
        "Dead letters: 1",
        "Clay pools",
        "Clay budgets",
        "Overdue leads",
    ):
        assert section in page
    assert re.search(r"<td>loops</td><td>[^<]*</td>\s*<td class=\"n\">7</td>", page)
    assert "7 delivered in the last 60 minutes" in page
    assert "a***@example.com" in page and EMAIL not in page
    assert urlsplit(console.url).hostname == "127.0.0.1"


def test_the_overview_shows_each_parked_destination_with_its_jobs_and_its_last_error_masked(console):
    session = signed_in(console)
    assert "None: no destination is down." in session.get(base(console) + "/", timeout=30).text
    table, since = RelayTable(), time.time() - 120
    table.mark_down("clay:default", f"clay answered HTTP 503: no room for {EMAIL}", since, 10)
    table.park("clay:default", [ParkedJob(f"message-{n}", f"receipt-{n}", since) for n in range(2)], since, 600)

    page = session.get(base(console) + "/", timeout=30).text
    parked = page.split('<section id="parked">', 1)[1].split("</section>", 1)[0]
    assert re.search(
        rf"<td>clay:default</td><td>down since {re.escape(iso(since))} \(\d+ min\)</td><td class=\"n\">2</td>"
        r"<td>clay answered HTTP 503: no room for a\*\*\*@example.com</td>",
        parked,
    ), parked
    assert EMAIL not in page


def test_a_port_already_taken_is_said_in_one_line(aws, capsys):
    import argparse
    import socket

    from relay_cli.console import run

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        args = argparse.Namespace(port=taken.getsockname()[1], refresh=30)
        assert run(relay_stack(aws, local=True), args) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"relay: error: cannot listen on 127.0.0.1:{args.port}") and "--port" in error
