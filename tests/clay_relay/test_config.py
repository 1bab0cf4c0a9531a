"""The relay's declarative configuration (relay.json): the shipped default is valid, a typo or a
dangling reference fails loudly, and the field mapping means what it says."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from clay_relay.config import ConfigError, DirectusSource, RelayConfig, load_config
from clay_relay.settings import DEFAULT_CONFIG_PATH
from tests.invocations import default_config


def write(tmp_path, config: dict | str):
    path = tmp_path / "relay.json"
    path.write_text(config if isinstance(config, str) else json.dumps(config), encoding="utf-8")
    return path


def test_default_relay_json_validates():
    config = load_config(DEFAULT_CONFIG_PATH)
    leads = config.directus_sources["leads"]
    assert leads.clay_target == "leads"
    assert leads.collection == "leads"
    assert leads.columns()["company"] == "company_name"
    target = config.clay_targets["leads"]
    assert target.webhooks_secret == "clay-webhooks-leads"
    assert target.submission_limit == 50_000
    assert target.idempotency_column == "relay_event_id"
    assert config.delivery.retry_horizon_seconds == 86_400, "retries go on for a day by default"


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda c: c.update(directus_source={}), "directus_source"),
        (lambda c: c["directus_sources"]["leads"].update(feilds=["email"]), "feilds"),
        (lambda c: c["clay_targets"]["leads"].update(auth_headr="x"), "auth_headr"),
        (lambda c: c["delivery"].update(max_atempts=3), "max_atempts"),
        (lambda c: c["directus_sources"]["leads"]["metadata"].update(evnt="e"), "evnt"),
    ],
)
def test_unknown_key_is_rejected_naming_the_key(tmp_path, edit, named):
    config = default_config()
    edit(config)
    with pytest.raises(ConfigError) as rejected:
        load_config(write(tmp_path, config))
    assert named in str(rejected.value)
    assert "invalid relay configuration" in str(rejected.value)


def test_source_naming_an_unknown_clay_target_is_rejected(tmp_path):
    config = default_config()
    config["directus_sources"]["leads"]["clay_target"] = "prospects"
    with pytest.raises(ConfigError) as rejected:
        load_config(write(tmp_path, config))
    assert "'prospects'" in str(rejected.value)
    assert "clay_target" in str(rejected.value)


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda c: c["directus_sources"]["leads"].update(on_update="maybe"), "on_update"),
        (lambda c: c["clay_targets"]["leads"].update(submission_limit=50_001), "submission_limit"),
        (lambda c: c["delivery"].update(retry_horizon_seconds=0), "retry_horizon_seconds"),
        (lambda c: c["delivery"].update(retry_horizon_seconds=14 * 86_400), "retry_horizon_seconds"),
        (lambda c: c["directus_sources"]["leads"].update(fields="email"), "fields"),
        (lambda c: c["clay_targets"]["leads"].update(budget={"rows_per_day": -1}), "rows_per_day"),
        (lambda c: c["clay_targets"]["leads"].update(budget={"rows_per_day": 2.5}), "rows_per_day"),
        (lambda c: c["clay_targets"]["leads"].update(budget={"rows_per_month": "1000"}), "rows_per_month"),
        (lambda c: c["clay_targets"]["leads"].update(budget={"rows_per_week": 10}), "rows_per_week"),
        (lambda c: c["clay_targets"]["leads"].update(person_dedupe_days=-1), "person_dedupe_days"),
        (lambda c: c["clay_targets"]["leads"].update(mode="dry-run"), "mode"),
        (lambda c: c["delivery"].update(budget_hold_seconds=0), "budget_hold_seconds"),
    ],
)
def test_out_of_range_values_are_rejected_naming_the_setting(tmp_path, edit, named):
    config = default_config()
    edit(config)
    with pytest.raises(ConfigError) as rejected:
        load_config(write(tmp_path, config))
    assert named in str(rejected.value)


def test_unreadable_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.json")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(write(tmp_path, "{not json"))


def test_fields_as_a_list_keeps_the_payload_names():
    source = DirectusSource(clay_target="leads", fields=["email", "company"])
    assert source.columns() == {"email": "email", "company": "company"}


def test_fields_as_a_dict_renames_payload_fields_to_clay_columns():
    source = DirectusSource(clay_target="leads", fields={"company": "company_name"})
    assert source.columns() == {"company": "company_name"}


def test_fields_null_keeps_every_field():
    assert DirectusSource(clay_target="leads", fields=None).columns() is None
    assert DirectusSource(clay_target="leads").columns() is None


@pytest.mark.parametrize(
    ("written", "meant"), [("full", "full"), ("changed", "changed"), ("skip", "skip"), ("send", "changed")]
)
def test_on_update_is_full_changed_or_skip_and_the_old_send_still_means_changed(written, meant):
    """`send` sent the changed fields before full rows: a relay.json that says so keeps doing that."""
    assert DirectusSource(clay_target="leads", on_update=written).on_update == meant


@pytest.mark.parametrize(
    "wrong",
    [
        {"on_update": "always"},
        {"reconcile_minutes": 4},
        {"reconcile_minutes": 0},
        {"reconcile_minutes": 1441},
        {"created_field": "date created"},
        {"key_field": ""},
    ],
)
def test_a_source_refuses_unknown_update_handling_and_sweeps_more_often_than_the_schedule(wrong):
    with pytest.raises(ValidationError):
        DirectusSource(clay_target="leads", **wrong)


def test_a_sweep_can_be_turned_off_and_a_collection_without_dates_said_so():
    source = DirectusSource(clay_target="leads", reconcile_minutes=None, created_field=None, updated_field=None)
    assert (source.reconcile_minutes, source.created_field, source.updated_field) == (None, None, None)


def test_minimal_config_gets_documented_defaults():
    config = RelayConfig.model_validate(
        {"directus_sources": {"s": {"clay_target": "t"}}, "clay_targets": {"t": {"webhooks_secret": "hooks"}}}
    )
    source, target = config.directus_sources["s"], config.clay_targets["t"]
    assert source.tokens_secret == "directus-tokens"
    assert (source.on_create, source.on_update, source.on_delete) == ("send", "full", "send")
    assert source.dedupe_window_seconds == 86_400
    assert (source.key_field, source.created_field, source.updated_field) == ("id", "date_created", "date_updated")
    assert source.reconcile_minutes == 15
    assert target.auth_header == "x-clay-webhook-auth"
    assert target.submission_limit == 50_000
    assert target.warn_at == (0.8, 0.95)
