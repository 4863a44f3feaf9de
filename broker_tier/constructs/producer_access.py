"""What an application outside the tier needs to publish tasks to it: managed policies and a security group."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from broker_tier.constructs.cache import BrokerCache
from broker_tier.constructs.claim_check_bucket import ClaimCheckBucket

PRODUCER_QUEUE_ACTIONS = ("sqs:SendMessage", "sqs:GetQueueAttributes")
"""What kombu's SQS transport calls to publish with predefined queues: Celery declares the queue on the first
publish, which reads its ApproximateNumberOfMessages; then SendMessage. (No GetQueueUrl: the URLs are given.)"""


class ProducerAccess(Construct):
    """Two customer-managed policies and a security group for a producer, split as the tier's services are (the
    task role sends, the execution role reads the AUTH token ECS injects). A producer needs the token in either
    broker mode: its result backend is Redis (docs/decisions/producers-read-the-auth-token.md).

    Attributes:
        policy: sends to the work queues (and with the claim check on, puts payloads too big for SQS in its bucket).
        auth_token_policy: reads the AUTH token.
        security_group: the group a producer in the tier's VPC adds to its tasks (beside its own).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name_prefix: str,
        work_queues: list[sqs.IQueue],
        encryption_key: kms.IKey,
        auth_token_secret: secretsmanager.ISecret,
        cache: BrokerCache,
        vpc: ec2.IVpc,
        payload_bucket: ClaimCheckBucket | None = None,
    ) -> None:
        """
        :param name_prefix: the policies are ``<prefix>-producer`` and ``<prefix>-producer-auth-token``.
        :param work_queues: the queues a producer may send to (one per latency class).
        :param encryption_key: the KMS key of the queues and of the AUTH-token secret.
        :param auth_token_secret: the secret holding the cache's AUTH token.
        :param cache: the cache whose security group admits the producers' group.
        :param vpc: the VPC of the producers' security group (the tier's).
        :param payload_bucket: with the claim check on, the bucket the policy may put payloads in (under each
            class's prefix, through the key only via S3). Default: None (claim check off: no S3 access).
        """
        super().__init__(scope, construct_id)
        region = cdk.Stack.of(self).region
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            managed_policy_name=f"{name_prefix}-producer",
            description="broker-tier producer: send tasks to the work queues",
            statements=[
                iam.PolicyStatement(
                    sid="SendToWorkQueues",
                    actions=list(PRODUCER_QUEUE_ACTIONS),
                    resources=[queue.queue_arn for queue in work_queues],
                ),
                iam.PolicyStatement(
                    sid="QueueEncryptionThroughSqs",  # a producer needs both (SQS Developer Guide, key management)
                    actions=["kms:GenerateDataKey", "kms:Decrypt"],
                    resources=[encryption_key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": f"sqs.{region}.amazonaws.com"}},
                ),
            ],
        )
        if payload_bucket is not None:
            self.policy.add_statements(*payload_bucket.writer_statements())
            payload_bucket.acknowledge_payload_keys(self.policy)
        self.auth_token_policy = iam.ManagedPolicy(
            self,
            "AuthTokenPolicy",
            managed_policy_name=f"{name_prefix}-producer-auth-token",
            description="broker-tier producer: read the cache's AUTH token",
            statements=[
                iam.PolicyStatement(
                    sid="ReadAuthToken",
                    actions=["secretsmanager:GetSecretValue"],
                    resources=[auth_token_secret.secret_arn],
                ),
                iam.PolicyStatement(
                    sid="DecryptAuthTokenThroughSecretsManager",
                    actions=["kms:Decrypt"],
                    resources=[encryption_key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}},
                ),
            ],
        )
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            allow_all_outbound=False,
            description="broker-tier producers: join it to reach the cache (TLS and AUTH still apply)",
        )
        self.security_group.add_egress_rule(
            ec2.Peer.security_group_id(cache.security_group.security_group_id),
            ec2.Port.tcp(cache.port),
            "the cache's port",
        )
        cache.allow_connections_from(self.security_group, scope=self, description="producers outside the tier")
