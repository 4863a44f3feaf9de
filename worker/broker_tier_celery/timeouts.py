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
"""A BRPOP still unanswered this long after its own time-out makes the worker ask which node the endpoint's name
leads to now (kombu waits its ``health_check_interval``, 25 s, then drops the connection whatever the node)."""
BRPOP_CHECK_PERIOD_SECONDS = 0.5
"""How often the worker's event loop looks for an unanswered BRPOP (and for the answer of a probe it started)."""
NAME_PROBE_REPLY_TIMEOUT_SECONDS = 1.0
"""Longest wait for each reply on a probe's connection through the name (its connect: the connect time-out): a
probe that gets none says the name still leads to a node that does not answer, and the BRPOP is waited for."""
NAME_PROBE_WAIT_SECONDS = 0.1
"""How long a check waits for the probe it just started (a live node answers in milliseconds); a slower answer is
read by the next check."""
DROPPED_BRPOP_KEPT_SECONDS = 300.0
"""How long the socket of a dropped, unanswered BRPOP is kept for the reply a stalled node may still send (what it
carries is put back). A node silent that long has been replaced; its messages live on its replica."""
UNRECORDED_PUT_BACK_PERIOD_SECONDS = 5.0
"""How often the event loop tries to put back messages this process holds (a pop whose record or put-back failed)."""
RECONNECT_INTERVAL_MAX_SECONDS = 1.0
"""Longest pause between two reconnection attempts (kombu's back-off grows to 30 s, which would hold a worker
that long after the name moved)."""


RESULT_STORE_PAUSE_BASE_MS = 100
RESULT_STORE_PAUSE_MAX_MS = 500
RESULT_STORE_RETRIES = 120
"""A result write that fails on a connection error is tried again after a pause drawn between 0 and
``min(MAX, BASE * 2**n)`` ms (Celery's full jitter): about 30 s of retrying, as for a publish, on top of the Redis
backend's own retry of each write; a write that fails for good leaves its task un-acknowledged, to run again
(docs/decisions/result-store-retries.md)."""


BEAT_MAX_LOOP_SECONDS = 10
"""Beat looks at its schedule at least this often (Celery: 300 s), so a Beat that stopped ticking is seen soon."""


def command_give_up_seconds() -> float:
    """Longest a Redis command waits on a silent node before it raises: each try's connect and reply."""
    return REDIS_TRIES * (REDIS_CONNECT_TIMEOUT_SECONDS + REDIS_SOCKET_TIMEOUT_SECONDS)


def silent_brpop_detected_seconds() -> float:
    """Longest an idle consumer waits on a silent node before it drops its BRPOP connection, when the name has
    already moved: the BRPOP overdue, the next check starts a probe, the check after reads its answer."""
    return BRPOP_TIMEOUT_SECONDS + BRPOP_SILENCE_SECONDS + 2 * BRPOP_CHECK_PERIOD_SECONDS


def probe_in_flight_seconds() -> float:
    """Longest a probe through the name takes when nothing answers it."""
    return REDIS_CONNECT_TIMEOUT_SECONDS + NAME_PROBE_REPLY_TIMEOUT_SECONDS


def stall_after_the_name_moves_seconds() -> float:
    """Longest a worker goes on waiting once the name moved: a reconnection try that reached the silent node just
    before gives up, a pause, then the next try reaches the new primary; or a probe sent just before gives up and
    the next check's probe finds the new primary (the shorter of the two)."""
    reconnecting = REDIS_CONNECT_TIMEOUT_SECONDS + REDIS_SOCKET_TIMEOUT_SECONDS + RECONNECT_INTERVAL_MAX_SECONDS
    probing = probe_in_flight_seconds() + 2 * BRPOP_CHECK_PERIOD_SECONDS
    return max(reconnecting, probing)


def result_store_pause_ceilings_seconds() -> list[float]:
    """The ceiling of each pause of a failing result write: Celery draws each between 0 and its ceiling."""
    return [
        min(RESULT_STORE_PAUSE_MAX_MS, RESULT_STORE_PAUSE_BASE_MS << n) / 1000
        for n in range(1, RESULT_STORE_RETRIES + 1)
    ]


def result_store_expected_retry_seconds() -> float:
    """The mean of the pauses a failing result write sleeps through before Celery gives up (each full-jitter pause
    averages half its ceiling); the tries themselves add their own time-outs."""
    return sum(ceiling / 2 for ceiling in result_store_pause_ceilings_seconds())
