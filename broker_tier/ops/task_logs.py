"""What the workers logged about given task ids, read from their CloudWatch Logs group: each time a worker received
the task, and the last failure it logged.

Why the logs and not the result backend: the failure Celery stores (``celery-task-meta-<id>`` in Redis) is in
the VPC's private subnets, open only to the tier's own security groups, so a command run from an operator's
machine cannot read it (the toolbox task can: runbooks/operator-access.md). The workers run with ``--loglevel
INFO``, and Celery logs ``Task <name>[<id>] received`` on every delivery and ``Task <name>[<id>] raised
unexpected: <exception>`` (or ``retry:``, ``INTERNAL ERROR:``, ...) on a failure (celery/app/trace.py); the
container's log driver sends every line to the class's worker log group.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from botocore.exceptions import ClientError

from broker_tier.evidence.errors import classify

PATTERN_LIMIT = 1024
"""FilterLogEvents' longest filter pattern: the ids of one call are ``?"<id>"`` terms (any of them) up to it."""
TASK_LINE = re.compile(r"Task (?P<name>[^\s\[]+)\[(?P<id>[^\]\s]+)\] (?P<what>.*)$")
HARD_TIME_LIMIT = re.compile(
    r"Hard time limit \((?P<limit>[^)]*)\) exceeded for (?P<name>[^\s\[]+)\[(?P<id>[^\]\s]+)\]"
)
NOT_A_FAILURE = ("received", "succeeded")


@dataclass
class TaskLog:
    """What the worker log says about one task id."""

    received_at: list[datetime] = field(default_factory=list)
    failure: str | None = None
    """The last failure line's text after the task's name and id (e.g. ``raised unexpected: ValueError('x')``)."""
    failure_at: datetime | None = None


@dataclass
class TaskLogs:
    log_group: str
    by_task_id: dict[str, TaskLog] = field(default_factory=dict)
    unavailable: str | None = None
    """Why the log group could not be read (one line), or None."""

    def of(self, task_id: str) -> TaskLog:
        return self.by_task_id.get(task_id) or TaskLog()


def _patterns(task_ids: Iterable[str]) -> list[list[str]]:
    """The ids in groups whose ``?"id" ?"id" ...`` pattern fits ``PATTERN_LIMIT``."""
    groups: list[list[str]] = [[]]
    length = 0
    for task_id in task_ids:
        term = len(task_id) + 4
        if groups[-1] and length + term > PATTERN_LIMIT:
            groups.append([])
            length = 0
        groups[-1].append(task_id)
        length += term
    return [group for group in groups if group]


def _note(logs: dict[str, TaskLog], message: str, at: datetime) -> None:
    """Record one log line about a task id the caller asked for."""
    limit = HARD_TIME_LIMIT.search(message)
    if limit is not None and limit["id"] in logs:
        entry = logs[limit["id"]]
        if entry.failure_at is None or at >= entry.failure_at:
            entry.failure, entry.failure_at = f"hard time limit ({limit['limit']}) exceeded", at
        return
    line = TASK_LINE.search(message)
    if line is None or line["id"] not in logs:
        return
    entry, what = logs[line["id"]], line["what"].strip()
    if what == "received":
        entry.received_at.append(at)
    elif not what.startswith(NOT_A_FAILURE) and (entry.failure_at is None or at >= entry.failure_at):
        entry.failure, entry.failure_at = what, at


def search(logs_client, log_group: str, task_ids: Iterable[str], *, since: datetime, until: datetime) -> TaskLogs:
    """The log lines of ``log_group`` between ``since`` and ``until`` that name one of ``task_ids``. A group that
    cannot be read (missing, access denied) gives ``unavailable`` instead of an error: the caller's listing goes on."""
    wanted = sorted(set(task_ids))
    found = TaskLogs(log_group, {task_id: TaskLog() for task_id in wanted})
    try:
        for group in _patterns(wanted):
            pages = logs_client.get_paginator("filter_log_events").paginate(
                logGroupName=log_group,
                startTime=int(since.timestamp() * 1000),
                endTime=int(until.timestamp() * 1000),
                filterPattern=" ".join(f'?"{task_id}"' for task_id in group),
            )
            for page in pages:
                for event in page.get("events", []):
                    at = datetime.fromtimestamp(event["timestamp"] / 1000, UTC)
                    _note(found.by_task_id, event.get("message", ""), at)
    except ClientError as error:
        found.unavailable = classify(error).line
    for entry in found.by_task_id.values():
        entry.received_at.sort()
    return found
