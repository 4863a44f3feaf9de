"""cdk-nag wiring: a finding fails synthesis, and an acknowledgment with a reason clears it."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_sqs as sqs

from broker_tier.nag import acknowledge, add_aws_solutions_checks


def synth_queue_app(tmp_path, *, acknowledged: bool) -> None:
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "NagProbe")
    queue = sqs.Queue(stack, "PlainQueue")  # no DLQ (SQS3), no TLS-only policy (SQS4)
    if acknowledged:
        acknowledge(queue, "SQS3", "probe: a queue without a DLQ")
        acknowledge(queue, "SQS4", "probe: a queue without a TLS-only policy")
    add_aws_solutions_checks(app)
    app.synth()


def test_unacknowledged_finding_fails_synthesis_and_acknowledged_one_passes(tmp_path):
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        synth_queue_app(tmp_path / "failing", acknowledged=False)
    report = (tmp_path / "failing" / "validation-report.json").read_text()
    assert "AwsSolutions-SQS3" in report and "AwsSolutions-SQS4" in report
    synth_queue_app(tmp_path / "passing", acknowledged=True)
