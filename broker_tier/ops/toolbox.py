"""The operators' toolbox: run one task with a TLS redis-cli in the tier's VPC, reachable by ECS Exec."""

from __future__ import annotations

import argparse
import shlex
import time
from collections.abc import Callable

import broker_tier_contract as contract
from broker_tier.evidence.errors import OpsError
from broker_tier.evidence.report import Check, Report
from broker_tier.ops.command import Command, positive
from broker_tier.ops.resources import TierResources

EXEC_AGENT = "ExecuteCommandAgent"
STARTED_BY = "broker-tier-ops"


def connect_command(*, cluster: str, task_arn: str, host: str, port: str) -> str:
    """The ``aws ecs execute-command`` line that opens redis-cli (TLS; the token comes from REDISCLI_AUTH)."""
    redis_cli = ["redis-cli", "--tls", "-h", host, "-p", port]
    return shlex.join(
        [
            "aws",
            "ecs",
            "execute-command",
            "--cluster",
            cluster,
            "--task",
            task_arn,
            "--container",
            contract.TOOLBOX_CONTAINER,
            "--interactive",
            "--command",
            shlex.join(redis_cli),
        ]
    )


def stop_command(*, cluster: str, task_arn: str) -> str:
    return shlex.join(
        ["aws", "ecs", "stop-task", "--cluster", cluster, "--task", task_arn, "--reason", "toolbox no longer needed"]
    )


class ToolboxRun:
    def __init__(
        self,
        ecs,
        resources: TierResources,
        report: Report,
        *,
        timeout_seconds: float,
        poll_seconds: float = 5,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.ecs, self.resources, self.report = ecs, resources, report
        self.timeout_seconds, self.poll_seconds = timeout_seconds, poll_seconds
        self.sleep = sleep or time.sleep

    def run(self) -> Report:
        report, resources, toolbox = self.report, self.resources, self.resources.toolbox
        cluster, host, port = resources.cluster_name, resources.redis_endpoint, resources.redis_port
        if toolbox is None or cluster is None or host is None or port is None:
            raise OpsError("the toolbox task, the cluster or the Redis endpoint is unknown: deploy the stacks first")
        if report.plan_steps(
            [
                f"RunTask {toolbox.task_definition_arn} on {cluster} (Fargate, ECS Exec on, subnets "
                f"{','.join(toolbox.subnet_ids)}, security group {toolbox.security_group_id}, no public IP)",
                "wait until the task runs and its ECS Exec agent is RUNNING",
                "print the aws ecs execute-command line that opens redis-cli, and the stop-task line",
            ]
        ):
            return report
        # AWS errors and waiter time-outs end the command through the CLI's shared classification
        # (broker_tier.evidence.errors): after RunTask that is "aborted", with the stop line already printed.
        task_arn = self._run_task(cluster, toolbox)
        if task_arn is None:
            return report
        stop = stop_command(cluster=cluster, task_arn=task_arn)
        report.measurements.update({"task_arn": task_arn, "stop": stop})
        report.say(f"to stop it: {stop}  (it stops by itself after {contract.TOOLBOX_LIFETIME_SECONDS // 60} min)")
        self.ecs.get_waiter("tasks_running").wait(
            cluster=cluster,
            tasks=[task_arn],
            WaiterConfig={
                "Delay": self.poll_seconds,
                "MaxAttempts": max(1, int(self.timeout_seconds // self.poll_seconds)),
            },
        )
        report.say(f"task running: {task_arn}")
        agent_ready = self._wait_for_exec_agent(cluster, task_arn)
        connect = connect_command(cluster=cluster, task_arn=task_arn, host=host, port=port)
        report.measurements.update({"connect": connect, "log_group": toolbox.log_group_name})
        report.add_checks(
            report.verification,
            [
                Check(
                    "ecs_exec_agent_running",
                    agent_ready,
                    f"{EXEC_AGENT} of container {contract.TOOLBOX_CONTAINER}: "
                    + ("RUNNING" if agent_ready else f"not RUNNING after {self.timeout_seconds:g} s"),
                )
            ],
        )
        report.say(f"open redis-cli:   {connect}")
        report.say(f"stop the toolbox: {stop}")
        report.finish(
            "passed" if agent_ready else "failed",
            None if agent_ready else "ECS Exec is not ready in the task; see runbooks/operator-access.md",
        )
        return report

    def _run_task(self, cluster: str, toolbox) -> str | None:
        answer = self.ecs.run_task(
            cluster=cluster,
            taskDefinition=toolbox.task_definition_arn,
            launchType="FARGATE",
            count=1,
            enableExecuteCommand=True,
            startedBy=STARTED_BY,
            networkConfiguration={
                "awsvpcConfiguration": {
                    "subnets": toolbox.subnet_ids,
                    "securityGroups": [toolbox.security_group_id],
                    "assignPublicIp": "DISABLED",
                }
            },
        )
        if answer.get("failures") or not answer.get("tasks"):
            self.report.finish("failed", f"RunTask failed: {answer.get('failures')}")
            return None
        task_arn = answer["tasks"][0]["taskArn"]
        self.report.say(f"toolbox task started: {task_arn}")
        return task_arn

    def _wait_for_exec_agent(self, cluster: str, task_arn: str) -> bool:
        deadline = self.report.elapsed() + self.timeout_seconds
        while True:
            task = self.ecs.describe_tasks(cluster=cluster, tasks=[task_arn])["tasks"][0]
            agents = [
                agent
                for container in task.get("containers", [])
                if container.get("name") == contract.TOOLBOX_CONTAINER
                for agent in container.get("managedAgents", [])
                if agent.get("name") == EXEC_AGENT
            ]
            if agents and agents[0].get("lastStatus") == "RUNNING":
                return True
            if self.report.elapsed() >= deadline:
                return False
            self.sleep(self.poll_seconds)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        type=positive(float),
        default=300,
        metavar="SECONDS",
        help="how long to wait for the task and its ECS Exec agent (default: %(default)s)",
    )


def _run(args: argparse.Namespace, resources: TierResources, clients: dict) -> Report:
    missing = [
        name
        for name, value in (
            ("the Compute stack's toolbox outputs", resources.toolbox),
            ("ClusterName", resources.cluster_name),
            ("PrimaryEndpointAddress", resources.redis_endpoint),
            ("RedisPort", resources.redis_port),
        )
        if not value
    ]
    if missing:
        raise OpsError(
            f"{', '.join(missing)} not found for {args.env}: deploy "
            f"{contract.stack_name(args.env, contract.STATE)} and "
            f"{contract.stack_name(args.env, contract.COMPUTE)} first"
        )
    target = resources.toolbox.task_definition_arn if resources.toolbox else "-"
    report = Report("toolbox", args.env, target, args.dry_run)
    return ToolboxRun(clients["ecs"], resources, report, timeout_seconds=args.timeout).run()


COMMAND = Command(
    name="toolbox",
    help="start the operators' toolbox task (TLS redis-cli in the tier's VPC)",
    description="Starts the operators' toolbox task (runbooks/operator-access.md): a TLS redis-cli in the tier's "
    "private subnets, reachable by ECS Exec; waits for its ECS Exec agent and prints the aws ecs execute-command "
    "line that opens redis-cli and the line that stops the task (it stops itself after "
    f"{contract.TOOLBOX_LIFETIME_SECONDS // 60} min).",
    add_arguments=_add_arguments,
    run=_run,
    usage="--env ENV",
    dry_run=True,
)
