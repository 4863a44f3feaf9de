"""Reading ``cdk.json``: ``defaults`` validated on its own, then deep-merged into each selected
environment and validated with it; every problem reported once, naming where it comes from
(``defaults`` or the environment), the key, the value (as JSON) and what is allowed."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from broker_tier.config.base import PARTIAL, ConfigError, InvalidValue
from broker_tier.config.catalogues import did_you_mean
from broker_tier.config.describe import KeyAt, allowed_keys, allowed_text, key_at, type_name
from broker_tier.config.environment import EnvironmentConfig

CONTEXT_KEY = "broker-tier"
"""The key of ``cdk.json``'s context that holds the tier's configuration."""
DEFAULTS = "defaults"

# pydantic's type errors, in terms of the JSON a user writes (strict mode: nothing is coerced).
_JSON_TYPE_ERRORS = {"int_type", "bool_type", "string_type", "float_type", "dict_type", "model_type",
                     "list_type", "model_attributes_type"}
# Errors whose allowed values the key's own description states (bounds, choices, pattern).
_DESCRIBED_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal", "too_short", "too_long",
                     "string_pattern_mismatch", "literal_error"}


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
    return json.dumps(value, default=str)


def _json_type(annotation: Any) -> str:
    names = type_name(annotation).split(" or ")
    return "a JSON " + " or ".join(dict.fromkeys(names)) + (" (true or false)" if names == ["boolean"] else "")


def _problem(item: dict[str, Any]) -> tuple[KeyAt, str]:
    """The key an error is about, and its message without the origin label."""
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
        allowed = allowed_keys(EnvironmentConfig, loc)
        return at, (f"unknown key '{at.key}' (value {as_json(item['input'])})"
                    f"{did_you_mean(str(loc[-1]), allowed).replace('did you mean ', 'did you mean key ')}; "
                    f"allowed keys here: {', '.join(allowed)}")
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


def _problems(error: ValidationError) -> list[tuple[KeyAt, str]]:
    seen: dict[tuple, tuple[KeyAt, str]] = {}
    for item in error.errors():
        at, message = _problem(item)
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


def _validate(name: str, values: Mapping[str, Any], *, partial: bool) -> tuple[EnvironmentConfig | None,
                                                                                list[tuple[KeyAt, str]]]:
    if "name" in values:
        return None, [(KeyAt(("name",), None, None), "key 'name' is not allowed; the environment's key in "
                                                      "'environments' is its name")]
    try:
        return EnvironmentConfig.model_validate({**values, "name": name}, context={PARTIAL: partial}), []
    except ValidationError as error:
        return None, _problems(error)


def load_environments(context: Mapping[str, Any] | None, *, only: str | None = None) -> dict[str, EnvironmentConfig]:
    """The environments declared under ``context["broker-tier"]``, validated: every one, or only ``only``
    (``-c env=NAME``), whose validation then ignores the other environments.

    ``defaults`` is validated on its own first, key by key (checks relating several keys wait for the
    environments, which may complete or override them). A problem with a key an environment inherits
    from ``defaults`` is reported once, as ``defaults``, naming the environments it breaks.

    :raises ConfigError: with every problem found, one per line.
    """
    if not isinstance(context, Mapping) or not isinstance(context.get("environments"), Mapping):
        raise ConfigError(f"cdk.json context key '{CONTEXT_KEY}' must be an object with an "
                          f"'environments' object (and optionally '{DEFAULTS}')")
    unknown = set(context) - {DEFAULTS, "environments"}
    if unknown:
        raise ConfigError(f"cdk.json context '{CONTEXT_KEY}': unknown key(s) {sorted(unknown)}; "
                          f"allowed: '{DEFAULTS}', 'environments'")
    declared = context["environments"]
    if not declared:
        raise ConfigError(f"cdk.json context '{CONTEXT_KEY}.environments' declares no environment")
    if only is not None and only not in declared:
        raise ConfigError(f"context 'env' = {as_json(only)} is not allowed; allowed: one of "
                          f"{', '.join(sorted(declared))} (declared in cdk.json){did_you_mean(str(only), declared)}")
    defaults = context.get(DEFAULTS) or {}
    if not isinstance(defaults, Mapping):
        raise ConfigError(f"{DEFAULTS}: must be a JSON object, got {as_json(defaults)}")

    # message -> the environments it breaks (an empty list: found in defaults on its own)
    found_in_defaults = _validate(DEFAULTS, defaults, partial=True)[1]
    from_defaults: dict[str, list[str]] = {message: [] for _, message in found_in_defaults}
    # Each bad key of defaults is left out of the merge (reported once above), so that the
    # environments' own problems still show: pydantic checks no rule of a block with a bad key.
    defaults = _without(defaults, [at.path for at, _ in found_in_defaults])
    problems: list[str] = []
    environments: dict[str, EnvironmentConfig] = {}
    for name in ([only] if only is not None else list(declared)):
        values = declared[name]
        if not isinstance(values, Mapping):
            problems.append(f"environment '{name}': must be a JSON object, got {as_json(values)}")
            continue
        for at, message in found_in_defaults:
            if not _set_in(values, at.path):
                from_defaults[message].append(name)
        config, found = _validate(name, deep_merge(defaults, values), partial=False)
        for at, message in found:
            if not _set_in(values, at.path) and _set_in(defaults, at.path):
                from_defaults.setdefault(message, []).append(name)
            else:
                problems.append(f"environment '{name}': {message}")
        if config is not None:
            environments[name] = config
    lines = [f"{DEFAULTS}{_inherited_by(names)}: {message}" for message, names in from_defaults.items()] + problems
    if lines:
        raise ConfigError("\n".join(lines))
    return environments


def _inherited_by(names: list[str]) -> str:
    return f" (inherited by {', '.join(repr(name) for name in names)})" if names else ""
