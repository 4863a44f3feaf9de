"""Reading ``cdk.json``: ``defaults`` validated on its own, then deep-merged into each selected
environment and validated with it; every problem reported once, naming where it comes from
(``defaults`` or the environment), the key, the value (as JSON) and what is allowed.

The context is read as JSON, nulls included. A null is never a value here (a key is set or left out),
so each one is refused at its key. The CDK's own context cannot show them: jsii drops every null-valued
key of an object on its way into the app, which would silently turn ``"production": null`` into the
default false, and ``"staging": null`` into no environment at all.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from broker_tier.config.base import PARTIAL, ConfigError, InvalidValue
from broker_tier.config.catalogues import did_you_mean
from broker_tier.config.describe import KeyAt, allowed_keys, allowed_text, key_at, type_name
from broker_tier.config.environment import EnvironmentConfig

CONTEXT_KEY = "broker-tier"
"""The key of ``cdk.json``'s context that holds the tier's configuration."""
DEFAULTS = "defaults"

# pydantic's type errors, in terms of the JSON a user writes (strict mode: nothing is coerced).
_JSON_TYPE_ERRORS = {
    "int_type",
    "bool_type",
    "string_type",
    "float_type",
    "dict_type",
    "model_type",
    "list_type",
    "model_attributes_type",
}
# Errors whose allowed values the key's own description states (bounds, choices, pattern).
_DESCRIBED_ERRORS = {
    "greater_than",
    "greater_than_equal",
    "less_than",
    "less_than_equal",
    "too_short",
    "too_long",
    "string_pattern_mismatch",
    "literal_error",
}


class _JsonNull:
    """A null written in the raw context. ``None`` is how the model spells "not set" (the default of an
    optional key), so a written null is carried as this marker instead: no key's type admits it, so it
    gets that key's usual message, from where it was written (``defaults`` or the environment)."""

    def __repr__(self) -> str:
        return "null"

    def __deepcopy__(self, memo: dict[int, Any]) -> _JsonNull:
        return self  # the one marker, compared by identity


_NULL = _JsonNull()
_ABSENT = object()
"""``_value_at``: nothing at that path."""


def _with_nulls_marked(value: Any) -> Any:
    """``value`` (raw JSON) with each null replaced by ``_NULL``."""
    if value is None:
        return _NULL
    if isinstance(value, Mapping):
        return {key: _with_nulls_marked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_nulls_marked(item) for item in value]
    return value


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def as_json(value: Any) -> str:
    """A value as it is written in cdk.json."""
    return json.dumps(value, default=lambda item: None if item is _NULL else str(item))


@cache
def _default_environment() -> EnvironmentConfig:
    """An environment that sets no key: the model's defaults, each block's own included."""
    return EnvironmentConfig(name=DEFAULTS)


def _value_at(block: Any, path: tuple[str | int, ...]) -> Any:
    """The value at ``path`` of ``block`` (a raw cdk.json block or a validated model), or ``_ABSENT``."""
    for part in path:
        if isinstance(block, BaseModel) and part in type(block).model_fields:
            block = getattr(block, part)
        elif isinstance(block, Mapping) and part in block:
            block = block[part]
        elif isinstance(block, list) and isinstance(part, int) and part < len(block):
            block = block[part]
        else:
            return _ABSENT
    return block


def _instead_of_null(path: tuple[str | int, ...], inherited: Mapping[str, Any]) -> str:
    """What leaving out a key written as null gives, for its message: the value of ``defaults`` that an
    environment inherits, else the model's default there (an environment that sets nothing has it, a
    block's own default included); nothing for a key with neither (required, or an entry of a dict or
    array)."""
    value = _value_at(inherited, path)
    if value is not _ABSENT:
        return f"; leave the key out to inherit {_shown(value) or 'its block'} from {DEFAULTS}"
    value = _value_at(_default_environment(), path)
    if value is _ABSENT:
        return ""
    return f"; leave the key out for the default {_shown(value) or 'block'}"


def _shown(value: Any) -> str | None:
    """A default as a message shows it; None for a block of keys (too long to show)."""
    if value is None:
        return "(none)"
    if isinstance(value, BaseModel) or (isinstance(value, (Mapping, list)) and value):
        return None
    return as_json(value)


def _json_type(annotation: Any) -> str:
    names = type_name(annotation).split(" or ")
    return "a JSON " + " or ".join(dict.fromkeys(names)) + (" (true or false)" if names == ["boolean"] else "")


def _problem(item: ErrorDetails, inherited: Mapping[str, Any]) -> tuple[KeyAt, str]:
    """The key an error is about, and its message without the origin label; a null's message says what
    leaving the key out gives (``inherited``: the ``defaults`` an environment is merged over)."""
    at, message = _described(item)
    cause = item.get("ctx", {}).get("error")
    if item["input"] is _NULL or (isinstance(cause, InvalidValue) and cause.value is _NULL):
        message += _instead_of_null(at.path, inherited)
    return at, message


