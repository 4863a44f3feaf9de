"""What tells an operator the tier is unwell: alarms, their topic, and the dashboard."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

import broker_tier_contract as contract
from broker_tier.alarm_catalog import MonitoredResources, dashboard_graphs, fault_injection_stop_specs, tier_alarm_specs
from broker_tier.config import EnvironmentConfig
from broker_tier.constructs.alarm_topic import AlarmTopic
from broker_tier.constructs.az_power_experiment import AzPowerExperiments
from broker_tier.constructs.dashboard import TierDashboard
from broker_tier.constructs.tier_alarms import TierAlarms
from broker_tier.stacks.base import TierStack
from broker_tier.stacks.compute_stack import BrokerComputeStack
from broker_tier.stacks.state_stack import BrokerStateStack

NO_SUBSCRIPTION_WARNING = "broker-tier:production-alarms-reach-no-one"


def no_subscription_warning(config: EnvironmentConfig) -> str | None:
    """The synthesis warning of a production environment whose alarm topic has no subscriber; None otherwise."""
    if not config.production or config.monitoring.subscriptions:
        return None
    return (
        f"environment '{config.name}' is production, but its alarm topic {config.resource_prefix}-alarms has "
        f"no subscription: no alarm or failover notice reaches anyone. Add one to cdk.json under "
        f"context.broker-tier.environments.{config.name}.monitoring.subscriptions, e.g. "
        f'[{{"protocol": "email", "endpoint": "oncall@example.com"}}] (or "https" with a paging service\'s '
        f'webhook URL, or "sms" with an E.164 number), deploy, and confirm the e-mail SNS sends.'
    )


class BrokerMonitoringStack(TierStack):
    """The alarm topic (KMS-encrypted, configured subscriptions, which also receive the ElastiCache
    events topic), the alarms of ``broker_tier.alarm_catalog``, the tier's dashboard, and (when
    ``fault_injection.az_power.enabled``) the AWS FIS AZ power experiments, which stop on the alarms.

    Holds nothing stateful: it can be deleted and redeployed without losing a task.
    Outputs: ``AlarmTopicArn``, ``AlarmNamePrefix``, ``DashboardName``, and with the experiments
    ``AzPowerExperimentTemplateIds``.

    Attributes:
        alarm_topic (AlarmTopic), alarms (TierAlarms), dashboard (TierDashboard), resources (MonitoredResources),
        az_power (AzPowerExperiments or None).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        state: BrokerStateStack,
        compute: BrokerComputeStack,
        **kwargs,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            config=config,
            description=f"broker-tier {config.name}: alarms, alarm topic and dashboard",
            **kwargs,
        )
        prefix = config.resource_prefix
        monitoring = config.monitoring
        self.resources = MonitoredResources(
            cache_node_ids=state.cache.member_cluster_ids,
            queue_names={name: queues.queue_name for name, queues in state.queues.items()},
            dead_letter_queue_names={name: queues.dead_letter_queue_name for name, queues in state.queues.items()},
            cluster_name=compute.cluster.cluster_name,
            worker_service_names={
                name: worker.service.service.service_name for name, worker in compute.workers.items()
            },
            beat_service_name=compute.beat.service.service.service_name,
        )

        self.alarm_topic = AlarmTopic(
            self,
            "AlarmTopic",
            topic_name=f"{prefix}-alarms",
            display_name=f"broker-tier {config.name} alarms",
            encryption_key=state.encryption_key,
            subscriptions=monitoring.subscriptions,
        )
        self.alarm_topic.subscribe(state.events_topic.topic_arn, "CacheEvents")
        if (warning := no_subscription_warning(config)) is not None:
            cdk.Annotations.of(self).add_warning_v2(NO_SUBSCRIPTION_WARNING, warning)

        specs = tier_alarm_specs(config, self.resources)
        self.alarms = TierAlarms(
            self,
            "Alarms",
            specs=specs,
            name_prefix=contract.alarm_name_prefix(config.name),
            topic_arn=self.alarm_topic.topic.topic_arn,
            runbook_base_url=monitoring.runbook_base_url,
        )
        self.dashboard = TierDashboard(
            self,
            "Dashboard",
            dashboard_name=prefix,
            graphs=dashboard_graphs(config, self.resources, specs),
            alarm_arns=[alarm.attr_arn for alarm in self.alarms.alarms.values()],
        )

        outputs = contract.MonitoringOutputs
        cdk.CfnOutput(self, outputs.ALARM_TOPIC_ARN, value=self.alarm_topic.topic.topic_arn)
        cdk.CfnOutput(self, outputs.ALARM_NAME_PREFIX, value=contract.alarm_name_prefix(config.name))
        cdk.CfnOutput(self, outputs.DASHBOARD_NAME, value=prefix)

        self.az_power: AzPowerExperiments | None = None
        experiment = config.fault_injection.az_power
        if experiment.enabled:
            self.az_power = AzPowerExperiments(
                self,
                "AzPower",
                replication_group_id=config.replication_group_id,
                availability_zones=state.network.vpc.availability_zones,
                duration_minutes=experiment.duration_minutes,
                stop_alarms=[self.alarms.alarms[spec.name] for spec in fault_injection_stop_specs(self.alarms.specs)],
                stop_alarm_name=contract.alarm_name(config.name, contract.FAULT_INJECTION_STOP_ALARM),
                description_prefix=f"broker-tier {config.name}",
            )
            cdk.CfnOutput(
                self,
                outputs.AZ_POWER_EXPERIMENT_TEMPLATE_IDS,
                value=cdk.Fn.join(",", [template.ref for template in self.az_power.templates]),
            )
