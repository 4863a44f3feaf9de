"""The tier's log groups and their key: on a bare stack (``tier_log_group``, ``logs_encryption_key``), and every
log group the tier creates, as synthesized in every environment of cdk.json: encrypted with the environment's
logs key (a customer-managed key only CloudWatch Logs uses), retention per environment."""

from __future__ import annotations

import inspect

import aws_cdk as cdk
import pytest
from bare_stack import BareApp
from deployment import ACCOUNT, REGION
from policy_evaluator import Request, evaluate
from tier_testing import ENVIRONMENTS, tier_context

import broker_tier_contract as contract
from broker_tier.config import load_environments
from broker_tier.config.base import LOG_RETENTION_DAYS
from broker_tier.constructs.log_group import LOGS_KEY_STATEMENT_ID, logs_encryption_key, tier_log_group

CONFIGS = load_environments(tier_context())
LOG_GROUP = "AWS::Logs::LogGroup"


# -- on a bare stack ------------------------------------------------------------------------------------------
LOGS = {"Service": f"logs.{REGION}.amazonaws.com"}
OWN_LOG_GROUP = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/team/redis/slow-log"


@pytest.fixture(scope="module")
def bare() -> BareApp:
    app = BareApp()
    stack = app.stack("Logs")
    key = logs_encryption_key(
        stack, "LogsKey", alias="alias/team-logs", description="team logs", removal_policy=cdk.RemovalPolicy.DESTROY
    )
    groups = {
        days: tier_log_group(
            stack,
            f"Group{days}",
            log_group_name=f"/team/{days}" if days != 30 else None,
            retention_days=days,
            removal_policy=cdk.RemovalPolicy.RETAIN,
            encryption_key=key,
        )
        for days in LOG_RETENTION_DAYS
    }
    app.built["Logs"] = {days: app.logical_id(group) for days, group in groups.items()}
    return app.synthesize()


