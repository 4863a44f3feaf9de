"""Builds the tier's stacks for the selected environments into a CDK app."""

from __future__ import annotations

import aws_cdk as cdk

from broker_tier.config import CONTEXT_KEY, EnvironmentConfig, load_environments
from broker_tier.nag import add_aws_solutions_checks
from broker_tier.stacks.compute_stack import BrokerComputeStack
from broker_tier.stacks.monitoring_stack import BrokerMonitoringStack
from broker_tier.stacks.state_stack import BrokerStateStack


class EnvironmentStacks:
    """The stacks of one environment, in deployment order."""

    def __init__(self, app: cdk.App, config: EnvironmentConfig) -> None:
        self.config = config
        self.state = BrokerStateStack(app, config.stack_name("State"), config=config)
        self.compute = BrokerComputeStack(app, config.stack_name("Compute"), config=config, state=self.state)
        self.monitoring = BrokerMonitoringStack(app, config.stack_name("Monitoring"), config=config,
                                                state=self.state, compute=self.compute)

    @property
    def all(self) -> list[cdk.Stack]:
        return [self.state, self.compute, self.monitoring]


def build_app(app: cdk.App, *, nag: bool = True) -> dict[str, EnvironmentStacks]:
    """Validate the configuration in ``app``'s context and add each selected environment's stacks.

    ``-c env=NAME`` selects one environment: only ``defaults`` and that environment are validated, so a
    broken environment never blocks synthesizing another.

    :param nag: run cdk-nag's AwsSolutions pack at synthesis (a finding fails synth). Default: true.
    :raises ConfigError: the configuration is invalid; nothing has been added.
    """
    environments = load_environments(app.node.try_get_context(CONTEXT_KEY), only=app.node.try_get_context("env"))
    if nag:
        add_aws_solutions_checks(app)
    return {name: EnvironmentStacks(app, config) for name, config in environments.items()}
