"""broker-tier-ops: the installed command, discovery from stack outputs, reports and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from broker_tier.ops.cli import main
from broker_tier.ops.resources import OpsError, discover
from fake_aws import ENV, GROUP

SCRIPT = Path(sys.executable).parent / "broker-tier-ops"


@pytest.mark.parametrize("command", [[], ["failover"], ["failback"], ["redrive"], ["rehearse"]])
def test_help_of_every_command_works_from_the_installed_script(command):
    result = subprocess.run([str(SCRIPT), *command, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: broker-tier-ops")


def test_discovery_reads_the_three_stacks_outputs(aws):
    resources = discover(aws.clients["cloudformation"], ENV)
    assert resources.replication_group_id == GROUP
    assert set(resources.queues) == {"interactive", "default"}
    assert resources.queues["default"].dead_letter_url == aws.tier.queues["default"]["dlq_url"]
    assert resources.service_names == {"interactive": "worker-interactive", "default": "worker-default",
                                       "beat": "beat"}
    assert (resources.cluster_name, resources.alarm_name_prefix) == (aws.tier.cluster, f"broker-tier-{ENV}-")


def test_an_undeployed_environment_is_a_clear_error(aws):
    with pytest.raises(OpsError, match="BrokerTier-nowhere-State could not be read"):
        discover(aws.clients["cloudformation"], "nowhere")


def test_failover_command_writes_both_reports_and_exits_by_outcome(aws, tmp_path, capsys):
    code = main(["failover", "--env", ENV, "--poll", "1", "--report-dir", str(tmp_path)], clients=aws.clients)
    assert code == 0, capsys.readouterr().err
    (json_report,) = tmp_path.glob("failover-drill-*.json")
    assert json.loads(json_report.read_text())["outcome"] == "passed"
    assert json_report.with_suffix(".md").read_text().startswith("# broker-tier-ops failover: PASSED")
    assert "TestFailover called" in capsys.readouterr().err  # progress with elapsed time on stderr


def test_refused_drill_exits_2(aws, tmp_path):
    aws.group.multi_az = "disabled"
    assert main(["failover", "--env", ENV, "--report-dir", str(tmp_path)], clients=aws.clients) == 2


def test_unknown_queue_class_names_the_classes(aws, tmp_path, capsys):
    code = main(["redrive", "--env", ENV, "--queue-class", "nightly", "--report-dir", str(tmp_path)],
                clients=aws.clients)
    assert code == 2 and "classes: default, interactive" in capsys.readouterr().err


def test_rate_beyond_sqs_ceiling_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["redrive", "--env", ENV, "--queue-class", "default", "--rate", "600"])
    assert exited.value.code == 2 and "at most 500" in capsys.readouterr().err


def test_rehearse_is_offline_and_refuses_bad_phases_before_starting_anything(tmp_path, capsys):
    # no AWS clients, no --env discovery: the rehearsal runs on loopback (tests/broker_tier/rehearsal/)
    code = main(["rehearse", "--before", "4", "--backlog", "5", "--report-dir", str(tmp_path)])
    assert code == 2
    assert "--backlog 5 is not allowed; allowed: at least 0 and less than --before (4)" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing ran, no report
