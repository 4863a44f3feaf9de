"""``broker-tier-ops rehearse``: a failover rehearsal on loopback, no AWS account needed.

Two ``redis-server`` nodes behind an endpoint that moves as the primary endpoint's DNS name does, moto's SQS,
real ``celery worker`` processes started from the synthesized task definition, and a producer publishing canary
tasks; a fault (``faults``) strikes while tasks flow, and every execution is counted. Imports nothing of
``broker_tier.ops``: what it shares with the drill is in ``broker_tier.evidence``.
"""
