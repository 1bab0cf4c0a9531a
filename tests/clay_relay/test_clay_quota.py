"""The pool of Clay webhook URLs of a target: submissions are reserved URL after URL, in pool
order, never past a URL's limit; the operator is warned at 80 % and 95 %; when every URL is used
up fewer (or no) submissions are granted, until a URL is added to the pool's secret. A row is
posted with its event id in the target's idempotency column, and measured that way at the edge."""

from __future__ import annotations

import json

import pytest

from clay_relay.clay import (
    ClayPoolUnavailable,
    ClayQuota,
    ClayWebhook,
    check_row_size,
    load_pool,
    pool_used_percent,
    posted_row,
)
from clay_relay.config import ClayTarget
from clay_relay.errors import PayloadTooLarge
from clay_relay.store import RelayTable
from tests.conftest import fresh_runtime

URL_A = "https://api.clay.test/v3/sources/webhook/pull-in-data-from-a-webhook-aaaa"
URL_B = "https://api.clay.test/v3/sources/webhook/pull-in-data-from-a-webhook-bbbb"
URL_C = "https://api.clay.test/v3/sources/webhook/pull-in-data-from-a-webhook-cccc"
POOL_SECRET = "clay-webhooks-leads"


def target(limit: int, **settings) -> ClayTarget:
    return ClayTarget(webhooks_secret=POOL_SECRET, submission_limit=limit, **settings)


@pytest.fixture
def quota(aws, put_secret) -> ClayQuota:
    put_secret(POOL_SECRET, [{"url": URL_A, "token": "token-a"}, {"url": URL_B}])
    return ClayQuota(RelayTable())


def granted(allocations) -> list[tuple[str, int]]:
    return [(a.webhook.url, a.count) for a in allocations]


def used(url: str) -> int:
    return RelayTable().submissions_used(ClayWebhook(url).webhook_id)


def test_submissions_come_from_the_first_url_while_it_has_quota(quota):
    assert granted(quota.allocate("leads", target(10), 6)) == [(URL_A, 6)]
    assert (used(URL_A), used(URL_B)) == (6, 0)


def test_allocation_moves_to_the_next_url_when_the_first_is_used_up(quota):
    quota.allocate("leads", target(10), 6)
    assert granted(quota.allocate("leads", target(10), 6)) == [(URL_A, 4), (URL_B, 2)]
    assert granted(quota.allocate("leads", target(10), 3)) == [(URL_B, 3)]
    assert (used(URL_A), used(URL_B)) == (10, 5)


def test_webhook_token_travels_with_its_url(quota):
    [a] = quota.allocate("leads", target(2), 2)
    [b] = quota.allocate("leads", target(2), 2)
    assert (a.webhook.url, a.webhook.token) == (URL_A, "token-a")
    assert (b.webhook.url, b.webhook.token) == (URL_B, None)


def test_fewer_than_wanted_are_granted_when_the_whole_pool_is_used_up(quota):
    quota.allocate("leads", target(10), 8)
    quota.allocate("leads", target(10), 8)
    assert sum(a.count for a in quota.allocate("leads", target(10), 8)) == 4
    assert quota.allocate("leads", target(10), 1) == []
    assert (used(URL_A), used(URL_B)) == (10, 10)


def test_batch_larger_than_a_fresh_url_spills_over_to_the_next_url(quota):
    assert granted(quota.allocate("leads", target(4), 10)) == [(URL_A, 4), (URL_B, 4)]
    assert (used(URL_A), used(URL_B)) == (4, 4)


def test_url_added_to_the_pool_is_used_once_the_others_are_used_up(quota, put_secret):
    quota.allocate("leads", target(5), 5)
    quota.allocate("leads", target(5), 5)
    assert quota.allocate("leads", target(5), 1) == []
    put_secret(POOL_SECRET, [{"url": URL_A, "token": "token-a"}, {"url": URL_B}, {"url": URL_C, "token": "c"}])
    assert granted(quota.allocate("leads", target(5), 3)) == [(URL_C, 3)]


def test_submissions_given_back_make_a_used_up_url_usable_again(quota):
    [allocation] = quota.allocate("leads", target(3), 3)
    quota.allocate("leads", target(3), 3)  # B used up too
    quota.give_back(allocation.webhook, 2)
    assert granted(quota.allocate("leads", target(3), 5)) == [(URL_A, 2)]


