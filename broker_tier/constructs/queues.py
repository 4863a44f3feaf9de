"""One latency class's SQS queue and its dead-letter queue."""

from __future__ import annotations

import functools

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from broker_tier.config import QueueClassConfig
from broker_tier_contract import SQS_MAX_MESSAGE_BYTES


class LatencyClassQueues(Construct):
    """The work queue of one latency class and its dead-letter queue: explicit names (a replacement fails rather
    than drop messages), SSE-KMS, TLS only. The DLQ takes redrive from its own queue only (``byQueue``), by an
    ARN built from the name, since the two queues' policies name each other.

    Attributes:
        class_name: the latency class.
        queue: the work queue.
        dead_letter_queue: its dead-letter queue.
        queue_name / dead_letter_queue_name: their physical names (plain strings, known at synth).
        config: the class's validated limits (time limit, ETA, visibility timeout, ...).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        class_name: str,
        config: QueueClassConfig,
        queue_name: str,
        dead_letter_queue_name: str,
        encryption_key: kms.IKey,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        """
        :param class_name: the latency class.
        :param config: the class's limits, validated by the configuration model.
        :param queue_name: physical name of the work queue.
        :param dead_letter_queue_name: physical name of its dead-letter queue.
        :param encryption_key: KMS key for server-side encryption.
        :param removal_policy: what stack deletion does to both queues.
        """
        super().__init__(scope, construct_id)
        self.class_name = class_name
        self.config = config
        self.queue_name, self.dead_letter_queue_name = queue_name, dead_letter_queue_name
        encrypted_queue = functools.partial(
            sqs.Queue,
            self,
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=encryption_key,
            enforce_ssl=True,
            removal_policy=removal_policy,
            # explicit, so the settings package's size check holds on a queue created before SQS's 2025 default
            max_message_size_bytes=SQS_MAX_MESSAGE_BYTES,
        )
        self.dead_letter_queue = encrypted_queue(
            "DeadLetterQueue",
            queue_name=self.dead_letter_queue_name,
            retention_period=cdk.Duration.seconds(config.dead_letter_retention_seconds),
            redrive_allow_policy=sqs.RedriveAllowPolicy(
                redrive_permission=sqs.RedrivePermission.BY_QUEUE,
                source_queues=[
                    sqs.Queue.from_queue_arn(
                        self, "SourceQueueRef", cdk.Stack.of(self).format_arn(service="sqs", resource=queue_name)
                    )
                ],
            ),
        )
        self.queue = encrypted_queue(
            "Queue",
            queue_name=queue_name,
            visibility_timeout=cdk.Duration.seconds(config.visibility_timeout_seconds),
            retention_period=cdk.Duration.seconds(config.retention_seconds),
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=config.max_receive_count, queue=self.dead_letter_queue
            ),
        )
