"""The configuration reference: every key of an environment block, with its type, default and what it
allows, generated from the configuration model, as the Markdown table in ``docs/configuration.md``.

``python -m broker_tier.tools.config_reference`` prints the table; ``--write docs/configuration.md`` replaces
the table between that document's markers; ``--check docs/configuration.md`` exits 1 when its table differs
from the model (the test suite runs the same comparison).
"""

from __future__ import annotations

import json
import re
import sys
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from broker_tier.config import EnvironmentConfig
from broker_tier.config.describe import allowed_text, is_model, strip_annotation, type_name
from broker_tier.tools.generated_table import GeneratedTable, cell

_EXAMPLE_ENVIRONMENT = "dev"


@dataclass(frozen=True)
class Row:
    key: str
    type: str
    default: str
    allowed: str
    description: str


def _description(model: type[BaseModel], name: str) -> str:
    """The key's docstring (from the first class in the MRO that documents it), without its
    ``Default: ...`` sentence, which the default column shows."""
    for cls in model.__mro__:
        field = getattr(cls, "model_fields", {}).get(name)
        if field is not None and field.description:
            text = " ".join(field.description.split())
            return re.sub(r"\s*Default: .*$", "", text).strip()
    return ""


def _default(value: Any) -> str:
    if value is PydanticUndefined:
        return "required"
    if value is None:
        return "none"
    if isinstance(value, BaseModel):
        return ""
    if isinstance(value, dict):
        return (
            ", ".join(value) if value and all(isinstance(v, BaseModel) for v in value.values()) else json.dumps(value)
        )
    return json.dumps(value)


def _field_default(instance: BaseModel | None, name: str, field: FieldInfo) -> Any:
    if instance is not None:
        return getattr(instance, name)
    return field.get_default(call_default_factory=True)


def rows(model: type[BaseModel] = EnvironmentConfig, prefix: str = "", instance: BaseModel | None = None) -> list[Row]:
    """One row per key of ``model`` (the environment's own ``name`` excepted), depth first."""
    if instance is None and model is EnvironmentConfig:
        instance = EnvironmentConfig(name=_EXAMPLE_ENVIRONMENT)
    found = []
    for name, field in model.model_fields.items():
        if model is EnvironmentConfig and name == "name":
            continue
        key = f"{prefix}{name}"
        annotation, _ = strip_annotation(field.annotation)
        origin = typing.get_origin(annotation)
        default = _field_default(instance, name, field)
        if is_model(annotation):
            if field.default is None:  # an optional block: absent unless given
                found.append(Row(key, "object", "none", "", _description(model, name)))
            found += rows(annotation, f"{key}.", default if isinstance(default, BaseModel) else None)
            continue
        item = typing.get_args(annotation)[-1] if origin in (dict, list) else None
        if item is not None and is_model(item):
            placeholder = "<class>" if origin is dict else "[]"
            found.append(
                Row(
                    key,
                    type_name(annotation),
                    _default(default),
                    allowed_text(field, field.annotation),
                    _description(model, name),
                )
            )
            found += rows(item, f"{key}.{placeholder}." if origin is dict else f"{key}[].", None)
            continue
        found.append(
            Row(
                key,
                type_name(field.annotation),
                _default(default),
                allowed_text(field, field.annotation),
                _description(model, name),
            )
        )
    return found


def _lines() -> list[str]:
    lines = ["| key | type | default | allowed | description |", "|---|---|---|---|---|"]
    for row in rows():
        default = f"`{row.default}`" if row.default not in ("", "none", "required") else row.default
        lines.append(f"| `{row.key}` | {row.type} | {cell(default)} | {cell(row.allowed)} | {cell(row.description)} |")
    return lines


TABLE = GeneratedTable(
    what="the configuration reference",
    marker="config-reference",
    source="the configuration model",
    module="broker_tier.tools.config_reference",
    document="docs/configuration.md",
    lines=_lines,
)
BEGIN, END = TABLE.begin, TABLE.end


def table() -> str:
    """The Markdown table, markers included."""
    return TABLE.table()


def replace_in(text: str) -> str:
    """``text`` (docs/configuration.md) with the table between the markers replaced by the generated one."""
    return TABLE.replace_in(text)


def main(argv: list[str]) -> int:
    return TABLE.main(argv, description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
