"""docs/configuration-reference.md is rendered from the models (scripts/config_reference.py): the
committed page is what they say, and every key it lists has a description to show."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from pydantic import AliasChoices, BaseModel, Field

from clay_relay.config import RelayConfig
from clay_relay.settings import Settings

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "config_reference.py"


@pytest.fixture(scope="module")
def reference():
    spec = importlib.util.spec_from_file_location("config_reference", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_reference_is_what_the_models_render(reference):
    committed = reference.PAGE.read_text(encoding="utf-8") if reference.PAGE.exists() else ""
    assert committed == reference.render(), (
        f"{reference.PAGE.name} is stale: the models in clay_relay changed. Regenerate it with {reference.REGENERATE}"
    )


def test_every_relay_json_model_has_a_docstring_and_every_key_a_description(reference):
    undocumented = [
        f"{model.__name__}.{name}"
        for model, _ in reference.models(RelayConfig)
        for name, field in model.model_fields.items()
        if not field.description
    ]
    assert undocumented == []
    assert [model.__name__ for model, _ in reference.models(RelayConfig) if not model.__doc__] == []


def test_every_nested_model_has_a_section_under_the_path_of_its_key(reference):
    paths = {model.__name__: path for model, path in reference.models(RelayConfig)}
    assert paths["RelayConfig"] == ""
    assert paths["DirectusSource"] == "directus_sources.<name>"
    assert paths["MetadataColumns"] == "directus_sources.<name>.metadata"
    assert paths["Routing"] == "clay_callback.routing"
    page = reference.render()
    for name, path in paths.items():
        assert f"## {name}\n" in page
        assert not path or f"In relay.json: `{path}`." in page


def test_the_page_shows_each_keys_type_bounds_and_default(reference):
    page = reference.render()
    assert "| `dedupe_window_seconds` | integer (≥ 60, ≤ 2,592,000) | `86400` |" in page
    assert "| `clay_target` | name | required |" in page
    assert "| `hmac_secret` | secret name or null | `null` |" in page
    assert "| `routing` | [Routing](#routing) | the defaults of [Routing](#routing) |" in page


def test_every_environment_variable_is_listed_with_what_it_means(reference):
    page = reference.render()
    for name, field in Settings.model_fields.items():
        variable, description = reference.environment_variable(name, field)
        assert variable.isupper() and description, name
        assert f"| `{variable}` |" in page
    assert "| `RELAY_CONFIG_PATH` | path | `layers/shared/relay.json` |" in page


def test_an_environment_variable_is_named_by_its_alias_when_the_model_declares_one(reference):
    class Aliased(BaseModel):
        table_name: str = Field(validation_alias="RELAY_TABLE", description="the stack's table")
        queue_url: str = Field(validation_alias=AliasChoices("DELIVERY_QUEUE_URL", "QUEUE"), description="the queue")
        tolerance: int = Field(default=300, alias="TOLERANCE", description="TOLERANCE: seconds either way")
        plain: str = Field(default="", description="no variable named")

    fields = Aliased.model_fields
    assert reference.environment_variable("table_name", fields["table_name"]) == ("RELAY_TABLE", "the stack's table")
    assert reference.environment_variable("queue_url", fields["queue_url"]) == ("DELIVERY_QUEUE_URL", "the queue")
    assert reference.environment_variable("tolerance", fields["tolerance"]) == ("TOLERANCE", "seconds either way")
    assert reference.environment_variable("plain", fields["plain"]) == ("PLAIN", "no variable named")


def test_check_fails_on_a_stale_page_and_names_the_command(reference, tmp_path, capsys):
    page = tmp_path / "reference.md"
    page.write_text("# an old reference\n", encoding="utf-8")
    assert reference.main(["--check", "--output", str(page)]) == 1
    assert "make docs" in capsys.readouterr().out
    assert reference.main(["--output", str(page)]) == 0
    assert reference.main(["--check", "--output", str(page)]) == 0
    assert page.read_text(encoding="utf-8") == reference.render()
