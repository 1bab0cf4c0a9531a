"""Writing enrichment back into the lead's Directus item (PATCH /items/<collection>/<id>, against
local_stack's Directus sandbox), and recognising the update Directus fires for that write as the
relay's own echo, so that it never becomes a second Clay row (no loop); a user's edit still does."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from clay_relay.config import DirectusSource, DirectusWriteBack, RelayConfig
from clay_relay.directus import Skipped, clay_jobs, parse_event, write_back
from clay_relay.item_keys import SAFE_KEY, item_path
from clay_relay.jobs import DirectusPatchJob
from tests.destinations import DIRECTUS_API_TOKEN, Answer
from tests.invocations import call_handler, default_config, directus_flow_event, load_handler
from tests.queues import receive

WRITE_BACK = DirectusWriteBack(
    collection="leads",
    fields={"icp_score": "icp_score", "industry": "industry", "personalized_opener": "opener"},
)
ENRICHMENT = {"icp_score": 91.0, "industry": "Software", "opener": "Loved your talk."}


def patch_job(item_id: str = "7", fields: dict | None = None, collection: str = "leads") -> DirectusPatchJob:
    return DirectusPatchJob(
        event_id="writeback-0001",
        origin="clay/enriched",
        collection=collection,
        item_id=item_id,
        fields=ENRICHMENT if fields is None else fields,
    )


def an_item(destinations, item_id: str = "7", collection: str = "leads") -> dict:
    item = {"id": int(item_id) if item_id.isdigit() else item_id, "email": "ada@example.com", "first_name": "Ada"}
    destinations.sandboxes.directus.items[(collection, item_id)] = item
    return item


# --- the write-back ----------------------------------------------------------------------------------
def test_enrichment_is_patched_into_the_item_with_the_api_token(destinations):
    item = an_item(destinations)
    outcome = write_back(patch_job(), WRITE_BACK)
    assert (outcome.delivered, outcome.status) == (True, 200)
    [sent] = destinations.received("directus")
    assert (sent["method"], sent["path"]) == ("PATCH", "/directus/items/leads/7")
    assert sent["headers"]["authorization"] == f"Bearer {DIRECTUS_API_TOKEN}"
    assert sent["body"] == ENRICHMENT
    assert item.pop("date_updated"), "Directus stamps the update"
    assert item == {"id": 7, "email": "ada@example.com", "first_name": "Ada", **ENRICHMENT}


def test_a_204_from_a_token_that_may_update_but_not_read_counts_as_written(aws, http_stub, put_secret):
    http_stub.answer("/items/leads/7", Answer(204, body=b""))
    put_secret("directus-api", {"url": http_stub.url("/"), "token": "t"})
    outcome = write_back(patch_job(), WRITE_BACK)
    assert (outcome.delivered, outcome.status) == (True, 204)
    [sent] = http_stub.received
    assert (sent.method, sent.path) == ("PATCH", "/items/leads/7")
    assert sent.json() == ENRICHMENT


def test_an_unknown_item_is_403_and_not_retried(destinations):
    outcome = write_back(patch_job(item_id="404"), WRITE_BACK)
    assert (outcome.delivered, outcome.retryable, outcome.status) == (False, False, 403)
    assert "FORBIDDEN" in outcome.reason


def test_a_wrong_api_token_is_401_and_not_retried(destinations, put_secret):
    an_item(destinations)
    put_secret("directus-api", {"url": f"{destinations.base}/directus", "token": "expired"})
    outcome = write_back(patch_job(), WRITE_BACK)
    assert (outcome.delivered, outcome.retryable, outcome.status) == (False, False, 401)


@pytest.mark.parametrize(
    ("item_id", "collection"),
    [
        ("..", "leads"),
        (".", "leads"),
        ("a/b", "leads"),
        ("a b?c", "leads"),
        ("%2e%2e", "leads"),
        ("7", ".."),
        ("7", "my leads"),
    ],
)
def test_a_job_whose_item_or_collection_could_change_the_path_cannot_exist(item_id, collection):
    with pytest.raises(ValidationError, match=r"item_id|collection"):
        patch_job(item_id=item_id, collection=collection)


@given(collection=st.text(max_size=70), key=st.text(max_size=70))
def test_no_collection_or_key_can_change_the_items_path(collection, key):
    """Either refused, or exactly /items/<collection>/<key>: never a dot segment, never another segment."""
    try:
        path = item_path(collection, key)
    except ValueError:
        assert not (SAFE_KEY.fullmatch(collection) and SAFE_KEY.fullmatch(key))
        return
    assert path == f"/items/{collection}/{key}"
    assert path.split("/")[2:] == [collection, key] and "." not in path


@pytest.mark.parametrize(
    "secret",
    ["REPLACE_ME", "not json", {"url": "http://127.0.0.1:9/directus"}],
    ids=["placeholder", "not json", "no token"],
)
def test_an_unusable_api_secret_is_retried_without_calling_directus(destinations, put_secret, secret):
    put_secret("directus-api", secret)
    outcome = write_back(patch_job(), WRITE_BACK)
    assert (outcome.delivered, outcome.retryable, outcome.reached) == (False, True, False)
    assert destinations.received("directus") == []


# --- echo detection ----------------------------------------------------------------------------------
KEEP_ALL = DirectusSource(clay_target="leads", collection="leads")  # fields: null (every changed field)


def echo_of(patched: dict, item_id: str = "7", collection: str = "leads") -> dict:
    """What Directus fires after the PATCH: items.update with payload = exactly the fields written."""
    return {"event": f"{collection}.items.update", "payload": patched, "keys": [item_id], "collection": collection}


def config_with(write_back: DirectusWriteBack | None) -> RelayConfig:
    """relay.json with this write-back and without Loops' feedback (whose fields are the relay's own too:
    see tests/clay_relay/test_loops_feedback.py)."""
    raw = default_config()
    raw["clay_callback"]["directus_writeback"] = write_back.model_dump() if write_back else None
    raw["loops_webhook"]["directus_feedback"] = None
    return RelayConfig.model_validate(raw)


def test_write_back_fields_are_the_directus_fields_of_the_write_back_collection():
    assert config_with(WRITE_BACK).write_back_fields("leads") == {"icp_score", "industry", "opener"}


def test_other_collections_have_no_write_back_fields():
    assert config_with(WRITE_BACK).write_back_fields("companies") == set()


def test_there_are_no_write_back_fields_when_the_write_back_is_off():
    assert config_with(None).write_back_fields("leads") == set()
    assert RelayConfig().write_back_fields("leads") == set()


@pytest.mark.parametrize(
    "patched", [ENRICHMENT, {"icp_score": 55.0}, {"industry": "Software", "opener": "Hi"}], ids=["all", "one", "two"]
)
def test_an_update_of_write_back_fields_only_is_skipped_as_an_echo(patched):
    echo_fields = config_with(WRITE_BACK).write_back_fields("leads")
    with pytest.raises(Skipped, match="echo"):
        clay_jobs("leads", KEEP_ALL, parse_event(echo_of(patched)), echo_fields)


def test_an_update_with_any_other_field_is_a_users_edit_and_becomes_a_row():
    echo_fields = config_with(WRITE_BACK).write_back_fields("leads")
    edit = echo_of({"icp_score": 55.0, "job_title": "CTO"})
    [job] = clay_jobs("leads", KEEP_ALL, parse_event(edit), echo_fields)
    assert job.row["job_title"] == "CTO"
    assert job.row["icp_score"] == 55.0


def test_a_create_with_only_write_back_fields_is_not_an_echo():
    echo_fields = config_with(WRITE_BACK).write_back_fields("leads")
    create = {"event": "leads.items.create", "payload": {"icp_score": 70}, "key": 9, "collection": "leads"}
    assert len(clay_jobs("leads", KEEP_ALL, parse_event(create), echo_fields)) == 1


def test_an_update_of_those_fields_is_a_users_edit_when_the_write_back_is_off():
    echo_fields = config_with(None).write_back_fields("leads")
    [job] = clay_jobs("leads", KEEP_ALL, parse_event(echo_of({"icp_score": 55.0})), echo_fields)
    assert job.row["icp_score"] == 55.0


def test_an_update_of_those_fields_in_another_collection_is_a_users_edit():
    echo_fields = config_with(WRITE_BACK).write_back_fields("companies")
    source = DirectusSource(clay_target="leads")
    [job] = clay_jobs(
        "companies", source, parse_event(echo_of({"industry": "Retail"}, collection="companies")), echo_fields
    )
    assert job.row["industry"] == "Retail"


# --- echo detection at the Directus trigger ----------------------------------------------------------
@pytest.fixture
def directus_trigger(aws, use_config):
    """POST /directus/leads with the shipped leads source, sending every changed field, and the
    shipped write-back (icp_score, industry, employee_count, linkedin_url, personalized_opener)."""
    use_config(lambda c: c["directus_sources"]["leads"].update(fields=None))
    handler = load_handler("directus_trigger")

    def post(body: dict) -> tuple[int, dict]:
        event = directus_flow_event(body)
        return call_handler(handler, event)

    return post


def queued(aws) -> list[dict]:
    return receive(aws.ref("DeliveryQueue"))


def test_the_echo_of_a_write_back_is_answered_202_skipped_and_nothing_is_queued(directus_trigger, aws, destinations):
    an_item(destinations)
    shipped = RelayConfig.model_validate(default_config()).clay_callback.directus_writeback
    fields = {"icp_score": 91.0, "industry": "Software", "personalized_opener": "Loved your talk."}
    assert write_back(patch_job(fields=fields), shipped).delivered
    [patch] = destinations.received("directus")

    status, answer = directus_trigger(echo_of(patch["body"]))
    assert status == 202
    assert answer["accepted"] is True and answer["duplicate"] is False
    assert "echo" in answer["skipped"]
    assert queued(aws) == []


def test_a_users_edit_touching_an_enrichment_field_and_another_field_is_queued_as_a_row(directus_trigger, aws):
    status, answer = directus_trigger(echo_of({"icp_score": 91.0, "job_title": "CTO"}))
    assert status == 202
    assert "skipped" not in answer
    assert len(queued(aws)) == 1


def test_with_the_write_back_off_an_update_of_enrichment_fields_is_queued(directus_trigger, aws, use_config):
    def write_back_off(config: dict) -> None:
        config["directus_sources"]["leads"]["fields"] = None
        config["clay_callback"]["directus_writeback"] = None

    use_config(write_back_off)
    status, answer = directus_trigger(echo_of({"icp_score": 91.0}))
    assert status == 202
    assert "skipped" not in answer
    assert len(queued(aws)) == 1
