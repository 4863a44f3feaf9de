"""BrokerCache: on bare stacks (its own behaviour, from its properties), and as synthesized in every
environment of cdk.json."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Match
from bare_stack import BareApp
from constructs import Construct
from tier_testing import ENVIRONMENTS, tier_context

from broker_tier.config import CacheConfig, load_environments
from broker_tier.constructs.cache import BrokerCache

CONFIGS = load_environments(tier_context())
RG = "AWS::ElastiCache::ReplicationGroup"


# -- on a bare stack ------------------------------------------------------------------------------------------
BARE_CONFIGS = {
    "Snapshot": CacheConfig(),
    "Retain": CacheConfig(
        engine="valkey",
        engine_version="8.0",
        replicas=2,
        port=6390,
        deletion_policy="retain",
        parameters={"timeout": 300},
        log_retention_days=7,
    ),
    "Delete": CacheConfig(deletion_policy="delete"),
    # past the configuration model's guard (model_copy does not validate): the construct still refuses eviction
    "Evicting": CacheConfig().model_copy(update={"parameters": {"maxmemory-policy": "allkeys-lru"}}),
}
"""Stack name -> the configuration of its BrokerCache."""
BARE_SUBNETS = ["subnet-0a", "subnet-0b"]


def bare_cache(bare: BareApp, name: str, config: CacheConfig) -> BrokerCache:
    stack = bare.stack(name)
    vpc = ec2.Vpc.from_vpc_attributes(stack, "Vpc", vpc_id="vpc-0123456789", availability_zones=["za", "zb"])
    cache = BrokerCache(
        stack,
        "Cache",
        config=config,
        replication_group_id=f"team-{name.lower()}",
        name_prefix=f"team-{name.lower()}",
        auth_token_secret_name=f"team-{name.lower()}/auth-token",
        vpc=vpc,
        subnet_ids=BARE_SUBNETS,
        encryption_key=kms.Key(stack, "DataKey"),
        notification_topic=sns.Topic(stack, "Events"),
        removal_policy=cdk.RemovalPolicy.DESTROY,
        logs_key=kms.Key(stack, "LogsKey"),
    )
    consumer = Construct(stack, "Consumer")
    cache.allow_connections_from(
        ec2.SecurityGroup(consumer, "Group", vpc=vpc), scope=consumer, description="a consumer"
    )
    return cache


@pytest.fixture(scope="module")
def bare() -> BareApp:
    app = BareApp()
    app.built = {name: bare_cache(app, name, config) for name, config in BARE_CONFIGS.items()}
    return app.synthesize()


def logical_id(bare: BareApp, name: str, resource_type: str, prefix: str) -> str:
    (found,) = [i for i in bare.resources(name, resource_type) if i.startswith(prefix)]
    return found


@pytest.mark.parametrize("name", BARE_CONFIGS)
def test_bare_group_is_multi_az_encrypted_and_explicitly_named(bare, name):
    config = BARE_CONFIGS[name]
    props = bare.only(name, RG)[1]["Properties"]
    group_id = f"team-{name.lower()}"
    assert {key: value for key, value in props.items() if key not in ("LogDeliveryConfigurations", "AuthToken")} == {
        "ReplicationGroupId": group_id,
        "ReplicationGroupDescription": f"broker tier cache ({group_id})",
        "Engine": config.engine,
        "EngineVersion": config.engine_version,
        "CacheNodeType": config.node_type,
        "NumCacheClusters": config.replicas + 1,
        "MultiAZEnabled": True,
        "AutomaticFailoverEnabled": True,
        "CacheParameterGroupName": {"Ref": bare.only(name, "AWS::ElastiCache::ParameterGroup")[0]},
        "CacheSubnetGroupName": {"Ref": bare.only(name, "AWS::ElastiCache::SubnetGroup")[0]},
        "SecurityGroupIds": [
            {"Fn::GetAtt": [logical_id(bare, name, "AWS::EC2::SecurityGroup", "CacheSecurityGroup"), "GroupId"]}
        ],
        "Port": config.port,
        "AtRestEncryptionEnabled": True,
        "KmsKeyId": {"Fn::GetAtt": [logical_id(bare, name, "AWS::KMS::Key", "DataKey"), "Arn"]},
        "TransitEncryptionEnabled": True,
        "TransitEncryptionMode": "required",
        "SnapshotRetentionLimit": config.snapshot_retention_days,
        "SnapshotWindow": config.snapshot_window,
        "PreferredMaintenanceWindow": config.maintenance_window,
        "NotificationTopicArn": {"Ref": bare.only(name, "AWS::SNS::Topic")[0]},
        "AutoMinorVersionUpgrade": True,
    }  # nothing else: no create-only placement (PreferredCacheClusterAZs, ReplicasPerNodeGroup, snapshots)
    cache = bare.built[name]
    assert cache.replication_group_id == group_id and cache.port == config.port
    assert cache.member_cluster_ids == tuple(f"{group_id}-{n:03d}" for n in range(1, config.replicas + 2))


@pytest.mark.parametrize("name,policy", [("Snapshot", "Snapshot"), ("Retain", "Retain"), ("Delete", "Delete")])
def test_bare_group_deletion_and_replace_policy_follow_the_configuration(bare, name, policy):
    group = bare.only(name, RG)[1]
    assert (group["DeletionPolicy"], group["UpdateReplacePolicy"]) == (policy, policy)


@pytest.mark.parametrize("name", BARE_CONFIGS)
def test_bare_parameter_group_refuses_eviction_in_the_engines_family(bare, name):
    config = BARE_CONFIGS[name]
    props = bare.only(name, "AWS::ElastiCache::ParameterGroup")[1]["Properties"]
    assert props["CacheParameterGroupFamily"] == config.family
    assert props["Properties"] == {
        **{key: str(value) for key, value in config.parameters.items()},
        "maxmemory-policy": "noeviction",
    }
    assert props["Properties"]["maxmemory-policy"] == "noeviction"  # "Evicting" asked for allkeys-lru


def test_bare_auth_token_is_a_generated_secret_resolved_by_reference(bare):
    props = bare.only("Snapshot", RG)[1]["Properties"]
    secret_id, secret = bare.only("Snapshot", "AWS::SecretsManager::Secret")
    assert props["AuthToken"] == {
        "Fn::Join": ["", ["{{resolve:secretsmanager:", {"Ref": secret_id}, ":SecretString:::}}"]]
    }
    assert secret["Properties"] == {
        "Name": "team-snapshot/auth-token",
        "Description": "AUTH token of team-snapshot",
        "KmsKeyId": {"Fn::GetAtt": [logical_id(bare, "Snapshot", "AWS::KMS::Key", "DataKey"), "Arn"]},
        "GenerateSecretString": {"ExcludePunctuation": True, "IncludeSpace": False, "PasswordLength": 64},
    }
    assert secret["DeletionPolicy"] == "Delete"  # the removal policy given, not the group's


@pytest.mark.parametrize("name", ["Snapshot", "Retain"])
def test_bare_logs_go_to_named_log_groups_encrypted_with_the_logs_key(bare, name):
    config = BARE_CONFIGS[name]
    groups = bare.resources(name, "AWS::Logs::LogGroup")
    by_name = {group["Properties"]["LogGroupName"]: (i, group["Properties"]) for i, group in groups.items()}
    assert set(by_name) == {f"/team-{name.lower()}/redis/slow-log", f"/team-{name.lower()}/redis/engine-log"}
    logs_key = {"Fn::GetAtt": [logical_id(bare, name, "AWS::KMS::Key", "LogsKey"), "Arn"]}
    for _, props in by_name.values():
        assert props["KmsKeyId"] == logs_key and props["RetentionInDays"] == config.log_retention_days
    deliveries = bare.only(name, RG)[1]["Properties"]["LogDeliveryConfigurations"]
    assert sorted(
        (d["LogType"], d["DestinationDetails"]["CloudWatchLogsDetails"]["LogGroup"]["Ref"], d["LogFormat"])
        for d in deliveries
    ) == sorted((log_type.split("/")[-1], i, "json") for log_type, (i, _) in by_name.items())


def test_bare_subnet_group_is_named_and_takes_the_given_subnets(bare):
    props = bare.only("Snapshot", "AWS::ElastiCache::SubnetGroup")[1]["Properties"]
    assert (props["CacheSubnetGroupName"], props["SubnetIds"]) == ("team-snapshot", BARE_SUBNETS)


def test_bare_security_group_admits_only_the_granted_peer_on_the_port_and_sends_nothing(bare):
    resources = bare.templates["Retain"]["Resources"]
    cache_group = logical_id(bare, "Retain", "AWS::EC2::SecurityGroup", "CacheSecurityGroup")
    props = resources[cache_group]["Properties"]
    assert "SecurityGroupIngress" not in props
    # allow_all_outbound=False renders CDK's placeholder rule that matches no traffic
    assert [rule["CidrIp"] for rule in props["SecurityGroupEgress"]] == ["255.255.255.255/32"]
    ((rule_id, rule),) = bare.resources("Retain", "AWS::EC2::SecurityGroupIngress").items()
    assert rule_id.startswith("ConsumerRedisIngress")  # in the consumer's scope, not the cache's
    assert rule["Properties"] == {
        "GroupId": {"Fn::GetAtt": [cache_group, "GroupId"]},
        "SourceSecurityGroupId": {
            "Fn::GetAtt": [logical_id(bare, "Retain", "AWS::EC2::SecurityGroup", "ConsumerGroup"), "GroupId"]
        },
        "IpProtocol": "tcp",
        "FromPort": 6390,
        "ToPort": 6390,
        "Description": "a consumer",
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_replication_group_is_multi_az_encrypted_and_named(synthesized, env):
    cache = CONFIGS[env].cache
    synthesized.template(env, "State").has_resource_properties(
        RG,
        {
            "ReplicationGroupId": f"broker-tier-{env}",
            "Engine": cache.engine,
            "EngineVersion": cache.engine_version,
            "CacheNodeType": cache.node_type,
            "NumCacheClusters": cache.replicas + 1,
            "MultiAZEnabled": True,
            "AutomaticFailoverEnabled": True,
            "Port": cache.port,
            "AtRestEncryptionEnabled": True,
            "KmsKeyId": {"Fn::GetAtt": [Match.string_like_regexp("^Key"), "Arn"]},
            "TransitEncryptionEnabled": True,
            "TransitEncryptionMode": "required",
            "SnapshotRetentionLimit": cache.snapshot_retention_days,
            "SnapshotWindow": cache.snapshot_window,
            "PreferredMaintenanceWindow": cache.maintenance_window,
            "NotificationTopicArn": {"Ref": Match.string_like_regexp("^EventsTopic")},
            "CacheSubnetGroupName": {"Ref": Match.string_like_regexp("^CacheSubnetGroup")},
            "CacheParameterGroupName": {"Ref": Match.string_like_regexp("^CacheParameterGroup")},
        },
    )
    assert cache.port != 6379


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_create_only_placement_properties_are_left_to_elasticache(synthesized, env):
    """Setting these would make any later change to them replace the cluster."""
    props = synthesized.only(env, "State", RG)["Properties"]
    for create_only in ("PreferredCacheClusterAZs", "ReplicasPerNodeGroup", "SnapshotArns", "SnapshotName"):
        assert create_only not in props


@pytest.mark.parametrize("env,policy", [("dev", "Delete"), ("staging", "Snapshot"), ("prod", "Snapshot")])
def test_deletion_policy_follows_configuration(synthesized, env, policy):
    resource = synthesized.only(env, "State", RG)
    assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == (policy, policy)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_auth_token_is_a_secrets_manager_reference_never_plain_text(synthesized, env):
    template = synthesized.json(env, "State")
    auth_token = synthesized.only(env, "State", RG)["Properties"]["AuthToken"]
    parts = auth_token["Fn::Join"][1]
    assert parts[0] == "{{resolve:secretsmanager:"
    assert parts[1] == {"Ref": next(iter(synthesized.resources(env, "State", "AWS::SecretsManager::Secret")))}
    assert parts[2] == ":SecretString:::}}"
    secret = synthesized.only(env, "State", "AWS::SecretsManager::Secret")["Properties"]
    assert secret["Name"] == f"broker-tier-{env}/redis-auth-token"
    assert secret["GenerateSecretString"] == {"ExcludePunctuation": True, "IncludeSpace": False, "PasswordLength": 64}
    assert "KmsKeyId" in secret
    assert "SecretString" not in secret
    assert "resolve:secretsmanager" not in json.dumps(template.get("Outputs", {}))


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_parameter_group_refuses_eviction_in_the_matching_family(synthesized, env):
    group = synthesized.only(env, "State", "AWS::ElastiCache::ParameterGroup")["Properties"]
    assert group["CacheParameterGroupFamily"] == CONFIGS[env].cache.family
    assert group["Properties"]["maxmemory-policy"] == "noeviction"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_subnet_group_is_named_and_spans_every_private_subnet(synthesized, env):
    group = synthesized.only(env, "State", "AWS::ElastiCache::SubnetGroup")["Properties"]
    assert group["CacheSubnetGroupName"] == f"broker-tier-{env}"
    assert len(group["SubnetIds"]) == CONFIGS[env].network.max_azs


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_security_group_has_no_cidr_ingress_and_no_egress(synthesized, env):
    groups = synthesized.resources(env, "State", "AWS::EC2::SecurityGroup")
    cache_group = next(g for i, g in groups.items() if i.startswith("CacheSecurityGroup"))["Properties"]
    assert "SecurityGroupIngress" not in cache_group
    # allow_all_outbound=False renders CDK's placeholder rule that matches no traffic
    assert [rule["CidrIp"] for rule in cache_group["SecurityGroupEgress"]] == ["255.255.255.255/32"]
    for ingress in synthesized.resources(env, "State", "AWS::EC2::SecurityGroupIngress").values():
        assert "CidrIp" not in ingress["Properties"] and "CidrIpv6" not in ingress["Properties"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_slow_and_engine_logs_go_to_named_log_groups_with_retention(synthesized, env):
    template = synthesized.template(env, "State")
    for log_type in ("slow-log", "engine-log"):
        template.has_resource_properties(
            "AWS::Logs::LogGroup",
            {
                "LogGroupName": f"/broker-tier-{env}/redis/{log_type}",
                "RetentionInDays": CONFIGS[env].cache.log_retention_days,
            },
        )
    deliveries = synthesized.only(env, "State", RG)["Properties"]["LogDeliveryConfigurations"]
    assert sorted(d["LogType"] for d in deliveries) == ["engine-log", "slow-log"]
    assert {d["DestinationType"] for d in deliveries} == {"cloudwatch-logs"}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_events_topic_lets_elasticache_publish_with_source_owner(synthesized, env):
    template = synthesized.template(env, "State")
    template.has_resource_properties(
        "AWS::SNS::Topic", {"TopicName": f"broker-tier-{env}-cache-events", "KmsMasterKeyId": Match.absent()}
    )
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}),
                        Match.object_like(
                            {
                                "Sid": "ElastiCacheEvents",
                                "Action": "sns:Publish",
                                "Effect": "Allow",
                                "Condition": {"StringEquals": {"AWS:SourceOwner": {"Ref": "AWS::AccountId"}}},
                            }
                        ),
                    ]
                )
            }
        },
    )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_key_rotates(synthesized, env):
    keys = synthesized.resources(env, "State", "AWS::KMS::Key")
    assert len(keys) == 2  # the data key (cache, queues, secret, topic) and the logs key
    assert all(key["Properties"]["EnableKeyRotation"] is True for key in keys.values())
