"""Where the deployed workers consume: the Compute stack's ``Broker`` output once its deploy has settled."""

from __future__ import annotations

from typing import Any

import broker_tier_contract as contract

SETTLED = ("CREATE_COMPLETE", "UPDATE_COMPLETE")
"""CloudFormation finishes an ECS service update only once the service is stable (its old tasks stopped)."""


class DeployedWorkers:
    """The workers of ``environment``'s Compute stack (``Workers`` of ``migration``)."""

    def __init__(self, cloudformation: Any, environment: str) -> None:
        self.cloudformation, self.environment = cloudformation, environment
        self.stack = contract.stack_name(environment, contract.COMPUTE)

    def broker(self) -> str | None:
        stacks = self.cloudformation.describe_stacks(StackName=self.stack)["Stacks"]
        if not stacks or stacks[0]["StackStatus"] not in SETTLED:
            return None
        outputs = {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])}
        return outputs.get(contract.ComputeOutputs.BROKER)

    def switch_steps(self, target: str) -> list[str]:
        env = self.environment
        return [
            f"deploy the application's producers with {contract.ContainerEnvironment.BROKER.name}={target} (their "
            f"tasks now wait on {target} until the workers follow)",
            f'set "compute": {{"broker": "{target}"}} for {env} in cdk.json, run scripts/test.sh, then '
            f"npx cdk deploy {self.stack} -c env={env} (Beat and the workers restart on {target})",
        ]
