"""The template tests here run against every synthesis: as cdk.json declares the environments, and pinned."""

from __future__ import annotations

import pytest
from tier_testing import SynthesizedEnvironments


@pytest.fixture
def synthesized(every_synthesis) -> SynthesizedEnvironments:
    return every_synthesis
