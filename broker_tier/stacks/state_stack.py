"""The stateful half of the tier: network, encryption key, cache, queues and the claim check's payload bucket."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

import broker_tier_contract as contract
from broker_tier.config import EnvironmentConfig, payload_expiration_days
from broker_tier.constructs.cache import BrokerCache
from broker_tier.constructs.claim_check_bucket import ClaimCheckBucket
from broker_tier.constructs.log_group import logs_encryption_key
from broker_tier.constructs.network import BrokerNetwork
from broker_tier.constructs.producer_access import ProducerAccess
from broker_tier.constructs.queues import LatencyClassQueues
from broker_tier.nag import acknowledge
from broker_tier.stacks.base import TierStack

REMOVAL = {"retain": cdk.RemovalPolicy.RETAIN, "destroy": cdk.RemovalPolicy.DESTROY}


class BrokerStateStack(TierStack):
    """Network, KMS key, ElastiCache replication group, per-class queues, the events topic and the claim check's
    payload bucket (always there, empty while ``claim_check.enabled`` is off).

    Outputs (stable names, for tools outside the app): ``ReplicationGroupId``,
    ``PrimaryEndpointAddress``, ``ReaderEndpointAddress``, ``RedisPort``, ``AuthTokenSecretArn``,
    ``EventsTopicArn``, ``RedisDatabases``, per class ``Queue<Class>{Name,Url,Arn}`` and
    ``DeadLetterQueue<Class>{Name,Url,Arn}``, and for producers ``ProducerPolicyArn``,
    ``ProducerAuthTokenPolicyArn``, ``ProducerSecurityGroupId`` and ``ProducerSubnetIds``, and
    ``ClaimCheckBucketName``.

    Attributes:
        network, encryption_key, events_topic, cache, producers, claim_check: the constructs.
        logs_key: encrypts every log group of the environment (CloudWatch Logs only).
        queues: the latency classes' queues by class name.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, **kwargs) -> None:
        super().__init__(
            scope,
            construct_id,
            config=config,
            description=f"broker-tier {config.name}: network, cache and queues (stateful)",
            **kwargs,
        )
        removal = REMOVAL[config.removal_policy]
        prefix = config.resource_prefix

        # A key of its own: its policy lets CloudWatch Logs use it, and nothing else is encrypted with it.
        self.logs_key = logs_encryption_key(
            self,
            "LogsKey",
            alias=f"alias/{prefix}-logs",
            removal_policy=removal,
            description=f"broker-tier {config.name}: log groups (CloudWatch Logs)",
        )
        self.network = BrokerNetwork(
            self, "Network", config=config.network, removal_policy=removal, logs_key=self.logs_key
        )

        self.encryption_key = kms.Key(
            self,
            "Key",
            alias=f"alias/{prefix}",
            enable_key_rotation=True,
            removal_policy=removal,
            description=f"broker-tier {config.name}: cache at rest, queues, AUTH-token secret, alarm topic, payloads",
        )
        # CloudWatch alarms publish to the encrypted alarm topic: the statement the SNS guide documents; which alarms
        # may is restricted on the topic policy (docs/decisions/alarm-topic-admits-cloudwatch.md).
        self.encryption_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsToEncryptedTopic",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )  # "*" in a key policy: this key

        self.events_topic = sns.Topic(
            self,
            "EventsTopic",
            topic_name=f"{prefix}-cache-events",
            enforce_ssl=True,
            display_name=f"broker-tier {config.name} ElastiCache events",
        )
        # ElastiCache's required statement ("Managing ElastiCache Amazon SNS notifications"): aws:SourceOwner, since
        # with aws:SourceAccount, which it does not support, ElastiCache marks the topic inactive.
        self.events_topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="ElastiCacheEvents",
                actions=["sns:Publish"],
                resources=[self.events_topic.topic_arn],
                principals=[iam.AnyPrincipal()],
                conditions={"StringEquals": {"AWS:SourceOwner": cdk.Aws.ACCOUNT_ID}},
            )
        )
        acknowledge(
            self.events_topic,
            "SNS2",
            "ElastiCache cannot publish to an encrypted topic (its Event Notifications docs); the "
            "topic carries event metadata only (node ids, failover notices), no task data.",
        )

        self.cache = BrokerCache(
            self,
            "Cache",
            config=config.cache,
            replication_group_id=config.replication_group_id,
            name_prefix=prefix,
            auth_token_secret_name=contract.auth_token_secret_name(config.name),
            vpc=self.network.vpc,
            subnet_ids=self.network.private_subnet_ids,
            encryption_key=self.encryption_key,
            notification_topic=self.events_topic,
            removal_policy=removal,
            logs_key=self.logs_key,
        )

        if config.fault_injection.az_power.enabled:
            # AWS FIS's ElastiCache AZ power action selects replication groups by tag only (the
            # experiments are in the Monitoring stack). Tags update in place.
            cdk.Tags.of(self.cache.replication_group).add(
                contract.FAULT_INJECTION_TARGET_TAG, config.replication_group_id
            )

        self.queues = {
            name: LatencyClassQueues(
                self,
                f"Queues-{name}",
                class_name=name,
                config=class_config,
                queue_name=contract.queue_name(config.name, name),
                dead_letter_queue_name=contract.dead_letter_queue_name(config.name, name),
                encryption_key=self.encryption_key,
                removal_policy=removal,
            )
            for name, class_config in config.queues.items()
        }
        self.claim_check = ClaimCheckBucket(
            self,
            "ClaimCheck",
            # pseudo parameters, pinned or not: pinning an environment must change no create-only property
            bucket_name=contract.claim_check_bucket_name(config.name, cdk.Aws.ACCOUNT_ID, cdk.Aws.REGION),
            classes=list(config.queues),
            encryption_key=self.encryption_key,
            expiration_days=payload_expiration_days(config.queues.values()),
            removal_policy=removal,
        )
        self.producers = ProducerAccess(
            self,
            "Producers",
            name_prefix=prefix,
            work_queues=[queues.queue for queues in self.queues.values()],
            encryption_key=self.encryption_key,
            auth_token_secret=self.cache.auth_token_secret,
            cache=self.cache,
            vpc=self.network.vpc,
            payload_bucket=self.claim_check if config.claim_check.enabled else None,
        )
        self._add_outputs()

    def _add_outputs(self) -> None:
        cache, ids = self.cache, contract.StateOutputs
        outputs = {
            ids.REPLICATION_GROUP_ID: cache.replication_group_id,
            ids.PRIMARY_ENDPOINT_ADDRESS: cache.primary_endpoint_address,
            ids.READER_ENDPOINT_ADDRESS: cache.reader_endpoint_address,
            ids.REDIS_PORT: str(cache.port),
            ids.AUTH_TOKEN_SECRET_ARN: cache.auth_token_secret.secret_arn,
            ids.EVENTS_TOPIC_ARN: self.events_topic.topic_arn,
            ids.REDIS_DATABASES: contract.format_databases(cache.databases.model_dump()),
        }
        for name, queues in self.queues.items():
            kinds: tuple[tuple[contract.QueueKind, sqs.Queue], ...] = (
                ("Queue", queues.queue),
                ("DeadLetterQueue", queues.dead_letter_queue),
            )
            for kind, queue in kinds:
                outputs[contract.queue_output_id(kind, name, "Name")] = queue.queue_name
                outputs[contract.queue_output_id(kind, name, "Url")] = queue.queue_url
                outputs[contract.queue_output_id(kind, name, "Arn")] = queue.queue_arn
        producer = contract.ProducerOutputs
        outputs[producer.POLICY_ARN] = self.producers.policy.managed_policy_arn
        outputs[producer.AUTH_TOKEN_POLICY_ARN] = self.producers.auth_token_policy.managed_policy_arn
        outputs[producer.SECURITY_GROUP_ID] = self.producers.security_group.security_group_id
        outputs[producer.SUBNET_IDS] = cdk.Fn.join(",", self.network.private_subnet_ids)
        outputs[ids.CLAIM_CHECK_BUCKET_NAME] = self.claim_check.bucket_name
        for name, value in outputs.items():
            cdk.CfnOutput(self, name, value=value)
