"""``broker-tier-ops rehearse``: a failover rehearsal on loopback, no AWS account needed.

A primary and a replica ``redis-server`` (AUTH, TLS) behind an endpoint that behaves as the
replication group's primary endpoint (a DNS name) does in a failover, moto's SQS server with the
class's queues, real ``celery worker`` processes started from the synthesized worker task
definition, and a producer publishing canary tasks at a steady rate through the settings package.
A fault (promote, power-loss, reboot) strikes while tasks flow; every execution is counted from the
workers' canary ledger lines, and the report says what was lost, duplicated or stalled.

One concept per module: ``tls``, ``redis_pair``, ``endpoint``, ``sqs``, ``definition`` (the
template mirrored), ``workers``, ``producer``, ``ledger``, ``faults``, ``accounting``, ``goals``,
``runner``.
"""
