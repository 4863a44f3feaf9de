"""The replacement guard on synthetic before/after templates, and on the project's own templates."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from tier_testing import ROOT

from broker_tier.stateful_resources import STATEFUL_TYPES
from broker_tier.tools.replacement_guard import (
    CannotJudge,
    check,
    compare,
    create_only_properties,
    declared_environments,
    main,
    stateful_resources,
    update,
)

RG = {
    "Type": "AWS::ElastiCache::ReplicationGroup",
    "DeletionPolicy": "Snapshot",
    "UpdateReplacePolicy": "Snapshot",
    "Properties": {
        "ReplicationGroupId": "broker-tier-dev",
        "Port": 6380,
        "CacheNodeType": "cache.m7g.large",
        "AtRestEncryptionEnabled": True,
        "CacheSubnetGroupName": {"Ref": "CacheSubnetGroup"},
        "KmsKeyId": {"Fn::GetAtt": ["Key", "Arn"]},
        "CacheParameterGroupName": {"Ref": "Params"},
        "NumCacheClusters": 2,
    },
}
BEFORE = {
    "Resources": {
        "Cache": RG,
        "CacheSubnetGroup": {
            "Type": "AWS::ElastiCache::SubnetGroup",
            "Properties": {
                "CacheSubnetGroupName": "broker-tier-dev",
                "SubnetIds": [{"Ref": "Private1"}, {"Ref": "Private2"}],
            },
        },
        "Private1": {
            "Type": "AWS::EC2::Subnet",
            "Properties": {
                "CidrBlock": "10.64.16.0/20",
                "VpcId": {"Ref": "Vpc"},
                "AvailabilityZone": {"Fn::Select": [0, {"Fn::GetAZs": ""}]},
            },
        },
        "Private2": {
            "Type": "AWS::EC2::Subnet",
            "Properties": {
                "CidrBlock": "10.64.32.0/20",
                "VpcId": {"Ref": "Vpc"},
                "AvailabilityZone": {"Fn::Select": [1, {"Fn::GetAZs": ""}]},
            },
        },
        "Public1": {
            "Type": "AWS::EC2::Subnet",
            "Properties": {
                "CidrBlock": "10.64.0.0/24",
                "VpcId": {"Ref": "Vpc"},
                "AvailabilityZone": {"Fn::Select": [0, {"Fn::GetAZs": ""}]},
            },
        },
        "Queue": {
            "Type": "AWS::SQS::Queue",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {"QueueName": "broker-tier-dev-batch", "VisibilityTimeout": 3900},
        },
        "Secret": {"Type": "AWS::SecretsManager::Secret", "Properties": {"Name": "broker-tier-dev/redis-auth-token"}},
        "Key": {"Type": "AWS::KMS::Key", "DeletionPolicy": "Retain", "Properties": {"EnableKeyRotation": True}},
        "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "/x/slow-log", "RetentionInDays": 30}},
        "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.64.0.0/16"}},
        "Alarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": {"Threshold": 80}},
    }
}


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
    "at-rest encryption": (
        ("Cache", "Properties", "AtRestEncryptionEnabled"),
        False,
        "create-only property AtRestEncryptionEnabled",
        "every key is lost",
    ),
    "subnet group of the cluster": (
        ("Cache", "Properties", "CacheSubnetGroupName"),
        {"Ref": "Other"},
        "create-only property CacheSubnetGroupName",
        "every key is lost",
    ),
    "kms key of the cluster": (("Cache", "Properties", "KmsKeyId"), "arn:other", "KmsKeyId", "every key is lost"),
    "subnet group name": (
        ("CacheSubnetGroup", "Properties", "CacheSubnetGroupName"),
        "other",
        "create-only property CacheSubnetGroupName",
        "and with it the replication group",
    ),
    "queue fifo": (
        ("Queue", "Properties", "FifoQueue"),
        True,
        "create-only property FifoQueue",
        "every message in it is lost",
    ),
    "queue name": (("Queue", "Properties", "QueueName"), "renamed", "QueueName", "every message in it is lost"),
    "secret name": (("Secret", "Properties", "Name"), "renamed", "create-only property Name", "AUTH token changes"),
    "log group name": (("Logs", "Properties", "LogGroupName"), "/y", "LogGroupName", "log history is lost"),
    "vpc cidr": (("Vpc", "Properties", "CidrBlock"), "10.70.0.0/16", "CidrBlock", "replaces the VPC"),
    "cache subnet cidr": (
        ("Private1", "Properties", "CidrBlock"),
        "10.64.48.0/20",
        'create-only property CidrBlock changed: "10.64.16.0/20" -> "10.64.48.0/20"',
        "the cache subnet group lists this subnet",
    ),
    "cache subnet az": (
        ("Private2", "Properties", "AvailabilityZone"),
        {"Fn::Select": [2, {"Fn::GetAZs": ""}]},
        "create-only property AvailabilityZone",
        "ElastiCache refuses to take a subnet in use",
    ),
    "cache subnet az named at synthesis (a CDK AZ look-up) instead of chosen at deploy time": (
        ("Private1", "Properties", "AvailabilityZone"),
        "eu-west-1a",
        'create-only property AvailabilityZone changed: {"Fn::Select": [0, {"Fn::GetAZs": ""}]} -> "eu-west-1a"',
        "ElastiCache refuses to take a subnet in use",
    ),
    "public subnet cidr": (
        ("Public1", "Properties", "CidrBlock"),
        "10.64.9.0/24",
        "create-only property CidrBlock",
        "replaces the subnet: what runs in it (ECS tasks, a NAT gateway) must leave it first",
    ),
    "subnet dropped from the cache subnet group": (
        ("CacheSubnetGroup", "Properties", "SubnetIds"),
        [{"Ref": "Private1"}],
        "subnet Private2 (AZ #2 of the region, 10.64.32.0/20) dropped from the cache subnet group",
        "the cache subnet group lists this subnet",
    ),
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
    "a subnet added to the subnet group": (
        ("CacheSubnetGroup", "Properties", "SubnetIds"),
        [{"Ref": "Private1"}, {"Ref": "Private2"}, {"Ref": "Private3"}],
    ),
    "subnet tags": (("Public1", "Properties", "Tags"), [{"Key": "Name", "Value": "x"}]),
    "alarm threshold": (("Alarm", "Properties", "Threshold"), 90),
    "stronger policy": (("Logs", "DeletionPolicy"), "Retain"),
}


@pytest.mark.parametrize("path,value", HARMLESS.values(), ids=HARMLESS.keys())
def test_harmless_change_passes(path, value):
    assert changed(path, value) == []


@pytest.mark.parametrize("logical_id", ["Cache", "Queue", "Secret", "Key", "Logs", "Public1"])
def test_removed_or_renamed_resource_is_detected(logical_id):
    findings = changed((logical_id,), KeyError)
    assert len(findings) == 1 and "resource removed or its logical id changed" in str(findings[0])


def test_a_removed_cache_subnet_is_caught_as_removed_and_as_dropped_from_the_subnet_group():
    after = copy.deepcopy(BEFORE)
    del after["Resources"]["Private2"]
    after["Resources"]["CacheSubnetGroup"]["Properties"]["SubnetIds"] = [{"Ref": "Private1"}]
    messages = [
        str(f) for f in compare("prod", "BrokerTier-prod-State", stateful_resources(BEFORE), stateful_resources(after))
    ]
    assert len(messages) == 2
    assert all("the cache subnet group lists this subnet" in message for message in messages)
    assert "resource Private2 (AWS::EC2::Subnet): resource removed" in messages[0]
    assert "subnet Private2 (AZ #2 of the region, 10.64.32.0/20) dropped from the cache subnet group" in messages[1]


def test_create_only_properties_come_from_the_cfn_lint_schemas():
    assert {"Port", "AtRestEncryptionEnabled", "CacheSubnetGroupName", "ReplicationGroupId", "KmsKeyId"} <= set(
        create_only_properties("AWS::ElastiCache::ReplicationGroup")
    )
    assert set(create_only_properties("AWS::SQS::Queue")) == {"FifoQueue", "QueueName"}
    assert "AWS::ElastiCache::ReplicationGroup" in STATEFUL_TYPES


def test_project_templates_match_the_reviewed_baseline_agnostic_or_pinned(every_synthesis):
    # pinned: pinning an environment deployed agnostic would replace nothing (docs/deploying.md)
    directory = Path(every_synthesis.assembly.directory)
    result = check(directory, ROOT / "baseline", declared_environments(ROOT / "cdk.json"))
    assert result.findings == [] and result.notes == [] and result.unsynthesized == []


def test_the_baseline_tracks_the_subnets_the_cache_uses(synthesized):
    baseline = json.loads((ROOT / "baseline" / "BrokerTier-prod-State.json").read_text())
    subnets = {logical_id for logical_id, resource in baseline.items() if resource["Type"] == "AWS::EC2::Subnet"}
    assert len(subnets) == 6  # public and private in each of prod's three AZs
    (group,) = [r for r in baseline.values() if r["Type"] == "AWS::ElastiCache::SubnetGroup"]
    assert {ref["Ref"] for ref in group["Properties"]["SubnetIds"]} < subnets


# -- stacks that are no longer synthesized ---------------------------------------------------------
STATE = {"Resources": {"Cache": RG, "Queue": BEFORE["Resources"]["Queue"], "Alarm": BEFORE["Resources"]["Alarm"]}}
COMPUTE = {"Resources": {"Logs": BEFORE["Resources"]["Logs"]}}


def cloud_assembly(directory: Path, templates: dict[str, dict]) -> Path:
    """A minimal cdk.out holding ``templates`` by stack name."""
    directory.mkdir(parents=True)
    artifacts = {}
    for stack, template in templates.items():
        (directory / f"{stack}.template.json").write_text(json.dumps(template))
        artifacts[stack] = {
            "type": "aws:cloudformation:stack",
            "properties": {"templateFile": f"{stack}.template.json"},
        }
    (directory / "manifest.json").write_text(json.dumps({"artifacts": artifacts}))
    return directory


@pytest.fixture()
def baseline_of_dev_and_qa(tmp_path) -> Path:
    """A baseline of dev's and qa's State and Compute stacks, written by the guard from a full synthesis."""
    full = cloud_assembly(
        tmp_path / "full",
        {
            f"BrokerTier-{env}-{part}": template
            for env in ("dev", "qa")
            for part, template in (("State", STATE), ("Compute", COMPUTE))
        },
    )
    update(full, tmp_path / "baseline", {"dev", "qa"})
    return tmp_path / "baseline"


def test_a_removed_environment_fails_naming_the_stateful_resources_it_would_delete(tmp_path, baseline_of_dev_and_qa):
    only_dev = cloud_assembly(tmp_path / "out", {"BrokerTier-dev-State": STATE, "BrokerTier-dev-Compute": COMPUTE})
    result = check(only_dev, baseline_of_dev_and_qa, {"dev"})  # qa removed from cdk.json
    messages = [str(finding) for finding in result.findings]
    assert len(messages) == 2 and result.unsynthesized == []
    assert messages[1].startswith(
        "environment 'qa', stack BrokerTier-qa-State, the whole stack: no longer synthesized "
        "(environment 'qa' is no longer declared in cdk.json: removed or renamed)"
    )
    for fragment in (
        "AWS::ElastiCache::ReplicationGroup x1 (DeletionPolicy Snapshot: deleted after a final snapshot): Cache",
        "AWS::SQS::Queue x1 (DeletionPolicy Retain: kept, orphaned): Queue",
        "a renamed environment starts with new, empty ones",
    ):
        assert fragment in messages[1]
    assert "Alarm" not in messages[1]  # only stateful resources are named
    assert "AWS::Logs::LogGroup x1" in messages[0]


def test_a_removed_stack_of_a_synthesized_environment_fails(tmp_path, baseline_of_dev_and_qa):
    no_qa_compute = cloud_assembly(
        tmp_path / "out",
        {"BrokerTier-dev-State": STATE, "BrokerTier-dev-Compute": COMPUTE, "BrokerTier-qa-State": STATE},
    )
    (finding,) = check(no_qa_compute, baseline_of_dev_and_qa, {"dev", "qa"}).findings
    assert (
        "stack BrokerTier-qa-Compute, the whole stack: no longer synthesized (environment 'qa' no longer has this "
        "stack)" in str(finding)
    )


def test_an_environment_left_out_of_a_selective_synthesis_is_not_judged_deleted(
    tmp_path, baseline_of_dev_and_qa, capsys
):
    only_dev = cloud_assembly(tmp_path / "out", {"BrokerTier-dev-State": STATE, "BrokerTier-dev-Compute": COMPUTE})
    result = check(only_dev, baseline_of_dev_and_qa, {"dev", "qa"})  # -c env=dev: qa still declared
    assert result.findings == [] and result.unsynthesized == ["qa"]
    cdk_json = tmp_path / "cdk.json"
    cdk_json.write_text(json.dumps({"context": {"broker-tier": {"environments": {"dev": {}, "qa": {}}}}}))
    arguments = ["--cdk-out", str(only_dev), "--baseline", str(baseline_of_dev_and_qa), "--cdk-json", str(cdk_json)]
    assert main(arguments) == 2
    assert "cannot judge environment(s) qa: cdk.out holds none of their stacks" in capsys.readouterr().out
    assert main([*arguments, "--update"]) == 2  # nor is the baseline rewritten from it
    assert (baseline_of_dev_and_qa / "BrokerTier-qa-State.json").exists()


def test_regenerating_the_baseline_is_how_a_removal_is_acknowledged(tmp_path, baseline_of_dev_and_qa):
    only_dev = cloud_assembly(tmp_path / "out", {"BrokerTier-dev-State": STATE, "BrokerTier-dev-Compute": COMPUTE})
    written, removed = update(only_dev, baseline_of_dev_and_qa, {"dev"})
    assert [path.name for path in removed] == ["BrokerTier-qa-Compute.json", "BrokerTier-qa-State.json"]
    assert check(only_dev, baseline_of_dev_and_qa, {"dev"}).findings == []


# -- what the guard cannot judge: nothing synthesized, or a cdk.out older than cdk.json -----------------------
def declaring(tmp_path: Path, *environments: str) -> Path:
    """A cdk.json that declares ``environments``."""
    cdk_json = tmp_path / "cdk.json"
    cdk_json.write_text(json.dumps({"context": {"broker-tier": {"environments": {env: {} for env in environments}}}}))
    return cdk_json


@pytest.mark.parametrize("made", ["absent", "empty"])
def test_with_nothing_synthesized_it_says_to_synthesize_first(tmp_path, baseline_of_dev_and_qa, capsys, made):
    cdk_out = tmp_path / "cdk.out"
    if made == "empty":  # what a failed synthesis leaves
        cdk_out.mkdir()
    arguments = [
        "--cdk-out",
        str(cdk_out),
        "--baseline",
        str(baseline_of_dev_and_qa),
        "--cdk-json",
        str(declaring(tmp_path, "dev", "qa")),
    ]
    for update_too in ([], ["--update"]):
        assert main([*arguments, *update_too]) == 2  # not 1, "would replace"
        (line,) = capsys.readouterr().out.splitlines()
        assert line.startswith(f"replacement guard: nothing is synthesized in {cdk_out} (")
        assert line.endswith("run `cdk synth` (or scripts/synth.sh) without -c env, then the guard")
    assert sorted(path.name for path in baseline_of_dev_and_qa.iterdir()) == [
        "BrokerTier-dev-Compute.json",
        "BrokerTier-dev-State.json",
        "BrokerTier-qa-Compute.json",
        "BrokerTier-qa-State.json",
    ]


def test_a_cdk_out_older_than_cdk_json_is_not_judged(tmp_path, baseline_of_dev_and_qa, capsys):
    """Synthesized with qa, then qa deleted from cdk.json and not synthesized again: the stale cdk.out still
    matches the baseline, so judging it would pass qa's deletion unseen."""
    stale = cloud_assembly(
        tmp_path / "out",
        {
            f"BrokerTier-{env}-{part}": template
            for env in ("dev", "qa")
            for part, template in (("State", STATE), ("Compute", COMPUTE))
        },
    )
    with pytest.raises(CannotJudge, match="holds stacks of environment.s. qa, which cdk.json does not declare"):
        check(stale, baseline_of_dev_and_qa, {"dev"})
    arguments = [
        "--cdk-out",
        str(stale),
        "--baseline",
        str(baseline_of_dev_and_qa),
        "--cdk-json",
        str(declaring(tmp_path, "dev")),
    ]
    assert main(arguments) == 2
    (line,) = capsys.readouterr().out.splitlines()
    assert "synthesized before cdk.json changed" in line and line.endswith("then the guard")
    assert main([*arguments, "--update"]) == 2  # nor is qa's baseline written again from it


