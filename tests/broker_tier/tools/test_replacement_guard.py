"""The replacement guard on synthetic before/after templates, and on the project's own templates."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from broker_tier.tools.replacement_guard import STATEFUL_TYPES, check, compare, create_only_properties, stateful_resources
from tier_testing import ROOT

RG = {"Type": "AWS::ElastiCache::ReplicationGroup", "DeletionPolicy": "Snapshot", "UpdateReplacePolicy": "Snapshot",
      "Properties": {"ReplicationGroupId": "broker-tier-dev", "Port": 6380, "CacheNodeType": "cache.m7g.large",
                     "AtRestEncryptionEnabled": True, "CacheSubnetGroupName": {"Ref": "CacheSubnetGroup"},
                     "KmsKeyId": {"Fn::GetAtt": ["Key", "Arn"]}, "CacheParameterGroupName": {"Ref": "Params"},
                     "NumCacheClusters": 2}}
BEFORE = {"Resources": {
    "Cache": RG,
    "CacheSubnetGroup": {"Type": "AWS::ElastiCache::SubnetGroup",
                         "Properties": {"CacheSubnetGroupName": "broker-tier-dev", "SubnetIds": ["a", "b"]}},
    "Queue": {"Type": "AWS::SQS::Queue", "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain",
              "Properties": {"QueueName": "broker-tier-dev-batch", "VisibilityTimeout": 3900}},
    "Secret": {"Type": "AWS::SecretsManager::Secret", "Properties": {"Name": "broker-tier-dev/redis-auth-token"}},
    "Key": {"Type": "AWS::KMS::Key", "DeletionPolicy": "Retain", "Properties": {"EnableKeyRotation": True}},
    "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "/x/slow-log", "RetentionInDays": 30}},
    "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.64.0.0/16"}},
    "Alarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": {"Threshold": 80}},
}}


def changed(path: tuple, value) -> list:
    after = copy.deepcopy(BEFORE)
    target = after["Resources"]
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return compare("dev", "BrokerTier-dev-State", stateful_resources(BEFORE), stateful_resources(after))


REPLACING = {
    "redis port": (("Cache", "Properties", "Port"), 6381, "create-only property Port", "every key is lost"),
    "at-rest encryption": (("Cache", "Properties", "AtRestEncryptionEnabled"), False,
                           "create-only property AtRestEncryptionEnabled", "every key is lost"),
    "subnet group of the cluster": (("Cache", "Properties", "CacheSubnetGroupName"), {"Ref": "Other"},
                                    "create-only property CacheSubnetGroupName", "every key is lost"),
    "kms key of the cluster": (("Cache", "Properties", "KmsKeyId"), "arn:other", "KmsKeyId", "every key is lost"),
    "subnet group name": (("CacheSubnetGroup", "Properties", "CacheSubnetGroupName"), "other",
                          "create-only property CacheSubnetGroupName", "and with it the replication group"),
    "queue fifo": (("Queue", "Properties", "FifoQueue"), True, "create-only property FifoQueue",
                   "every message in it is lost"),
    "queue name": (("Queue", "Properties", "QueueName"), "renamed", "QueueName", "every message in it is lost"),
    "secret name": (("Secret", "Properties", "Name"), "renamed", "create-only property Name", "AUTH token changes"),
    "log group name": (("Logs", "Properties", "LogGroupName"), "/y", "LogGroupName", "log history is lost"),
    "vpc cidr": (("Vpc", "Properties", "CidrBlock"), "10.70.0.0/16", "CidrBlock", "replaces the VPC"),
    "cluster deletion policy": (("Cache", "DeletionPolicy"), "Delete", "DeletionPolicy weakened", "every key"),
    "queue replace policy": (("Queue", "UpdateReplacePolicy"), KeyError, "UpdateReplacePolicy weakened", "message"),
    "key deletion policy": (("Key", "DeletionPolicy"), "Delete", "DeletionPolicy weakened", "KMS key"),
}


@pytest.mark.parametrize("path,value,what,consequence", REPLACING.values(), ids=REPLACING.keys())
def test_replacing_or_weakening_change_is_detected_with_its_consequence(path, value, what, consequence):
    findings = changed(path, value)
    assert len(findings) == 1
    message = str(findings[0])
    for fragment in ("environment 'dev'", "stack BrokerTier-dev-State", f"resource {path[0]}", what, consequence):
        assert fragment in message, f"{fragment!r} missing from {message}"


HARMLESS = {
    "node type": (("Cache", "Properties", "CacheNodeType"), "cache.r7g.xlarge"),
    "replica count": (("Cache", "Properties", "NumCacheClusters"), 3),
    "parameter group": (("Cache", "Properties", "CacheParameterGroupName"), {"Ref": "Params2"}),
    "visibility timeout": (("Queue", "Properties", "VisibilityTimeout"), 4000),
    "log retention": (("Logs", "Properties", "RetentionInDays"), 90),
    "subnets of the subnet group": (("CacheSubnetGroup", "Properties", "SubnetIds"), ["a", "b", "c"]),
    "alarm threshold": (("Alarm", "Properties", "Threshold"), 90),
    "stronger policy": (("Logs", "DeletionPolicy"), "Retain"),
}


@pytest.mark.parametrize("path,value", HARMLESS.values(), ids=HARMLESS.keys())
def test_harmless_change_passes(path, value):
    assert changed(path, value) == []


@pytest.mark.parametrize("logical_id", ["Cache", "Queue", "Secret", "Key", "Logs"])
def test_removed_or_renamed_resource_is_detected(logical_id):
    findings = changed((logical_id,), KeyError)
    assert len(findings) == 1 and "resource removed or its logical id changed" in str(findings[0])


def test_create_only_properties_come_from_the_cfn_lint_schemas():
    assert {"Port", "AtRestEncryptionEnabled", "CacheSubnetGroupName", "ReplicationGroupId", "KmsKeyId"} <= set(
        create_only_properties("AWS::ElastiCache::ReplicationGroup"))
    assert set(create_only_properties("AWS::SQS::Queue")) == {"FifoQueue", "QueueName"}
    assert "AWS::ElastiCache::ReplicationGroup" in STATEFUL_TYPES


def test_project_templates_match_the_reviewed_baseline(synthesized):
    findings, notes = check(Path(synthesized.assembly.directory), ROOT / "baseline")
    assert findings == [] and notes == []
