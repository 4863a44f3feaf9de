"""Runs the container health check exactly as the contract gives it to the task definitions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import broker_tier_contract as contract

WORKER_DIR = Path(__file__).resolve().parents[2] / "worker"


def run_health_check(process: str, environ: dict[str, str]) -> subprocess.CompletedProcess:
    """``contract.health_check_command(process)`` as a process (ECS's ``CMD`` marker dropped, ``python`` being this
    interpreter), with the container's ``environ`` on top of this one's."""
    kind, program, *arguments = contract.health_check_command(process)
    assert (kind, program) == ("CMD", "python")
    return subprocess.run(
        [sys.executable, *arguments],
        env={**os.environ, "PYTHONPATH": str(WORKER_DIR), **environ},
        capture_output=True,
        text=True,
        timeout=30,
    )
