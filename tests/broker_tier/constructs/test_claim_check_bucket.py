"""ClaimCheckBucket as synthesized in every environment: the tier's key, TLS only, private, no ACLs, a lifecycle rule
that outlives every message that can need a payload, a name CloudFormation will not replace; and who may do what
with it, evaluated (tests/support/policy_evaluator.py): with the claim check on, a class's workers read and delete
under their class's prefix only, workers, Beat and producers put under every class's; with it off, no role may."""

from __future__ import annotations

import json

import pytest
from deployment import container_definitions
from policy_evaluator import Request, evaluate
from tier_testing import ENVIRONMENTS, tier_context

import broker_tier_contract as contract
from broker_tier.config import load_environments, payload_expiration_days

CONFIGS = load_environments(tier_context())
ROLE = {"AWS": "arn:aws:iam::123456789012:role/any"}
CLAIM_CHECK_VARIABLES = {contract.ContainerEnvironment.CLAIM_CHECK_BUCKET.name, "BROKER_TIER_CLAIM_CHECK_THRESHOLD"}


def bucket_of(synthesized, env: str) -> tuple[str, dict]:
    ((logical_id, bucket),) = synthesized.resources(env, "State", "AWS::S3::Bucket").items()
    return logical_id, bucket


def bucket_name(synthesized, env: str) -> str:
    return contract.claim_check_bucket_name(env, synthesized.account, synthesized.region)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_payload_bucket_is_encrypted_private_tls_only_and_expires_what_no_task_claimed(synthesized, env):
    config = CONFIGS[env]
    logical_id, bucket = bucket_of(synthesized, env)
    props, deployment, state = bucket["Properties"], synthesized.deployment(env), contract.stack_name(env, "State")
    assert deployment.resolve(state, props["BucketName"]) == bucket_name(synthesized, env)
    assert deployment.outputs(state)[contract.StateOutputs.CLAIM_CHECK_BUCKET_NAME] == bucket_name(synthesized, env)
    (encryption,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption == {
        "BucketKeyEnabled": True,
        "ServerSideEncryptionByDefault": {
            "KMSMasterKeyID": {"Fn::GetAtt": ["Key961B73FD", "Arn"]},
            "SSEAlgorithm": "aws:kms",
        },
    }  # the tier's key, not the logs key
    assert props["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
    )
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}  # no ACLs
    assert "VersioningConfiguration" not in props and "AccessControl" not in props
    (rule,) = props["LifecycleConfiguration"]["Rules"]
    days = payload_expiration_days(config.queues.values())
    assert rule == {
        "Id": "expire-unclaimed-payloads",
        "Status": "Enabled",
        "ExpirationInDays": days,
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }
    longest = max(q.dead_letter_retention_seconds + q.retention_seconds for q in config.queues.values())
    assert days * 86_400 > longest  # a message dead-lettered, then redriven, still finds its payload
    kept = "Retain" if config.removal_policy == "retain" else "Delete"
    assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == (kept, kept)

    (policy,) = synthesized.resources(env, "State", "AWS::S3::BucketPolicy").values()
    document = deployment.resolve(state, policy["Properties"]["PolicyDocument"])
    arn = f"arn:aws:s3:::{bucket_name(synthesized, env)}"
    for resource in (arn, f"{arn}/{next(iter(config.queues))}/anything"):
        plain = Request(ROLE, "s3:GetObject", resource, {"aws:SecureTransport": "false"})
        assert evaluate(document, plain).outcome == "explicit deny"
        assert evaluate(document, Request(ROLE, "s3:GetObject", resource, {"aws:SecureTransport": "true"})).outcome == (
            "implicit deny"  # the bucket policy grants nothing: the roles' own policies do
        )
    assert logical_id in json.dumps(policy["Properties"]["Bucket"])


