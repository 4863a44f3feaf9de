"""The ElastiCache replication group that holds results (and, in redis broker mode, the broker)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticache as elasticache
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from constructs import Construct

from broker_tier.alarm_catalog import member_cluster_ids
from broker_tier.config import CacheConfig, DatabaseLayout
from broker_tier.constructs.log_group import tier_log_group
from broker_tier.nag import acknowledge

# The parameter the whole tier depends on: a full Redis refuses writes instead of evicting tasks.
MAXMEMORY_POLICY = "noeviction"

_DELETION_POLICY = {
    "snapshot": cdk.CfnDeletionPolicy.SNAPSHOT,
    "retain": cdk.CfnDeletionPolicy.RETAIN,
    "delete": cdk.CfnDeletionPolicy.DELETE,
}


class BrokerCache(Construct):
    """A Multi-AZ replication group (cluster mode disabled): failover on, TLS required, encrypted at rest, the AUTH
    token only as a dynamic reference. Explicit names, so that CloudFormation refuses a replacement instead of
    creating an empty cluster.

    Attributes:
        replication_group: the L1 replication group.
        replication_group_id: its id (explicit, stable).
        member_cluster_ids: its nodes' cluster ids (``<id>-001`` ...), where ElastiCache publishes metrics.
        security_group: the cluster's security group; ingress only via ``allow_connections_from``.
        auth_token_secret: the secret holding the AUTH token (a plain string).
        primary_endpoint_address / reader_endpoint_address / port: where clients connect (TLS).
        databases: the logical database layout.
        parameter_group: the custom parameter group (``maxmemory-policy noeviction``).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: CacheConfig,
        replication_group_id: str,
        name_prefix: str,
        auth_token_secret_name: str,
        vpc: ec2.IVpc,
        subnet_ids: list[str],
        encryption_key: kms.IKey,
        notification_topic: sns.ITopic,
        removal_policy: cdk.RemovalPolicy,
        logs_key: kms.IKey,
    ) -> None:
        """
        :param config: the environment's cache configuration (engine, node type, windows, ...).
        :param replication_group_id: explicit replication group id.
        :param name_prefix: prefix of the subnet group and log group names.
        :param auth_token_secret_name: name of the AUTH-token secret.
        :param vpc: the VPC of the cluster's security group.
        :param subnet_ids: where the nodes go (private subnets in two or more AZs: Multi-AZ).
        :param encryption_key: KMS key for encryption at rest and of the AUTH-token secret.
        :param notification_topic: receives ElastiCache events (failovers among them).
        :param removal_policy: applied to the secret and log groups (the cluster follows
            ``config.deletion_policy``).
        :param logs_key: encrypts the slow-log and engine-log groups.
        """
        super().__init__(scope, construct_id)
        self.replication_group_id = replication_group_id
        self.member_cluster_ids = member_cluster_ids(replication_group_id, config.replicas)
        self.port = config.port
        self.databases: DatabaseLayout = config.databases

        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            allow_all_outbound=False,
            description=f"{replication_group_id}: Redis ingress only from the tier services",
        )

        subnet_group = elasticache.CfnSubnetGroup(
            self,
            "SubnetGroup",
            cache_subnet_group_name=name_prefix,
            description=f"{replication_group_id} private subnets",
            subnet_ids=subnet_ids,
        )

        self.parameter_group = elasticache.CfnParameterGroup(
            self,
            "ParameterGroup",
            cache_parameter_group_family=config.family,
            description=f"{replication_group_id}: maxmemory-policy {MAXMEMORY_POLICY}",
            properties={
                **{name: str(value) for name, value in config.parameters.items()},
                "maxmemory-policy": MAXMEMORY_POLICY,
            },
        )

        self.auth_token_secret = secretsmanager.Secret(
            self,
            "AuthToken",
            secret_name=auth_token_secret_name,
            description=f"AUTH token of {replication_group_id}",
            encryption_key=encryption_key,
            removal_policy=removal_policy,
            # ElastiCache: 16-128 printable characters without / " @; letters and digits only.
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=64, exclude_punctuation=True, include_space=False
            ),
        )
        acknowledge(
            self.auth_token_secret,
            "SMG4",
            "An ElastiCache AUTH token is rotated with ModifyReplicationGroup "
            "(AuthTokenUpdateStrategy ROTATE, then SET); runbooks/auth-token-rotation.md is the "
            "procedure. A Secrets Manager rotation Lambda would change the secret without the cluster.",
        )

        log_groups = {
            log_type: tier_log_group(
                self,
                f"{name.title()}Log",
                log_group_name=f"/{name_prefix}/redis/{log_type}",
                retention_days=config.log_retention_days,
                removal_policy=removal_policy,
                encryption_key=logs_key,
            )
            for name, log_type in (("slow", "slow-log"), ("engine", "engine-log"))
        }

        self.replication_group = elasticache.CfnReplicationGroup(
            self,
            "ReplicationGroup",
            replication_group_id=replication_group_id,
            replication_group_description=f"broker tier cache ({replication_group_id})",
            engine=config.engine,
            engine_version=config.engine_version,
            cache_node_type=config.node_type,
            num_cache_clusters=config.replicas + 1,
            multi_az_enabled=True,
            automatic_failover_enabled=True,
            cache_parameter_group_name=self.parameter_group.ref,
            cache_subnet_group_name=subnet_group.ref,
            security_group_ids=[self.security_group.security_group_id],
            port=config.port,
            at_rest_encryption_enabled=True,
            kms_key_id=encryption_key.key_arn,
            transit_encryption_enabled=True,
            transit_encryption_mode="required",
            auth_token=self.auth_token_secret.secret_value.unsafe_unwrap(),  # a {{resolve:...}} reference
            snapshot_retention_limit=config.snapshot_retention_days,
            snapshot_window=config.snapshot_window,
            preferred_maintenance_window=config.maintenance_window,
            notification_topic_arn=notification_topic.topic_arn,
            auto_minor_version_upgrade=True,
            log_delivery_configurations=[
                elasticache.CfnReplicationGroup.LogDeliveryConfigurationRequestProperty(
                    destination_type="cloudwatch-logs",
                    log_format="json",
                    log_type=log_type,
                    destination_details=elasticache.CfnReplicationGroup.DestinationDetailsProperty(
                        cloud_watch_logs_details=elasticache.CfnReplicationGroup.CloudWatchLogsDestinationDetailsProperty(
                            log_group=log_group.log_group_name
                        )
                    ),
                )
                for log_type, log_group in log_groups.items()
            ],
        )
        self.replication_group.cfn_options.deletion_policy = _DELETION_POLICY[config.deletion_policy]
        self.replication_group.cfn_options.update_replace_policy = _DELETION_POLICY[config.deletion_policy]

        self.primary_endpoint_address = self.replication_group.attr_primary_end_point_address
        self.reader_endpoint_address = self.replication_group.attr_reader_end_point_address

    def allow_connections_from(
        self, peer: ec2.ISecurityGroup, *, scope: Construct, description: str
    ) -> ec2.CfnSecurityGroupIngress:
        """Grant ``peer`` (a service's security group) TCP access to the Redis port; never a CIDR.

        The rule is created in ``scope``, the consumer's construct, so the stateful stack never
        depends on the stacks that use it (and can be deployed, or kept, on its own).
        """
        return ec2.CfnSecurityGroupIngress(
            scope,
            "RedisIngress",
            group_id=self.security_group.security_group_id,
            source_security_group_id=peer.security_group_id,
            ip_protocol="tcp",
            from_port=self.port,
            to_port=self.port,
            description=description,
        )
