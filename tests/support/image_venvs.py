"""Virtual environments with an image's packages, installed as its Dockerfile does, built once per test run and
shared by every test (and every pytest-xdist worker) that needs the same pins.

Each ``pip install`` line of a Dockerfile is a layer: its environment is keyed by a hash of the Python, the line's
arguments with each requirement file replaced by its pins, and the layers below it. A later layer is a new
environment that sees the one below it (``image_check.new_venv(base=...)``), so the reference worker's image and a
team's image whose first layer is the tier's pins (examples/team-app) share that first install.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

from broker_tier.tools.image_check import PipStep, new_venv, read_recipe, run_pip_step

BUILT = ".built"
"""Written into an environment once its layer installed and passed pip check."""


def pins(path: Path) -> list[str]:
    """A requirement file's lines that mean something (comments and blank lines dropped), sorted."""
    return sorted(
        line.split("#", 1)[0].strip() for line in path.read_text().splitlines() if line.split("#", 1)[0].strip()
    )


def step_fingerprint(step: PipStep, context: Path) -> str:
    """The pip line as it installs: its options, with each requirement file's name replaced by its pins."""
    files = set(step.requirement_files())
    parts = [f"file:{pins(context / arg)}" if arg in files else arg for arg in step.install_args]
    return repr((parts, step.check))


@contextmanager
def _locked(path: Path):
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other workers wait here while one installs
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class ImageVenvs:
    """``python_for(context)``: the Python of an environment with the packages of ``context``'s Dockerfile."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.installed: list[Path] = []
        """Environments this process built (the others it found built)."""

    def python_for(self, context: Path) -> Path:
        key = hashlib.sha256(f"{sys.executable} {sys.version}".encode())
        below: Path | None = None
        for step in read_recipe(context / "Dockerfile").pip_steps:
            key.update(step_fingerprint(step, context).encode())
            venv = self.root / key.hexdigest()[:16]
            with _locked(venv.with_suffix(".lock")):
                if not (venv / BUILT).exists():
                    shutil.rmtree(venv, ignore_errors=True)  # what a failed attempt left
                    run_pip_step(new_venv(venv, base=below), step, context=context)
                    (venv / BUILT).touch()
                    self.installed.append(venv)
            below = venv
        assert below is not None  # read_recipe refuses a Dockerfile without a pip install
        return below / "bin" / "python"


def shared_root(basetemp: Path) -> Path:
    """Where every pytest-xdist worker of this run finds the environments: beside their own temporary folders."""
    return (basetemp.parent if os.environ.get("PYTEST_XDIST_WORKER") else basetemp) / "image-venvs"
