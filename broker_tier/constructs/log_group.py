"""Log groups of the tier: encrypted with the tier's logs key, with a retention from configuration.

Every log group the tier creates goes through ``tier_log_group``, which needs the key: a new log
group cannot be added unencrypted by accident.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

_RETENTION = {
    1: "ONE_DAY",
    3: "THREE_DAYS",
    5: "FIVE_DAYS",
    7: "ONE_WEEK",
    14: "TWO_WEEKS",
    30: "ONE_MONTH",
    60: "TWO_MONTHS",
    90: "THREE_MONTHS",
    120: "FOUR_MONTHS",
    150: "FIVE_MONTHS",
    180: "SIX_MONTHS",
    365: "ONE_YEAR",
    400: "THIRTEEN_MONTHS",
    545: "EIGHTEEN_MONTHS",
    731: "TWO_YEARS",
    1096: "THREE_YEARS",
    1827: "FIVE_YEARS",
    2192: "SIX_YEARS",
    2557: "SEVEN_YEARS",
    2922: "EIGHT_YEARS",
    3288: "NINE_YEARS",
    3653: "TEN_YEARS",
}
LOGS_KEY_STATEMENT_ID = "CloudWatchLogsEncryptsLogGroupsOfThisAccountAndRegion"


def retention(days: int) -> logs.RetentionDays:
    """The RetentionDays member for a number of days the configuration model already validated."""
    return getattr(logs.RetentionDays, _RETENTION[days])


def logs_encryption_key(
    scope: Construct, construct_id: str, *, alias: str, description: str, removal_policy: cdk.RemovalPolicy
) -> kms.Key:
    """A customer-managed key (rotated yearly) that only CloudWatch Logs uses, within a log group's encryption
    context, for every log group of the account and region (docs/decisions/logs-key-scoped-to-log-groups.md).

    :param alias: the key's alias (``alias/...``).
    :param description: the key's description.
    :param removal_policy: what stack deletion does to the key.
    """
    key = kms.Key(
        scope,
        construct_id,
        alias=alias,
        description=description,
        enable_key_rotation=True,
        removal_policy=removal_policy,
    )
    stack = cdk.Stack.of(scope)
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid=LOGS_KEY_STATEMENT_ID,
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            resources=["*"],  # in a key policy, "*" is this key
            conditions={
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name="*",
                        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                    )
                }
            },
        )
    )
    return key


def tier_log_group(
    scope: Construct,
    construct_id: str,
    *,
    log_group_name: str | None,
    retention_days: int,
    removal_policy: cdk.RemovalPolicy,
    encryption_key: kms.IKey,
) -> logs.LogGroup:
    """A log group with the tier's retention and removal policy, encrypted with ``encryption_key``.

    :param log_group_name: explicit name (so a replacement fails instead of losing the group),
        or None for a generated one.
    :param retention_days: days CloudWatch Logs keeps events (a value the configuration model allows).
    :param removal_policy: what stack deletion does to the group.
    :param encryption_key: the tier's logs key (``logs_encryption_key``), whose policy lets CloudWatch
        Logs use it. Adding it to an existing group is an in-place update (only LogGroupName is
        create-only).
    """
    return logs.LogGroup(
        scope,
        construct_id,
        log_group_name=log_group_name,
        encryption_key=encryption_key,
        retention=retention(retention_days),
        removal_policy=removal_policy,
    )
