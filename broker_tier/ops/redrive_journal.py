"""The selective redrive's journal: one JSON line per step, written and flushed to disk (fsync) before the step it
announces is taken, so that a rerun after any interruption knows what each dead letter went through.

Steps of one dead letter (keyed by its SQS message id in the dead-letter queue, which stays the same however often
it is received): ``sending`` (before SendMessage), ``sent`` (SQS accepted the copy: its new message id),
``send-failed`` (SQS refused it or was never reached: not sent), ``deleted`` (its dead-letter copy is gone), and
``settled`` (an uncertain send found in the worker's log). A letter whose last step is ``sending`` is *uncertain*:
the process stopped while SendMessage was under way, and only the work queue knows whether it arrived.
Guarantee and reasons: docs/decisions/selective-redrive-journal.md.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from broker_tier.evidence.errors import OpsError
from broker_tier.evidence.report import utc_now

SENDING, SENT, SEND_FAILED, DELETED, SETTLED = "sending", "sent", "send-failed", "deleted", "settled"
PENDING = (SENDING, SENT, SETTLED)
"""Last steps that leave work for a rerun: settle or delete the dead-letter copy."""


@dataclass(frozen=True)
class Entry:
    """The last step the journal holds for one dead letter, and its first ``sending`` time."""

    message_id: str
    step: str
    task_id: str | None
    task_name: str | None
    sending_at: str | None
    """When the first send was announced (ISO 8601): a worker receiving the task after it proves the send."""


class RedriveJournal:
    """The journal of one dead-letter queue at ``path``. Opening takes an exclusive lock (``flock``): a second
    redrive of the same queue from this machine is refused while one runs."""

    def __init__(self, path: Path, *, dead_letter_queue: str) -> None:
        self.path, self.dead_letter_queue = path, dead_letter_queue
        self._file: TextIO | None = None

    def __enter__(self) -> RedriveJournal:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a+")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            raise OpsError(
                f"another redrive of this dead-letter queue holds its journal {self.path}: let it finish"
            ) from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()  # the lock goes with it
            self._file = None

    def entries(self) -> dict[str, Entry]:
        """Each dead letter's last step, by message id, read from the whole journal."""
        found: dict[str, Entry] = {}
        if not self.path.exists():
            return found
        lines = self.path.read_text().splitlines()
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                if number == len(lines):
                    continue  # a last line cut short by a crash while writing: its step was never taken
                raise OpsError(f"{self.path}, line {number}: not a journal record; move the file aside") from None
            if record.get("queue") != self.dead_letter_queue or "message_id" not in record:
                continue
            earlier = found.get(record["message_id"])
            found[record["message_id"]] = Entry(
                message_id=record["message_id"],
                step=record["step"],
                task_id=record.get("task_id") or (earlier.task_id if earlier else None),
                task_name=record.get("task_name") or (earlier.task_name if earlier else None),
                sending_at=(earlier.sending_at if earlier and earlier.sending_at else None)
                or (record["at"] if record["step"] == SENDING else None),
            )
        return found

    def pending(self) -> dict[str, Entry]:
        """The dead letters an earlier run left half done."""
        return {message_id: entry for message_id, entry in self.entries().items() if entry.step in PENDING}

    def record(self, step: str, message_id: str, **details: Any) -> None:
        """Append one step and flush it to disk before returning: the caller takes the step only after this."""
        if self._file is None:
            raise RuntimeError("the journal is not open")
        line = {"at": utc_now().isoformat(timespec="milliseconds"), "queue": self.dead_letter_queue, "step": step}
        line |= {"message_id": message_id, **details}
        self._file.write(json.dumps(line) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
