"""Redrive by task: only the dead letters of the given task names or ids go back to the work queue; the others stay.

SQS's message move task cannot choose messages, so each chosen one is received, sent to the work queue as it is
(same body: the Celery task id is kept) and only then deleted from the dead-letter queue, one at a time, each step
written to the journal (``redrive_journal``) before it is taken. What that guarantees, step by step:
docs/decisions/selective-redrive-journal.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError

import broker_tier_contract as contract
from broker_tier.evidence.report import Check, Report, utc_now
from broker_tier.ops import task_logs
from broker_tier.ops.aws import SEND_ONCE
from broker_tier.ops.dead_letter_scan import DEFAULT_HOLD_SECONDS, DeadLetter, DeadLetterScan
from broker_tier.ops.readings import queue_counts
from broker_tier.ops.redrive_journal import DELETED, SEND_FAILED, SENDING, SENT, SETTLED, Entry, RedriveJournal
from broker_tier.ops.resources import QueuePair

REDRIVEN_FROM_ATTRIBUTE = "broker-tier-redriven-from"
"""Message attribute on each copy: the dead letter's message id (kombu reads no custom attribute by default)."""
SQS_MAX_MESSAGE_ATTRIBUTES = 10
NOT_SENT = (EndpointConnectionError, ConnectTimeoutError)
"""Errors raised before a request reached SQS: the message was certainly not sent."""


class SendUncertain(Exception):
    """SendMessage failed in a way that leaves open whether SQS took the message."""


@dataclass(frozen=True)
class Selection:
    task_names: tuple[str, ...] = ()
    task_ids: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.task_names or self.task_ids)

    def matches(self, letter: DeadLetter) -> bool:
        celery = letter.celery
        return celery is not None and (celery.task_name in self.task_names or celery.task_id in self.task_ids)

    def describe(self) -> str:
        parts = [f"task name {', '.join(self.task_names)}" if self.task_names else ""]
        parts.append(f"task id {', '.join(self.task_ids)}" if self.task_ids else "")
        return " or ".join(part for part in parts if part)


@dataclass(frozen=True)
class SelectiveOptions:
    selection: Selection
    journal: Path
    """The journal file (one per dead-letter queue; a rerun must use the same one)."""
    hold_seconds: int = DEFAULT_HOLD_SECONDS
    rate: int | None = None
    """Messages sent per second at most. Default: None (one after the other)."""
    resend_uncertain: bool = False
    """Send an uncertain message again (accepting that the work queue may get it twice). Default: false."""


@dataclass
class Tally:
    selected: list[DeadLetter] = field(default_factory=list)
    resumed: list[tuple[DeadLetter, Entry]] = field(default_factory=list)
    others: int = 0
    moved: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)
    uncertain: list[dict] = field(default_factory=list)


def _named(entry_or_letter) -> dict:
    if isinstance(entry_or_letter, Entry):
        return {
            "task_name": entry_or_letter.task_name,
            "task_id": entry_or_letter.task_id,
            "message_id": entry_or_letter.message_id,
        }
    celery = entry_or_letter.celery
    return {
        "task_name": celery.task_name if celery else None,
        "task_id": celery.task_id if celery else None,
        "message_id": entry_or_letter.message_id,
    }


