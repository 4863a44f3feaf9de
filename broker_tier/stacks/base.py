"""What every stack of the tier shares: environment, naming, tags, termination protection."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

import broker_tier_contract as contract
from broker_tier.config import EnvironmentConfig


class TierStack(cdk.Stack):
    """A stack of one environment of the tier.

    Production stacks have termination protection on. Without an account and region the stack is
    environment-agnostic; it then still spreads over as many AZs as the network asks for (CDK's
    default for agnostic stacks is two), by selecting them with ``Fn::GetAZs`` at deploy time.
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
        if cdk.Token.is_unresolved(self.region):
            return [cdk.Fn.select(index, cdk.Fn.get_azs()) for index in range(self.config.network.max_azs)]
        return super().availability_zones
