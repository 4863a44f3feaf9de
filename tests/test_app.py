"""app.py as the CDK CLI runs it: an invalid configuration fails synthesis and writes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tier_testing import ROOT, project_context


def run_app(context: dict, outdir) -> subprocess.CompletedProcess:
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(outdir)}
    return subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_invalid_configuration_exits_non_zero_and_synthesizes_nothing(tmp_path):
    context = project_context()
    context["broker-tier"]["environments"]["staging"]["cache"]["node_type"] = "cache.t4g.micro"
    result = run_app(context, tmp_path)
    assert result.returncode == 1
    assert "invalid configuration; nothing was synthesized" in result.stderr
    assert "environment 'staging': cache.node_type = 'cache.t4g.micro' is not allowed" in result.stderr
    assert not (tmp_path / "manifest.json").exists()


def test_unknown_selected_environment_is_refused(tmp_path):
    result = run_app({**project_context(), "env": "qa"}, tmp_path)
    assert result.returncode == 1 and "context 'env' = 'qa' is not allowed" in result.stderr
