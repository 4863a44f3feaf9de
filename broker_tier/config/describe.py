"""What a key of the configuration model is, in words: its JSON type and what it allows.

One description serves both the error messages (``loading``) and the README's configuration
reference (``broker_tier.tools.config_reference``), so the two never disagree. It reads the model
itself: a key's type, its bounds (``ge``/``le``/...), its ``Literal`` choices, its pattern, and an
``Allowed`` text where a catalogue or rule decides.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, Union

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from broker_tier.config.base import Allowed


def strip_annotation(annotation: Any) -> tuple[Any, list[Any]]:
    """``annotation`` without ``Annotated`` (its metadata returned beside it) and without ``None``."""
    metadata: list[Any] = []
    while True:
        if typing.get_origin(annotation) is typing.Annotated:
            metadata += list(annotation.__metadata__)
            annotation = annotation.__origin__
            continue
        if typing.get_origin(annotation) in (Union, types.UnionType):
            members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            if len(members) == 1:
                annotation = members[0]
                continue
        return annotation, metadata


def is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def type_name(annotation: Any) -> str:
    """The JSON type of ``annotation``: boolean, integer, number, string, object, array, or a union."""
    annotation, _ = strip_annotation(annotation)
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return " or ".join(sorted({type_name(type(value)) for value in typing.get_args(annotation)}))
    if origin in (Union, types.UnionType):
        return " or ".join(type_name(arg) for arg in typing.get_args(annotation) if arg is not type(None))
    if origin is dict:
        return "object"
    if origin is list:
        item = typing.get_args(annotation)[0]
        return "array of objects" if is_model(item) else f"array of {type_name(item)}"
    if is_model(annotation):
        return "object"
    return {bool: "boolean", int: "integer", float: "number", str: "string"}.get(annotation, str(annotation))


def _bounds(metadata: list[Any]) -> str:
    low = high = None
    for item in metadata:
        if isinstance(item, annotated_types.Ge):
            low = f"{item.ge}"
        elif isinstance(item, annotated_types.Gt):
            low = f"more than {item.gt}"
        elif isinstance(item, annotated_types.Le):
            high = f"{item.le}"
        elif isinstance(item, annotated_types.Lt):
            high = f"less than {item.lt}"
    if low and high:
        if low.startswith("more") or high.startswith("less"):
            return f"{low}, {high if high.startswith('less') else 'at most ' + high}"
        return f"{low} to {high}"
    if low:
        return low if low.startswith("more") else f"{low} or more"
    if high:
        return high if high.startswith("less") else f"at most {high}"
    return ""


def allowed_text(field: FieldInfo | None, annotation: Any) -> str:
    """What a key allows: its ``Allowed`` text, else its choices, bounds or pattern; "" when any value of
    its type is allowed."""
    metadata = list(field.metadata) if field is not None else []
    stripped, inner = strip_annotation(annotation)
    metadata += inner
    for item in metadata:
        if isinstance(item, Allowed):
            return item.text
    if typing.get_origin(stripped) is Literal:
        return "one of " + ", ".join(json.dumps(value) for value in typing.get_args(stripped))
    bounds = _bounds(metadata)
    if bounds:
        return bounds
    pattern = next((getattr(item, "pattern", None) for item in metadata if getattr(item, "pattern", None)), None)
    return f"matching `{pattern}`" if pattern else ""


@dataclass(frozen=True)
class KeyAt:
    """The key an error location points at, as far as the model knows it."""

    path: tuple[str | int, ...]
    field: FieldInfo | None
    annotation: Any

    @property
    def key(self) -> str:
        return ".".join(str(part) for part in self.path)


def key_at(model: type[BaseModel], loc: tuple[Any, ...]) -> KeyAt:
    """Follow ``loc`` (a pydantic error location) through ``model``'s fields, dict keys and list indices;
    whatever is left over (a union member's tag) is not part of the key."""
    path: list[str | int] = []
    annotation: Any = model
    field: FieldInfo | None = None
    for part in loc:
        current, _ = strip_annotation(annotation)
        origin = typing.get_origin(current)
        if is_model(current) and isinstance(part, str) and part in current.model_fields:
            field = current.model_fields[part]
            annotation = field.annotation
            # a field's own Annotated metadata is moved into field.metadata by pydantic
        elif origin is dict and isinstance(part, str):
            annotation = typing.get_args(current)[1]
        elif origin is list and isinstance(part, int):
            annotation = typing.get_args(current)[0]
        else:
            break
        path.append(part)
    return KeyAt(tuple(path), field, annotation)


def allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys of the block ``loc`` points into (for an unknown-key message)."""
    block, _ = strip_annotation(key_at(model, loc[:-1]).annotation)
    return sorted(name for name in block.model_fields if name != "name") if is_model(block) else []
