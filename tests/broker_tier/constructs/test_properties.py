"""Every construct of broker_tier/constructs takes its properties as aws-cdk's own constructs do: ``scope`` and
``construct_id``, then keyword-only, typed properties, each documented, with ``Default:`` exactly when it has one."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pytest
from constructs import Construct

import broker_tier.constructs


def construct_builders() -> dict[str, object]:
    """Each Construct subclass of the package, and each module-level function that takes ``scope`` and
    ``construct_id`` (a construct factory such as ``tier_log_group``), by qualified name."""
    found: dict[str, object] = {}
    for module_info in pkgutil.iter_modules(broker_tier.constructs.__path__):
        module = importlib.import_module(f"broker_tier.constructs.{module_info.name}")
        for name, value in vars(module).items():
            if getattr(value, "__module__", None) != module.__name__:
                continue
            if inspect.isclass(value) and issubclass(value, Construct):
                found[f"{module_info.name}.{name}"] = value.__init__
            elif inspect.isfunction(value) and list(inspect.signature(value).parameters)[:2] == [
                "scope",
                "construct_id",
            ]:
                found[f"{module_info.name}.{name}"] = value
    return found


BUILDERS = construct_builders()


def properties(builder) -> list[inspect.Parameter]:
    parameters = list(inspect.signature(builder).parameters.values())
    leading = ["self", "scope", "construct_id"] if parameters[0].name == "self" else ["scope", "construct_id"]
    assert [p.name for p in parameters[: len(leading)]] == leading
    return parameters[len(leading) :]


def documented(builder) -> dict[str, str]:
    """``:param name:`` -> its text, from the docstring."""
    doc = inspect.getdoc(builder) or ""
    return {
        match["name"]: " ".join(match["text"].split())
        for match in re.finditer(r":param (?P<name>\w+):(?P<text>.*?)(?=\n:|\Z)", doc, flags=re.S)
    }


def test_the_package_has_constructs_and_factories():
    assert {"cache.BrokerCache", "queues.LatencyClassQueues", "log_group.tier_log_group"} <= set(BUILDERS)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_properties_are_keyword_only_typed_and_documented_with_their_defaults(name):
    builder = BUILDERS[name]
    props = properties(builder)
    assert props, f"{name} takes no properties"
    docs = documented(builder)
    for prop in props:
        assert prop.kind is inspect.Parameter.KEYWORD_ONLY, f"{name}: {prop.name} is not keyword-only"
        assert prop.annotation is not inspect.Parameter.empty, f"{name}: {prop.name} has no type"
        assert prop.name in docs, f"{name}: {prop.name} has no ':param {prop.name}:'"
        has_default = prop.default is not inspect.Parameter.empty
        assert ("Default:" in docs[prop.name]) == has_default, f"{name}: {prop.name} " + (
            "has an undocumented default" if has_default else "documents a default it lacks"
        )
