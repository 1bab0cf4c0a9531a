"""Directus Flow webhooks ({{$trigger}} of an items event hook) becoming Clay row jobs: one row per
item, the source's field selection and renaming, metadata columns, clear 422s for other shapes,
and an event id derived from the content only."""

from __future__ import annotations

import pytest

from clay_relay.config import DirectusSource, load_config
from clay_relay.directus import Skipped, clay_jobs, parse_event
from clay_relay.errors import InvalidPayload
from clay_relay.settings import DEFAULT_CONFIG_PATH

# Captured shapes (wire-formats.md, Directus section), for the shipped `leads` source.
CREATE = {
    "event": "leads.items.create",
    "payload": {"email": "ada@example.com", "first_name": "Ada", "company": "Acme", "status": "draft"},
    "key": 1,
    "collection": "leads",
}
UPDATE = {
    "event": "leads.items.update",
    "payload": {"job_title": "CTO", "status": "published"},
    "keys": ["7"],
    "collection": "leads",
}
DELETE = {"event": "leads.items.delete", "payload": ["7", "8"], "keys": ["7", "8"], "collection": "leads"}
BATCH_UPDATE = {
    "event": "leads.items.update",
    "payload": {"company": "Initech"},
    "keys": [1, "2", 3],
    "collection": "leads",
}


@pytest.fixture
def leads() -> DirectusSource:
    return load_config(DEFAULT_CONFIG_PATH).directus_sources["leads"]


def jobs_for(body: dict, source: DirectusSource, name: str = "leads"):
    return clay_jobs(name, source, parse_event(body))


def fields_of(error: InvalidPayload) -> list[str]:
    return [entry["field"] for entry in error.fields]


def test_create_with_an_integer_key_becomes_one_row_with_mapped_fields_and_metadata(leads):
    event = parse_event(CREATE)
    assert event.action == "create"
    assert event.item_keys == [1]
    [job] = clay_jobs("leads", leads, event)
    assert job.row == {
        "email": "ada@example.com",
        "first_name": "Ada",
        "company_name": "Acme",
        "directus_event": "leads.items.create",
        "directus_collection": "leads",
        "directus_id": 1,
    }
    assert job.target == "leads"
    assert job.origin == "directus/leads"
    assert job.dedupe_window_seconds == 86_400


def test_update_with_string_keys_sends_only_the_changed_mapped_fields(leads):
    [job] = jobs_for(UPDATE, leads)
    assert job.row == {
        "job_title": "CTO",
        "directus_event": "leads.items.update",
        "directus_collection": "leads",
        "directus_id": "7",
    }


def test_delete_with_a_payload_list_becomes_one_metadata_row_per_key(leads):
    jobs = jobs_for(DELETE, leads)
    assert [job.row for job in jobs] == [
        {"directus_event": "leads.items.delete", "directus_collection": "leads", "directus_id": "7"},
        {"directus_event": "leads.items.delete", "directus_collection": "leads", "directus_id": "8"},
    ]


def test_update_with_several_keys_becomes_one_row_per_item(leads):
    jobs = jobs_for(BATCH_UPDATE, leads)
    assert [job.row["directus_id"] for job in jobs] == [1, "2", 3]
    for job in jobs:
        assert job.row["company_name"] == "Initech"
        assert job.row["directus_event"] == "leads.items.update"
        assert job.row["directus_collection"] == "leads"
    assert len({job.event_id for job in jobs}) == 3
    assert len({job.job_id for job in jobs}) == 3


def test_fields_as_a_list_keep_their_names_and_drop_everything_else():
    source = DirectusSource(clay_target="leads", fields=["email", "status"])
    [job] = jobs_for(CREATE, source)
    assert {k: v for k, v in job.row.items() if not k.startswith("directus_")} == {
        "email": "ada@example.com",
        "status": "draft",
    }


def test_fields_null_sends_every_submitted_field():
    source = DirectusSource(clay_target="leads", fields=None)
    [job] = jobs_for(CREATE, source)
    assert {k: v for k, v in job.row.items() if not k.startswith("directus_")} == CREATE["payload"]


def test_metadata_column_set_to_null_is_left_out_and_others_can_be_renamed():
    source = DirectusSource(
        clay_target="leads", fields=["email"], metadata={"event": None, "collection": None, "key": "lead_id"}
    )
    [job] = jobs_for(CREATE, source)
    assert job.row == {"email": "ada@example.com", "lead_id": 1}


def test_update_touching_no_mapped_field_is_skipped(leads):
    body = {**UPDATE, "payload": {"status": "archived", "sort": 3}}
    with pytest.raises(Skipped, match="no mapped field changed"):
        jobs_for(body, leads)


@pytest.mark.parametrize(("action", "body"), [("create", CREATE), ("update", UPDATE), ("delete", DELETE)])
def test_action_configured_as_skip_is_skipped(action, body):
    source = DirectusSource(clay_target="leads", **{f"on_{action}": "skip"})
    with pytest.raises(Skipped, match=f"on_{action}"):
        jobs_for(body, source)


