"""BrokerCache, as synthesized in every environment of cdk.json."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match
from tier_testing import ENVIRONMENTS, tier_context

from broker_tier.config import load_environments

CONFIGS = load_environments(tier_context())
RG = "AWS::ElastiCache::ReplicationGroup"


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
