"""The context the configuration is read from, as written (nulls included): as the CDK CLI passes it
(``CDK_CONTEXT_JSON``, and a file for what does not fit), or as the cdk.json beside app.py holds it."""

from __future__ import annotations

import json

from tier_testing import ROOT, project_context

from broker_tier.config import CLI_CONTEXT_ENV, CLI_CONTEXT_OVERFLOW_ENV, CONTEXT_KEY, cdk_json_context, cli_context


def test_the_cli_context_is_read_as_json_with_its_nulls_and_its_overflow_file(tmp_path, monkeypatch):
    overflow = tmp_path / "context-overflow.json"
    overflow.write_text(json.dumps({CONTEXT_KEY: {"environments": {"staging": None}}}))
    monkeypatch.setenv(CLI_CONTEXT_ENV, json.dumps({"env": "prod", "flag": None}))
    monkeypatch.setenv(CLI_CONTEXT_OVERFLOW_ENV, str(overflow))
    assert cli_context() == {"env": "prod", "flag": None, CONTEXT_KEY: {"environments": {"staging": None}}}


def test_without_the_cli_there_is_no_cli_context_and_cdk_json_is_read(monkeypatch):
    monkeypatch.delenv(CLI_CONTEXT_ENV, raising=False)
    monkeypatch.delenv(CLI_CONTEXT_OVERFLOW_ENV, raising=False)
    assert cli_context() is None
    assert cdk_json_context(ROOT / "cdk.json") == project_context()
