"""What tells an operator the tier is unwell: alarms, their topic, and the dashboard."""

from __future__ import annotations

import aws_cdk as cdk
import broker_tier_contract as contract
from constructs import Construct

from broker_tier.alarm_catalog import (
    MonitoredResources, fault_injection_stop_specs, node_metrics, queue_metric, running_tasks, tier_alarm_specs)
from broker_tier.config import EnvironmentConfig
from broker_tier.constructs.alarm_topic import AlarmTopic
from broker_tier.constructs.az_power_experiment import AzPowerExperiments
from broker_tier.constructs.dashboard import Graph, TierDashboard
from broker_tier.constructs.tier_alarms import TierAlarms
from broker_tier.stacks.base import TierStack
from broker_tier.stacks.compute_stack import BrokerComputeStack
from broker_tier.stacks.state_stack import BrokerStateStack


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

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, state: BrokerStateStack,
                 compute: BrokerComputeStack, **kwargs) -> None:
        super().__init__(scope, construct_id, config=config,
                         description=f"broker-tier {config.name}: alarms, alarm topic and dashboard", **kwargs)
        prefix = config.resource_prefix
        monitoring = config.monitoring
        self.resources = MonitoredResources(
            cache_node_ids=state.cache.member_cluster_ids,
            queue_names={name: queues.queue_name for name, queues in state.queues.items()},
            dead_letter_queue_names={name: queues.dead_letter_queue_name for name, queues in state.queues.items()},
            cluster_name=compute.cluster.cluster_name,
            worker_service_names={name: worker.service.service.service_name for name, worker in compute.workers.items()},
            beat_service_name=compute.beat.service.service.service_name)

        self.alarm_topic = AlarmTopic(self, "AlarmTopic", topic_name=f"{prefix}-alarms",
                                      display_name=f"broker-tier {config.name} alarms",
                                      encryption_key=state.encryption_key, subscriptions=monitoring.subscriptions)
        self.alarm_topic.subscribe(state.events_topic.topic_arn, "CacheEvents")

        self.alarms = TierAlarms(self, "Alarms", specs=tier_alarm_specs(config, self.resources),
                                 name_prefix=contract.alarm_name_prefix(config.name),
                                 topic_arn=self.alarm_topic.topic.topic_arn,
                                 runbook_base_url=monitoring.runbook_base_url)
        self.dashboard = TierDashboard(self, "Dashboard", dashboard_name=prefix, graphs=self._graphs(config),
                                       alarm_arns=[alarm.attr_arn for alarm in self.alarms.alarms.values()])

        outputs = contract.MonitoringOutputs
        cdk.CfnOutput(self, outputs.ALARM_TOPIC_ARN, value=self.alarm_topic.topic.topic_arn)
        cdk.CfnOutput(self, outputs.ALARM_NAME_PREFIX, value=contract.alarm_name_prefix(config.name))
        cdk.CfnOutput(self, outputs.DASHBOARD_NAME, value=prefix)

        self.az_power: AzPowerExperiments | None = None
        experiment = config.fault_injection.az_power
        if experiment.enabled:
            self.az_power = AzPowerExperiments(
                self, "AzPower", replication_group_id=config.replication_group_id,
                availability_zones=state.network.vpc.availability_zones, duration_minutes=experiment.duration_minutes,
                stop_alarms=[self.alarms.alarms[spec.name] for spec in fault_injection_stop_specs(self.alarms.specs)],
                stop_alarm_name=contract.alarm_name(config.name, contract.FAULT_INJECTION_STOP_ALARM),
                description_prefix=f"broker-tier {config.name}")
            cdk.CfnOutput(self, outputs.AZ_POWER_EXPERIMENT_TEMPLATE_IDS,
                          value=cdk.Fn.join(",", [template.ref for template in self.az_power.templates]))

    def _graphs(self, config: EnvironmentConfig) -> list[Graph]:
        resources, memory = self.resources, config.monitoring.redis_memory
        classes = list(config.queues)
        services = {**{f"worker {name}": resources.worker_service_names[name] for name in classes},
                    "beat": resources.beat_service_name}
        return [
            Graph("Visible messages per class", tuple(
                queue_metric(resources.queue_names[name], "ApproximateNumberOfMessagesVisible", name)
                for name in classes)),
            Graph("Oldest message age (s) per class", tuple(
                queue_metric(resources.queue_names[name], "ApproximateAgeOfOldestMessage", name)
                for name in classes)),
            Graph("Dead-letter messages per class", tuple(
                queue_metric(resources.dead_letter_queue_names[name], "ApproximateNumberOfMessagesVisible", name)
                for name in classes), (("any is too many", 0),)),
            Graph("Redis memory (% of maxmemory)", node_metrics(resources, "DatabaseMemoryUsagePercentage", "Maximum"),
                  (("warning", memory.warning_percent), ("critical", memory.critical_percent))),
            Graph("Redis engine CPU (%)", node_metrics(resources, "EngineCPUUtilization", "Average"),
                  (("alarm", config.monitoring.redis_engine_cpu.threshold_percent),)),
            Graph("Redis replication lag (s)", node_metrics(resources, "ReplicationLag", "Maximum"),
                  (("alarm", config.monitoring.redis_replication_lag.threshold_seconds),)),
            Graph("Redis connections", node_metrics(resources, "CurrConnections", "Maximum"),
                  (("alarm", config.monitoring.redis_connections.threshold),)),
            Graph("Running tasks per service", tuple(
                running_tasks(resources, service_name, "Average", label) for label, service_name in services.items())),
        ]
