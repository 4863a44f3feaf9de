"""What every stack of the tier shares: environment, naming, tags, termination protection."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

import broker_tier_contract as contract
from broker_tier.config import EnvironmentConfig


class TierStack(cdk.Stack):
    """A stack of one environment of the tier; production stacks have termination protection on.

    Pinned (account and region set) or environment-agnostic, the AZs are the first ``network.max_azs``
    of ``Fn::GetAZs`` at deploy time, never looked up at synthesis: pinning an environment deployed
    agnostic then changes no subnet (docs/decisions/availability-zones-chosen-at-deploy-time.md).
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, description: str, **kwargs
    ) -> None:
        env = cdk.Environment(account=config.account, region=config.region) if config.account else None
        super().__init__(
            scope, construct_id, env=env, description=description, termination_protection=config.production, **kwargs
        )
        self.config = config
        for key, value in {"Project": contract.PROJECT, "Environment": config.name, **config.tags}.items():
            cdk.Tags.of(self).add(key, value)

    @property
    def availability_zones(self) -> list[str]:
        return [cdk.Fn.select(index, cdk.Fn.get_azs()) for index in range(self.config.network.max_azs)]
