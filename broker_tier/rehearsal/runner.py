"""One rehearsal: set up the loopback tier, run tasks through a fault, count them, check the goals.

Phases: set-up -> steady publishing -> the fault (and the name's move) -> publishing goes on -> the producer
stops -> drain -> settle -> past one visibility timeout (a message left un-acked comes back as a duplicate).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import broker_tier_contract as contract
from broker_tier.evidence.report import Report
from broker_tier.evidence.timeline import PictureUnavailable, Timeline, svg
from broker_tier.rehearsal.accounting import InFlight, Window, account, first_runs, stalls
from broker_tier.rehearsal.broker_state import BrokerState
from broker_tier.rehearsal.definition import (
    CDK_JSON,
    LoopbackBindings,
    WorkerDefinition,
    container_environment,
    generate_auth_token,
    read_worker_definition,
    synthesize,
)
from broker_tier.rehearsal.endpoint import Endpoint
from broker_tier.rehearsal.faults import BROKERS, fault_named, goals_for, recovered_label
from broker_tier.rehearsal.goals import blind_goals, check_goals
from broker_tier.rehearsal.injection import FaultSettings, FaultTarget, Strike
from broker_tier.rehearsal.ledger import Ledger, Publish
from broker_tier.rehearsal.memory import MemorySampler, limit_memory, memory_alarm_rules, memory_figures
from broker_tier.rehearsal.redis_pair import RedisNode, RedisPair
from broker_tier.rehearsal.sqs import CREDENTIALS, LocalSqs
from broker_tier.rehearsal.tls import ENDPOINT_HOSTNAME, make_loopback_tls
from broker_tier.rehearsal.util import OVERRIDES_VARIABLE, RehearsalError
from broker_tier.rehearsal.workers import WorkerExit, WorkerService, process_environment

Variables = contract.ContainerEnvironment
DEFAULT_DNS_DELAY_SECONDS = 5.0
"""AWS: a Multi-AZ failover may bring "a brief write interruption associated with DNS updates ... up to a few
seconds" (ElastiCache, "Minimizing downtime in ElastiCache by using Multi-AZ"): "a few" read as 5."""
DEFAULT_FULL_SECONDS = 5.0
"""memory-full: a few seconds, past the critical memory alarm's scaled window (3 periods of 1 s)."""
DEFAULT_SPLIT_WINDOW_SECONDS = 0.010
"""promote: both nodes take writes this long (docs/decisions/rehearsal-split-window.md)."""
WORKER_ONLY = (Variables.QUEUE.name, Variables.TASK_TIME_LIMIT.name, Variables.VISIBILITY_TIMEOUT.name)
"""Variables only worker containers get; the producer (a team's app, like Beat) has the rest."""
QUIET_SECONDS = 2.0
"""No execution for this long after the drain: the workers hold nothing more."""
PROGRESS_SECONDS = 2.0
"""How often the rehearsal prints its progress."""
SETTLE_QUIET_SECONDS = 15.0
"""After the drain, results and messages still in progress are waited for while their count shrinks at least
this often: longer than the settings package's socket time-outs (10 s), which can hold a result up."""


