"""Session fixtures: every environment of cdk.json synthesized once per test session."""

from __future__ import annotations

import pytest

from tier_testing import REDIS_MODE_CHANGES, SynthesizedEnvironments, synthesize_variant


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory) -> SynthesizedEnvironments:
    return SynthesizedEnvironments(tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="session")
def redis_mode_dev(tmp_path_factory) -> dict[str, dict]:
    """dev in redis broker mode with a team image (``REDIS_MODE_CHANGES``), synthesized once: templates by part."""
    return synthesize_variant(tmp_path_factory.mktemp("redis-mode"), "dev", REDIS_MODE_CHANGES)


@pytest.fixture(scope="session")
def redis_broker_dev(tmp_path_factory) -> dict[str, dict]:
    """dev with ``compute.broker: redis`` and otherwise cdk.json's configuration (the reference image),
    synthesized once: templates by part."""
    return synthesize_variant(tmp_path_factory.mktemp("redis-broker"), "dev", {"compute": {"broker": "redis"}})
