"""Log groups of the tier: named, with a retention from configuration."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam, aws_kms as kms, aws_logs as logs
from constructs import Construct

_RETENTION = {
    1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS", 30: "ONE_MONTH",
    60: "TWO_MONTHS", 90: "THREE_MONTHS", 120: "FOUR_MONTHS", 150: "FIVE_MONTHS", 180: "SIX_MONTHS",
    365: "ONE_YEAR", 400: "THIRTEEN_MONTHS", 545: "EIGHTEEN_MONTHS", 731: "TWO_YEARS",
    1096: "THREE_YEARS", 1827: "FIVE_YEARS", 2192: "SIX_YEARS", 2557: "SEVEN_YEARS",
    2922: "EIGHT_YEARS", 3288: "NINE_YEARS", 3653: "TEN_YEARS",
}


def retention(days: int) -> logs.RetentionDays:
    """The RetentionDays member for a number of days the configuration model already validated."""
    return getattr(logs.RetentionDays, _RETENTION[days])


def tier_log_group(scope: Construct, construct_id: str, *, log_group_name: str | None, retention_days: int,
                   removal_policy: cdk.RemovalPolicy, encryption_key: kms.IKey | None = None) -> logs.LogGroup:
    """A log group with the tier's retention and removal policy.

    :param log_group_name: explicit name (so a replacement fails instead of losing the group),
        or None for a generated one.
    :param encryption_key: a KMS key whose policy lets CloudWatch Logs of the region use it for this
        group (``logs_key_policy_statement``). Default: None (CloudWatch Logs' own encryption).
    """
    return logs.LogGroup(scope, construct_id, log_group_name=log_group_name, encryption_key=encryption_key,
                         retention=retention(retention_days), removal_policy=removal_policy)


def logs_key_policy_statement(*, log_group_name_prefix: str) -> iam.PolicyStatement:
    """The key-policy statement that lets CloudWatch Logs of the stack's region encrypt and decrypt the
    log groups whose names start with ``log_group_name_prefix``, and only those (AWS: "Encrypt log data
    in CloudWatch Logs using AWS Key Management Service": the ``kms:EncryptionContext:aws:logs:arn``
    condition)."""
    return iam.PolicyStatement(
        sid="CloudWatchLogsOfTheTier",
        principals=[iam.ServicePrincipal(f"logs.{cdk.Aws.REGION}.amazonaws.com")],
        actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
        resources=["*"],  # in a key policy "*" is this key
        conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn":
                                f"arn:{cdk.Aws.PARTITION}:logs:{cdk.Aws.REGION}:{cdk.Aws.ACCOUNT_ID}:log-group:"
                                f"{log_group_name_prefix}*"}})