@dataclass(frozen=True, kw_only=True)
class RehearsalOptions:
    broker: str = "sqs"
    """``sqs`` or ``redis`` (``faults.BROKERS``)."""
    fault: str = "promote"
    """A fault of ``broker_tier.rehearsal.faults``."""
    dns_delay_seconds: float = DEFAULT_DNS_DELAY_SECONDS
    """From the fault to the endpoint's name moving. Default: 5."""
    split_window_seconds: float = DEFAULT_SPLIT_WINDOW_SECONDS
    """promote: from the replica's promotion to the old primary's demotion. Default: 0.01."""
    full_seconds: float = DEFAULT_FULL_SECONDS
    """memory-full: how long Redis stays full before the keys that filled it are deleted. Default: 5."""
    rate: float = 10.0
    """Canary tasks published per second. Default: 10."""
    before_seconds: float = 10.0
    """Steady publishing before the fault. Default: 10."""
    backlog_seconds: float = 0.0
    """Pause the workers' pools (SIGSTOP) this long at the end of ``before``, so tasks queue up as behind busy
    workers; they resume once the fault is over. Default: 0."""
    after_seconds: float = 15.0
    """Publishing after the endpoint recovered. Default: 15."""
    visibility_timeout_seconds: int = 20
    """SQS mode: the queue's visibility timeout on moto (short, so an un-acked message comes back within the run;
    it must exceed the max-delay bound). Default: 20."""
    drain_timeout_seconds: float = 60.0
    """How long to wait for published tasks to run after publishing stops. Default: 60."""
    workers: int = 2
    """Worker processes (ECS tasks) of the class, each with the definition's concurrency. Default: 2."""
    environment: str = "dev"
    """The cdk.json environment whose worker task definition is mirrored. Default: dev."""
    queue_class: str = "default"
    """The latency class whose worker is mirrored and published to. Default: default."""
    overrides: dict = field(default_factory=dict)
    """Celery settings put on top of the settings package in workers and producer (experiments). Default: none."""
    workdir: Path | None = None
    """Logs and state; default: a temporary directory, kept when the rehearsal fails."""

    def imposed(self) -> dict:
        """The figures the run imposes, which goal bounds and blind-goal checks read."""
        return {
            "dns_delay_seconds": self.dns_delay_seconds if fault_named(self.fault).name_moves else 0.0,
            "split_window_seconds": self.split_window_seconds if self.fault == "promote" else None,
            "full_seconds": self.full_seconds if self.fault == "memory-full" else None,
            "backlog_seconds": self.backlog_seconds,
            "visibility_timeout_seconds": self.visibility_timeout_seconds if self.broker == "sqs" else None,
        }


T = TypeVar("T")


def _set_up(part: T | None, name: str) -> T:
    """A part of the loopback tier that ``set_up`` (or a later phase) made; an error names one that is missing."""
    if part is None:
        raise RehearsalError(f"the rehearsal's {name} is not set up")
    return part


def refuse_options(options: RehearsalOptions) -> None:
    """RehearsalError for options the rehearsal cannot run with, or with which a goal could not fail."""
    if options.broker not in BROKERS:
        raise RehearsalError(f"--broker {options.broker!r} is not allowed; allowed: {', '.join(BROKERS)}")
    goals = goals_for(options.broker, options.fault)
    if not 0 <= options.backlog_seconds < options.before_seconds:
        raise RehearsalError(
            f"--backlog {options.backlog_seconds:g} is not allowed; allowed: at least 0 and "
            f"less than --before ({options.before_seconds:g})"
        )
    problems = blind_goals(goals, options.imposed())
    if problems:
        raise RehearsalError("a goal could not fail in this set-up: " + "; ".join(problems), problems)


