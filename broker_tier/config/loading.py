"""Reading ``cdk.json``: ``defaults`` deep-merged into each environment, validated, and every problem
reported with the environment, the key, the value and what is allowed."""

from __future__ import annotations

import copy
from typing import Any, Mapping

from pydantic import BaseModel, ValidationError

from broker_tier.config.base import ConfigError, InvalidValue
from broker_tier.config.environment import EnvironmentConfig

CONTEXT_KEY = "broker-tier"
"""The key of ``cdk.json``'s context that holds the tier's configuration."""


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str] | None:
    """The keys allowed at ``loc`` inside ``model`` (for an unknown-key message)."""
    current: Any = model
    parts = list(loc[:-1])
    while parts:
        part = parts.pop(0)
        field = current.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return None
        annotation = field.annotation
        if getattr(annotation, "__origin__", None) is dict:
            annotation = annotation.__args__[1]
            if parts:
                parts.pop(0)  # the dict key (a class name)
        current = annotation
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
    return sorted(f for f in current.model_fields if f != "name")


def _format_errors(env: str, error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        loc = tuple(item["loc"])
        cause = item.get("ctx", {}).get("error")
        if isinstance(cause, InvalidValue):
            key = ".".join(str(p) for p in loc + (cause.key,))
            lines.append(f"environment '{env}': {key} = {cause.value!r} is not allowed; "
                         f"allowed: {cause.allowed}")
            continue
        key = ".".join(str(p) for p in loc) or "(environment)"
        if item["type"] == "extra_forbidden":
            allowed = _allowed_keys(EnvironmentConfig, loc)
            lines.append(f"environment '{env}': unknown key '{key}' (value {item['input']!r}); "
                         f"allowed keys here: {', '.join(allowed or [])}")
            continue
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"environment '{env}': {key} = {item['input']!r} is not allowed; allowed: {message}")
    return "\n".join(lines)


def parse_environment(name: str, values: Mapping[str, Any]) -> EnvironmentConfig:
    """Validate one environment's merged values; raises ConfigError with every problem found."""
    if "name" in values:
        raise ConfigError(f"environment '{name}': key 'name' is not allowed; the environment's key "
                          f"in 'environments' is its name")
    try:
        return EnvironmentConfig(name=name, **values)
    except ValidationError as error:
        raise ConfigError(_format_errors(name, error)) from None


def load_environments(context: Mapping[str, Any] | None) -> dict[str, EnvironmentConfig]:
    """Every environment declared under ``context["broker-tier"]``, validated."""
    if not isinstance(context, Mapping) or not isinstance(context.get("environments"), Mapping):
        raise ConfigError(f"cdk.json context key '{CONTEXT_KEY}' must be an object with an "
                          f"'environments' object (and optionally 'defaults')")
    unknown = set(context) - {"defaults", "environments"}
    if unknown:
        raise ConfigError(f"cdk.json context '{CONTEXT_KEY}': unknown key(s) {sorted(unknown)}; "
                          f"allowed: 'defaults', 'environments'")
    defaults = context.get("defaults") or {}
    problems, environments = [], {}
    for name, values in context["environments"].items():
        if not isinstance(values, Mapping):
            problems.append(f"environment '{name}': must be an object, got {values!r}")
            continue
        try:
            environments[name] = parse_environment(name, deep_merge(defaults, values))
        except ConfigError as error:
            problems.append(str(error))
    if problems:
        raise ConfigError("\n".join(problems))
    if not environments:
        raise ConfigError(f"cdk.json context '{CONTEXT_KEY}.environments' declares no environment")
    return environments


def select_environments(environments: Mapping[str, EnvironmentConfig],
                        selected: str | None) -> list[EnvironmentConfig]:
    """All environments, or the one named by ``-c env=NAME``."""
    if selected is None:
        return list(environments.values())
    if selected not in environments:
        raise ConfigError(f"context 'env' = {selected!r} is not allowed; allowed: one of "
                          f"{sorted(environments)} (declared in cdk.json)")
    return [environments[selected]]
