"""``broker-tier-ops``: the failover drill, fail-back and dead-letter redrive, with boto3.

No command ever reboots a node: a reboot of the primary does not fail over, and the primary and
then its replicas come back empty (ElastiCache's "Minimizing downtime with Multi-AZ" documentation).
``runbooks/`` holds the procedures around them.
"""
