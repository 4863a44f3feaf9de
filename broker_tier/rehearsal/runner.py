"""One rehearsal: set up the loopback tier, run tasks through a fault, count them, check the goals.

Phases: set-up (templates, Redis pair, endpoint, SQS, workers) -> steady publishing (``before``) ->
the fault (and, for promote/power-loss, the DNS delay) -> publishing goes on (``after``) -> the
producer stops -> drain (every task published without error has run, or the drain time-out) ->
past one visibility timeout, so a message left un-acked comes back as a duplicate -> the figures.
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
from dataclasses import dataclass, field
from pathlib import Path

import broker_tier_contract as contract
from broker_tier.evidence.report import Report
from broker_tier.rehearsal.accounting import Window, account
from broker_tier.rehearsal.definition import (
    LoopbackBindings,
    WorkerDefinition,
    container_environment,
    generate_auth_token,
    read_worker_definition,
    synthesize,
)
from broker_tier.rehearsal.endpoint import Endpoint
from broker_tier.rehearsal.faults import FAULTS, FaultRecord
from broker_tier.rehearsal.goals import check_goals
from broker_tier.rehearsal.ledger import Ledger, Publish
from broker_tier.rehearsal.redis_pair import RedisPair
from broker_tier.rehearsal.sqs import CREDENTIALS, LocalSqs
from broker_tier.rehearsal.tls import ENDPOINT_HOSTNAME, make_loopback_tls
from broker_tier.rehearsal.util import OVERRIDES_VARIABLE, RehearsalError
from broker_tier.rehearsal.workers import WorkerExit, WorkerService, process_environment

Variables = contract.ContainerEnvironment
BROKERS = ("sqs", "redis")
DEFAULT_DNS_DELAY_SECONDS = 5.0
"""AWS: during a Multi-AZ failover "you might notice a brief write interruption associated with DNS
updates. This interruption might take up to a few seconds" (ElastiCache, "Minimizing downtime in
ElastiCache by using Multi-AZ"). The rehearsal reads "a few" as 5 s; ``--dns-delay`` changes it."""
WORKER_ONLY = (Variables.QUEUE.name, Variables.TASK_TIME_LIMIT.name, Variables.VISIBILITY_TIMEOUT.name)
"""Variables only worker containers get; the producer (a team's app, like Beat) has the rest."""
QUIET_SECONDS = 2.0
"""No execution for this long after the drain: the workers hold nothing more."""
PROGRESS_SECONDS = 2.0
"""How often the rehearsal prints its progress."""
RESTORE_MUTEX_WAIT_SECONDS = 10.0
"""How long the restore of the unacked hash waits for kombu's restore mutex: a worker's periodic scan holds it
for milliseconds (one that died holding it, until it expires: ``unacked_mutex_expire``, 300 s)."""


@dataclass(frozen=True, kw_only=True)
class RehearsalOptions:
    broker: str = "sqs"
    """``sqs``: SQS queues (moto), Redis holds results. ``redis``: Redis is broker and result backend."""
    fault: str = "promote"
    """``promote``, ``power-loss`` or ``reboot`` (see broker_tier.rehearsal.faults)."""
    dns_delay_seconds: float = DEFAULT_DNS_DELAY_SECONDS
    """From the fault to the endpoint's name moving. Default: 5 (see DEFAULT_DNS_DELAY_SECONDS)."""
    rate: float = 10.0
    """Canary tasks published per second. Default: 10."""
    before_seconds: float = 10.0
    """Steady publishing before the fault. Default: 10."""
    backlog_seconds: float = 0.0
    """Pause the workers (SIGSTOP) this long at the end of ``before``, so tasks queue up as behind busy
    workers; they resume (SIGCONT) once the fault is over. Shows what a fault does to queued work.
    Default: 0."""
    after_seconds: float = 15.0
    """Publishing after the endpoint recovered. Default: 15."""
    visibility_timeout_seconds: int = 20
    """SQS mode: the queue's visibility timeout on moto (the stack's is far longer; a short one makes
    an un-acked message come back within the run). Default: 20."""
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