def _described(item: ErrorDetails) -> tuple[KeyAt, str]:
    """The key an error is about, and what its value is and what is allowed there."""
    loc = tuple(item["loc"])
    cause = item.get("ctx", {}).get("error")
    if isinstance(cause, InvalidValue):
        at = key_at(EnvironmentConfig, loc)
        at = KeyAt(at.path + tuple(cause.key.split(".")), None, None)
        if cause.value is None:
            return at, f"{at.key} is missing; allowed: {cause.allowed}"
        return at, f"{at.key} = {as_json(cause.value)} is not allowed; allowed: {cause.allowed}"
    if item["type"] == "extra_forbidden":
        at = KeyAt(loc, None, None)
        keys = allowed_keys(EnvironmentConfig, loc)
        return at, (
            f"unknown key '{at.key}' (value {as_json(item['input'])})"
            f"{did_you_mean(str(loc[-1]), keys).replace('did you mean ', 'did you mean key ')}; "
            f"allowed keys here: {', '.join(keys)}"
        )
    at = key_at(EnvironmentConfig, loc)
    key = at.key or "(environment)"
    described = allowed_text(at.field, at.annotation)
    if item["type"] == "missing":
        return at, f"{key} is missing; allowed: {_json_type(at.annotation)}{', ' + described if described else ''}"
    if item["type"] in _JSON_TYPE_ERRORS:
        allowed = _json_type(at.annotation) + (f", {described}" if described else "")
    elif item["type"] in _DESCRIBED_ERRORS and described:
        allowed = described
    else:
        allowed = item["msg"].removeprefix("Value error, ").removeprefix("Input should be ")
    return at, f"{key} = {as_json(item['input'])} is not allowed; allowed: {allowed}"


def _problems(error: ValidationError, inherited: Mapping[str, Any]) -> list[tuple[KeyAt, str]]:
    seen: dict[tuple[str | int, ...], tuple[KeyAt, str]] = {}
    for item in error.errors():
        at, message = _problem(item, inherited)
        seen.setdefault(at.path, (at, message))  # one message per key (a union reports each member)
    return list(seen.values())


def _set_in(block: Any, path: tuple[str | int, ...]) -> bool:
    """Whether ``block`` (a raw cdk.json block) sets the key at ``path`` or a non-object above it."""
    for part in path:
        if isinstance(block, Mapping) and part in block:
            block = block[part]
        elif isinstance(block, list) and isinstance(part, int) and part < len(block):
            block = block[part]
        else:
            return False
        if not isinstance(block, (Mapping, list)):
            return True
    return True


def _without(block: Mapping[str, Any], paths: list[tuple[str | int, ...]]) -> dict[str, Any]:
    """A copy of ``block`` without the keys at ``paths``."""
    trimmed = copy.deepcopy(dict(block))
    for path in paths:
        parent: Any = trimmed
        for part in path[:-1]:
            parent = parent.get(part) if isinstance(parent, dict) else None
        if isinstance(parent, dict) and path:
            parent.pop(path[-1], None)
    return trimmed


def _validate(
    name: str, own: Mapping[str, Any], *, inherited: Mapping[str, Any] | None = None, partial: bool = False
) -> tuple[EnvironmentConfig | None, list[tuple[KeyAt, str]]]:
    """Environment ``name``: its ``own`` block deep-merged over ``inherited`` (``defaults``), validated."""
    inherited = inherited or {}
    values = deep_merge(inherited, own)
    if "name" in values:
        return None, [
            (
                KeyAt(("name",), None, None),
                "key 'name' is not allowed; the environment's key in 'environments' is its name",
            )
        ]
    try:
        return EnvironmentConfig.model_validate({**values, "name": name}, context={PARTIAL: partial}), []
    except ValidationError as error:
        return None, _problems(error, inherited)


def _messages(name: str, own: Mapping[str, Any]) -> set[str]:
    """The problems of block ``own`` completed by the model's defaults alone."""
    return {message for _, message in _validate(name, own)[1]}


