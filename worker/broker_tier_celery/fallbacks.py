"""One warning per fallback: when a private name of kombu, Celery or redis-py is not what the package expects,
the stock behaviour runs and the log says so, once.

The names, and why each is needed: tests/worker/broker_tier_celery/test_private_internals.py.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

logger = logging.getLogger("broker_tier.fallback")

_warned: set[str] = set()
_lock = threading.Lock()


def warn_once(key: str, message: str, *args: Any) -> bool:
    """Log ``message % args`` as a WARNING the first time ``key`` is seen in this process; True if it was logged."""
    with _lock:
        if key in _warned:
            return False
        _warned.add(key)
    logger.warning(message, *args)
    return True
