"""Dead-letter redrive: move a class's dead letters back to its work queue with SQS's message move task, or, with
``--task-name``/``--task-id``, only those tasks' (``selective_redrive``)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from broker_tier.evidence.report import Check, Report
from broker_tier.ops.command import ENV_OPTIONAL, Command, positive
from broker_tier.ops.dead_letter_scan import DEFAULT_HOLD_SECONDS
from broker_tier.ops.readings import queue_counts
from broker_tier.ops.redrive_journal import RedriveJournal
from broker_tier.ops.resources import (
    OpsError,
    QueuePair,
    TierResources,
    class_pair,
    discover_from_options,
    explicit_queue_pair,
    queue_url_or_arn,
    tier_queue_names,
)
from broker_tier.ops.selective_redrive import Selection, SelectiveOptions, SelectiveRedrive, worker_log_group

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
        journal: Path | None = None,
    ) -> None:
        self.sqs, self.pair, self.options, self.report = sqs, pair, options, report
        self.sleep = sleep or time.sleep
        self.journal = journal
        """The selective redrive's journal of this queue: a move task would send its half-done messages again."""

    def latest_task(self) -> dict | None:
        results = self.sqs.list_message_move_tasks(SourceArn=self.pair.dead_letter_arn, MaxResults=1)["Results"]
        return results[0] if results else None

    def running_task(self) -> str | None:
        """The handle of the move task running on the dead-letter queue, or None."""
        latest = self.latest_task()
        return latest.get("TaskHandle", "?") if latest is not None and latest["Status"] == "RUNNING" else None

    def half_done(self) -> Check:
        """No selective redrive of this queue was left half done (per its journal on this machine)."""
        if self.journal is None or not self.journal.exists():
            return Check("no_selective_redrive_half_done", True, "no journal of a selective redrive of this queue")
        with RedriveJournal(self.journal, dead_letter_queue=self.pair.dead_letter_arn) as journal:
            pending = journal.pending()
        names = ", ".join(f"{entry.task_name}[{entry.task_id}]" for entry in pending.values())
        return Check(
            "no_selective_redrive_half_done",
            not pending,
            f"{self.journal}: none half done"
            if not pending
            else f"{len(pending)} half done in {self.journal} ({names}): a move would send those already sent "
            f"again; rerun the interrupted redrive (any --task-name or --task-id completes them) first",
        )

    def run(self) -> Report:
        """Run the command (or, when the report is a dry run, only plan it) and return its report."""
        report, pair = self.report, self.pair
        try:
            dead = queue_counts(self.sqs, pair.dead_letter_url)
            report.measurements["dead_letters_before"] = dead
            running = self.running_task()
            ready = report.add_checks(
                report.steady_state,
                [
                    Check(
                        "no_move_task_running",
                        running is None,
                        "SQS runs one move task per queue at a time" + (f"; running: {running}" if running else ""),
                    ),
                    self.half_done(),
                ],
            )
            if not ready:
                report.finish("refused", "; ".join(check.detail for check in report.steady_state if not check.passed))
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
    which.add_argument(
        "--queue-class", metavar="CLASS", help="latency class, e.g. default (queues from --env's stacks)"
    )
    which.add_argument(
        "--dead-letter-queue",
        metavar="URL_OR_ARN",
        type=queue_url_or_arn,
        help="instead of --env and --queue-class, with --source-queue",
    )
    parser.add_argument(
        "--source-queue", metavar="URL_OR_ARN", type=queue_url_or_arn, help="the work queue the dead letters go back to"
    )
    chosen = parser.add_argument_group("by task (receive, send, delete: docs/operations.md); the others stay")
    chosen.add_argument("--task-name", action="append", default=[], metavar="NAME", help="(repeatable)")
    chosen.add_argument("--task-id", action="append", default=[], metavar="ID", help="(repeatable)")
    chosen.add_argument(
        "--resend-uncertain", action="store_true", help="send again a message an interrupted run may have sent"
    )
    chosen.add_argument(
        "--hold",
        type=positive(int, 43200),
        default=DEFAULT_HOLD_SECONDS,
        metavar="SECONDS",
        help="at most how long a dead letter read stays hidden (default: %(default)s)",
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
        help="how long to follow a whole-queue move (default: %(default)s)",
    )
    parser.add_argument(
        "--poll",
        type=positive(float),
        default=defaults.poll_seconds,
        metavar="SECONDS",
        help="progress interval of a whole-queue move (default: %(default)s)",
    )


def _resources(args: argparse.Namespace, clients: dict) -> TierResources:
    """The class's queues from the stacks, or the pair given by --source-queue and --dead-letter-queue."""
    if args.dead_letter_queue is None:
        if args.source_queue is not None:
            raise OpsError("--source-queue goes with --dead-letter-queue (for --queue-class the stacks name both)")
        if args.env is None:
            raise OpsError("--queue-class needs --env (the stacks the queues are read from)")
        return discover_from_options(args, clients)
    if args.source_queue is None:
        raise OpsError("--dead-letter-queue needs --source-queue: the work queue its messages go back to")
    pair = explicit_queue_pair(clients["sqs"], queue=args.source_queue, dead_letter_queue=args.dead_letter_queue)
    named = tier_queue_names(pair.queue_arn.rsplit(":", 1)[-1])
    environment = args.env or (named[0] if named else "-")
    return TierResources(environment=environment, replication_group_id="", queues={pair.class_name: pair})


def journal_path(report_dir: Path, pair: QueuePair) -> Path:
    """Where the selective redrive of ``pair``'s dead-letter queue keeps its journal (one per queue)."""
    return report_dir / "redrive-journals" / f"{pair.dead_letter_arn.rsplit(':', 1)[-1]}.jsonl"


def _run(args: argparse.Namespace, resources: TierResources, clients: dict) -> Report:
    if args.dead_letter_queue is not None:
        (pair,) = resources.queues.values()
    else:
        pair = class_pair(resources, args.queue_class)
    report = Report("redrive", resources.environment, pair.dead_letter_arn, args.dry_run)
    journal = journal_path(args.report_dir, pair)
    selection = Selection(tuple(args.task_name), tuple(args.task_id))
    redrive = Redrive(
        clients["sqs"],
        pair,
        RedriveOptions(rate=args.rate, timeout_seconds=args.timeout, poll_seconds=args.poll),
        report,
        journal=journal,
    )
    if not selection:
        return redrive.run()
    options = SelectiveOptions(
        selection=selection,
        journal=journal,
        hold_seconds=args.hold,
        rate=args.rate,
        resend_uncertain=args.resend_uncertain,
    )
    named = tier_queue_names(pair.queue_arn.rsplit(":", 1)[-1])
    log_group = worker_log_group(*named) if named else None
    selective = SelectiveRedrive(clients, pair, options, report, log_group=log_group)
    return selective.run(redrive.running_task)


COMMAND = Command(
    name="redrive",
    help="send a class's dead letters (or some tasks') back to its work queue",
    description="Moves a class's dead letters back to its work queue with SQS's message move task "
    "(runbooks/dead-letter-redrive.md). With --task-name or --task-id only those tasks' go back: each is "
    "received, sent as it is (its Celery task id kept), then deleted here, every step journalled first under "
    "--report-dir, so that a rerun after an interruption sends nothing twice; the others stay.",
    add_arguments=_add_arguments,
    run=_run,
    resources=_resources,
    usage="--env ENV --queue-class CLASS [options]\n"
    "   or: broker-tier-ops redrive --dead-letter-queue URL --source-queue URL",
    env=ENV_OPTIONAL,
    dry_run=True,
)
