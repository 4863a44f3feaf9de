"""``dead-letters``: what is in a class's dead-letter queue, grouped by task name, without consuming it.

Each message is read once and held (hidden) while the scan runs, then made visible again; nothing is deleted or
sent (``dead_letter_scan``). For each: task name and id, receive count, when it was sent and first and last
received, its arguments only with ``--show-args`` (cut at ``ARGS_SHOWN_CHARACTERS``), and the failure the worker
logged (``task_logs``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import broker_tier_contract as contract
from broker_tier.evidence.report import Report, utc_now
from broker_tier.ops import task_logs
from broker_tier.ops.celery_messages import ARGS_SHOWN_CHARACTERS
from broker_tier.ops.command import Command, positive
from broker_tier.ops.dead_letter_scan import DEFAULT_HOLD_SECONDS, DeadLetter, DeadLetterScan
from broker_tier.ops.readings import queue_counts
from broker_tier.ops.resources import QueuePair, TierResources, class_pair

DEFAULT_MAX_MESSAGES = 1000
UNREADABLE = "(not a Celery task message)"
LOG_MARGIN = timedelta(minutes=1)
"""Searched from this long before a message was sent (clocks differ a little between hosts)."""


@dataclass(frozen=True)
class ListingOptions:
    show_args: bool = False
    """Show each task's arguments (cut at ``ARGS_SHOWN_CHARACTERS``). Default: false (they may be sensitive)."""
    hold_seconds: int = DEFAULT_HOLD_SECONDS
    """At most how long a message read stays hidden. Default: ``DEFAULT_HOLD_SECONDS``."""
    max_messages: int = DEFAULT_MAX_MESSAGES
    """Read at most this many. Default: 1000."""
    search_logs: bool = True
    """Look each task id up in the class's worker log group. Default: true."""


