"""What the configuration tests of this directory share: an environment of the project's cdk.json with an override,
loaded; and the lines of the ConfigError a context raises. The tests import it relatively (``from .config_testing
import load_with``): under pytest's importlib mode (pyproject.toml) this directory is their package."""

from __future__ import annotations

import pytest
from tier_testing import tier_context

from broker_tier.config import ConfigError, deep_merge, load_environments


def load_with(env: str, override: dict, *, only: str | None = None) -> dict:
    """``env`` of cdk.json, made environment-agnostic (as shipped; a team may have pinned it), with ``override``."""
    context = tier_context()
    block = {key: value for key, value in context["environments"][env].items() if key not in ("account", "region")}
    context["environments"][env] = deep_merge(block, override)
    return load_environments(context, only=only)


def assert_refused_naming(env: str, override: dict, expected: list[str]) -> None:
    """``env`` with ``override`` is refused by a ConfigError whose message holds every fragment of ``expected`` (the
    environment, the key, the value and what is allowed)."""
    assert expected
    with pytest.raises(ConfigError) as raised:
        load_with(env, override)
    message = str(raised.value)
    for fragment in expected:
        assert fragment in message, f"{fragment!r} missing from:\n{message}"


def problems(context: dict, *, only: str | None = None) -> list[str]:
    """The lines of the ConfigError ``context`` raises."""
    with pytest.raises(ConfigError) as raised:
        load_environments(context, only=only)
    return str(raised.value).splitlines()
