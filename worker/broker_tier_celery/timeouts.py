"""How long the package waits on Redis before it gives up on a node that went silent, and what that bounds
(docs/decisions/redis-silent-primary.md)."""

from __future__ import annotations

REDIS_SOCKET_TIMEOUT_SECONDS = 2.0
"""Longest wait for one Redis reply (broker and result backend): AWS's client-side time-out example for
ElastiCache; a command of this tier (one key, small values) takes milliseconds."""
REDIS_CONNECT_TIMEOUT_SECONDS = 1.0
"""Longest wait for a TCP connection to Redis (a node whose packets vanish never answers the SYN)."""
REDIS_TRIES = 2
"""redis-py tries a timed-out command once more on a new connection (``retry_on_timeout``): through the name,
which may have moved by then."""
BRPOP_TIMEOUT_SECONDS = 1.0
"""kombu's server-side BRPOP time-out (``Transport.brpop_timeout``): a live node replies within it."""
BRPOP_SILENCE_SECONDS = 2.0
"""A BRPOP still unanswered this long after its own time-out means a silent node (kombu waits its
``health_check_interval``, 25 s). Not shorter: a node that was only slow could serve a BRPOP dropped meanwhile,
and that message would be lost."""
BRPOP_CHECK_PERIOD_SECONDS = 0.5
"""How often the worker's event loop looks for a silent BRPOP."""
RECONNECT_INTERVAL_MAX_SECONDS = 1.0
"""Longest pause between two reconnection attempts (kombu's back-off grows to 30 s, which would hold a worker
that long after the name moved)."""


BEAT_MAX_LOOP_SECONDS = 10
"""Beat looks at its schedule at least this often (Celery: 300 s), so a Beat that stopped ticking is seen soon."""


def command_give_up_seconds() -> float:
    """Longest a Redis command waits on a silent node before it raises: each try's connect and reply."""
    return REDIS_TRIES * (REDIS_CONNECT_TIMEOUT_SECONDS + REDIS_SOCKET_TIMEOUT_SECONDS)


def silent_brpop_detected_seconds() -> float:
    """Longest an idle consumer waits on a silent node before it drops its BRPOP connection."""
    return BRPOP_TIMEOUT_SECONDS + BRPOP_SILENCE_SECONDS + BRPOP_CHECK_PERIOD_SECONDS


def stall_after_the_name_moves_seconds() -> float:
    """Longest a worker goes on waiting once the name moved: a try that reached the silent node just before
    gives up, a pause, then the next try reaches the new primary."""
    return REDIS_CONNECT_TIMEOUT_SECONDS + REDIS_SOCKET_TIMEOUT_SECONDS + RECONNECT_INTERVAL_MAX_SECONDS