def test_counts_are_shared_by_every_worker_instance(quota):
    ClayQuota(RelayTable()).allocate("leads", target(10), 7)
    fresh_runtime()  # another Lambda instance: no in-memory state
    assert granted(ClayQuota(RelayTable()).allocate("leads", target(10), 5)) == [(URL_A, 3), (URL_B, 2)]


def quota_warnings(logs) -> list[str]:
    return [m for m in logs.messages("WARNING") if "of its submissions" in m]


def test_warns_once_when_a_url_crosses_80_and_95_percent(quota, logs):
    limit = target(100)
    quota.allocate("leads", limit, 79)
    assert quota_warnings(logs) == []
    quota.allocate("leads", limit, 1)
    assert quota_warnings(logs) == ["clay webhook URL has used 80% of its submissions"]
    quota.allocate("leads", limit, 14)
    assert len(quota_warnings(logs)) == 1
    quota.allocate("leads", limit, 2)
    assert quota_warnings(logs)[1:] == ["clay webhook URL has used 95% of its submissions"]
    quota.allocate("leads", limit, 3)
    assert len(quota_warnings(logs)) == 2
    [warning] = [line for line in logs.lines if line["message"].endswith("95% of its submissions")]
    assert (warning["target"], warning["used"], warning["quota"]) == ("leads", 96, 100)
    assert warning["webhook_id"] == ClayWebhook(URL_A).webhook_id
    assert URL_A not in logs.text  # the URL is a credential: only its id is logged


def test_warns_at_both_thresholds_when_one_reservation_crosses_both(quota, logs):
    quota.allocate("leads", target(100), 96)
    assert quota_warnings(logs) == [
        "clay webhook URL has used 80% of its submissions",
        "clay webhook URL has used 95% of its submissions",
    ]


def test_warns_when_a_url_is_used_up_and_the_next_takes_over(quota, logs):
    quota.allocate("leads", target(4), 4)
    assert any("used up" in m for m in logs.messages("WARNING"))


def test_thresholds_are_configurable(quota, logs):
    quota.allocate("leads", target(10, warn_at=(0.5,)), 6)
    assert quota_warnings(logs) == ["clay webhook URL has used 50% of its submissions"]


# --- how much of the whole pool is used (ClayPoolUsedPercent, what the 80 %/95 % alarms watch) ------
def pool_used(capsys) -> list[float]:
    """The ClayPoolUsedPercent values printed (EMF) since the last call, in order."""
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    return [value for blob in blobs for value in blob.get("ClayPoolUsedPercent", [])]


def test_pool_use_counts_the_urls_before_the_one_in_use_as_used_up(quota, capsys):
    quota.allocate("leads", target(10), 6)  # A 6/10, B 0/10
    quota.allocate("leads", target(10), 6)  # A 10, B 2
    quota.allocate("leads", target(10), 3)  # B 5
    assert pool_used(capsys) == [30.0, 60.0, 75.0]


def test_a_fresh_url_waiting_in_the_pool_keeps_the_pool_below_80_percent(quota, capsys, logs):
    quota.allocate("leads", target(100), 96)
    assert quota_warnings(logs)[-1] == "clay webhook URL has used 95% of its submissions"  # the URL's
    assert pool_used(capsys) == [48.0]  # the pool's: B has all its 100 left


def test_pool_use_is_100_percent_once_used_up_and_falls_when_a_url_is_added(quota, capsys, put_secret):
    quota.allocate("leads", target(5), 5)
    quota.allocate("leads", target(5), 5)
    assert quota.allocate("leads", target(5), 2) == []
    assert pool_used(capsys) == [50.0, 100.0, 100.0]
    put_secret(POOL_SECRET, [{"url": URL_A, "token": "token-a"}, {"url": URL_B}, {"url": URL_C}])
    quota.allocate("leads", target(5), 3)  # the refreshed pool: A and B used up, C 3/5
    assert pool_used(capsys) == [86.67]


