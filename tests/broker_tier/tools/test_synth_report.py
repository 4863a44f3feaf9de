"""The synth summary: a construct's warning is shown and does not fail; a validation finding fails."""

from __future__ import annotations

import json

from broker_tier.tools.synth_report import main

WARNING = {
    "ruleName": "Annotation::broker-tier:production-alarms-reach-no-one",
    "severity": "warning",
    "description": "environment 'prod' is production, but ...",
    "ruleMetadata": {"cdk:annotation": "true"},
}
NAG_FINDING = {"ruleName": "AwsSolutions-SQS3", "severity": "error", "description": "no DLQ"}


def assembly(tmp_path, plugins: list[dict]):
    (tmp_path / "manifest.json").write_text(
        json.dumps(
            {
                "artifacts": {
                    "BrokerTier-prod-Monitoring": {
                        "type": "aws:cloudformation:stack",
                        "properties": {"templateFile": "t.json"},
                    }
                }
            }
        )
    )
    (tmp_path / "t.json").write_text(json.dumps({"Resources": {}}))
    (tmp_path / "validation-report.json").write_text(json.dumps({"pluginReports": plugins}))
    return str(tmp_path)


def test_a_construct_warning_is_printed_not_failed(tmp_path, capsys):
    outdir = assembly(tmp_path, [{"pluginName": "Construct Annotations", "violations": [WARNING]}])
    assert main([outdir]) == 0
    out = capsys.readouterr().out
    assert "WARNING Annotation::broker-tier:production-alarms-reach-no-one: environment 'prod'" in out
    assert "0 unacknowledged findings" in out


def test_a_validation_finding_still_fails(tmp_path, capsys):
    outdir = assembly(
        tmp_path,
        [
            {"pluginName": "AwsSolutions", "violations": [NAG_FINDING]},
            {"pluginName": "Construct Annotations", "violations": [WARNING]},
        ],
    )
    assert main([outdir]) == 1
    assert "AwsSolutions: 1 unacknowledged finding(s)" in capsys.readouterr().out
