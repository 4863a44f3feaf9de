"""What a measurement was taken on: the machine, its load, the commit and the versions of what could change the
figures. Every committed summary (the rehearsal series, the benchmark) records it beside its figures."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def machine(packages: Iterable[str], *, redis_server: bool = False) -> dict:
    """The CPU, memory, platform, commit (and whether the tree had uncommitted changes) and the versions of Python
    and ``packages`` (and of ``redis-server``)."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in _read("/proc/cpuinfo").splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    versions = {"python": platform.python_version()}
    versions.update({name: _version(name) for name in packages})
    if redis_server:
        server = _command(shutil.which("redis-server") or "redis-server", "--version")
        versions["redis-server"] = next((p.split("=", 1)[1] for p in server.split() if p.startswith("v=")), server)
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "platform": platform.platform(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "versions": versions,
        "git_commit": _command("git", "rev-parse", "HEAD"),
        "git_dirty": bool(_command("git", "status", "--porcelain", "--untracked-files=no")),
    }


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded."""
    return [round(x, 2) for x in os.getloadavg()]


def load_since(at_start: list[float]) -> dict[str, list[float]]:
    """The load a measurement ran under, as every summary records it: ``at_start`` (read before it) and now."""
    return {"at_start": at_start, "at_end": load_average()}


def _command(*args: str) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, check=True, cwd=ROOT).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"
