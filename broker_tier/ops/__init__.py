"""``broker-tier-ops``: status, the failover drill, fail-back, dead letters and their redrive, the toolbox, the
rehearsal and the cost estimate (``cli``).

No command ever reboots a node: a reboot of the primary does not fail over, and the primary and
then its replicas come back empty (ElastiCache's "Minimizing downtime with Multi-AZ" documentation).
``runbooks/`` holds the procedures around them.
"""

from broker_tier.ops import verdicts as _verdicts

_verdicts.register()  # every report a command makes states its verdict, however the command was reached
