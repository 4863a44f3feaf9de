"""Fixtures of the cost tests: the shipped environments' templates, and one prod variant synthesized once."""

from __future__ import annotations

import pytest
from cost_testing import PROD_VARIANT_CHANGES, environment_templates
from tier_testing import ENVIRONMENTS, synthesize_variant

import broker_tier_contract as contract
from broker_tier.cost.templates import EnvironmentTemplates


@pytest.fixture(scope="session")
def shipped(synthesized) -> dict[str, EnvironmentTemplates]:
    """Every environment of cdk.json as the estimator reads it."""
    return {
        env: environment_templates(env, {part: synthesized.json(env, part) for part in contract.STACK_PARTS})
        for env in ENVIRONMENTS
    }


@pytest.fixture(scope="session")
def prod_variant(tmp_path_factory) -> EnvironmentTemplates:
    """prod with ``PROD_VARIANT_CHANGES``, synthesized once per session."""
    return environment_templates(
        "prod", synthesize_variant(tmp_path_factory.mktemp("prod-variant"), "prod", PROD_VARIANT_CHANGES)
    )