def test_the_claim_check_bucket_is_stateful_and_in_every_environments_baseline():
    assert "AWS::S3::Bucket" in STATEFUL_TYPES
    assert {"BucketName", "BucketNamePrefix"} <= set(create_only_properties("AWS::S3::Bucket"))
    for env in declared_environments(ROOT / "cdk.json") or ():
        baseline = json.loads((ROOT / "baseline" / f"BrokerTier-{env}-State.json").read_text())
        (bucket,) = [r for r in baseline.values() if r["Type"] == "AWS::S3::Bucket"]
        joined = bucket["Properties"]["BucketName"]["Fn::Join"][1]
        assert joined == [f"broker-tier-{env}-payloads-", {"Ref": "AWS::AccountId"}, "-", {"Ref": "AWS::Region"}]


def test_a_renamed_or_removed_payload_bucket_is_caught_with_what_it_loses():
    bucket = {
        "Type": "AWS::S3::Bucket",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": {"BucketName": "broker-tier-dev-payloads-x", "LifecycleConfiguration": {"Rules": []}},
    }
    before = stateful_resources({"Resources": {"Payloads": bucket}})
    renamed = copy.deepcopy(bucket)
    renamed["Properties"]["BucketName"] = "broker-tier-dev-payloads-y"
    relifed = copy.deepcopy(bucket)
    relifed["Properties"]["LifecycleConfiguration"] = {"Rules": [{"ExpirationInDays": 30}]}
    for after, what in [({"Payloads": renamed}, "create-only property BucketName"), ({}, "resource removed")]:
        (finding,) = compare("dev", "BrokerTier-dev-State", before, stateful_resources({"Resources": after}))
        assert what in str(finding) and "payload of every claim-checked task message" in str(finding)
    assert (
        compare("dev", "BrokerTier-dev-State", before, stateful_resources({"Resources": {"Payloads": relifed}})) == []
    )
