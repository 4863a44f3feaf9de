"""The context the app reads its configuration from: as written, nulls included, whether the CDK CLI passes
it (``CDK_CONTEXT_JSON``, and a file for what does not fit), ``python app.py`` runs without the CLI (the
cdk.json beside it), or a tool synthesizes in-process (a dict)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from tier_testing import ROOT, project_context  # first: puts the pinned Node on PATH for jsii

from broker_tier.app_builder import synthesize  # noqa: E402
from broker_tier.config import CLI_CONTEXT_ENV, CLI_CONTEXT_OVERFLOW_ENV, CONTEXT_KEY, ConfigError  # noqa: E402

PRODUCTION_NULL = (
    "environment 'prod': production = null is not allowed; allowed: a JSON boolean (true or false); "
    "leave the key out for the default false"
)
REFUSED = "broker-tier: invalid configuration; nothing was synthesized:"


def context_with_null_production() -> dict:
    context = project_context()
    context[CONTEXT_KEY]["environments"]["prod"]["production"] = None
    return context


def run_app(app: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """``app`` (an app.py) run as the CDK CLI runs it, with ``env`` instead of the CLI's variables."""
    clean = {
        key: value
        for key, value in os.environ.items()
        if key not in (CLI_CONTEXT_ENV, CLI_CONTEXT_OVERFLOW_ENV, "CDK_OUTDIR")
    }
    clean["PYTHONPATH"] = os.pathsep.join(
        [
            str(ROOT),
            str(ROOT / "worker"),  # this checkout's, not an install's
            *filter(None, [os.environ.get("PYTHONPATH")]),
        ]
    )
    return subprocess.run(
        [sys.executable, app], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=300
    )


# -- in-process: synthesize() gets the context as a dict ---------------------------------------------
def test_a_null_in_the_context_of_an_in_process_synthesis_is_refused(tmp_path):
    # cdk.App(context=...) drops the null on its way through jsii: validated from the app's context, prod
    # would silently synthesize as not production
    with pytest.raises(ConfigError) as raised:
        synthesize(context_with_null_production(), outdir=tmp_path, environment="prod")
    assert str(raised.value) == PRODUCTION_NULL


def test_a_whole_number_written_with_a_decimal_point_for_an_integer_key_is_refused(tmp_path):
    # cdk.App(context=...) turns 2.0 into 2 (as the CDK CLI does in CDK_CONTEXT_JSON, where this cannot be seen)
    context = project_context()
    context[CONTEXT_KEY]["environments"]["prod"]["cache"]["replicas"] = 2.0
    with pytest.raises(ConfigError) as raised:
        synthesize(context, outdir=tmp_path, environment="prod")
    assert str(raised.value) == (
        "environment 'prod': cache.replicas = 2.0 is not allowed; allowed: a JSON integer, 1 to 5"
    )


def test_a_null_environment_selected_with_changes_is_refused_not_a_type_error(tmp_path):
    context = project_context()
    context[CONTEXT_KEY]["environments"]["staging"] = None
    with pytest.raises(ConfigError, match="^environment 'staging': null is not allowed; allowed: a JSON object"):
        synthesize(context, outdir=tmp_path, environment="staging", changes={"compute": {"broker": "redis"}})


# -- app.py as the CDK CLI runs it -----------------------------------------------------------------
def test_a_null_the_cli_passes_fails_synthesis_in_one_message(tmp_path):
    outdir = tmp_path / "cdk.out"
    result = run_app("app.py", {CLI_CONTEXT_ENV: json.dumps(context_with_null_production()), "CDK_OUTDIR": str(outdir)})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-2:] == [REFUSED, PRODUCTION_NULL]
    assert not outdir.exists() or not any(outdir.iterdir())


# -- python app.py without the CLI: the cdk.json beside it ------------------------------------------
def standalone_project(tmp_path, context: dict) -> str:
    """A copy of app.py beside a cdk.json of ``context``; returns the app's path."""
    shutil.copy(ROOT / "app.py", tmp_path / "app.py")
    (tmp_path / "cdk.json").write_text(json.dumps({"app": "python app.py", "context": context}))
    return str(tmp_path / "app.py")


def test_python_app_py_without_the_cli_refuses_a_null_in_the_cdk_json_beside_it(tmp_path):
    result = run_app(standalone_project(tmp_path, context_with_null_production()), {})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-2:] == [REFUSED, PRODUCTION_NULL]
    assert not (tmp_path / "cdk.out").exists()  # refused before the CDK starts: nothing written


@pytest.mark.slow  # synthesizes in a subprocess (scheduled first: tests/conftest.py)
def test_python_app_py_without_the_cli_synthesizes_the_cdk_json_beside_it_into_cdk_out(tmp_path):
    context = project_context()
    environments = context[CONTEXT_KEY]["environments"]
    context[CONTEXT_KEY]["environments"] = {"dev": environments["dev"]}  # one environment: faster
    result = run_app(standalone_project(tmp_path, context), {})
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "cdk.out" / "manifest.json").read_text())
    assert {
        name for name, artifact in manifest["artifacts"].items() if artifact["type"] == "aws:cloudformation:stack"
    } == {"BrokerTier-dev-State", "BrokerTier-dev-Compute", "BrokerTier-dev-Monitoring"}
    assert (
        f"broker-tier: synthesized 3 stacks into {tmp_path / 'cdk.out'} from cdk.json's context alone "
        f"(without the CDK CLI: no cdk.context.json, no -c options)"
    ) in result.stderr