class Rehearsal:
    """Runs one rehearsal into ``report`` (``report.measurements`` gets the figures)."""

    def __init__(
        self, options: RehearsalOptions, report: Report, *, templates: tuple[dict, dict] | None = None
    ) -> None:
        """
        :param templates: the (Compute, State) templates to mirror, synthesized with
            ``compute.broker == options.broker``; default: synthesized from cdk.json here.
        """
        if options.broker not in BROKERS:
            raise RehearsalError(f"--broker {options.broker!r} is not allowed; allowed: {', '.join(BROKERS)}")
        if options.fault not in FAULTS:
            raise RehearsalError(f"--fault {options.fault!r} is not allowed; allowed: {', '.join(FAULTS)}")
        if not 0 <= options.backlog_seconds < options.before_seconds:
            raise RehearsalError(
                f"--backlog {options.backlog_seconds:g} is not allowed; allowed: at least 0 and "
                f"less than --before ({options.before_seconds:g})"
            )
        self.options, self.report, self.templates = options, report, templates
        self.workdir = options.workdir or Path(tempfile.mkdtemp(prefix="broker-tier-rehearsal-"))
        self.ledger = Ledger()
        self.run_id = uuid.uuid4().hex[:8]
        self.pair: RedisPair | None = None
        self.endpoint: Endpoint | None = None
        self.sqs: LocalSqs | None = None
        self.workers: WorkerService | None = None
        self.producer: subprocess.Popen | None = None
        self._producer_reader: threading.Thread | None = None
        self._last_progress = 0.0

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
        options, say = self.options, self.report.say
        definition = self.definition()
        auth_token = generate_auth_token(definition.state_template)
        tls_on = definition.environment.get(Variables.REDIS_TLS.name) == "true"
        tls = make_loopback_tls(self.workdir / "tls") if tls_on else None
        self.pair = RedisPair.start(workdir=self.workdir / "redis", password=auth_token, tls=tls)
        self.endpoint = Endpoint(self.pair.primary.address)
        self.endpoint.start()
        say(
            f"redis: {self.pair.primary.name} primary, {self.pair.replica.name} its replica (AUTH"
            f"{', TLS' if tls else ''}); endpoint {ENDPOINT_HOSTNAME}:{self.endpoint.port} -> "
            f"{self.pair.primary.name}"
        )
        additions: dict[str, str] = {}
        if tls is not None:
            additions["SSL_CERT_FILE"] = str(tls.ca_file)  # in AWS: the image's CA bundle trusts Amazon's CA
        self.sqs = LocalSqs(workdir=self.workdir / "sqs")
        if options.broker == "sqs":
            self.sqs.start()
            for queue in definition.queues.values():
                self.sqs.create(queue, visibility_timeout_seconds=options.visibility_timeout_seconds)
            queue = definition.queue
            say(
                f"sqs (moto): {queue.name}, maxReceiveCount {queue.max_receive_count} -> {queue.dead_letter_name}; "
                f"visibility timeout {options.visibility_timeout_seconds} s (the stack's: "
                f"{queue.visibility_timeout_seconds} s)"
            )
            additions.update({Variables.SQS_ENDPOINT_URL.name: self.sqs.endpoint, **CREDENTIALS})
        if options.overrides:
            additions[OVERRIDES_VARIABLE] = json.dumps(options.overrides)
            say(f"EXPERIMENT: settings overridden in workers and producer: {json.dumps(options.overrides)}")
        bindings = LoopbackBindings(
            endpoint_host=ENDPOINT_HOSTNAME,
            endpoint_port=self.endpoint.port,
            auth_token=auth_token,
            queue_url=lambda name: self.sqs.urls.get(name) or f"{self.sqs.endpoint}/000000000000/{name}",
        )
        environment = container_environment(definition, bindings)
        return definition, environment, additions

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
        self.workers.start(timeout=90)
        self.report.say(f"{self.options.workers} worker processes ready: {' '.join(self.workers.tasks[0].command[2:])}")

    def start_producer(self, environment: dict[str, str], additions: dict[str, str]) -> None:
        producer_environment = {k: v for k, v in environment.items() if k not in WORKER_ONLY}
        self.producer = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "broker_tier.rehearsal.producer",
                "--queue",
                self.options.queue_class,
                "--rate",
                str(self.options.rate),
                "--run-id",
                self.run_id,
            ],
            env=process_environment(producer_environment, additions),
            stdout=subprocess.PIPE,
            stderr=open(self.workdir / "logs" / "producer.log", "w"),
            text=True,
            bufsize=1,
        )
        ready = threading.Event()

        def read() -> None:
            for line in self.producer.stdout:
                record = json.loads(line)
                if record.get("ready"):
                    ready.set()
                    continue
                self.ledger.published(Publish(**record))

        self._producer_reader = threading.Thread(target=read, daemon=True, name="rehearsal-producer")
        self._producer_reader.start()
        if not ready.wait(60):
            raise RehearsalError(f"the producer did not start; see {self.workdir / 'logs' / 'producer.log'}")

    def stop_producer(self) -> float:
        self.producer.terminate()  # SIGTERM: it finishes the call in progress
        self.producer.wait(timeout=120)
        self._producer_reader.join(timeout=10)
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
        def drained() -> bool:
            return not self.ledger.outstanding()

        deadline = time.monotonic() + self.options.drain_timeout_seconds
        while not drained() and time.monotonic() < deadline:
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

    def past_visibility_timeout(self, definition: WorkerDefinition, environment: dict[str, str]) -> dict:
        """Let un-acked messages come back (and run again), then measure what is still left."""
        if self.options.broker == "sqs":
            wait = self.options.visibility_timeout_seconds + 3
            self.report.say(
                f"waiting {wait} s, past the queue's visibility timeout, so a message left un-acked "
                f"comes back and runs again"
            )
            self.progress(wait, every=5)
            self.quiet()
            work, dead = self.sqs.depth(definition.queue.name), self.sqs.depth(definition.queue.dead_letter_name)
            return {
                "unacked_at_end": work["visible"] + work["in_flight"],
                "dead_lettered": dead["visible"] + dead["in_flight"],
            }
        restored_at = time.time()
        restored = self.restore_unacked(environment)
        stranded = 0
        if restored:
            self.report.say(
                f"{restored} message(s) were left in the class's unacked hash: restored as the transport's "
                f"visibility timeout would, to see whether they run again"
            )
            self.progress(3)
            self.quiet()
            _, executions = self.ledger.snapshot()
            first_runs: dict[str, float] = {}
            for execution in executions:
                first_runs[execution["token"]] = min(
                    first_runs.get(execution["token"], execution["at"]), execution["at"]
                )
            stranded = sum(at >= restored_at for at in first_runs.values())
        return {
            "restored_from_unacked": restored,
            # never ran before the restore: without it they would have waited a whole visibility timeout
            "stranded_until_visibility_timeout": stranded,
            **self.redis_queue_depth(environment),
        }

    # -- redis mode's bookkeeping ---------------------------------------------------------------
    def _kombu_connection(self, environment: dict[str, str]):
        from urllib.parse import quote

        from kombu import Connection

        from broker_tier_celery import settings_from_environment

        settings = settings_from_environment(environment)
        url = settings["broker_url"]
        if environment.get(Variables.REDIS_TLS.name) == "true":  # the URL's ssl_* query wins over ssl=
            url += f"&ssl_ca_certs={quote(str(self.workdir / 'tls' / 'ca.pem'), safe='')}"
        return Connection(url, transport_options=settings["broker_transport_options"])

    @staticmethod
    def unacked_keys(environment: dict[str, str]) -> dict[str, str]:
        """kombu's keys of the class's own record of messages in progress, which its workers use."""
        return contract.redis_unacked_keys(environment[Variables.QUEUE.name])

    def restore_unacked(self, environment: dict[str, str]) -> int:
        """Put every message still in the class's unacked hash back on its queue, as kombu's restore
        (``QoS.restore_visible``) would once the transport's visibility timeout (task time limit + 60 s) had
        passed and a worker's periodic scan ran: under kombu's restore mutex, with its ``restore_by_tag``.
        Returns how many messages were put back. ``restore_visible`` itself skips the restore without a word
        while a worker's scan holds the mutex, so here the mutex is waited for."""
        from kombu.transport.redis import Mutex, MutexHeld

        client = self.pair.primary.client(int(environment[Variables.REDIS_DB_BROKER.name]))
        left = client.hlen(self.unacked_keys(environment)["unacked_key"])
        if not left:
            return 0
        with self._kombu_connection(environment) as connection:  # the class's keys: its transport options
            qos = connection.default_channel.qos
            deadline = time.monotonic() + RESTORE_MUTEX_WAIT_SECONDS
            while True:
                try:
                    with Mutex(client, qos.unacked_mutex_key, qos.unacked_mutex_expire):
                        restored = 0
                        for tag in client.zrange(qos.unacked_index_key, 0, -1):
                            restored += client.hexists(qos.unacked_key, tag)  # what restore_by_tag puts back
                            qos.restore_by_tag(tag, client)
                        return restored
                except MutexHeld:
                    if time.monotonic() >= deadline:
                        self.report.say(
                            f"{left} message(s) in the class's unacked hash NOT restored: kombu's restore "
                            f"mutex was held for over {RESTORE_MUTEX_WAIT_SECONDS:g} s"
                        )
                        return 0
                    time.sleep(0.1)

    def queued(self, definition: WorkerDefinition, environment: dict[str, str]) -> int:
        """Messages waiting in the class's queue (not yet delivered to a worker) right now."""
        if self.options.broker == "sqs":
            return self.sqs.depth(definition.queue.name)["visible"]
        return self.redis_queue_depth(environment)["queued_at_end"]

    def redis_queue_depth(self, environment: dict[str, str]) -> dict:
        client = self.pair.primary.client(int(environment[Variables.REDIS_DB_BROKER.name]))
        queued = sum(
            client.llen(key)
            for key in client.scan_iter(match=f"{self.options.queue_class}*")
            if client.type(key) == b"list"
        )
        return {
            "unacked_at_end": client.hlen(self.unacked_keys(environment)["unacked_key"]) + queued,
            "queued_at_end": queued,
        }

    def results_missing(self, environment: dict[str, str]) -> dict[str, str]:
        """Task id -> state (``missing`` when no result) of every task that ran but whose result on
        the (current) primary is not SUCCESS."""
        _, executions = self.ledger.snapshot()
        task_ids = sorted({e["task_id"] for e in executions})
        client = self.pair.primary.client(int(environment[Variables.REDIS_DB_RESULTS.name]))
        missing: dict[str, str] = {}
        for start in range(0, len(task_ids), 500):
            chunk = task_ids[start : start + 500]
            for task_id, raw in zip(chunk, client.mget([f"celery-task-meta-{i}" for i in chunk]), strict=True):
                state = "missing" if raw is None else json.loads(raw).get("status")
                if state != "SUCCESS":
                    missing[task_id] = state
        return missing

    # -- the whole run --------------------------------------------------------------------------
    def run(self) -> Report:
        options, report = self.options, self.report
        failed = True
        publishing_started: float | None = None
        load_at_start = [round(x, 2) for x in os.getloadavg()]  # the machine may be shared: say how busy it was
        try:
            definition, environment, additions = self.set_up()
            self.start_workers(definition, environment, additions)
            self.start_producer(environment, additions)
            publishing_started = time.time()
            report.say(
                f"publishing {options.rate:g} canary tasks/s to {options.queue_class!r} for "
                f"{options.before_seconds:g} s before the fault"
            )
            self.progress(max(0.0, options.before_seconds - options.backlog_seconds))
            steady_until = time.time()
            if options.backlog_seconds:
                report.say(
                    f"pool processes paused (SIGSTOP) for {options.backlog_seconds:g} s: tasks queue up, as "
                    f"behind busy workers"
                )
                self.workers.pause()
                self.progress(options.backlog_seconds)
            queued = self.queued(definition, environment)
            fault: FaultRecord = FAULTS[options.fault](
                self.pair,
                self.endpoint,
                dns_delay=options.dns_delay_seconds,
                say=lambda message: report.say(message, source="fault"),
            )
            fault.details["queued_before_fault"] = queued
            if options.backlog_seconds:
                self.workers.resume()
                report.say("pool processes resumed (SIGCONT)")
            self.progress(options.after_seconds)
            publishing_stopped = self.stop_producer()
            report.say("producer stopped")
            self.drain()
            self.quiet()
            end_state = self.past_visibility_timeout(definition, environment)
            publishes, executions = self.ledger.snapshot()
            figures = account(
                publishes=publishes,
                executions=executions,
                window=Window(
                    publishing_started=publishing_started,
                    steady_until=steady_until,
                    publishing_stopped=publishing_stopped,
                    fault=fault,
                ),
                results_missing=self.results_missing(environment),
                worker_exits=self.workers.exits,
            )
            report.measurements.update(
                {
                    "broker": options.broker,
                    "fault": options.fault,
                    **figures,
                    **end_state,
                    **fault.details,
                    "dns_delay_seconds": options.dns_delay_seconds,
                    "rate": options.rate,
                    "backlog_seconds": options.backlog_seconds,
                    "visibility_timeout_seconds": (
                        options.visibility_timeout_seconds if options.broker == "sqs" else None
                    ),
                    "workers": options.workers,
                    "worker_command": " ".join(definition.command),
                    "mirrored": f"{options.environment}/{options.queue_class}",
                    "tls": "SSL_CERT_FILE" in additions,
                    "overrides": options.overrides,
                    "load_average_at_start": load_at_start,
                    "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
                }
            )
            passed = report.add_checks(
                report.verification, check_goals(options.broker, options.fault, report.measurements)
            )
            report.finish("passed" if passed else "failed")
            failed = not passed
        except Exception as error:  # noqa: BLE001 - the report says what stopped the rehearsal
            if isinstance(error, RehearsalError) and publishing_started is None:
                raise  # it cannot run here (no redis-server, a template it cannot mirror): refused, nothing ran
            (self.workdir / "rehearsal-error.txt").write_text(traceback.format_exc())
            report.finish("aborted", f"{type(error).__name__}: {error} (traceback in {self.workdir})")
        finally:
            self.tear_down(keep_workdir=failed or options.workdir is not None)
        return report

    def tear_down(self, *, keep_workdir: bool) -> None:
        if self.producer is not None and self.producer.poll() is None:
            self.producer.kill()
            self.producer.wait(timeout=10)
        if self.workers is not None:
            self.workers.stop()
        for part in (self.endpoint, self.sqs):
            if part is not None:
                (part.close if isinstance(part, Endpoint) else part.stop)()
        if self.pair is not None:
            self.pair.stop()
        if keep_workdir:
            self.report.say(f"logs kept in {self.workdir}")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)


def rehearse(options: RehearsalOptions, *, templates: tuple[dict, dict] | None = None, stream=None) -> Report:
    """Run one rehearsal and return its report (not yet written)."""
    report = Report(
        command="rehearse",
        environment=options.environment,
        target=f"{options.broker} broker, {options.fault}",
        dry_run=False,
        stream=stream,
    )
    return Rehearsal(options, report, templates=templates).run()
