"""Dead-letter redrive: move a class's dead letters back to its work queue with SQS's message move task."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

from broker_tier.evidence.report import Check, Report
from broker_tier.ops.command import Command, positive
from broker_tier.ops.readings import queue_counts
from broker_tier.ops.resources import (
    OpsError,
    QueuePair,
    TierResources,
    discover_from_options,
    explicit_queue_pair,
    queue_url_or_arn,
)

SQS_MAX_MOVE_RATE = 500  # messages per second, SQS's ceiling for a move task
FINISHED = ("COMPLETED", "CANCELLED", "FAILED")


@dataclass(frozen=True)
class RedriveOptions:
    rate: int | None = None
    """Messages per second (1-500). Default: None (SQS's own pace, up to 500)."""
    timeout_seconds: float = 3600
    """How long to follow the move; the task goes on after a time-out. Default: 3600."""
    poll_seconds: float = 10
    """Interval of ListMessageMoveTasks. Default: 10."""


class Redrive:
    def __init__(
        self,
        sqs,
        pair: QueuePair,
        options: RedriveOptions,
        report: Report,
        *,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.sqs, self.pair, self.options, self.report = sqs, pair, options, report
        self.sleep = sleep or time.sleep

    def latest_task(self) -> dict | None:
        results = self.sqs.list_message_move_tasks(SourceArn=self.pair.dead_letter_arn, MaxResults=1)["Results"]
        return results[0] if results else None

    def run(self) -> Report:
        """Run the command (or, when the report is a dry run, only plan it) and return its report."""
        report, pair = self.report, self.pair
        try:
            dead = queue_counts(self.sqs, pair.dead_letter_url)
            report.measurements["dead_letters_before"] = dead
            latest = self.latest_task()
            running = latest is not None and latest["Status"] == "RUNNING"
            ready = report.add_checks(
                report.steady_state,
                [
                    Check(
                        "no_move_task_running",
                        not running,
                        "SQS runs one move task per queue at a time"
                        + (f"; running: {latest.get('TaskHandle')}" if running and latest else ""),
                    )
                ],
            )
            if not ready:
                report.finish("refused", "a move task is already running on this dead-letter queue")
                return report
            if dead["visible"] == 0:
                report.finish("passed", "nothing to move: the dead-letter queue has no visible message")
                return report
            pace = f"{self.options.rate}/s" if self.options.rate else "SQS's pace (up to 500/s)"
            if report.plan_steps(
                [
                    f"StartMessageMoveTask {pair.dead_letter_arn} -> {pair.queue_arn} at {pace}: about "
                    f"{dead['visible']} messages",
                    "follow ListMessageMoveTasks until COMPLETED, CANCELLED or FAILED",
                ]
            ):
                return report
            self.move()
        except Exception as error:  # its cause, remedy and exit code: broker_tier.evidence.errors
            report.abort(error)
        return report

    def move(self) -> None:
        report, pair = self.report, self.pair
        params: dict[str, str | int] = {"SourceArn": pair.dead_letter_arn, "DestinationArn": pair.queue_arn}
        if self.options.rate:
            params["MaxNumberOfMessagesPerSecond"] = self.options.rate
        handle = self.sqs.start_message_move_task(**params)["TaskHandle"]
        report.measurements["task_handle"] = handle
        report.say(f"move task started: {handle}")
        start = report.elapsed()
        while True:
            task = self.latest_task() or {}
            moved, to_move = (
                task.get("ApproximateNumberOfMessagesMoved", 0),
                task.get("ApproximateNumberOfMessagesToMove"),
            )
            report.say(f"{task.get('Status', 'unknown')}: moved {moved} of {to_move if to_move is not None else '?'}")
            if task.get("Status") in FINISHED:
                break
            if report.elapsed() - start >= self.options.timeout_seconds:
                report.finish(
                    "aborted",
                    f"time-out after {self.options.timeout_seconds:g} s; the move goes on. "
                    f"Cancel with: aws sqs cancel-message-move-task --task-handle {handle}",
                )
                return
            self.sleep(self.options.poll_seconds)
        report.measurements.update({"moved": moved, "to_move": to_move, "status": task["Status"]})
        after = queue_counts(self.sqs, pair.dead_letter_url)
        report.measurements["dead_letters_after"] = after
        ok = task["Status"] == "COMPLETED"
        report.add_checks(
            report.verification,
            [
                Check(
                    "move_completed",
                    ok,
                    f"{task['Status']}: moved {moved}"
                    + (f"; {task['FailureReason']}" if task.get("FailureReason") else "")
                    + f"; dead-letter queue now {after['visible']} visible, {after['in_flight']} in flight",
                )
            ],
        )
        report.finish("passed" if ok else "failed", None if ok else f"move task {task['Status']}")


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = RedriveOptions()
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--queue-class", help="latency class, e.g. default (its queues from the State stack's outputs)")
    which.add_argument(
        "--dead-letter-queue",
        metavar="URL_OR_ARN",
        type=queue_url_or_arn,
        help="the dead-letter queue, for a tier whose stacks can't be read; with --source-queue",
    )
    parser.add_argument(
        "--source-queue",
        metavar="URL_OR_ARN",
        type=queue_url_or_arn,
        help="with --dead-letter-queue: the work queue whose redrive policy names it; the dead letters go back there",
    )
    parser.add_argument(
        "--rate",
        type=positive(int, SQS_MAX_MOVE_RATE),
        metavar="PER_SECOND",
        help=f"messages per second, 1-{SQS_MAX_MOVE_RATE} (default: SQS's pace)",
    )
    parser.add_argument(
        "--timeout",
        type=positive(float),
        default=defaults.timeout_seconds,
        metavar="SECONDS",
        help="how long to follow the move (default: %(default)s)",
    )
    parser.add_argument(
        "--poll",
        type=positive(float),
        default=defaults.poll_seconds,
        metavar="SECONDS",
        help="progress interval (default: %(default)s)",
    )


def _resources(args: argparse.Namespace, clients: dict) -> TierResources:
    """The class's queues from the stacks, or the pair given by --source-queue and --dead-letter-queue."""
    if args.dead_letter_queue is None:
        if args.source_queue is not None:
            raise OpsError("--source-queue goes with --dead-letter-queue (for --queue-class the stacks name both)")
        return discover_from_options(args, clients)
    if args.source_queue is None:
        raise OpsError("--dead-letter-queue needs --source-queue: the work queue its messages go back to")
    pair = explicit_queue_pair(clients["sqs"], queue=args.source_queue, dead_letter_queue=args.dead_letter_queue)
    return TierResources(
        environment=args.env, replication_group_id=args.replication_group_id or "", queues={pair.class_name: pair}
    )


def _run(args: argparse.Namespace, resources: TierResources, clients: dict) -> Report:
    if args.dead_letter_queue is not None:
        (pair,) = resources.queues.values()
    elif args.queue_class in resources.queues:
        pair = resources.queues[args.queue_class]
    else:
        raise OpsError(
            f"--queue-class {args.queue_class!r}: not a class of {args.env}; classes: "
            f"{', '.join(sorted(resources.queues)) or 'none found in the State stack outputs'}"
        )
    report = Report("redrive", args.env, pair.dead_letter_arn, args.dry_run)
    options = RedriveOptions(rate=args.rate, timeout_seconds=args.timeout, poll_seconds=args.poll)
    return Redrive(clients["sqs"], pair, options, report).run()


COMMAND = Command(
    name="redrive",
    help="Move a class's dead-letter messages back to its queue (SQS message move task).",
    add_arguments=_add_arguments,
    run=_run,
    resources=_resources,
)
