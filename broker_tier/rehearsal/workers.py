"""Real ``celery worker`` processes started as ECS starts the worker service's tasks: the task definition's command
and the container's environment, nothing else of the caller's shell. One that exits is counted and restarted, as
ECS replaces a task; canary ledger lines go to the :class:`~broker_tier.rehearsal.ledger.Ledger` as they arrive.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from broker_tier.rehearsal.ledger import Ledger
from broker_tier.rehearsal.util import RehearsalError
from broker_tier_contract import parse_canary_ledger_line

PROCESS_BASICS = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")
"""Variables of the caller's environment every process needs; nothing else of it reaches a worker."""
EXPERIMENT_APP = "broker_tier.rehearsal.experiment_app"
"""Loaded instead of the definition's app when settings are overridden for an experiment."""
READY_MARKER = " ready."
RESTART_DELAY_SECONDS = 1.0
"""ECS replaces a stopped task after some seconds; the rehearsal restarts a worker after this."""


def worker_command(definition_command: tuple[str, ...], *, task_name: str, experiment: bool) -> list[str]:
    """The definition's command as a local process: the venv's Python runs ``celery``; ``%h``
    becomes ``task_name``; with ``experiment`` the app is :data:`EXPERIMENT_APP` (same app, with
    the overrides on top)."""
    command = list(definition_command)
    if command[0] != "celery":
        raise RehearsalError(f"the worker command does not start with 'celery': {command}")
    command = [sys.executable, "-m", "celery", *command[1:]]
    command = [part.replace("%h", task_name) for part in command]
    if experiment:
        command[command.index("-A") + 1] = EXPERIMENT_APP
    return command


def _children(pid: int) -> list[int]:
    """Child process ids (Linux /proc): a prefork worker's pool processes."""
    children: list[int] = []
    for thread in Path(f"/proc/{pid}/task").iterdir():
        children += [int(child) for child in (thread / "children").read_text().split()]
    return children


def process_environment(container_environment: dict[str, str], extra: dict[str, str]) -> dict[str, str]:
    basics = {name: os.environ[name] for name in PROCESS_BASICS if name in os.environ}
    return {**basics, **container_environment, **extra}


@dataclass(kw_only=True)
class WorkerExit:
    task: str
    pid: int
    returncode: int | None
    at: float
    last_lines: list[str]

    @property
    def reason(self) -> str:
        for line in reversed(self.last_lines):
            if "Unrecoverable error" in line or "CRITICAL" in line:
                return line.strip()
        return f"exit code {self.returncode}"


@dataclass(kw_only=True)
class WorkerTask:
    """One worker "task" (a Celery main process and its pool), restarted when it exits."""

    name: str
    command: list[str]
    environment: dict[str, str]
    log_path: Path
    ledger: Ledger
    on_exit: Callable[[WorkerExit], None]
    process: subprocess.Popen | None = None
    ready: threading.Event = field(default_factory=threading.Event)
    stopping: bool = False
    last_lines: deque = field(default_factory=lambda: deque(maxlen=40))
    _reader: threading.Thread | None = None

    def start(self) -> None:
        self.ready.clear()
        log = open(self.log_path, "a")
        log.write(f"==== started {time.strftime('%H:%M:%S')}: {' '.join(self.command)}\n")
        log.flush()
        # A session of its own: the pool's children go with it when the rehearsal stops the task.
        self.process = subprocess.Popen(
            self.command,
            env=self.environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        self._reader = threading.Thread(
            target=self._read, args=(self.process, log), daemon=True, name=f"rehearsal-{self.name}"
        )
        self._reader.start()

    def _read(self, process: subprocess.Popen, log) -> None:
        for line in process.stdout or ():
            log.write(line)
            self.last_lines.append(line)
            record = parse_canary_ledger_line(line)
            if record is not None:
                self.ledger.executed({**record, "worker": self.name})
            elif READY_MARKER in line:
                self.ready.set()
        log.flush()
        returncode = process.wait()
        log.write(f"==== exited with {returncode}\n")
        log.close()
        if not self.stopping:
            self.on_exit(
                WorkerExit(
                    task=self.name,
                    pid=process.pid,
                    returncode=returncode,
                    at=time.time(),
                    last_lines=list(self.last_lines),
                )
            )
            time.sleep(RESTART_DELAY_SECONDS)
            if not self.stopping:
                self.start()

    def stop(self) -> None:
        self.stopping = True
        if self.process is None or self.process.poll() is not None:
            return
        try:  # the whole session: main process and pool children (all started here)
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)
        if self._reader is not None:
            self._reader.join(timeout=10)


@dataclass(kw_only=True)
class WorkerService:
    """``count`` worker tasks of one class, like the ECS service at a fixed desired count."""

    tasks: list[WorkerTask]
    exits: list[WorkerExit] = field(default_factory=list)

    @classmethod
    def create(
        cls,
        *,
        count: int,
        definition_command: tuple[str, ...],
        environment: dict[str, str],
        log_dir: Path,
        ledger: Ledger,
        experiment: bool,
        on_exit: Callable[[WorkerExit], None],
    ) -> WorkerService:
        log_dir.mkdir(parents=True, exist_ok=True)
        service = cls(tasks=[])

        def record(exit_: WorkerExit) -> None:
            service.exits.append(exit_)
            on_exit(exit_)

        for number in range(1, count + 1):
            name = f"task-{number}"
            service.tasks.append(
                WorkerTask(
                    name=name,
                    command=worker_command(definition_command, task_name=f"rehearsal-{name}", experiment=experiment),
                    environment=environment,
                    log_path=log_dir / f"worker-{name}.log",
                    ledger=ledger,
                    on_exit=record,
                )
            )
        return service

    def start(self, *, timeout: float) -> None:
        for task in self.tasks:
            task.start()
        deadline = time.monotonic() + timeout
        for task in self.tasks:
            if not task.ready.wait(max(0.1, deadline - time.monotonic())):
                raise RehearsalError(
                    f"worker {task.name} was not ready within {timeout:.0f} s; see "
                    f"{task.log_path}:\n{''.join(task.last_lines)[-2000:]}"
                )
        if self.exits:
            raise RehearsalError(
                f"a worker exited while starting: {self.exits[0].reason}; see {self.tasks[0].log_path}"
            )

    def pause(self) -> None:
        """SIGSTOP the pool processes: each worker fills its prefetch and stops taking messages, as when
        every pool process is busy with a long task; the main process stays responsive."""
        self._signal_pool(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal_pool(signal.SIGCONT)

    def _signal_pool(self, signum: int) -> None:
        for task in self.tasks:
            if task.process is not None and task.process.poll() is None:
                for child in _children(task.process.pid):
                    os.kill(child, signum)

    def stop(self) -> None:
        for task in self.tasks:
            task.stop()
