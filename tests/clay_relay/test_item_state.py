"""An item's state as the relay compares it: the same value reads the same whether a Flow's payload
carried it or Directus' items API answered it, so the sweep never takes a write-back, or an edit of
unmapped fields, for a change; and the event ids every path computes for the same item agree."""

from __future__ import annotations

import pytest

from clay_relay.item_state import (
    canonical,
    changed_since,
    column_hashes,
    create_event_id,
    update_event_id,
    value_hash,
)


@pytest.mark.parametrize(
    ("written", "answered"),
    [
        ("5", 5),
        (5, 5.0),
        ("12.50", 12.5),
        ("1e3", 1000),
        ("true", True),
        ("false", False),
        (None, ""),
        ({"b": 1, "a": ["x", 2]}, {"a": ["x", "2"], "b": "1"}),
        ("Ada", "Ada"),
    ],
)
def test_a_value_reads_the_same_however_it_was_written(written, answered):
    assert canonical(written) == canonical(answered)


@pytest.mark.parametrize(("one", "other"), [("Ada", "ada"), ("5", "6"), ("x", None), (True, 1), ("a b", "a  b")])
def test_different_values_stay_different(one, other):
    assert canonical(one) != canonical(other)


NOW = {"email": "ada@example.com", "first_name": "Ada", "job_title": None, "status": "new"}


def test_an_item_as_its_row_carried_it_has_not_changed():
    assert not changed_since(column_hashes(NOW), NOW, dict)


def test_a_carried_column_with_another_value_is_a_change():
    assert changed_since(column_hashes(NOW), {**NOW, "first_name": "Grace"}, dict)


def test_a_column_a_create_did_not_carry_is_a_change_only_when_it_holds_something_other_than_its_default():
    create = column_hashes({"email": "ada@example.com", "first_name": "Ada"})  # the fields submitted
    asked = []

    def defaults():
        asked.append(True)
        return {"status": "new"}

    assert not changed_since(create, NOW, defaults), "job_title empty, status its default"
    assert changed_since(create, {**NOW, "job_title": "CTO"}, defaults)
    assert changed_since(create, {**NOW, "status": "qualified"}, defaults)
    assert not changed_since(create, {**NOW, "status": None}, lambda: pytest.fail("not asked when empty"))
    assert asked


def test_the_ids_of_an_item_agree_whatever_its_key_looks_like():
    assert create_event_id("directus/leads", "leads", 7) == create_event_id("directus/leads", "leads", "7")
    state = {"email": "ada@example.com", "employees": 5}
    same = {"employees": "5", "email": "ada@example.com"}
    assert update_event_id("directus/leads", "leads", "7", state) == update_event_id("directus/leads", "leads", 7, same)
    assert update_event_id("directus/leads", "leads", 7, state) != update_event_id(
        "directus/leads", "leads", 7, {**state, "employees": 6}
    )
    assert create_event_id("directus/leads", "leads", 7) != create_event_id("directus/eu", "leads", 7)
    assert value_hash("5") == value_hash(5)