def test_event_of_another_collection_is_rejected_naming_collection(leads):
    body = {**CREATE, "event": "posts.items.create", "collection": "posts"}
    with pytest.raises(InvalidPayload) as rejected:
        jobs_for(body, leads)
    assert rejected.value.status == 422
    assert fields_of(rejected.value) == ["collection"]
    assert "'leads'" in rejected.value.message and "'posts'" in rejected.value.message


def test_source_without_collection_accepts_any_collection():
    source = DirectusSource(clay_target="leads", fields=["title"])
    [job] = jobs_for(
        {"event": "posts.items.create", "payload": {"title": "Hi"}, "key": 1, "collection": "posts"}, source
    )
    assert job.row["title"] == "Hi"


def test_missing_event_or_collection_is_rejected_naming_the_field():
    for missing in ("event", "collection"):
        body = {k: v for k, v in CREATE.items() if k != missing}
        with pytest.raises(InvalidPayload) as rejected:
            parse_event(body)
        assert missing in fields_of(rejected.value)


@pytest.mark.parametrize(
    "body",
    [
        {**CREATE, "key": True},
        {**UPDATE, "keys": [1, False]},
        {**CREATE, "key": 1.5},
        {**CREATE, "key": {"id": 1}},
    ],
    ids=["bool key", "bool in keys", "float key", "object key"],
)
def test_key_that_is_neither_string_nor_integer_is_rejected_naming_the_key(body):
    with pytest.raises(InvalidPayload) as rejected:
        parse_event(body)
    assert rejected.value.status == 422
    assert any(field.split(".")[0] in ("key", "keys") for field in fields_of(rejected.value))


def test_payload_of_the_wrong_type_is_rejected_naming_payload():
    with pytest.raises(InvalidPayload) as rejected:
        parse_event({**CREATE, "payload": "title=Hello"})
    assert all(field.startswith("payload") for field in fields_of(rejected.value))


@pytest.mark.parametrize(
    ("body", "fields", "problem"),
    [
        pytest.param(
            {k: v for k, v in CREATE.items() if k != "key"},
            {"key", "keys"},
            "needs 'key' or a non-empty 'keys'",
            id="create without key",
        ),
        pytest.param(
            {**UPDATE, "keys": []},
            {"key", "keys"},
            "needs 'key' or a non-empty 'keys'",
            id="update with empty keys",
        ),
        pytest.param(
            {**CREATE, "payload": ["1"]},
            {"payload"},
            "'payload' to be an object",
            id="create with a list payload",
        ),
        pytest.param(
            {**CREATE, "event": "leads.items.sort"},
            {"event"},
            "is not an items create, update or delete event",
            id="unknown action",
        ),
    ],
)
def test_event_of_the_wrong_shape_is_rejected_naming_the_field(body, fields, problem):
    with pytest.raises(InvalidPayload) as rejected:
        parse_event(body)
    assert rejected.value.status == 422
    assert any(entry["field"] in fields and problem in entry["problem"] for entry in rejected.value.fields)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({k: v for k, v in CREATE.items() if k != "key"}, "a create event needs 'key' or a non-empty 'keys'"),
        ({**UPDATE, "keys": []}, "a update event needs 'key' or a non-empty 'keys'"),
        ({**CREATE, "payload": ["1"]}, "a create event needs 'payload' to be an object of fields"),
        ({**UPDATE, "payload": None}, "a update event needs 'payload' to be an object of fields"),
        ({**CREATE, "event": "leads.items.sort"}, "event 'leads.items.sort' is not an items create, update or delete"),
        ({**CREATE, "event": "users.login"}, "is not an items create, update or delete event"),
    ],
)
def test_event_of_the_wrong_shape_is_rejected_saying_what_is_wrong(body, problem):
    with pytest.raises(InvalidPayload) as rejected:
        parse_event(body)
    assert rejected.value.to_body()["error"] == "invalid_payload"
    assert any(problem in entry["problem"] for entry in rejected.value.fields)


@pytest.mark.parametrize(
    "event",
    [
        "create",
        "items.create",
        "auth.login.create",
        "directus_users.items.create",
        "posts.items.create",
        "leads.items.create.extra",
        "leads.create",
        "users.create",
        "xleads.items.create",
    ],
)
def test_an_event_name_that_is_not_an_item_event_of_the_collection_is_422_naming_event(event):
    """`create` or `auth.login.create` on `leads` were taken for creates of leads items."""
    with pytest.raises(InvalidPayload) as rejected:
        parse_event({**CREATE, "event": event})
    [problem] = rejected.value.fields
    assert problem["field"] == "event"
    assert "'leads.items.<create|update|delete>'" in problem["problem"]


