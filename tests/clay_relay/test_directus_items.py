"""The one reader of Directus items (the worker's full rows, the sweep, `relay backfill`): the requests
it makes, what a refusal says, and, from the relay, only the URLs the configuration allows."""

from __future__ import annotations

import json

import pytest

from clay_relay.config import RelayConfig
from clay_relay.directus_items import Answer, DirectusFailed, DirectusItems, api_secret, relay_items
from clay_relay.runtime import get_runtime
from tests.conftest import fresh_runtime
from tests.invocations import default_config


class Directus:
    """A fetch answering as told, noting each request."""

    def __init__(self, *answers: Answer):
        self.answers, self.asked = list(answers), []

    def __call__(self, url: str, query: dict[str, str]) -> Answer:
        self.asked.append((url, query))
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


ITEMS = Answer(200, {"data": [{"id": 7, "email": "ada@example.com"}, {"id": "8", "email": "kay@x.io"}]})


def test_items_by_key_are_one_request_limited_to_the_fields_asked():
    directus = Directus(ITEMS)
    found = DirectusItems("https://cms.example.com/", "leads", "id", directus).by_keys([7, "8", 7], ["email", "id"])
    assert set(found) == {"7", "8"}
    [(url, query)] = directus.asked
    assert url == "https://cms.example.com/items/leads"
    assert json.loads(query["filter"]) == {"id": {"_in": [7, "8"]}}
    assert (query["fields"], query["limit"]) == ("id,email", "2")


def test_a_page_is_keyset_paged_with_the_rules_given():
    directus = Directus(ITEMS)
    rule = {"date_updated": {"_gt": "2026-12-06T17:00:00.000Z"}}
    DirectusItems("https://cms.example.com", "leads", "id", directus).page(6, None, 100, fields=["id"], rules=[rule])
    [(_, query)] = directus.asked
    assert json.loads(query["filter"]) == {"_and": [rule, {"id": {"_gt": 6}}]}
    assert (query["sort"], query["limit"], query["fields"]) == ("id", "100", "id")


@pytest.mark.parametrize(
    ("answer", "retryable", "said"),
    [
        (Answer(503, {"errors": [{"message": "down", "extensions": {"code": "SERVICE_UNAVAILABLE"}}]}), True, "down"),
        (Answer(None, None, "connection failed"), True, "connection failed"),
        (Answer(429, None, "HTTP 429"), True, "HTTP 429"),
        (Answer(403, {"errors": [{"message": "No.", "extensions": {"code": "FORBIDDEN"}}]}), False, "FORBIDDEN: No."),
        (Answer(401, None, "HTTP 401: nope"), False, "HTTP 401: nope"),
        (Answer(200, ["not", "an", "object"]), False, "JSON object"),
        (Answer(200, {"items": []}), False, "no JSON 'data' list"),
    ],
)
def test_a_failure_says_whether_it_may_pass_and_what_directus_said(answer, retryable, said):
    with pytest.raises(DirectusFailed) as failed:
        DirectusItems("https://cms.example.com", "leads", "id", Directus(answer)).by_keys([7], ["email"])
    assert failed.value.retryable is retryable
    assert said in str(failed.value)


@pytest.mark.parametrize("collection", ["..", "leads/../users", "a b", ""])
def test_a_collection_that_would_change_the_path_is_refused(collection):
    with pytest.raises(ValueError, match="cannot be a segment"):
        DirectusItems("https://cms.example.com", collection, "id", Directus(ITEMS))


def test_field_defaults_come_from_the_fields_api():
    directus = Directus(
        Answer(200, {"data": [{"field": "status", "schema": {"default_value": "new"}}, {"field": "x"}]})
    )
    assert DirectusItems("https://cms.example.com", "leads", "id", directus).field_defaults() == {"status": "new"}
    assert directus.asked[0][0] == "https://cms.example.com/fields/leads"


def test_the_relay_reads_directus_only_where_it_may_send(aws, put_secret, monkeypatch, http_stub):
    monkeypatch.delenv("ALLOW_LOCAL_DESTINATIONS")
    fresh_runtime()
    put_secret("directus-api", {"url": http_stub.url("/directus"), "token": "t"})
    items = relay_items(get_runtime().config, "leads", "id", event_id="test")
    with pytest.raises(DirectusFailed, match="Directus' URL refused") as refused:
        items.by_keys([7], ["email"])
    assert not refused.value.retryable
    assert http_stub.received == []


def test_the_relay_reads_with_the_write_backs_secret():
    config = RelayConfig.model_validate
    shipped = default_config()
    assert api_secret(config(shipped)) == "directus-api"
    shipped["clay_callback"]["directus_writeback"]["api_secret"] = "cms-api"
    assert api_secret(config(shipped)) == "cms-api"
    shipped["clay_callback"] = None
    assert api_secret(config(shipped)) == "directus-api"
