"""The container health check: ``python -m broker_tier_celery.health worker|beat`` exits 0 while the process's
heartbeat is younger than ``HEARTBEAT_STALE_SECONDS``, 1 otherwise (docs/decisions/container-health-checks.md).

It imports neither Celery nor kombu: ECS runs it every ``HEALTH_CHECK_INTERVAL_SECONDS`` in a small container.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from broker_tier_celery.heartbeat import PROCESSES, heartbeat_path
from broker_tier_contract import HEARTBEAT_STALE_SECONDS
from broker_tier_contract import ContainerEnvironment as Variables


@dataclass(frozen=True)
class Verdict:
    healthy: bool
    reason: str


def stale_seconds(environ: Mapping[str, str] = os.environ) -> float:
    """The contract's bound, or a test's shorter one."""
    raw = environ.get(Variables.HEARTBEAT_STALE_SECONDS.name)
    try:
        return float(raw) if raw else float(HEARTBEAT_STALE_SECONDS)
    except ValueError:
        return float(HEARTBEAT_STALE_SECONDS)


def check(process: str, *, environ: Mapping[str, str] = os.environ, now: float | None = None) -> Verdict:
    """Whether ``process``'s heartbeat is recent enough."""
    path, bound = heartbeat_path(process, environ), stale_seconds(environ)
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except FileNotFoundError:
        return Verdict(False, f"{process}: no heartbeat at {path} (not started, or it cannot write there)")
    if age > bound:
        what = "broker round trip" if process == "worker" else "tick"
        return Verdict(False, f"{process}: last {what} {age:.0f} s ago, over {bound:g} s ({path})")
    return Verdict(True, f"{process}: heartbeat {max(age, 0):.0f} s ago")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] not in PROCESSES:
        print(f"usage: python -m broker_tier_celery.health {'|'.join(PROCESSES)}", file=sys.stderr)
        return 2
    verdict = check(args[0])
    print(verdict.reason, file=sys.stdout if verdict.healthy else sys.stderr)
    return 0 if verdict.healthy else 1


if __name__ == "__main__":
    sys.exit(main())
