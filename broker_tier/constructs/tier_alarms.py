"""CloudWatch alarms rendered from the alarm catalog's specs."""

from __future__ import annotations

from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from broker_tier.alarm_catalog import AlarmSpec, MetricQuery


def metric_stat(query: MetricQuery, period_seconds: int) -> cloudwatch.CfnAlarm.MetricStatProperty:
    return cloudwatch.CfnAlarm.MetricStatProperty(
        metric=cloudwatch.CfnAlarm.MetricProperty(
            namespace=query.namespace,
            metric_name=query.metric_name,
            dimensions=[
                cloudwatch.CfnAlarm.DimensionProperty(name=key, value=value) for key, value in query.dimensions.items()
            ],
        ),
        period=period_seconds,
        stat=query.statistic,
    )


class TierAlarms(Construct):
    """One CloudWatch alarm per spec, each notifying ``topic_arn`` on ALARM and on OK.

    L1 alarms, on purpose: one jsii call per alarm keeps synthesis of every environment within
    its time budget, and the template carries exactly the spec (metric, dimensions, statistic,
    period, threshold, comparison, missing-data treatment).

    Attributes:
        alarms: the CfnAlarm of each spec, by spec name.
        specs: the specs, in order.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        specs: list[AlarmSpec],
        name_prefix: str,
        topic_arn: str,
        runbook_base_url: str,
    ) -> None:
        """
        :param specs: what to alarm on (``broker_tier.alarm_catalog``).
        :param name_prefix: alarm names are ``<name_prefix><spec name>`` (the prefix ends with ``-``).
        :param topic_arn: notified on ALARM and OK.
        :param runbook_base_url: prefix of the runbook file named in each description.
        """
        super().__init__(scope, construct_id)
        self.specs = specs
        self.alarms: dict[str, cloudwatch.CfnAlarm] = {}
        for spec in specs:
            window = spec.window
            queries = [
                cloudwatch.CfnAlarm.MetricDataQueryProperty(
                    id=query.id,
                    label=query.label,
                    metric_stat=metric_stat(query, window.period_seconds),
                    return_data=spec.expression is None,
                )
                for query in spec.metrics
            ]
            if spec.expression is not None:
                queries.append(
                    cloudwatch.CfnAlarm.MetricDataQueryProperty(
                        id="alarmed", expression=spec.expression, label=spec.name, return_data=True
                    )
                )
            self.alarms[spec.name] = cloudwatch.CfnAlarm(
                self,
                spec.name,
                alarm_name=f"{name_prefix}{spec.name}",
                alarm_description=f"[{spec.severity}] {spec.summary} Runbook: {runbook_base_url}{spec.runbook}",
                metrics=queries,
                threshold=spec.threshold,
                comparison_operator=spec.comparison,
                evaluation_periods=window.evaluation_periods,
                datapoints_to_alarm=window.datapoints,
                treat_missing_data=spec.treat_missing_data,
                alarm_actions=[topic_arn],
                ok_actions=[topic_arn],
            )
