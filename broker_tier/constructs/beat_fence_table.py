"""The DynamoDB table in which Beat claims each due tick before it publishes it (docs/decisions/beat-fence.md)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

import broker_tier_contract as contract
from broker_tier.nag import acknowledge


class BeatFenceTable(Construct):
    """An on-demand table keyed by ``tick`` (``<entry>@<tick time>``), encrypted with the tier's key, whose items
    expire two days after their tick (TTL on ``expires_at``). A named table: CloudFormation refuses to replace it
    rather than start an empty one (which would let a Beat running through the replacement publish a tick twice).
    No point-in-time recovery: a restore makes a new table, and a fence item is worth nothing once its tick passed.

    Attributes:
        table: the table.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        table_name: str,
        encryption_key: kms.IKey,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        """
        :param table_name: physical name (``broker_tier_contract.beat_fence_table_name``).
        :param encryption_key: encrypts the table at rest (the tier's key).
        :param removal_policy: what stack deletion does to the table.
        """
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Table",
            table_name=table_name,
            partition_key=dynamodb.Attribute(name=contract.BEAT_FENCE_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=encryption_key,
            time_to_live_attribute=contract.BEAT_FENCE_TTL_ATTRIBUTE,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=False
            ),
            removal_policy=removal_policy,
        )
        acknowledge(
            self.table,
            "DDB3",
            "No point-in-time recovery: the table holds only claims of ticks of the last two days, each worth "
            "nothing once its tick has passed, and a restore creates a new table that Beat would not use.",
        )

    def allow_claims(self, role: iam.IRole, encryption_key: kms.IKey) -> None:
        """Lets ``role`` (Beat's) create fence items and nothing else: ``PutItem`` on this table, with only the
        fence's attributes, and the table key through DynamoDB only."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ClaimBeatTicks",
                actions=["dynamodb:PutItem"],
                resources=[self.table.table_arn],
                conditions={"ForAllValues:StringEquals": {"dynamodb:Attributes": list(contract.BEAT_FENCE_ATTRIBUTES)}},
            )
        )
        # what CDK's own table grants give a writer of a table with a customer managed key (aws-dynamodb's
        # grantWriteData), through DynamoDB only
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="BeatFenceEncryption",
                actions=["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"],
                resources=[encryption_key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"dynamodb.{cdk.Aws.REGION}.amazonaws.com"}},
            )
        )