def role_policies(synthesized, env: str, role_prefix: str) -> dict:
    deployment, compute = synthesized.deployment(env), contract.stack_name(env, "Compute")
    statements = [
        statement
        for logical_id, policy in synthesized.resources(env, "Compute", "AWS::IAM::Policy").items()
        if logical_id.startswith(role_prefix)
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert statements, role_prefix
    return {"Statement": deployment.resolve(compute, statements)}


def tier_key(synthesized, env: str) -> str:
    return synthesized.deployment(env).attribute(contract.stack_name(env, "State"), "Key961B73FD", "Arn")


ON = [env for env in ENVIRONMENTS if CONFIGS[env].claim_check.enabled]
OFF = [env for env in ENVIRONMENTS if not CONFIGS[env].claim_check.enabled]


def test_cdk_json_has_the_claim_check_on_in_one_environment_and_off_in_another():
    assert ON and OFF  # so that both sides below are exercised


@pytest.mark.parametrize("env", ON)
def test_with_the_claim_check_on_workers_read_and_delete_their_class_only_and_everyone_puts(synthesized, env):
    classes = list(CONFIGS[env].queues)
    name, key = bucket_name(synthesized, env), tier_key(synthesized, env)
    s3 = {"kms:ViaService": f"s3.{synthesized.region}.amazonaws.com"}
    assert len(classes) >= 2
    for cls in classes:
        document = role_policies(synthesized, env, f"Worker{cls}CeleryTaskDefinitionTaskRole")
        for other in classes:
            payload = f"arn:aws:s3:::{name}/{other}/0123abcd"
            mine = "allowed" if other == cls else "implicit deny"
            assert evaluate(document, Request(ROLE, "s3:GetObject", payload)).outcome == mine, (cls, other)
            assert evaluate(document, Request(ROLE, "s3:DeleteObject", payload)).outcome == mine, (cls, other)
            assert evaluate(document, Request(ROLE, "s3:PutObject", payload)).allowed, (cls, other)
        for action, resource in [
            ("s3:ListBucket", f"arn:aws:s3:::{name}"),
            ("s3:GetObject", f"arn:aws:s3:::{name}/elsewhere/x"),
            ("s3:PutObjectAcl", f"arn:aws:s3:::{name}/{cls}/x"),
            ("s3:GetObject", f"arn:aws:s3:::another-{name}/{cls}/x"),
        ]:
            assert evaluate(document, Request(ROLE, action, resource)).outcome == "implicit deny", (action, resource)
        for action in ("kms:Decrypt", "kms:GenerateDataKey"):
            assert evaluate(document, Request(ROLE, action, key, s3)).allowed, action
        assert evaluate(document, Request(ROLE, "kms:Encrypt", key, s3)).outcome == "implicit deny"

    beat = role_policies(synthesized, env, "BeatCeleryTaskDefinitionTaskRole")
    for cls in classes:
        payload = f"arn:aws:s3:::{name}/{cls}/0123abcd"
        assert evaluate(beat, Request(ROLE, "s3:PutObject", payload)).allowed
        assert evaluate(beat, Request(ROLE, "s3:GetObject", payload)).outcome == "implicit deny"
    assert evaluate(beat, Request(ROLE, "kms:GenerateDataKey", key, s3)).allowed
    assert evaluate(beat, Request(ROLE, "kms:Decrypt", key, s3)).outcome == "implicit deny"
    assert evaluate(beat, Request(ROLE, "kms:GenerateDataKey", key)).outcome == "implicit deny"  # only through S3


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_containers_get_the_bucket_and_threshold_only_with_the_claim_check_on(synthesized, env):
    deployment, compute = synthesized.deployment(env), contract.stack_name(env, "Compute")
    celery = [
        c for c in container_definitions(synthesized.json(env, "Compute")).values() if c["Command"][0] == "celery"
    ]
    assert len(celery) == len(CONFIGS[env].queues) + 1
    for container in celery:
        environ = {item["Name"]: deployment.resolve(compute, item["Value"]) for item in container["Environment"]}
        given = {name: environ[name] for name in CLAIM_CHECK_VARIABLES if name in environ}
        expected = {
            contract.ContainerEnvironment.CLAIM_CHECK_BUCKET.name: bucket_name(synthesized, env),
            contract.ContainerEnvironment.CLAIM_CHECK_THRESHOLD.name: str(CONFIGS[env].claim_check.threshold_bytes),
        }
        assert given == (expected if CONFIGS[env].claim_check.enabled else {})


@pytest.mark.parametrize("env", OFF)
def test_with_the_claim_check_off_no_role_of_the_tier_may_touch_the_bucket(synthesized, env):
    compute = json.dumps(synthesized.resources(env, "Compute", "AWS::IAM::Policy"))
    assert '"s3:' not in compute and "payloads" not in compute
    producer = json.dumps(synthesized.resources(env, "State", "AWS::IAM::ManagedPolicy"))
    assert '"s3:' not in producer and "payloads" not in producer