def load_environments(context: Mapping[str, Any] | None, *, only: str | None = None) -> dict[str, EnvironmentConfig]:
    """The environments declared under ``context["broker-tier"]``, validated: every one, or only ``only``
    (``-c env=NAME``), whose validation then ignores the other environments.

    ``context`` is the raw JSON, nulls included (each is refused at its key), as is an integer written as
    ``2.0`` unless something converted it before (the CDK CLI passes it on as ``2``). A problem an
    environment does not cause itself is reported once, as ``defaults``, naming the environments it breaks.

    :raises ConfigError: with every problem found, one per line.
    """
    declared, defaults = _declared_environments(context, only)
    # message -> the environments it breaks (an empty list: found in defaults on its own)
    found_in_defaults = _validate(DEFAULTS, defaults, partial=True)[1]
    from_defaults: dict[str, list[str]] = {message: [] for _, message in found_in_defaults}
    # Each bad key of defaults is left out of the merge (reported once above), so that the
    # environments' own problems still show: pydantic checks no rule of a block with a bad key.
    defaults = _without(defaults, [at.path for at, _ in found_in_defaults])
    found_in_completed_defaults = _messages(DEFAULTS, defaults)
    problems: list[str] = []
    environments: dict[str, EnvironmentConfig] = {}
    for name in [only] if only is not None else list(declared):
        values = declared[name]
        if not isinstance(values, Mapping):
            problems.append(
                f"environment '{name}': {as_json(values)} is not allowed; allowed: a JSON object of "
                f"the environment's keys ({{}} for {DEFAULTS} alone), or no key '{name}' in "
                f"'environments' (the environment is not synthesized)"
            )
            continue
        for at, message in found_in_defaults:
            if not _set_in(values, at.path):
                from_defaults[message].append(name)
        config, found = _validate(name, values, inherited=defaults)
        found_in_own_block = _messages(name, values) if found else set()
        for at, message in found:
            if _caused_by_defaults(at.path, message, values, defaults, found_in_completed_defaults, found_in_own_block):
                from_defaults.setdefault(message, []).append(name)
            else:
                problems.append(f"environment '{name}': {message}")
        if config is not None:
            environments[name] = config
    lines = [f"{DEFAULTS}{_inherited_by(names)}: {message}" for message, names in from_defaults.items()] + problems
    if lines:
        raise ConfigError("\n".join(lines))
    return environments


def _declared_environments(
    context: Mapping[str, Any] | None, only: str | None
) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """``(environments, defaults)`` of the context, nulls marked; the shape checked before any key."""
    if isinstance(context, Mapping):
        context = _with_nulls_marked(context)
    if not isinstance(context, Mapping) or not isinstance(context.get("environments"), Mapping):
        raise ConfigError(
            f"cdk.json context key '{CONTEXT_KEY}' must be an object with an "
            f"'environments' object (and optionally '{DEFAULTS}')"
        )
    unknown = set(context) - {DEFAULTS, "environments"}
    if unknown:
        raise ConfigError(
            f"cdk.json context '{CONTEXT_KEY}': unknown key(s) {sorted(unknown)}; allowed: '{DEFAULTS}', 'environments'"
        )
    declared = context["environments"]
    if not declared:
        raise ConfigError(f"cdk.json context '{CONTEXT_KEY}.environments' declares no environment")
    if only is not None and only not in declared:
        raise ConfigError(
            f"context 'env' = {as_json(only)} is not allowed; allowed: one of "
            f"{', '.join(sorted(declared))} (declared in cdk.json){did_you_mean(str(only), declared)}"
        )
    defaults = context.get(DEFAULTS, {})
    if not isinstance(defaults, Mapping):
        raise ConfigError(
            f"{DEFAULTS}: {as_json(defaults)} is not allowed; allowed: a JSON object of the keys "
            f"every environment inherits, or no key '{DEFAULTS}'"
        )
    return declared, defaults


def _caused_by_defaults(
    path: tuple[str | int, ...],
    message: str,
    values: Mapping[str, Any],
    defaults: Mapping[str, Any],
    found_in_completed_defaults: set[str],
    found_in_own_block: set[str],
) -> bool:
    """Whether an environment's problem is one it inherits rather than causes: at a key it inherits from
    ``defaults``; or one of a rule at a key left at the model's default, when ``defaults`` alone breaks the
    rule the same way and the environment's own block alone does not."""
    if _set_in(values, path):
        return False
    return _set_in(defaults, path) or (message in found_in_completed_defaults and message not in found_in_own_block)


def _inherited_by(names: list[str]) -> str:
    return f" (inherited by {', '.join(repr(name) for name in names)})" if names else ""


# How the CDK CLI hands its merged context (cdk.json, cdk.context.json, ~/.cdk.json, -c) to the app: as
# JSON in CDK_CONTEXT_JSON, and the top-level keys that do not fit the environment in a JSON file named
# by CONTEXT_OVERFLOW_LOCATION_ENV (aws-cdk's writeContextToEnv; aws-cdk-lib's App.loadContext reads both).
CLI_CONTEXT_ENV = "CDK_CONTEXT_JSON"
CLI_CONTEXT_OVERFLOW_ENV = "CONTEXT_OVERFLOW_LOCATION_ENV"


def cli_context() -> dict[str, Any] | None:
    """The context the CDK CLI passed to this process, as JSON (nulls included), or None when the process
    was not started by the CLI."""
    inline, overflow = os.environ.get(CLI_CONTEXT_ENV), os.environ.get(CLI_CONTEXT_OVERFLOW_ENV)
    if inline is None and overflow is None:
        return None
    context: dict[str, Any] = json.loads(inline) if inline else {}
    if overflow:
        context.update(json.loads(Path(overflow).read_text()))
    return context


def cdk_json_context(cdk_json: Path) -> dict[str, Any]:
    """The ``context`` of ``cdk_json``, as JSON: what the app reads when run without the CDK CLI."""
    context: dict[str, Any] = json.loads(cdk_json.read_text()).get("context", {})
    return context