@pytest.mark.parametrize(
    ("event", "collection"),
    [
        ("leads.items.update", "leads"),
        ("my.leads.items.delete", "my.leads"),
        ("users.create", "directus_users"),
        ("directus_users.items.create", "directus_users"),
        ("files.update", "directus_files"),
    ],
)
def test_an_item_event_of_its_own_collection_is_understood(event, collection):
    body = {**CREATE, "event": event, "collection": collection}
    assert parse_event(body).action == event.rsplit(".", 1)[-1]


@pytest.mark.parametrize("key", ["__proto__", "constructor", "prototype"])
def test_a_row_column_javascript_reads_as_the_prototype_is_422_naming_the_field(key):
    """With `fields: null` every payload field becomes a column: `__proto__` reached Clay as one."""
    every_field = DirectusSource(clay_target="leads", fields=None)
    with pytest.raises(InvalidPayload) as rejected:
        jobs_for({**CREATE, "payload": {"email": "ada@example.com", key: {"polluted": True}}}, every_field)
    assert fields_of(rejected.value) == [f"payload.{key}"]


def test_a_prototype_key_nested_in_a_field_value_is_named_with_its_path():
    every_field = DirectusSource(clay_target="leads", fields=None)
    body = {**CREATE, "payload": {"email": "ada@example.com", "profile": [{"__proto__": {"admin": True}}]}}
    with pytest.raises(InvalidPayload) as rejected:
        jobs_for(body, every_field)
    assert fields_of(rejected.value) == ["payload.profile.0.__proto__"]


def test_a_field_named_constructor_may_travel_under_another_column_name():
    renamed = DirectusSource(clay_target="leads", fields={"constructor": "f1_constructor"})
    [job] = jobs_for({**CREATE, "payload": {"constructor": "Williams"}}, renamed)
    assert job.row["f1_constructor"] == "Williams"


def test_system_collection_events_are_understood():
    event = parse_event(
        {"event": "users.create", "payload": {"email": "a@b.io"}, "key": "u-1", "collection": "directus_users"}
    )
    assert event.action == "create"


def test_unknown_extra_properties_are_ignored(leads):
    [job] = jobs_for({**CREATE, "accountability": {"user": "x"}}, leads)
    assert job.row["email"] == "ada@example.com"


# --- event ids ---------------------------------------------------------------------------------------
def test_event_id_is_stable_for_the_same_content(leads):
    first = [job.event_id for job in jobs_for(BATCH_UPDATE, leads)]
    again = [job.event_id for job in jobs_for(dict(reversed(list(BATCH_UPDATE.items()))), leads)]
    assert first == again
    assert jobs_for(CREATE, leads)[0].event_id == jobs_for(dict(CREATE), leads)[0].event_id
    # a new acceptance gets its own job id, the event keeps its id
    assert jobs_for(CREATE, leads)[0].job_id != jobs_for(CREATE, leads)[0].job_id


def test_event_id_differs_for_another_key(leads):
    assert jobs_for(CREATE, leads)[0].event_id != jobs_for({**CREATE, "key": 2}, leads)[0].event_id


def test_an_update_event_id_differs_for_another_payload(leads):
    other = {**UPDATE, "payload": {**UPDATE["payload"], "job_title": "CEO"}}
    assert jobs_for(UPDATE, leads)[0].event_id != jobs_for(other, leads)[0].event_id


def test_a_create_has_its_items_event_id_whatever_the_payload_so_backfill_and_flow_agree(leads):
    """A Flow's create carries the submitted fields, `relay backfill`'s the whole item: they gave the
    same item two ids, and Clay two rows."""
    flow = jobs_for(CREATE, leads)[0]
    backfill = jobs_for({**CREATE, "key": "1", "payload": {**CREATE["payload"], "id": 1, "job_title": None}}, leads)[0]
    assert flow.event_id == backfill.event_id
    assert flow.event_id != jobs_for({**CREATE, "key": 2}, leads)[0].event_id


def test_event_id_differs_for_another_action(leads):
    created = jobs_for({**UPDATE, "event": "leads.items.create", "key": "7", "keys": None}, leads)[0]
    updated = jobs_for(UPDATE, leads)[0]
    assert created.event_id != updated.event_id


def test_event_id_differs_for_another_source(leads):
    assert jobs_for(CREATE, leads, "leads")[0].event_id != jobs_for(CREATE, leads, "leads-eu")[0].event_id


@pytest.mark.parametrize(("action", "update"), [("create", False), ("update", True), ("delete", True)])
def test_a_row_says_whether_it_is_a_new_lead_or_a_change_of_one(leads, action, update):
    """The spend guard skips a new lead whose person already went to Clay, never a deliberate change."""
    body = {"event": f"leads.items.{action}", "collection": "leads", "keys": [7]}
    body["payload"] = ["7"] if action == "delete" else {"email": "ada@example.com"}
    if action == "delete" and leads.on_delete == "skip":
        pytest.skip("the shipped source skips deletes")
    [job] = clay_jobs("leads", leads, parse_event(body))
    assert job.lead_update is update
