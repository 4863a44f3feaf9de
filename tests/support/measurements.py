"""A pytest plugin (loaded by tests/conftest.py) with which a test records a figure it measured: the ``measured``
fixture, called as ``measured(name, value, **context)``. Run with ``--record-measurements FILE`` (or with
``BROKER_TIER_RECORD_MEASUREMENTS=FILE`` in the environment), each call appends one JSON line to FILE: the test's
id, the figure's name, its value and the context given. Otherwise a call does nothing, and the test's own prints
and assertions are all there is. ``python -m broker_tier.tools.handback_evidence`` runs the hand-back tests with it
and turns the lines into a committed summary."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

OPTION = "--record-measurements"
ENVIRONMENT_VARIABLE = "BROKER_TIER_RECORD_MEASUREMENTS"
"""The same, for a run whose command line the caller does not build (the option wins when both are given)."""

Measured = Callable[..., None]
"""``measured(name, value, **context)``."""


@dataclass(frozen=True)
class Recorder:
    """Appends figures to ``path`` as JSON lines, or, without a path, drops them."""

    path: Path | None

    def record(self, test: str, name: str, value: float, context: dict[str, object]) -> None:
        if self.path is None:
            return
        line = {"test": test, "name": name, "value": value, "context": context}
        # appended, one line per figure: a run that fails half-way still leaves the figures it measured
        with self.path.open("a") as file:
            file.write(json.dumps(line, sort_keys=True) + "\n")


def recorder_for(option: str | None, environ: Mapping[str, str]) -> Recorder:
    """Where the figures go: the option's file, else the environment variable's, else nowhere."""
    target = option or environ.get(ENVIRONMENT_VARIABLE) or None
    return Recorder(Path(target) if target else None)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        OPTION,
        metavar="FILE",
        default=None,
        help=f"append each figure a test measures to FILE as a JSON line (or set {ENVIRONMENT_VARIABLE})",
    )


@pytest.fixture
def measured(request: pytest.FixtureRequest) -> Measured:
    """``measured(name, value, **context)``: record a figure this test measured (only when asked to)."""
    recorder = recorder_for(request.config.getoption(OPTION), os.environ)
    test = request.node.nodeid

    def measure(name: str, value: float, **context: object) -> None:
        recorder.record(test, name, value, context)

    return measure