def _time(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def describe(letter: DeadLetter, logs: task_logs.TaskLogs | None, *, show_args: bool) -> dict[str, Any]:
    """One dead letter as the listing shows it (JSON-ready)."""
    celery = letter.celery
    log = logs.of(celery.task_id) if logs is not None and celery is not None else task_logs.TaskLog()
    return {
        "task_name": celery.task_name if celery else UNREADABLE,
        "task_id": celery.task_id if celery else None,
        "message_id": letter.message_id,
        "receive_count": letter.receive_count,
        "sent_at": _time(letter.sent_at),
        "first_received_at": _time(log.received_at[0] if log.received_at else letter.first_received_at),
        "last_received_at": _time(log.received_at[-1] if log.received_at else None),
        "worker_receives_logged": len(log.received_at),
        "failure": log.failure,
        "failure_at": _time(log.failure_at),
        "retries": celery.retries if celery else None,
        "arguments": celery.arguments(ARGS_SHOWN_CHARACTERS) if celery and show_args else None,
    }


def group_by_task(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The rows by task name, the most frequent name first."""
    counts = Counter(row["task_name"] for row in rows)
    return {name: [row for row in rows if row["task_name"] == name] for name, _ in counts.most_common()}


def render(listing: dict[str, Any], verdict: str) -> str:
    """The text listing: the verdict, then each task name with its count and its messages."""
    lines = [verdict, "", f"queue     {listing['queue']} (class {listing['class']})"]
    logs = listing["failures_from"]
    lines.append(f"failures  from {logs}" if not listing["failures_unavailable"] else f"failures  unavailable: {logs}")
    for name, rows in listing["groups"].items():
        lines.append(f"{name}: {len(rows)}")
        for row in rows:
            lines.append(
                f"  {row['task_id'] or row['message_id']}  receives {row['receive_count']}  sent {row['sent_at']}"
                f"  first received {row['first_received_at'] or '-'}  last received {row['last_received_at'] or '-'}"
            )
            if row["failure"]:
                lines.append(f"      failure at {row['failure_at']}: {row['failure']}")
            if row["arguments"] is not None:
                lines.append(f"      {row['arguments']}")
    if not listing["complete"]:
        lines.append(f"NOT ALL READ ({listing['stopped']}): {listing['note']}")
    return "\n".join(lines)


STOP_NOTES = {
    "limit": "--max-messages reached; raise it to read more",
    "time": "half the hold went by before the queue was read to its end; raise --hold to read more",
    "wrapped": "a message came back before the end (its hold ran out); raise --hold to read more",
}


class DeadLetterListing:
    def __init__(self, clients: dict, pair: QueuePair, environment: str, options: ListingOptions, report: Report):
        self.sqs, self.logs = clients["sqs"], clients["logs"]
        self.pair, self.environment, self.options, self.report = pair, environment, options, report

    def log_group(self) -> str:
        return contract.service_log_group_name(self.environment, contract.worker_process(self.pair.class_name))

    def read(self) -> dict[str, Any]:
        """Read the queue, look the task ids up in the worker logs, release the messages, and return the listing."""
        report, options = self.report, self.options
        report.measurements["before"] = queue_counts(self.sqs, self.pair.dead_letter_url)
        with DeadLetterScan(
            self.sqs, self.pair.dead_letter_url, hold_seconds=options.hold_seconds, max_messages=options.max_messages
        ) as scan:
            result = scan.read()
            report.say(f"read {len(result.letters)} dead letters; making them visible again")
        report.measurements["release_failures"] = scan.release_failures
        logs = self._search(result.letters) if options.search_logs else None
        rows = [describe(letter, logs, show_args=options.show_args) for letter in result.letters]
        groups = group_by_task(rows)
        return {
            "queue": self.pair.dead_letter_url.rsplit("/", 1)[-1],
            "class": self.pair.class_name,
            "read": len(rows),
            "complete": result.complete,
            "stopped": result.stopped,
            "note": STOP_NOTES.get(result.stopped),
            "hold_seconds": options.hold_seconds,
            "failures_from": (logs.unavailable or logs.log_group) if logs else "not searched (--no-logs)",
            "failures_unavailable": bool(logs and logs.unavailable),
            "groups": groups,
        }

    def _search(self, letters: list[DeadLetter]) -> task_logs.TaskLogs:
        ids = [letter.celery.task_id for letter in letters if letter.celery]
        sent = [letter.sent_at for letter in letters if letter.sent_at]
        since = (min(sent) if sent else utc_now() - timedelta(days=14)) - LOG_MARGIN
        self.report.say(f"looking {len(set(ids))} task ids up in {self.log_group()}")
        return task_logs.search(self.logs, self.log_group(), ids, since=since, until=utc_now())


def run_listing(listing: DeadLetterListing, *, as_json: bool, out=None) -> Report:
    report = listing.report
    found = listing.read()
    report.measurements.update(
        read=found["read"],
        by_task_name={name: len(rows) for name, rows in found["groups"].items()},
        hold_seconds=found["hold_seconds"],
        complete=found["complete"],
        failures_from=found["failures_from"],
        messages=[row for rows in found["groups"].values() for row in rows],
    )
    report.finish("passed")
    text = json.dumps({"verdict": report.verdict, **found}, indent=2) if as_json else render(found, report.verdict)
    print(text, file=out or sys.stdout, flush=True)
    return report


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = ListingOptions()
    parser.add_argument("--queue-class", required=True, metavar="CLASS", help="latency class, e.g. default")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the listing")
    parser.add_argument(
        "--show-args",
        action="store_true",
        help=f"show each task's arguments, cut at {ARGS_SHOWN_CHARACTERS} characters (they may be sensitive)",
    )
    parser.add_argument(
        "--max-messages", type=positive(int), default=defaults.max_messages, metavar="N", help="(default: %(default)s)"
    )
    parser.add_argument(
        "--hold",
        type=positive(int, 43200),
        default=defaults.hold_seconds,
        metavar="SECONDS",
        help="at most how long a message read stays hidden (default: %(default)s)",
    )
    parser.add_argument("--no-logs", action="store_true", help="do not look the task ids up in the worker logs")


def _run(args: argparse.Namespace, resources: TierResources, clients: dict) -> Report:
    pair = class_pair(resources, args.queue_class)
    report = Report("dead-letters", args.env, pair.dead_letter_url.rsplit("/", 1)[-1], dry_run=False)
    report.measurements["broker"] = resources.broker
    options = ListingOptions(
        show_args=args.show_args, hold_seconds=args.hold, max_messages=args.max_messages, search_logs=not args.no_logs
    )
    return run_listing(DeadLetterListing(clients, pair, args.env, options, report), as_json=args.json)


COMMAND = Command(
    name="dead-letters",
    help="list a class's dead letters by task, with their failures (deletes nothing)",
    description="Lists a class's dead letters grouped by task name: task id, receive count, sent, first and last "
    "received, the failure the worker logged (its CloudWatch Logs group), and with --show-args the arguments. "
    "Each message is read once and hidden meanwhile (its receive count grows by one), then made visible again; "
    "nothing is deleted or sent. runbooks/dead-letter-redrive.md.",
    add_arguments=_add_arguments,
    run=_run,
    usage="--env ENV --queue-class CLASS",
)
