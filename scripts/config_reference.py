"""Render docs/configuration-reference.md from the models that validate relay.json (`clay_relay.config`)
and the function environment (`clay_relay.settings`), so keys, types, defaults and descriptions live
once, in code.

    python scripts/config_reference.py           # (re)writes the page (make docs)
    python scripts/config_reference.py --check   # exit status 1 when the committed page is stale
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
import types
import typing
from pathlib import Path

from pydantic import AliasChoices, BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from clay_relay import config
from clay_relay.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "configuration-reference.md"
REGENERATE = "make docs (python scripts/config_reference.py)"
CONSTRAINTS = (("ge", "≥ {}"), ("gt", "> {}"), ("le", "≤ {}"), ("lt", "< {}"))
LENGTHS = (("min_length", "length ≥ {}"), ("max_length", "length ≤ {}"))


def _pattern(annotated: object) -> str:
    """The `pattern` of an `Annotated[str, Field(pattern=...)]` alias."""
    return next(_constraints(typing.get_args(annotated)[1:], only=("pattern",)))


def _constraints(metadata: typing.Iterable[object], only: tuple[str, ...] | None = None) -> typing.Iterator[str]:
    for item in metadata:
        for constraint in item.metadata if isinstance(item, FieldInfo) else [item]:
            for name in only or ("pattern",):
                if getattr(constraint, name, None) is not None:
                    yield getattr(constraint, name)


# relay.json's two string types with a pattern, by the name the page gives them.
NAMED_PATTERNS = {_pattern(config.Name): "name", _pattern(config.SecretName): "secret name"}


def nested_models(annotation: object) -> typing.Iterator[tuple[type[BaseModel], str]]:
    """The models inside a field's type, each with the suffix its key takes (`.<name>` in a map)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation, ""
    elif origin is typing.Annotated:
        yield from nested_models(args[0])
    elif origin is dict:
        for model, suffix in nested_models(args[1]):
            yield model, ".<name>" + suffix
    elif origin in (list, tuple):
        for model, suffix in nested_models(args[0]):
            yield model, "[]" + suffix
    else:
        for arg in args:
            yield from nested_models(arg)


def models(root: type[BaseModel]) -> list[tuple[type[BaseModel], str]]:
    """`root` and every model nested in it, depth first in field order, each with its path in the file."""
    found: dict[type[BaseModel], str] = {root: ""}

    def visit(model: type[BaseModel], path: str) -> None:
        for name, field in model.model_fields.items():
            for nested, suffix in nested_models(field.annotation):
                if nested not in found:
                    found[nested] = f"{path}.{name}{suffix}".lstrip(".")
                    visit(nested, found[nested])

    visit(root, "")
    return list(found.items())


def type_text(annotation: object) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    if origin is typing.Annotated:
        pattern = next(_constraints(args[1:]), None)
        return NAMED_PATTERNS.get(pattern, f"string matching `{pattern}`") if pattern else type_text(args[0])
    if origin is typing.Literal:
        return " or ".join(f"`{json.dumps(value)}`" for value in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_text(arg) for arg in args)
    if origin is dict:
        return f"map of {type_text(args[0])} → {type_text(args[1])}"
    if origin in (list, tuple):
        return f"list of {type_text(args[0])}"
    simple = {str: "string", int: "integer", float: "number", bool: "boolean", Path: "path"}
    return simple.get(annotation, getattr(annotation, "__name__", str(annotation)))


def field_type(field: FieldInfo) -> str:
    """The field's type, its pattern named as relay.json's names are, and its bounds."""
    pattern = next(_constraints(field.metadata), None)
    text = NAMED_PATTERNS.get(pattern, f"string matching `{pattern}`") if pattern else ""
    text = type_text(field.annotation).replace("string", text, 1) if text else type_text(field.annotation)
    bounds = [
        template.format(f"{value:,}" if isinstance(value, int) else value)
        for key, template in CONSTRAINTS + LENGTHS
        for value in _constraints(field.metadata, only=(key,))
    ]
    return text + (f" ({', '.join(bounds)})" if bounds else "")


def default_text(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return f"the defaults of [{type(value).__name__}](#{type(value).__name__.lower()})"
    if isinstance(value, Path):
        value = value.relative_to(ROOT) if value.is_relative_to(ROOT) else value
        return f"`{value}`"
    return f"`{json.dumps(value, ensure_ascii=False, default=list)}`"


def cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def table(header: tuple[str, ...], rows: typing.Iterable[tuple[str, ...]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---" for _ in header) + " |",
        *("| " + " | ".join(cell(value) for value in row) + " |" for row in rows),
    ]


def model_section(model: type[BaseModel], path: str) -> list[str]:
    where = f"In relay.json: `{path}`." if path else "The top level of relay.json."
    rows = (
        (f"`{name}`", field_type(field), default_text(field), field.description or "")
        for name, field in model.model_fields.items()
    )
    return [
        f"## {model.__name__}",
        "",
        where,
        "",
        inspect.cleandoc(model.__doc__ or ""),
        "",
        *table(("key", "type", "default", "description"), rows),
        "",
    ]


def environment_variable(name: str, field: FieldInfo) -> tuple[str, str]:
    """The variable that sets `name` and what it means: its alias where the model declares one,
    else the upper-case word the description starts with (`"MAX_BODY_BYTES: larger bodies get 413"`)."""
    alias = field.validation_alias or field.alias
    if isinstance(alias, AliasChoices):
        alias = next((choice for choice in alias.choices if isinstance(choice, str)), None)
    description = field.description or ""
    leading = re.match(r"([A-Z][A-Z0-9_]+)\b[:,]?\s*", description)
    if isinstance(alias, str):
        if leading and leading.group(1) == alias:
            description = description[leading.end() :]
        return alias, description
    if leading:
        return leading.group(1), description[leading.end() :]
    return name.upper(), description


def environment_section() -> list[str]:
    rows = []
    for name, field in Settings.model_fields.items():
        variable, description = environment_variable(name, field)
        rows.append((f"`{variable}`", field_type(field), default_text(field), description))
    return [
        "## Function environment",
        "",
        "`clay_relay.settings.Settings`: read once when a function starts; a missing or invalid value stops it",
        "with a message naming the variable.",
        "",
        *table(("variable", "type", "default", "description"), rows),
        "",
    ]


def render() -> str:
    names = " and ".join(f"*{label}* is a string matching `{pattern}`" for pattern, label in NAMED_PATTERNS.items())
    lines = [
        "# Configuration reference",
        "",
        f"<!-- Generated from clay_relay.config and clay_relay.settings: do not edit; run {REGENERATE}. -->",
        "",
        "[Back to Configuration](configuration.md)",
        "",
        "Every key of relay.json, as the models in `layers/shared/clay_relay/config/` validate it (an unknown",
        "key is an error), and every variable of the function environment (`layers/shared/clay_relay/settings.py`).",
        f"In the type column, {names}.",
        "",
    ]
    for model, path in models(config.RelayConfig):
        lines += model_section(model, path)
    lines += environment_section()
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check that the page is up to date")
    parser.add_argument("--output", type=Path, default=PAGE, help=f"the page (default {PAGE.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    page = render()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != page:
            print(f"{args.output} is stale: the models in clay_relay say otherwise. Run {REGENERATE}.")
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(page, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
