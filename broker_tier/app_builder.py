"""Builds the tier's stacks for the selected environments into a CDK app, and synthesizes them in-process
for the tools that read templates (the rehearsal, the cost estimate, the tests).

The configuration is read from the context as written (JSON), not from the app's context: jsii drops every
null-valued key of an object on its way into the app, and a null must be refused, not taken for "not set".
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import cx_api

import broker_tier_contract as contract
from broker_tier.config import CONTEXT_KEY, ConfigError, EnvironmentConfig, deep_merge, load_environments
from broker_tier.nag import add_aws_solutions_checks
from broker_tier.stacks.compute_stack import BrokerComputeStack
from broker_tier.stacks.monitoring_stack import BrokerMonitoringStack
from broker_tier.stacks.state_stack import BrokerStateStack


class EnvironmentStacks:
    """The stacks of one environment, in deployment order."""

    def __init__(self, app: cdk.App, config: EnvironmentConfig) -> None:
        self.config = config
        self.state = BrokerStateStack(app, config.stack_name(contract.STATE), config=config)
        self.compute = BrokerComputeStack(app, config.stack_name(contract.COMPUTE), config=config, state=self.state)
        self.monitoring = BrokerMonitoringStack(
            app, config.stack_name(contract.MONITORING), config=config, state=self.state, compute=self.compute
        )

    @property
    def all(self) -> list[cdk.Stack]:
        return [self.state, self.compute, self.monitoring]


def build_app(
    app: cdk.App,
    *,
    context: Mapping[str, Any] | None = None,
    environments: Mapping[str, EnvironmentConfig] | None = None,
    nag: bool = True,
) -> dict[str, EnvironmentStacks]:
    """Validate the configuration and add each selected environment's stacks to ``app``.

    ``-c env=NAME`` selects one environment: only ``defaults`` and that environment are validated, so a
    broken environment never blocks synthesizing another.

    :param context: ``app``'s context as written (``cli_context()``, cdk.json's, or a dict), nulls
        included, which the configuration is read from. Default: ``app``'s own context, whose nulls jsii
        has dropped (for callers that build the app from a context without nulls).
    :param environments: the selected environments, already validated (``load_environments``), instead of
        reading them from a context. Default: read and validated here.
    :param nag: run cdk-nag's AwsSolutions pack at synthesis (a finding fails synth). Default: true.
    :raises ConfigError: the configuration is invalid; nothing has been added.
    """
    if environments is None:
        tier = context.get(CONTEXT_KEY) if context is not None else app.node.try_get_context(CONTEXT_KEY)
        environments = load_environments(tier, only=app.node.try_get_context("env"))
    if nag:
        add_aws_solutions_checks(app)
    return {name: EnvironmentStacks(app, config) for name, config in environments.items()}


REPOSITORY = Path(__file__).resolve().parents[1]


def synthesize(
    context: Mapping[str, Any],
    *,
    outdir: Path | str,
    environment: str | None = None,
    changes: Mapping[str, Any] | None = None,
) -> cx_api.CloudAssembly:
    """Synthesize ``context`` (a ``cdk.json``'s context as written: a null in it is refused) in-process into
    ``outdir``, without cdk-nag (the test command runs it): every environment, or only ``environment`` with
    ``changes`` deep-merged into its block.

    jsii starts ``node`` from PATH: the Node 22 the set-up pins (``node_modules/.bin``) is put first.
    :raises ConfigError: the configuration is invalid, or ``environment`` is not declared.
    """
    pinned_node = REPOSITORY / "node_modules" / ".bin"
    if (pinned_node / "node").exists() and str(pinned_node) not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = f"{pinned_node}{os.pathsep}{os.environ.get('PATH', '')}"
    synthesized: dict[str, Any] = copy.deepcopy(dict(context))
    if environment is not None:
        environments = (synthesized.get(CONTEXT_KEY) or {}).get("environments") or {}
        if environment not in environments:
            raise ConfigError(
                f"environment {environment!r} is not declared in cdk.json; environments: "
                f"{', '.join(sorted(environments)) or 'none'}"
            )
        if changes and isinstance(environments[environment], Mapping):  # else build_app says what is wrong
            environments[environment] = deep_merge(environments[environment], changes)
        synthesized["env"] = environment
    # The tools read the templates: the checks of a synthesis (cdk-nag, CDK's built-in CloudFormation validation)
    # run where a team synthesizes to deploy, app.py (docs/decisions/cdk-validation-where-a-team-synthesizes.md).
    app = cdk.App(context=synthesized, outdir=str(outdir), builtin_cloud_formation_validation=False)
    build_app(app, context=synthesized, nag=False)
    return app.synth()
