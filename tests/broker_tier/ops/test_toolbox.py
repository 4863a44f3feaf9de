"""broker-tier-ops toolbox: run the toolbox task with ECS Exec on and print the redis-cli command."""

from __future__ import annotations

import io
import shlex

import pytest
from fake_aws import ENV

from broker_tier.evidence.report import Report
from broker_tier.ops.cli import main
from broker_tier.ops.resources import discover
from broker_tier.ops.toolbox import ToolboxRun


class ExecAgent:
    """moto's DescribeTasks has no managedAgents: report the ECS Exec agent as ``status`` (validated answer)."""

    def __init__(self, aws, status: str | None, task_status: str = "RUNNING") -> None:
        self.aws, self.status, self.task_status = aws, status, task_status
        aws.api.handlers[("ecs", "DescribeTasks")] = self.describe_tasks

    def describe_tasks(self, **params):
        answer = self.aws.api._original(self.aws.clients["ecs"], "DescribeTasks", params)
        answer.pop("ResponseMetadata", None)
        for task in answer["tasks"]:
            task["lastStatus"] = self.task_status
            for container in task.get("containers", []):
                if self.status:
                    container["managedAgents"] = [{"name": "ExecuteCommandAgent", "lastStatus": self.status}]
        return answer


def toolbox(aws, *, dry_run: bool = False, timeout: float = 60) -> Report:
    resources = discover(aws.clients["cloudformation"], ENV)
    report = Report(
        "toolbox",
        ENV,
        resources.toolbox.task_definition_arn,
        dry_run,
        monotonic=aws.clock.monotonic,
        stream=io.StringIO(),
    )
    aws.api.calls.clear()
    return ToolboxRun(aws.clients["ecs"], resources, report, timeout_seconds=timeout, sleep=aws.clock.sleep).run()


def test_runs_one_task_with_ecs_exec_in_the_private_subnets_and_prints_the_redis_cli_command(aws):
    aws.tier.add_toolbox_network()
    ExecAgent(aws, "RUNNING")
    report = toolbox(aws)
    assert report.outcome == "passed", report.error
    (run,) = [params for service, op, params in aws.api.calls if op == "RunTask"]
    assert run["enableExecuteCommand"] is True and run["launchType"] == "FARGATE"
    network = run["networkConfiguration"]["awsvpcConfiguration"]
    toolbox_outputs = discover(aws.clients["cloudformation"], ENV).toolbox
    assert network == {
        "subnets": toolbox_outputs.subnet_ids,
        "securityGroups": [toolbox_outputs.security_group_id],
        "assignPublicIp": "DISABLED",
    }
    assert len(network["subnets"]) == 2
    task_arn = report.measurements["task_arn"]
    connect = shlex.split(report.measurements["connect"])
    assert connect[:3] == ["aws", "ecs", "execute-command"] and task_arn in connect and "--interactive" in connect
    redis_cli = shlex.split(connect[connect.index("--command") + 1])
    assert redis_cli == [
        "redis-cli",
        "--tls",
        "-h",
        f"master.broker-tier-{ENV}.abc123.euw1.cache.amazonaws.com",
        "-p",
        "6380",
    ]  # no -a: the token is the container's REDISCLI_AUTH, never on a command line
    assert report.measurements["stop"].startswith(f"aws ecs stop-task --cluster broker-tier-{ENV}-cluster --task ")


def test_fails_when_ecs_exec_never_becomes_ready(aws):
    aws.tier.add_toolbox_network()
    ExecAgent(aws, "PENDING")
    report = toolbox(aws, timeout=30)
    assert report.outcome == "failed" and "ECS Exec is not ready" in report.error
    assert [c.passed for c in report.verification] == [False]


def test_a_task_that_never_runs_aborts_through_the_shared_errors_and_says_how_to_stop_it(aws, tmp_path, capsys):
    aws.tier.add_toolbox_network()
    ExecAgent(aws, None, task_status="PENDING")
    code = main(["toolbox", "--env", ENV, "--timeout", "10", "--report-dir", str(tmp_path)], clients=aws.clients)
    err = capsys.readouterr().err
    assert code == 3  # aborted: RunTask had started a task
    assert "to stop it: aws ecs stop-task" in err and "time-out" in err.splitlines()[-1]
    assert "ABORTED (exit 3)" in err.splitlines()[-1]


def test_dry_run_starts_nothing(aws):
    report = toolbox(aws, dry_run=True)
    assert report.outcome == "planned" and any("RunTask" in step for step in report.plan)
    assert aws.api.mutating_calls() == []  # no RunTask, nor any other call that changes something


def test_refuses_without_the_toolbox_outputs(aws, tmp_path, capsys):
    aws.clients["cloudformation"].delete_stack(StackName=f"BrokerTier-{ENV}-Compute")
    assert main(["toolbox", "--env", ENV, "--report-dir", str(tmp_path)], clients=aws.clients) == 2
    assert "toolbox outputs" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["toolbox", "--help"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 0 and "redis-cli" in capsys.readouterr().out
