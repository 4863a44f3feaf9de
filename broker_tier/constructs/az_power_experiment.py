"""AWS FIS experiment templates that cut the power of one AZ's cache nodes, and what keeps them safe."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_fis as fis
from aws_cdk import aws_iam as iam
from constructs import Construct

import broker_tier_contract as contract
from broker_tier.nag import acknowledge


class AzPowerExperiments(Construct):
    """One AWS FIS template per AZ interrupting the power of the group's nodes there, a composite stop alarm,
    and the experiment role. The action selects the group by its ``contract.FAULT_INJECTION_TARGET_TAG``
    (docs/decisions/az-power-experiments.md).

    Attributes:
        templates: the CfnExperimentTemplate of each AZ, in the order of ``availability_zones``.
        stop_alarm: the composite alarm every template stops on.
        role: the role AWS FIS assumes.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        replication_group_id: str,
        availability_zones: list[str],
        duration_minutes: int,
        stop_alarms: list[cloudwatch.CfnAlarm],
        stop_alarm_name: str,
        description_prefix: str,
    ) -> None:
        """
        :param replication_group_id: the group the experiments select (by its fault-injection tag).
        :param availability_zones: the AZs of the group's subnets, one template each (names or tokens).
        :param duration_minutes: how long each experiment keeps the AZ without power (1-720).
        :param stop_alarms: alarms of which any in ALARM stops a running experiment (at least one).
        :param stop_alarm_name: name of the composite alarm over them.
        :param description_prefix: starts each template's description, e.g. ``broker-tier dev``.
        """
        super().__init__(scope, construct_id)
        if not stop_alarms:
            raise ValueError("an experiment needs at least one stop alarm")
        # AWS FIS allows five stop conditions per template (not adjustable): one composite alarm
        # stands for them all.
        self.stop_alarm = cloudwatch.CfnCompositeAlarm(
            self,
            "StopAlarm",
            alarm_name=stop_alarm_name,
            actions_enabled=False,
            alarm_description="Stops the tier's AWS FIS experiments when any of its paging alarms fires "
            "(the alarms notify on their own). Runbook: runbooks/failover-drill.md",
            alarm_rule=" OR ".join(f'ALARM("{alarm.alarm_name}")' for alarm in stop_alarms),
        )
        for alarm in stop_alarms:
            self.stop_alarm.add_resource_dependency(alarm)
        self.role = self._role(replication_group_id)
        self.templates = [
            fis.CfnExperimentTemplate(
                self,
                f"Template{index}",
                role_arn=self.role.role_arn,
                description=f"{description_prefix}: interrupt the power of the cache nodes in {zone} "
                f"for {duration_minutes} min",
                stop_conditions=[
                    fis.CfnExperimentTemplate.ExperimentTemplateStopConditionProperty(
                        source="aws:cloudwatch:alarm", value=self.stop_alarm.attr_arn
                    )
                ],
                targets={
                    contract.AZ_POWER_TARGET: fis.CfnExperimentTemplate.ExperimentTemplateTargetProperty(
                        resource_type="aws:elasticache:replicationgroup",
                        selection_mode="ALL",
                        resource_tags={contract.FAULT_INJECTION_TARGET_TAG: replication_group_id},
                        parameters={contract.AZ_POWER_ZONE_PARAMETER: zone},
                    )
                },
                actions={
                    "InterruptAzPower": fis.CfnExperimentTemplate.ExperimentTemplateActionProperty(
                        action_id=contract.AZ_POWER_ACTION,
                        parameters={"duration": f"PT{duration_minutes}M"},
                        targets={contract.AZ_POWER_TARGET: contract.AZ_POWER_TARGET},
                    )
                },
                experiment_options=fis.CfnExperimentTemplate.ExperimentTemplateExperimentOptionsProperty(
                    account_targeting="single-account", empty_target_resolution_mode="fail"
                ),
                tags={"Name": f"{description_prefix} az-power {index}"},
            )
            for index, zone in enumerate(availability_zones, start=1)
        ]

    def _role(self, replication_group_id: str) -> iam.Role:
        """The permissions the AWS FIS actions reference lists for the action, no more."""
        stack = cdk.Stack.of(self)
        role = iam.Role(
            self,
            "Role",
            description="AWS FIS: interrupt the AZ power of the broker tier's cache",
            assumed_by=iam.ServicePrincipal(
                "fis.amazonaws.com",
                conditions={
                    # confused-deputy protection: only this account's experiments
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": stack.format_arn(service="fis", resource="experiment", resource_name="*")
                    },
                },
            ),
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="InterruptAzPowerOfTheTiersGroupOnly",
                actions=["elasticache:InterruptClusterAzPower"],
                resources=["*"],
                conditions={
                    "StringEquals": {f"aws:ResourceTag/{contract.FAULT_INJECTION_TARGET_TAG}": replication_group_id}
                },
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ResolveTargets",
                actions=["elasticache:DescribeReplicationGroups", "tag:GetResources"],
                resources=["*"],
            )
        )
        acknowledge(
            role,
            "IAM5[Resource::*]",
            "AWS FIS resolves the action's target by tag (tag:GetResources has no resource-level "
            "permission) and reads replication groups to find the nodes in the AZ (read-only); the one "
            "mutating action, elasticache:InterruptClusterAzPower, is limited by an aws:ResourceTag "
            "condition to the group tagged as this tier's fault-injection target, as in AWS's "
            "published template (aws-samples/fis-template-library, elasticache-az-power-interruption).",
        )
        return role
