"""The SNS topic every alarm of an environment notifies, and who is subscribed to it."""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from broker_tier.config import Subscription


class AlarmTopic(Construct):
    """An encrypted, TLS-only SNS topic for alarm and OK notifications, with the configured subscriptions.

    Its policy must admit this account's CloudWatch alarms, or every alarm action fails
    (docs/decisions/alarm-topic-admits-cloudwatch.md). ``subscribe`` adds the same endpoints to another topic.

    Attributes:
        topic: the alarm topic.
        subscriptions: the configured endpoints.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        topic_name: str,
        display_name: str,
        encryption_key: kms.IKey,
        subscriptions: Sequence[Subscription] = (),
    ) -> None:
        """
        :param topic_name: physical topic name.
        :param display_name: shown as the sender of e-mail and SMS notifications.
        :param encryption_key: KMS key of the topic; its key policy must let ``cloudwatch.amazonaws.com``
            use it (the State stack's key does), or CloudWatch cannot publish.
        :param subscriptions: endpoints to subscribe. Default: none.
        """
        super().__init__(scope, construct_id)
        self.subscriptions = subscriptions
        self.topic = sns.Topic(
            self, "Topic", topic_name=topic_name, display_name=display_name, master_key=encryption_key, enforce_ssl=True
        )
        stack = cdk.Stack.of(self)
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsOfThisAccountPublish",
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": stack.format_arn(
                            service="cloudwatch",
                            resource="alarm",
                            resource_name="*",
                            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                        )
                    },
                },
            )
        )
        self.subscribe(self.topic.topic_arn, "Alarm")

    def subscribe(self, topic_arn: str, id_prefix: str) -> list[sns.CfnSubscription]:
        """Subscribe the configured endpoints to ``topic_arn`` (an email endpoint must confirm once)."""
        return [
            sns.CfnSubscription(
                self,
                f"{id_prefix}Subscription{index}",
                topic_arn=topic_arn,
                protocol=subscription.protocol,
                endpoint=subscription.endpoint,
            )
            for index, subscription in enumerate(self.subscriptions, start=1)
        ]