def test_submissions_given_back_and_taken_again_are_counted_once(quota, capsys):
    [allocation] = quota.allocate("leads", target(3), 3)  # A 3/3
    quota.allocate("leads", target(3), 1)  # B 1/3
    quota.give_back(allocation.webhook, 2)  # A 1/3
    assert granted(quota.allocate("leads", target(3), 4)) == [(URL_A, 2), (URL_B, 2)]
    assert pool_used(capsys) == [50.0, 66.67, 100.0]


def test_pool_use_is_read_from_the_reservations_without_another_aws_call(quota, capsys, aws_calls):
    quota.allocate("leads", target(10), 12)
    assert [name for name, _ in aws_calls.dynamodb] == ["update_item", "update_item"]  # one per URL
    assert pool_used(capsys) == [60.0]


def test_an_empty_pool_is_used_up(aws, put_secret, capsys):
    put_secret(POOL_SECRET, [])
    assert ClayQuota(RelayTable()).allocate("leads", target(10), 1) == []
    assert pool_used(capsys) == [100.0]


def test_pool_use_is_published_for_the_alarms_and_per_target(quota, capsys):
    quota.allocate("leads", target(10), 1)
    [blob] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "ClayPoolUsedPercent" in line]
    [directive] = blob["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "ClayRelay"
    assert directive["Metrics"] == [{"Name": "ClayPoolUsedPercent", "Unit": "Percent"}]
    assert [set(names) for names in directive["Dimensions"]] == [
        {"service", "destination"},
        {"service", "destination", "target"},
    ]
    assert (blob["service"], blob["destination"], blob["target"]) == ("clay-relay", "clay", "leads")


@pytest.mark.parametrize(
    ("used", "urls", "limit", "percent"),
    [(0, 2, 10, 0.0), (15, 2, 10, 75.0), (1, 3, 50_000, 0.0), (20, 2, 10, 100.0), (25, 2, 10, 100), (0, 0, 10, 100)],
)
def test_pool_used_percent(used, urls, limit, percent):
    assert pool_used_percent(used, urls, limit) == percent


# --- the pool secret -----------------------------------------------------------------------------
def test_pool_secret_may_list_plain_urls_or_objects(aws, put_secret):
    put_secret(POOL_SECRET, [URL_A, {"url": URL_B, "token": "t"}])
    assert load_pool(target(10)) == [ClayWebhook(URL_A), ClayWebhook(URL_B, "t")]


def test_pool_secret_may_be_a_single_object(aws, put_secret):
    put_secret(POOL_SECRET, {"url": URL_A, "token": "t"})
    assert load_pool(target(10)) == [ClayWebhook(URL_A, "t")]


@pytest.mark.parametrize("value", ['"https://x"', '[{"token": "t"}]', '["ftp://x"]', "not json", "42"])
def test_malformed_pool_secret_makes_the_pool_unavailable(aws, put_secret, value):
    put_secret(POOL_SECRET, value)
    with pytest.raises(ClayPoolUnavailable):
        load_pool(target(10))


def test_missing_pool_secret_makes_the_pool_unavailable(aws):
    with pytest.raises(ClayPoolUnavailable):
        ClayQuota(RelayTable()).allocate("leads", ClayTarget(webhooks_secret="no-such-pool"), 1)


# --- rows --------------------------------------------------------------------------------------------
def test_the_row_size_limit_counts_the_idempotency_column_clay_will_receive():
    row = {"notes": "x" * (1000 - len('{"notes":""}'))}  # exactly 1000 bytes on its own
    check_row_size(ClayTarget(webhooks_secret="pool", max_row_bytes=1000, idempotency_column=None), row, "e" * 32)
    with pytest.raises(PayloadTooLarge):
        check_row_size(ClayTarget(webhooks_secret="pool", max_row_bytes=1000), row, "e" * 32)


def test_the_posted_row_carries_its_event_id_in_the_idempotency_column_unless_there_is_none():
    row = {"email": "ada@example.com"}
    assert posted_row(ClayTarget(webhooks_secret="pool"), row, "abc") == {**row, "relay_event_id": "abc"}
    assert (
        posted_row(ClayTarget(webhooks_secret="pool", idempotency_column="dedupe_key"), row, "abc")["dedupe_key"]
        == "abc"
    )
    assert posted_row(ClayTarget(webhooks_secret="pool", idempotency_column=None), row, "abc") == row
