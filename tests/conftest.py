"""Session fixtures: every environment of cdk.json synthesized once per test session."""

from __future__ import annotations

import pytest

from tier_testing import SynthesizedEnvironments


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory) -> SynthesizedEnvironments:
    return SynthesizedEnvironments(tmp_path_factory.mktemp("cdk.out"))
