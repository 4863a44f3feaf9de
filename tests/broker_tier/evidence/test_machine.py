"""What every committed summary records about the machine it was measured on."""

from __future__ import annotations

import platform
import subprocess

from tier_testing import ROOT

from broker_tier.evidence.machine import load_average, machine


def test_the_machine_names_its_cpu_memory_commit_and_the_versions_asked_for():
    found = machine(["pytest", "no-such-package-xyz"], redis_server=True)
    assert found["cpu_count"] >= 1 and found["memory_gib"] > 0 and found["cpu_model"]
    assert found["versions"]["python"] == platform.python_version()
    assert found["versions"]["pytest"][0].isdigit()
    assert found["versions"]["no-such-package-xyz"] == "not installed"
    assert found["versions"]["redis-server"][0].isdigit()  # `redis-server --version`'s v=..., the tests' server
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert found["git_commit"] == head.stdout.strip()
    assert isinstance(found["git_dirty"], bool)


def test_redis_server_is_named_only_when_asked_for():
    assert "redis-server" not in machine([])["versions"]


def test_the_load_average_is_three_rounded_figures():
    load = load_average()
    assert len(load) == 3 and all(x >= 0 and round(x, 2) == x for x in load)