class Rehearsal:
    """Runs one rehearsal into ``report`` (``report.measurements`` gets the figures)."""

    def __init__(
        self, options: RehearsalOptions, report: Report, *, templates: tuple[dict, dict] | None = None
    ) -> None:
        """:param templates: the (Compute, State) templates to mirror, synthesized with
        ``compute.broker == options.broker``; default: synthesized from cdk.json here."""
        refuse_options(options)
        self.options, self.report, self.templates = options, report, templates
        self.fault = fault_named(options.fault)
        self.workdir = options.workdir or Path(tempfile.mkdtemp(prefix="broker-tier-rehearsal-"))
        self.ledger = Ledger()
        self.run_id = uuid.uuid4().hex[:8]
        self.pair: RedisPair | None = None
        self.endpoint: Endpoint | None = None
        self.sqs: LocalSqs | None = None
        self.workers: WorkerService | None = None
        self.producer: subprocess.Popen | None = None
        self.state: BrokerState | None = None
        self.in_flight = InFlight()
        self.memory_sampler: MemorySampler | None = None
        self._producer_reader: threading.Thread | None = None
        self._last_progress = 0.0
        self.alarm_marks: list[tuple[float, str]] = []

    @property
    def _pair_ready(self) -> RedisPair:
        return _set_up(self.pair, "pair")

    @property
    def _endpoint_ready(self) -> Endpoint:
        return _set_up(self.endpoint, "endpoint")

    @property
    def _sqs_ready(self) -> LocalSqs:
        return _set_up(self.sqs, "sqs")

    @property
    def _state_ready(self) -> BrokerState:
        return _set_up(self.state, "state")

    @property
    def _workers_ready(self) -> WorkerService:
        return _set_up(self.workers, "workers")

    @property
    def _producer_ready(self) -> subprocess.Popen:
        return _set_up(self.producer, "producer")

    @property
    def _producer_reader_ready(self) -> threading.Thread:
        return _set_up(self._producer_reader, "producer_reader")

    # -- set-up -------------------------------------------------------------------------------
    def definition(self) -> WorkerDefinition:
        options = self.options
        if self.templates is None:
            self.report.say(
                f"synthesizing environment {options.environment!r} with compute.broker = {options.broker!r}"
            )
            self.templates = synthesize(options.environment, broker=options.broker)
        definition = read_worker_definition(
            *self.templates, environment_name=options.environment, class_name=options.queue_class
        )
        if definition.broker != options.broker:
            raise RehearsalError(f"the templates given are for broker {definition.broker!r}, not {options.broker!r}")
        return definition

    def set_up(self) -> tuple[WorkerDefinition, dict[str, str], dict[str, str]]:
        """Start the loopback tier; returns the definition, the worker containers' variables, and the
        local additions (what a container gets from AWS rather than from its task definition)."""
        definition = self.definition()
        auth_token = generate_auth_token(definition.state_template)
        tls_on = definition.environment.get(Variables.REDIS_TLS.name) == "true"
        tls = make_loopback_tls(self.workdir / "tls") if tls_on else None
        self.pair = RedisPair.start(workdir=self.workdir / "redis", password=auth_token, tls=tls)
        if self.fault.maxmemory_bytes:
            limit_memory((self._pair_ready.primary, self._pair_ready.replica), self.fault.maxmemory_bytes)
            self.memory_sampler = MemorySampler(lambda: self._pair_ready.primary)
            self.memory_sampler.start()
            self.report.say(f"redis: maxmemory {self.fault.maxmemory_bytes / 2**20:g} MiB on both nodes (noeviction)")
        self.endpoint = Endpoint(self._pair_ready.primary.address)
        self._endpoint_ready.start()
        self.report.say(
            f"redis: {self._pair_ready.primary.name} primary, {self._pair_ready.replica.name} its replica (AUTH"
            f"{', TLS' if tls else ''}); endpoint {ENDPOINT_HOSTNAME}:{self._endpoint_ready.port} -> "
            f"{self._pair_ready.primary.name}"
        )
        scratch = self.workdir / "tmp"  # the processes' own temporary files go with the workdir, even when killed
        scratch.mkdir(parents=True, exist_ok=True)
        additions: dict[str, str] = {"TMPDIR": str(scratch)}
        if tls is not None:
            additions["SSL_CERT_FILE"] = str(tls.ca_file)  # in AWS: the image's CA bundle trusts Amazon's CA
        self.sqs = LocalSqs(workdir=self.workdir / "sqs")
        if self.options.broker == "sqs":
            additions.update(self._start_sqs(definition))
        if self.options.overrides:
            additions[OVERRIDES_VARIABLE] = json.dumps(self.options.overrides)
            self.report.say(f"EXPERIMENT: settings overridden in workers and producer: {additions[OVERRIDES_VARIABLE]}")
        bindings = LoopbackBindings(
            endpoint_host=ENDPOINT_HOSTNAME,
            endpoint_port=self._endpoint_ready.port,
            auth_token=auth_token,
            queue_url=lambda name: self._sqs_ready.urls.get(name) or f"{self._sqs_ready.endpoint}/000000000000/{name}",
        )
        environment = container_environment(definition, bindings)
        self.state = BrokerState(environment, tls_ca_file=tls.ca_file if tls else None)
        return definition, environment, additions

    def _start_sqs(self, definition: WorkerDefinition) -> dict[str, str]:
        self._sqs_ready.start()
        visibility = self.options.visibility_timeout_seconds
        for queue in definition.queues.values():
            self._sqs_ready.create(queue, visibility_timeout_seconds=visibility)
        queue = definition.queue
        self.report.say(
            f"sqs (moto): {queue.name}, maxReceiveCount {queue.max_receive_count} -> {queue.dead_letter_name}; "
            f"visibility timeout {visibility} s (the stack's: {queue.visibility_timeout_seconds} s)"
        )
        return {Variables.SQS_ENDPOINT_URL.name: self._sqs_ready.endpoint, **CREDENTIALS}

    def start_workers(
        self, definition: WorkerDefinition, environment: dict[str, str], additions: dict[str, str]
    ) -> None:
        def exited(exit_: WorkerExit) -> None:
            self.report.say(
                f"worker {exit_.task} (pid {exit_.pid}) EXITED: {exit_.reason}; restarting it, "
                f"as ECS would replace the task"
            )

        self.workers = WorkerService.create(
            count=self.options.workers,
            definition_command=definition.command,
            environment=process_environment(environment, additions),
            log_dir=self.workdir / "logs",
            ledger=self.ledger,
            experiment=bool(self.options.overrides),
            on_exit=exited,
        )
        self._workers_ready.start(timeout=90)
        self.report.say(
            f"{self.options.workers} worker processes ready: {' '.join(self._workers_ready.tasks[0].command[2:])}"
        )

    def start_producer(self, environment: dict[str, str], additions: dict[str, str]) -> None:
        producer_environment = {k: v for k, v in environment.items() if k not in WORKER_ONLY}
        command = [sys.executable, "-m", "broker_tier.rehearsal.producer", "--queue", self.options.queue_class]
        command += ["--rate", str(self.options.rate), "--run-id", self.run_id]
        self.producer = subprocess.Popen(
            command,
            env=process_environment(producer_environment, additions),
            stdout=subprocess.PIPE,
            stderr=open(self.workdir / "logs" / "producer.log", "w"),
            text=True,
            bufsize=1,
        )
        ready = threading.Event()

        def read() -> None:
            for line in self._producer_ready.stdout or ():
                record = json.loads(line)
                if record.get("ready"):
                    ready.set()
                    continue
                self.ledger.published(Publish(**record))

        self._producer_reader = threading.Thread(target=read, daemon=True, name="rehearsal-producer")
        self._producer_reader_ready.start()
        if not ready.wait(60):
            raise RehearsalError(f"the producer did not start; see {self.workdir / 'logs' / 'producer.log'}")

    def stop_producer(self) -> float:
        self._producer_ready.terminate()  # SIGTERM: it finishes the call in progress
        self._producer_ready.wait(timeout=120)
        self._producer_reader_ready.join(timeout=10)
        return time.time()

    # -- while it runs ------------------------------------------------------------------------
    def progress(self, seconds: float, *, every: float = 2.0) -> None:
        """Sleep ``seconds``, saying how the counts move (at most once per ``PROGRESS_SECONDS``)."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(every, left))
            if time.monotonic() - self._last_progress >= PROGRESS_SECONDS:
                self._last_progress = time.monotonic()
                published, errors, executed = self.ledger.counts()
                self.report.say(f"published {published} ({errors} errors), executed {executed}", source="progress")

    def drain(self) -> None:
        deadline = time.monotonic() + self.options.drain_timeout_seconds
        while self.ledger.outstanding() and time.monotonic() < deadline:
            self.progress(min(2.0, deadline - time.monotonic()))
        outstanding = len(self.ledger.outstanding())
        self.report.say(
            "drained: every task published without error has run"
            if not outstanding
            else f"drain timed out with {outstanding} published tasks not run"
        )

    def quiet(self) -> None:
        """Wait until no execution arrived for QUIET_SECONDS (bounded by the drain time-out)."""
        deadline = time.monotonic() + self.options.drain_timeout_seconds
        while time.monotonic() < deadline:
            _, executions = self.ledger.snapshot()
            last = max((e["at"] for e in executions), default=0)
            if time.time() - last >= QUIET_SECONDS:
                return
            self.progress(0.5, every=0.5)

    def settle(self) -> None:
        """Wait until the workers hold nothing more: every task that ran has its result and, with the Redis broker,
        nothing is left in the class's unacked record; or until that count has not shrunk for
        ``SETTLE_QUIET_SECONDS`` (what is missing then is lost, not late). A result a socket time-out held up
        would otherwise be counted lost."""
        deadline = time.monotonic() + self.options.drain_timeout_seconds
        pending, shrunk_at = self._in_progress(), time.monotonic()
        while pending and time.monotonic() < min(deadline, shrunk_at + SETTLE_QUIET_SECONDS):
            self.progress(0.5, every=0.5)
            now = self._in_progress()
            if now < pending:
                shrunk_at = time.monotonic()
            pending = now
        if pending:
            self.report.say(f"{pending} result(s) or message(s) in progress still missing; counting")

    def _in_progress(self) -> int:
        ran = sorted({e["task_id"] for e in self.ledger.snapshot()[1]})
        pending = len(self._state_ready.results_missing(self._pair_ready.primary, ran))
        if self.options.broker == "redis":
            pending += self._state_ready.queue_depth(self._pair_ready.primary)["unacked_at_end"]
        return pending

    def past_visibility_timeout(self, definition: WorkerDefinition) -> dict:
        """Let un-acked messages come back (and run again), then measure what is still left."""
        if self.options.broker == "sqs":
            wait = self.options.visibility_timeout_seconds + 3
            self.report.say(f"waiting {wait} s, past the queue's visibility timeout, so an un-acked message runs again")
            self.progress(wait, every=5)
            self.quiet()
            work, dead = (
                self._sqs_ready.depth(definition.queue.name),
                self._sqs_ready.depth(definition.queue.dead_letter_name),
            )
            return {
                "unacked_at_end": work["visible"] + work["in_flight"],
                "dead_lettered": dead["visible"] + dead["in_flight"],
            }
        return self._restore_and_count_stranded()

    def _restore_and_count_stranded(self) -> dict:
        """Redis mode: kombu's restore with a visibility timeout of 0, now; a message that first runs after it
        was stranded (it would have waited a whole visibility timeout)."""
        restored_at = time.time()
        restored = self._state_ready.restore_unacked(self._pair_ready.primary)
        stranded = 0
        if restored:
            self.report.say(f"{restored} message(s) were left in the class's unacked record: restored, as kombu would")
            self.progress(3)
            self.quiet()
            stranded = sum(at >= restored_at for at in first_runs(self.ledger.snapshot()[1]).values())
        return {
            "restored_from_unacked": restored,
            "stranded_until_visibility_timeout": stranded,
            **self._state_ready.queue_depth(self._pair_ready.primary),
        }

    def queued(self, definition: WorkerDefinition, environment: dict[str, str]) -> int:
        """Messages waiting in the class's queue (not yet delivered to a worker) right now."""
        if self.options.broker == "sqs":
            return self._sqs_ready.depth(definition.queue.name)["visible"]
        return self._state_ready.queue_depth(self._pair_ready.primary)["queued_at_end"]

    def note_in_flight(self, node: RedisNode) -> None:
        if self.options.broker == "redis":
            self.in_flight = self._state_ready.in_flight(node)

    # -- the phases -----------------------------------------------------------------------------
    def steady(self) -> float:
        """Publish steadily, then (with a backlog) pause the pools; returns when the steady phase ended."""
        options = self.options
        self.report.say(
            f"publishing {options.rate:g} canary tasks/s to {options.queue_class!r} for "
            f"{options.before_seconds:g} s before the fault"
        )
        self.progress(max(0.0, options.before_seconds - options.backlog_seconds))
        steady_until = time.time()
        if options.backlog_seconds:
            self.report.say(f"pool processes paused (SIGSTOP) for {options.backlog_seconds:g} s: tasks queue up")
            self._workers_ready.pause()
            self.progress(options.backlog_seconds)
        return steady_until

    def strike(self, definition: WorkerDefinition, environment: dict[str, str]) -> Strike:
        queued = self.queued(definition, environment)
        target = FaultTarget(
            pair=self._pair_ready,
            endpoint=self._endpoint_ready,
            say=lambda message: self.report.say(message, source="fault"),
            on_promoted=self.note_in_flight,
        )
        settings = FaultSettings(
            dns_delay_seconds=self.options.dns_delay_seconds,
            split_window_seconds=self.options.split_window_seconds,
            full_seconds=self.options.full_seconds,
            cache_database=cache_database(definition),
        )
        strike = self.fault.inject(target, settings)
        strike.details["queued_before_fault"] = queued
        if self.options.backlog_seconds:
            self._workers_ready.resume()
            self.report.say("pool processes resumed (SIGCONT)")
        return strike

    def measure(self, definition: WorkerDefinition, strike: Strike, window: Window, additions: dict) -> dict:
        """Everything the report says about the run, once it is over."""
        end_state = self.past_visibility_timeout(definition)
        publishes, executions = self.ledger.snapshot()
        results_missing = self._state_ready.results_missing(
            self._pair_ready.primary, sorted({e["task_id"] for e in executions})
        )
        figures = account(
            publishes=publishes,
            executions=executions,
            window=window,
            results_missing=results_missing,
            worker_exits=self._workers_ready.exits,
            keys=self._state_ready.redis_keys if self.options.broker == "redis" else None,
            in_flight=self.in_flight,
        )
        extra = self._memory_full(publishes, executions, results_missing, strike) if self.memory_sampler else {}
        self.draw(publishes, executions, window)
        return {
            "broker": self.options.broker,
            "fault": self.options.fault,
            **figures,
            **end_state,
            **strike.details,
            "connections_left_hanging": self._endpoint_ready.silenced_count,
            **self.options.imposed(),
            "rate": self.options.rate,
            "workers": self.options.workers,
            "worker_command": " ".join(definition.command),
            "mirrored": f"{self.options.environment}/{self.options.queue_class}",
            "tls": "SSL_CERT_FILE" in additions,
            "overrides": self.options.overrides,
            **extra,
        }

    def _memory_full(self, publishes: list[Publish], executions: list[dict], missing: dict, strike: Strike) -> dict:
        """memory-full: the memory and alarm figures, what the callers were told, the results written while full
        and after (``self.alarm_marks`` gets the alarms' transitions for the timeline)."""
        sampler = _set_up(self.memory_sampler, "memory sampler")
        sampler.stop()
        rules = memory_alarm_rules(self.options.environment, CDK_JSON)
        full_at = strike.details.get("memory_full_at") or strike.struck_at
        figures, self.alarm_marks = memory_figures(
            sampler.samples, rules, origin=strike.struck_at, full=(full_at, strike.recovered_at)
        )
        ran_at = first_runs(executions)
        task_of = {e["token"]: e["task_id"] for e in executions}
        after = {task_of[token] for token, at in ran_at.items() if at >= strike.recovered_at}
        failed = [p.error or "" for p in publishes if not p.ok]
        runs = Counter(e["token"] for e in executions)
        while_full = {token for token, at in ran_at.items() if full_at <= at < strike.recovered_at}
        return {
            **figures,
            "memory_sample_errors": sampler.errors,
            "publish_errors_not_naming_memory": sum("maxmemory" not in error for error in failed),
            "results_lost_while_full": len(set(missing) - after),
            "results_lost_after_memory_back": len(set(missing) & after),
            "results_checked_after_memory_back": len(after),
            # sqs: a task whose result the full Redis refused keeps its message (acks_late, not acked on failure)
            "ran_while_full": len(while_full),
            "duplicated_ran_while_full": sum(runs[token] > 1 for token in while_full),
        }

    def draw(self, publishes: list[Publish], executions: list[dict], window: Window) -> None:
        strike = window.fault
        events = [(strike.struck_at, f"{strike.name}"), *self.alarm_marks]
        if strike.recovered_at:
            events.append((strike.recovered_at, recovered_label(self.fault)))
        timeline = Timeline(
            title=f"{self.options.broker} broker, {strike.name}, {self.options.rate:g} tasks/s",
            origin=window.publishing_started,
            published=[(p.sent_at, p.returned_at, p.ok) for p in publishes],
            first_runs=list(first_runs(executions).values()),
            events=events,
            spans=([(*strike.split_window, "split window")] if strike.split_window else []) + strike.shaded,
            stalls=stalls(executions, window),
        )
        try:
            self.report.pictures["timeline"] = svg(timeline)
        except PictureUnavailable as error:
            self.report.say(f"no timeline picture: {error}")

    # -- the whole run --------------------------------------------------------------------------
    def run(self) -> Report:
        report, failed = self.report, True
        publishing_started: float | None = None
        load_at_start = [round(x, 2) for x in os.getloadavg()]  # the machine may be shared: say how busy it was
        try:
            definition, environment, additions = self.set_up()
            self.start_workers(definition, environment, additions)
            self.start_producer(environment, additions)
            publishing_started = time.time()
            steady_until = self.steady()
            strike = self.strike(definition, environment)
            self.progress(self.options.after_seconds)
            window = Window(
                publishing_started=publishing_started,
                steady_until=steady_until,
                publishing_stopped=self.stop_producer(),
                fault=strike,
            )
            report.say("producer stopped")
            self.drain()
            self.quiet()
            self.settle()
            report.measurements.update(self.measure(definition, strike, window, additions))
            report.measurements["load_average_at_start"] = load_at_start
            report.measurements["load_1min_at_start"] = load_at_start[0]
            report.measurements["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
            checks = check_goals(goals_for(self.options.broker, self.options.fault), report.measurements)
            failed = not report.add_checks(report.verification, checks)
            report.finish("failed" if failed else "passed")
        except Exception as error:  # noqa: BLE001 - the report says what stopped the rehearsal
            if isinstance(error, RehearsalError) and publishing_started is None:
                failed = False  # nothing ran: no logs worth a temporary directory left behind
                raise  # it cannot run here (no redis-server, a template it cannot mirror): refused, nothing ran
            (self.workdir / "rehearsal-error.txt").write_text(traceback.format_exc())
            report.finish("aborted", f"{type(error).__name__}: {error} (traceback in {self.workdir})")
        finally:
            self.tear_down(keep_workdir=failed or self.options.workdir is not None)
        return report

    def tear_down(self, *, keep_workdir: bool) -> None:
        if self.producer is not None and self.producer.poll() is None:
            self.producer.kill()
            self.producer.wait(timeout=10)
        if self.workers is not None:
            self.workers.stop()
        if self.memory_sampler is not None:
            self.memory_sampler.stop()
        if self.endpoint is not None:
            self.endpoint.close()
        if self.sqs is not None:
            self.sqs.stop()
        if self.pair is not None:
            self.pair.stop()
        if keep_workdir:
            self.report.say(f"logs kept in {self.workdir}")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)


def cache_database(definition: WorkerDefinition) -> int:
    """The app-cache database of the State template's ``RedisDatabases`` output (``cache=0,broker=1,...``)."""
    output = definition.state_template.get("Outputs", {}).get(contract.StateOutputs.REDIS_DATABASES, {})
    layout = contract.parse_databases(output.get("Value", "")) if isinstance(output.get("Value"), str) else {}
    if "cache" not in layout:
        raise RehearsalError(
            f"the State template's {contract.StateOutputs.REDIS_DATABASES} output names no cache database"
        )
    return layout["cache"]


def new_report(options: RehearsalOptions, *, stream=None) -> Report:
    return Report(
        command="rehearse",
        environment=options.environment,
        target=f"{options.broker} broker, {options.fault}",
        dry_run=False,
        stream=stream,
    )


def rehearse(options: RehearsalOptions, *, templates: tuple[dict, dict] | None = None, stream=None) -> Report:
    """Run one rehearsal and return its report (not yet written)."""
    return Rehearsal(options, new_report(options, stream=stream), templates=templates).run()
