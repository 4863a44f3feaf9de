"""The claim check's S3 bucket: the payloads of task messages too big for SQS
(docs/decisions/claim-check-for-large-payloads.md)."""

from __future__ import annotations

from collections.abc import Iterable

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct, IConstruct

import broker_tier_contract as contract
from broker_tier.nag import acknowledge, acknowledge_wildcard_resource

ACCESS_LOGS_REASON = (
    "Each object is one task message's payload, written and read by the tier's own roles and deleted once the "
    "task succeeds (or by the lifecycle rule): server access logs would keep every payload's key in a second "
    "bucket for longer than the payload itself. Audit S3 data events with CloudTrail where required."
)
PAYLOAD_KEYS_REASON = (
    "Claim-check payloads: every task message gets an object under its class's prefix, named when it is sent, "
    "so the statement names the prefixes' objects (one prefix per latency class), not the whole bucket."
)


class ClaimCheckBucket(Construct):
    """The bucket that holds task messages too big for SQS until their task succeeds: SSE-KMS with the tier's key
    and an S3 Bucket Key, TLS only, every public access blocked, no ACLs (bucket owner enforced), no versioning
    (each payload is written once under a key of its own and deleted on purpose), and a lifecycle rule that
    deletes what no worker did. Its explicit name makes CloudFormation refuse a replacement instead of emptying it.

    Access is granted, with the claim check on, per role with the statements below, through the key only via S3
    (``kms:ViaService``): writers (producers, Beat, and workers publishing retries and chains) put under every
    class's prefix; a class's workers read and delete under their class's prefix only.

    Attributes:
        bucket: the S3 bucket.
        bucket_name: its physical name (pseudo parameters only: usable in any stack of the environment without a
            cross-stack reference).
        classes: the latency classes whose prefixes it holds.
        expiration_days: the lifecycle rule's age.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket_name: str,
        classes: Iterable[str],
        encryption_key: kms.IKey,
        expiration_days: int,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        """
        :param bucket_name: physical name (``broker_tier_contract.claim_check_bucket_name``).
        :param classes: the latency classes: one key prefix each (``broker_tier_contract.claim_check_key_prefix``).
        :param encryption_key: the tier's KMS key (SSE-KMS).
        :param expiration_days: age after which the lifecycle rule deletes a payload; longer than any message
            can wait for it (``broker_tier.config.payload_expiration_days``).
        :param removal_policy: what stack deletion does to the bucket (CloudFormation deletes only an empty one).
        """
        super().__init__(scope, construct_id)
        self.bucket_name, self.expiration_days = bucket_name, expiration_days
        self.classes = tuple(classes)
        self._key = encryption_key
        self._partition = cdk.Stack.of(self).partition  # literal once pinned, else a pseudo parameter: any stack
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            bucket_name=bucket_name,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=encryption_key,
            bucket_key_enabled=True,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=False,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-unclaimed-payloads",
                    expiration=cdk.Duration.days(expiration_days),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
                )
            ],
            removal_policy=removal_policy,
        )
        acknowledge(self.bucket, "S1", ACCESS_LOGS_REASON)

    def object_arns(self, classes: Iterable[str] | None = None) -> list[str]:
        """The ARN of every object under each class's prefix (default: every class), built from the name (no
        cross-stack reference)."""
        chosen = self.classes if classes is None else tuple(classes)
        unknown = sorted(set(chosen) - set(self.classes))
        if unknown:
            raise ValueError(f"no payload prefix for classes {unknown}; the bucket holds {list(self.classes)}")
        return [
            f"arn:{self._partition}:s3:::{self.bucket_name}/{contract.claim_check_key_prefix(name)}*" for name in chosen
        ]

    def _encryption(self, sid: str, actions: list[str]) -> iam.PolicyStatement:
        return iam.PolicyStatement(
            sid=sid,
            actions=actions,
            resources=[self._key.key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"s3.{cdk.Aws.REGION}.amazonaws.com"}},
        )

    def writer_statements(self) -> list[iam.PolicyStatement]:
        """Put a payload under any class's prefix (a single PutObject needs GenerateDataKey only)."""
        return [
            iam.PolicyStatement(sid="PutClaimCheckPayloads", actions=["s3:PutObject"], resources=self.object_arns()),
            self._encryption("EncryptPayloadsThroughS3", ["kms:GenerateDataKey"]),
        ]

    def worker_statements(self, class_name: str) -> list[iam.PolicyStatement]:
        """A class's workers: read and delete the payloads under their own prefix, and put those of the tasks they
        publish (retries, chains) under every class's."""
        return [
            iam.PolicyStatement(
                sid="ReadAndDeleteOwnPayloads",
                actions=["s3:GetObject", "s3:DeleteObject"],
                resources=self.object_arns([class_name]),
            ),
            iam.PolicyStatement(sid="PutClaimCheckPayloads", actions=["s3:PutObject"], resources=self.object_arns()),
            self._encryption("PayloadsThroughS3", ["kms:Decrypt", "kms:GenerateDataKey"]),
        ]

    def acknowledge_payload_keys(self, construct: IConstruct) -> None:
        """Acknowledge cdk-nag's IAM5 for the objects of each class's prefix on ``construct`` (the role or policy
        the statements are on)."""
        for arn in self.object_arns():
            acknowledge_wildcard_resource(construct, arn, PAYLOAD_KEYS_REASON)
