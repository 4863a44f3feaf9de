"""The resource types whose replacement or deletion loses data, and what is lost: the replacement guard
judges them, the cost estimate reads them from the guard's baseline."""

from __future__ import annotations

CONSEQUENCES = {
    "AWS::ElastiCache::ReplicationGroup": "replaces the replication group: every key is lost (task results, "
    "and queued tasks in redis broker mode)",
    "AWS::ElastiCache::SubnetGroup": "replaces the cache subnet group, and with it the replication group "
    "(its CacheSubnetGroupName is create-only): every key is lost",
    "AWS::SQS::Queue": "replaces the queue: every message in it is lost",
    "AWS::S3::Bucket": "replaces the claim check's payload bucket: the payload of every claim-checked task message "
    "still queued or dead-lettered is lost (its worker cannot fetch it, and the message ends in the dead-letter queue)",
    "AWS::SecretsManager::Secret": "replaces the secret: the AUTH token changes and clients lose access",
    "AWS::KMS::Key": "replaces the KMS key: data encrypted with the old key can no longer be read once it is deleted",
    "AWS::Logs::LogGroup": "replaces the log group: its log history is lost",
    "AWS::EC2::VPC": "replaces the VPC: the cache and services in it must be rebuilt",
    "AWS::EC2::Subnet": "replaces the subnet: what runs in it (ECS tasks, a NAT gateway) must leave it first, "
    "since a subnet with network interfaces cannot be deleted",
}
"""What is lost when CloudFormation replaces a resource of each stateful type."""
STATEFUL_TYPES = tuple(CONSEQUENCES)
