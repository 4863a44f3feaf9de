"""Helpers of the cost tests: templates as the estimator reads them, and the prod variant they synthesize."""

from __future__ import annotations

import copy
from collections.abc import Callable

import broker_tier_contract as contract
from broker_tier.cost.templates import EnvironmentTemplates

# prod with a bigger node type and more interactive workers: what a reviewer would see in a pull request.
PROD_VARIANT_CHANGES = {
    "cache": {"node_type": "cache.r7g.xlarge"},
    "queues": {"interactive": {"worker": {"max_tasks": 10}}},
}


def environment_templates(environment: str, templates_by_part: dict[str, dict]) -> EnvironmentTemplates:
    return EnvironmentTemplates(
        environment=environment,
        stacks={contract.stack_name(environment, part): template for part, template in templates_by_part.items()},
    )


def edited(found: EnvironmentTemplates, edit: Callable[[dict, str, dict], None]) -> EnvironmentTemplates:
    """A copy of ``found`` with ``edit(resources, logical_id, resource)`` applied to every resource of every stack."""
    stacks = copy.deepcopy(found.stacks)
    for template in stacks.values():
        for logical_id, resource in list(template["Resources"].items()):
            edit(template["Resources"], logical_id, resource)
    return EnvironmentTemplates(environment=found.environment, stacks=stacks)
