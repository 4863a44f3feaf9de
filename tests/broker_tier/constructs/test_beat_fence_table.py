"""BeatFenceTable: the State stack's table in which Beat claims each due tick (docs/decisions/beat-fence.md)."""

from __future__ import annotations

import json

import pytest
from tier_testing import ENVIRONMENTS, ROOT, tier_context

import broker_tier_contract as contract
from broker_tier.config import load_environments

CONFIGS = load_environments(tier_context())


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_a_named_on_demand_table_encrypted_with_the_tier_key_whose_items_expire(synthesized, env):
    table = synthesized.only(env, "State", "AWS::DynamoDB::Table")
    properties = table["Properties"]
    # named: CloudFormation refuses to replace it rather than start an empty one
    assert properties["TableName"] == contract.beat_fence_table_name(env) == f"broker-tier-{env}-beat-fence"
    assert properties["KeySchema"] == [{"AttributeName": contract.BEAT_FENCE_KEY, "KeyType": "HASH"}]
    assert properties["AttributeDefinitions"] == [{"AttributeName": contract.BEAT_FENCE_KEY, "AttributeType": "S"}]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["TimeToLiveSpecification"] == {
        "AttributeName": contract.BEAT_FENCE_TTL_ATTRIBUTE,
        "Enabled": True,
    }
    keys = synthesized.resources(env, "State", "AWS::KMS::Key")
    (key_id,) = [logical_id for logical_id in keys if logical_id.startswith("Key")]  # the tier's, not the logs key
    assert properties["SSESpecification"] == {
        "KMSMasterKeyId": {"Fn::GetAtt": [key_id, "Arn"]},
        "SSEEnabled": True,
        "SSEType": "KMS",
    }
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": False}
    kept = "Retain" if CONFIGS[env].removal_policy == "retain" else "Delete"
    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == (kept, kept)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_table_is_a_stateful_resource_of_the_reviewed_baseline(env):
    baseline = json.loads((ROOT / "baseline" / f"BrokerTier-{env}-State.json").read_text())
    tables = {i: r for i, r in baseline.items() if r["Type"] == "AWS::DynamoDB::Table"}
    assert [r["Properties"]["TableName"] for r in tables.values()] == [contract.beat_fence_table_name(env)]