class SelectiveRedrive:
    def __init__(
        self,
        clients: dict,
        pair: QueuePair,
        options: SelectiveOptions,
        report: Report,
        *,
        log_group: str | None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.sqs, self.sender, self.logs = clients["sqs"], clients[SEND_ONCE], clients.get("logs")
        self.pair, self.options, self.report, self.log_group = pair, options, report, log_group
        self.sleep = sleep or time.sleep
        self.tally = Tally()

    def run(self, move_task_running: Callable[[], str | None]) -> Report:
        report = self.report
        try:
            running = move_task_running()
            ready = report.add_checks(
                report.steady_state,
                [
                    Check(
                        "no_move_task_running",
                        running is None,
                        "SQS's own move task would race the selection" + (f"; running: {running}" if running else ""),
                    )
                ],
            )
            if not ready:
                report.finish("refused", "a move task is running on this dead-letter queue")
                return report
            report.measurements["dead_letters_before"] = queue_counts(self.sqs, self.pair.dead_letter_url)
            with RedriveJournal(self.options.journal, dead_letter_queue=self.pair.dead_letter_arn) as journal:
                self._redrive(journal)
        except Exception as error:  # its cause, remedy and exit code: broker_tier.evidence.errors
            report.abort(error)
        finally:
            report.measurements.update(self._figures())
        return report

    def _redrive(self, journal: RedriveJournal) -> None:
        report, options = self.report, self.options
        pending = journal.pending()
        with DeadLetterScan(self.sqs, self.pair.dead_letter_url, hold_seconds=options.hold_seconds) as scan:
            self.scan = scan
            result = scan.read()
            report.say(f"read {len(result.letters)} dead letters ({result.stopped}); journal {options.journal}")
            unseen = self._sort(result.letters, pending)
            self._close_gone(journal, unseen, read_to_the_end=result.complete)
            if not (self.tally.selected or self.tally.resumed):
                report.finish(
                    "passed",
                    f"nothing to redrive: none of the {len(result.letters)} dead letters read is of "
                    f"{options.selection.describe()}",
                )
                return
            if report.plan_steps(self._plan(result.complete)):
                return
            for letter, entry in self.tally.resumed:
                self._complete(journal, letter, entry)
            for letter in self.tally.selected:
                self._move(journal, letter)
                if options.rate:
                    self.sleep(1 / options.rate)
        report.measurements["release_failures"] = scan.release_failures
        self._verify(result.complete)

    def _sort(self, letters: list[DeadLetter], pending: dict[str, Entry]) -> list[Entry]:
        """Put each letter read in its list; returns the half-done entries whose letter was not read."""
        for letter in letters:
            if letter.message_id in pending:
                self.tally.resumed.append((letter, pending[letter.message_id]))
            elif self.options.selection.matches(letter):
                self.tally.selected.append(letter)
            else:
                self.tally.others += 1
        read = {letter.message_id for letter in letters}
        return [entry for message_id, entry in pending.items() if message_id not in read]

    def _close_gone(self, journal: RedriveJournal, unseen: list[Entry], *, read_to_the_end: bool) -> None:
        """A half-done letter not read although the queue was read to its end with nothing else in flight is gone
        (its deletion was done, its record not written): closed in the journal. Otherwise it may be held by another
        reader: left half done, and named."""
        if not unseen:
            return
        in_flight = self.report.measurements.get("dead_letters_before", {}).get("in_flight")
        if read_to_the_end and in_flight == 0 and not self.report.dry_run:
            for entry in unseen:
                journal.record(DELETED, entry.message_id, how="not in the dead-letter queue read to its end")
            self.report.measurements["closed_as_gone"] = [_named(entry) for entry in unseen]
        else:
            self.report.measurements["pending_not_read"] = [_named(entry) for entry in unseen]

    def _plan(self, complete: bool) -> list[str]:
        tally, pair = self.tally, self.pair
        steps = [
            f"send {len(tally.selected)} dead letters of {self.options.selection.describe()} to {pair.queue_arn}, "
            f"one at a time: journal, SendMessage (one attempt), journal, DeleteMessage from {pair.dead_letter_arn}, "
            f"journal"
        ]
        if tally.resumed:
            steps.append(
                f"complete {len(tally.resumed)} left by an interrupted run: delete the dead-letter copy of those sent "
                f"(no second send); an uncertain send is settled by the worker log"
                + (", else sent again (--resend-uncertain)" if self.options.resend_uncertain else ", else left as is")
            )
        steps.append(f"make the {tally.others} other dead letters visible again (not selected)")
        if not complete:
            steps.append("the queue was not read to its end: run again for the rest")
        return steps

    def _send(self, journal: RedriveJournal, letter: DeadLetter) -> None:
        """Announce, send once, record; raises after recording a certain failure, ``SendUncertain`` otherwise."""
        journal.record(SENDING, letter.message_id, **{k: v for k, v in _named(letter).items() if k != "message_id"})
        attributes = dict(letter.message_attributes)
        if len(attributes) < SQS_MAX_MESSAGE_ATTRIBUTES:
            attributes[REDRIVEN_FROM_ATTRIBUTE] = {"DataType": "String", "StringValue": letter.message_id}
        try:
            sent = self.sender.send_message(
                QueueUrl=self.pair.queue_url, MessageBody=letter.body, MessageAttributes=attributes
            )
        except ClientError as error:
            if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500) >= 500:
                raise SendUncertain(f"SendMessage answered {error}") from error
            journal.record(SEND_FAILED, letter.message_id, error=str(error))
            raise
        except NOT_SENT as error:
            journal.record(SEND_FAILED, letter.message_id, error=str(error))
            raise
        except Exception as error:  # a lost answer (time-out, closed connection): SQS may have taken it
            raise SendUncertain(f"SendMessage stopped without an answer ({error})") from error
        journal.record(SENT, letter.message_id, work_message_id=sent["MessageId"])

    def _delete(self, journal: RedriveJournal, letter: DeadLetter) -> None:
        self.sqs.delete_message(QueueUrl=self.pair.dead_letter_url, ReceiptHandle=letter.receipt_handle)
        journal.record(DELETED, letter.message_id)
        self.scan.taken(letter)

    def _send_or_note(self, journal: RedriveJournal, letter: DeadLetter) -> None:
        try:
            self._send(journal, letter)
        except SendUncertain:
            self.tally.uncertain.append(_named(letter))
            raise

    def _move(self, journal: RedriveJournal, letter: DeadLetter) -> None:
        self._send_or_note(journal, letter)
        self._delete(journal, letter)
        self.tally.moved.append(letter.message_id)
        self.report.say(f"redriven: {_named(letter)['task_name']} {_named(letter)['task_id']}")

    def _complete(self, journal: RedriveJournal, letter: DeadLetter, entry: Entry) -> None:
        """Finish what an interrupted run left: delete the dead-letter copy of a message sent (never send it again);
        an uncertain one only once a worker's log shows it arrived, or with ``--resend-uncertain``."""
        if entry.step == SENDING:
            if self._received_since(entry):
                journal.record(SETTLED, letter.message_id, how="a worker logged receiving it after the send")
            elif self.options.resend_uncertain:
                self._send_or_note(journal, letter)
            else:
                self.tally.uncertain.append(_named(entry))
                self.report.say(f"uncertain, left in the dead-letter queue: {_named(entry)}")
                return
        self._delete(journal, letter)
        self.tally.completed.append(letter.message_id)
        self.report.say(f"completed what an interrupted run left: {entry.task_name} {entry.task_id}")

    def _received_since(self, entry: Entry) -> bool:
        """A worker logged receiving the task after its send was announced: the send reached the work queue."""
        if not (self.logs and self.log_group and entry.task_id and entry.sending_at):
            return False
        since = datetime.fromisoformat(entry.sending_at)
        found = task_logs.search(
            self.logs, self.log_group, [entry.task_id], since=since, until=utc_now() + timedelta(minutes=1)
        )
        return bool(found.of(entry.task_id).received_at)

    def _verify(self, complete: bool) -> None:
        tally, report = self.tally, self.report
        report.measurements["dead_letters_after"] = queue_counts(self.sqs, self.pair.dead_letter_url)
        report.add_checks(
            report.verification,
            [
                Check(
                    "selected_redriven",
                    len(tally.moved) == len(tally.selected),
                    f"{len(tally.moved)} of {len(tally.selected)} sent to the work queue and deleted here",
                ),
                Check(
                    "no_uncertain_send",
                    not tally.uncertain,
                    "none"
                    if not tally.uncertain
                    else f"left in the dead-letter queue, maybe also in the work queue: "
                    f"{tally.uncertain}; a worker's log line settles it on a rerun, or --resend-uncertain",
                ),
            ],
        )
        failed = report.failed_checks
        note = "" if complete else "; the queue was not read to its end: run again for the rest"
        report.finish("failed" if failed else "passed", f"not held: {', '.join(failed)}{note}" if failed else None)

    def _figures(self) -> dict:
        tally = self.tally
        return {
            "selection": self.options.selection.describe(),
            "journal": str(self.options.journal),
            "selected": len(tally.selected),
            "moved": len(tally.moved),
            "completed_from_interrupted_run": len(tally.completed),
            "uncertain": tally.uncertain,
            "not_selected": tally.others,
        }


def worker_log_group(environment: str | None, class_name: str) -> str | None:
    """The class's worker log group, where a worker's ``received`` line settles an uncertain send."""
    return contract.service_log_group_name(environment, contract.worker_process(class_name)) if environment else None