def test_bare_log_groups_keep_every_retention_the_configuration_allows_encrypted_with_the_key(bare):
    key_id, _ = bare.only("Logs", "AWS::KMS::Key")
    groups = bare.resources("Logs", LOG_GROUP)
    assert len(groups) == len(LOG_RETENTION_DAYS)
    for days in LOG_RETENTION_DAYS:
        group = groups[bare.built["Logs"][days]]
        assert group["Properties"] == {
            **({"LogGroupName": f"/team/{days}"} if days != 30 else {}),  # None: a generated name
            "KmsKeyId": {"Fn::GetAtt": [key_id, "Arn"]},
            "RetentionInDays": days,
        }, days
        assert (group["DeletionPolicy"], group["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_bare_logs_key_rotates_and_follows_its_removal_policy(bare):
    key_id, key = bare.only("Logs", "AWS::KMS::Key")
    assert key["Properties"]["EnableKeyRotation"] is True and key["Properties"]["Description"] == "team logs"
    assert key["DeletionPolicy"] == "Delete"
    alias = bare.only("Logs", "AWS::KMS::Alias")[1]["Properties"]
    assert alias == {"AliasName": "alias/team-logs", "TargetKeyId": {"Fn::GetAtt": [key_id, "Arn"]}}


def logs_decision(bare: BareApp, principal: dict[str, str], action: str, **context: str) -> str:
    key_id, key = bare.only("Logs", "AWS::KMS::Key")
    policy = bare.resolve("Logs", key["Properties"]["KeyPolicy"])
    key_arn = bare.deployment().attribute("Logs", key_id, "Arn")
    return evaluate(policy, Request(principal, action, key_arn, context)).outcome


@pytest.mark.parametrize("action", ["kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:GenerateDataKey"])
def test_bare_logs_key_serves_cloudwatch_logs_for_this_accounts_log_groups(bare, action):
    context = {"kms:EncryptionContext:aws:logs:arn": OWN_LOG_GROUP}
    assert logs_decision(bare, LOGS, action, **context) == "allowed"


@pytest.mark.parametrize(
    "principal,context",
    [
        (LOGS, {"kms:EncryptionContext:aws:logs:arn": OWN_LOG_GROUP.replace(ACCOUNT, "210987654321")}),
        (LOGS, {"kms:EncryptionContext:aws:logs:arn": OWN_LOG_GROUP.replace(REGION, "us-east-1")}),
        (LOGS, {}),
        ({"Service": "logs.us-east-1.amazonaws.com"}, {"kms:EncryptionContext:aws:logs:arn": OWN_LOG_GROUP}),
        ({"Service": "sqs.amazonaws.com"}, {"kms:EncryptionContext:aws:logs:arn": OWN_LOG_GROUP}),
    ],
    ids=["another-accounts-group", "another-regions-group", "no-log-group", "another-regions-logs", "another-service"],
)
def test_bare_logs_key_serves_no_one_else(bare, principal, context):
    assert logs_decision(bare, principal, "kms:Decrypt", **context) == "implicit deny"
    assert logs_decision(bare, principal, "kms:CreateGrant", **context) == "implicit deny"


def logs_key_id(synthesized, env: str) -> str:
    """The logical id of the key aliased ``alias/broker-tier-<env>-logs``."""
    (alias,) = [
        a
        for a in synthesized.resources(env, "State", "AWS::KMS::Alias").values()
        if a["Properties"]["AliasName"] == f"alias/{contract.resource_prefix(env)}-logs"
    ]
    return alias["Properties"]["TargetKeyId"]["Fn::GetAtt"][0]


def log_groups(synthesized, env: str) -> dict[tuple[str, str], dict]:
    """(stack, logical id) -> properties of every log group of the environment."""
    return {
        (contract.stack_name(env, part), logical_id): resource["Properties"]
        for part in contract.STACK_PARTS
        for logical_id, resource in synthesized.resources(env, part, LOG_GROUP).items()
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_log_group_is_encrypted_with_the_logs_key_and_keeps_its_retention(synthesized, env):
    config = CONFIGS[env]
    deployment = synthesized.deployment(env)
    key_arn = deployment.attribute(contract.stack_name(env, "State"), logs_key_id(synthesized, env), "Arn")
    prefix = contract.resource_prefix(env)
    retention = {
        None: config.network.flow_log_retention_days,  # the flow-log group's name is generated
        f"/{prefix}/redis/slow-log": config.cache.log_retention_days,
        f"/{prefix}/redis/engine-log": config.cache.log_retention_days,
        contract.service_log_group_name(env, "beat"): config.compute.log_retention_days,
        **{
            contract.service_log_group_name(env, f"worker-{name}"): config.compute.log_retention_days
            for name in config.queues
        },
    }
    groups = log_groups(synthesized, env)
    assert set(retention) <= {props.get("LogGroupName") for props in groups.values()}
    for (stack, logical_id), props in groups.items():
        assert deployment.resolve(stack, props.get("KmsKeyId")) == key_arn, f"{stack} {logical_id} is not encrypted"
        name = props.get("LogGroupName")
        if name in retention:
            assert props["RetentionInDays"] == retention[name], name


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_logs_key_rotates_and_lets_cloudwatch_logs_of_the_region_use_it_for_log_groups_only(synthesized, env):
    state = contract.stack_name(env, "State")
    deployment = synthesized.deployment(env)
    key = synthesized.resources(env, "State", "AWS::KMS::Key")[logs_key_id(synthesized, env)]["Properties"]
    assert key["EnableKeyRotation"] is True
    (statement,) = [s for s in key["KeyPolicy"]["Statement"] if s.get("Sid") == LOGS_KEY_STATEMENT_ID]
    assert deployment.resolve(state, statement["Principal"]["Service"]) == f"logs.{synthesized.region}.amazonaws.com"
    assert statement["Effect"] == "Allow" and statement["Resource"] == "*"
    assert set(statement["Action"]) == {
        "kms:Encrypt*",
        "kms:Decrypt*",
        "kms:ReEncrypt*",
        "kms:GenerateDataKey*",
        "kms:Describe*",
    }
    (condition,) = statement["Condition"]["ArnLike"].items()
    assert condition[0] == "kms:EncryptionContext:aws:logs:arn"
    assert (
        deployment.resolve(state, condition[1])
        == f"arn:aws:logs:{synthesized.region}:{synthesized.account}:log-group:*"
    )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_cloudwatch_logs_gets_no_use_of_the_data_key(synthesized, env):
    logs_key = logs_key_id(synthesized, env)
    others = {i: key for i, key in synthesized.resources(env, "State", "AWS::KMS::Key").items() if i != logs_key}
    assert len(others) == 1  # the data key
    for logical_id, key in others.items():
        assert "logs." not in str(key["Properties"]["KeyPolicy"]), logical_id


def test_a_log_group_cannot_be_made_without_a_key():
    parameter = inspect.signature(tier_log_group).parameters["encryption_key"]
    assert parameter.kind is inspect.Parameter.KEYWORD_ONLY and parameter.default is inspect.Parameter.empty
