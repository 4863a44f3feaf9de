"""The configuration reference (docs/configuration.md) is the one the model generates, and covers every key
cdk.json uses."""

from __future__ import annotations

from tier_testing import ROOT, tier_context

from broker_tier.tools.config_reference import rows

REFERENCE = ROOT / "docs" / "configuration.md"


def leaf_keys(block: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in block.items():
        path = f"{prefix}{key}"
        if prefix == "queues.":  # a class name
            path = "queues.<class>"
        if isinstance(value, dict) and key not in ("parameters", "tags"):
            keys |= leaf_keys(value, f"{path}.")
        elif isinstance(value, list):
            keys.add(path)
            for item in value:
                keys |= leaf_keys(item, f"{path}[].")
        else:
            keys.add(path)
    return keys


def test_every_key_the_project_sets_is_documented_with_a_type_and_default():
    context = tier_context()
    used = leaf_keys(context["defaults"])
    for environment in context["environments"].values():
        used |= leaf_keys(environment)
    documented = {row.key: row for row in rows()}
    assert used <= set(documented), sorted(used - set(documented))
    assert documented["cache.node_type"].default == '"cache.m7g.large"'
    assert documented["monitoring.redis_evictions.evaluation_periods"].default == "1"  # the block's own default
    assert "elasticache_node_types.json" in documented["cache.node_type"].allowed
    assert all(row.type and row.default for row in documented.values())
