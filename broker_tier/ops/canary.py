"""Canary traffic for the failover drill: the reference worker's canary task sent straight to the deployed SQS
queue as kombu's SQS transport would (boto3 only), its runs counted from the worker's CloudWatch Logs ledger
lines, which never go through the Redis being failed over. The count waits a settle time of at least one
visibility timeout, so a message left un-acked shows as a duplicate instead of hiding.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

import broker_tier_contract as contract
from broker_tier.evidence import task_accounting
from broker_tier.evidence.report import Check, Report, utc_now
from broker_tier.evidence.task_accounting import RESUME_GOAL_SECONDS, SAMPLE
from broker_tier.evidence.timeline import PictureUnavailable, Timeline, svg
from broker_tier.ops.resources import TierResources

# Margin on top of the queue's visibility timeout before a canary is counted lost: the awslogs
# driver ships batches every few seconds and FilterLogEvents sees an event once it is indexed.
LEDGER_DELIVERY_MARGIN_SECONDS = 60.0
CLOCK_MARGIN = timedelta(minutes=5)
STALL_SHOWN_SECONDS = 1.0
"""Stretches without a canary's first run at least this long are drawn as stalls."""


def celery_sqs_message(*, task: str, args: list[Any], task_id: str, queue: str, origin: str) -> str:
    """The SQS message body kombu's SQS transport sends for ``apply_async(args, queue=queue)`` of
    Celery task ``task`` (task protocol 2, JSON serializer, base64 body and envelope)."""
    embed = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
    body = base64.b64encode(json.dumps([list(args), {}, embed]).encode()).decode()
    headers: dict[str, Any] = {
        "lang": "py",
        "task": task,
        "id": task_id,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [None, None],
        "root_id": task_id,
        "parent_id": None,
        "argsrepr": repr(list(args)),
        "kwargsrepr": "{}",
        "origin": origin,
        "ignore_result": None,
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
        # the publish time the settings package stamps on every message (the Redis broker's age is read from it)
        contract.PUBLISHED_AT_HEADER: round(time.time(), 3),
    }
    properties = {
        "correlation_id": task_id,
        "reply_to": "",
        "delivery_mode": 2,
        "delivery_info": {"exchange": "", "routing_key": queue},
        "priority": 0,
        "body_encoding": "base64",
        "delivery_tag": str(uuid.uuid4()),
    }
    envelope = {
        "body": body,
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": headers,
        "properties": properties,
    }
    return base64.b64encode(json.dumps(envelope).encode()).decode()


@dataclass(frozen=True)
class SentCanary:
    token: str
    task_id: str
    sent_at: float
    """Unix time the SendMessage call started."""
    error: str | None = None
    """The error SendMessage raised after boto3's retries (a publish error), or None."""
    returned_at: float | None = None
    """Unix time the SendMessage call returned (the caller's wait ends)."""


@dataclass(frozen=True)
class Execution:
    """One ledger line: a canary ran once."""

    token: str
    task_id: str
    at: float
    """Unix time on the worker when the task started."""
    ingested_at: float | None = None
    """Unix time CloudWatch Logs ingested the line."""


class CanarySender:
    """Sends canaries to one queue at a steady rate from a thread (``start``/``stop``), or one at a
    time (``send``). Its schedule runs on real time whatever clock the drill uses."""

    def __init__(
        self,
        sqs,
        *,
        queue_url: str,
        queue: str,
        run_id: str,
        rate_per_second: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sqs, self.queue_url, self.queue, self.run_id = sqs, queue_url, queue, run_id
        self.interval = 1.0 / rate_per_second
        self.clock = clock
        self.origin = f"broker-tier-ops@{socket.gethostname()}"
        self.sent: list[SentCanary] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sequence = 0

    def send(self, token: str | None = None) -> SentCanary:
        """Send one canary; with ``token`` given (a probe), it is not recorded in ``sent``."""
        record = token is None
        with self._lock:
            if token is None:
                self._sequence += 1
                token = f"{self.run_id}-{self._sequence:06d}"
        task_id = str(uuid.uuid4())
        sent_at = self.clock()
        error = None
        try:
            self.sqs.send_message(
                QueueUrl=self.queue_url,
                MessageBody=celery_sqs_message(
                    task=contract.CANARY_TASK, args=[token], task_id=task_id, queue=self.queue, origin=self.origin
                ),
            )
        except (ClientError, BotoCoreError) as failure:
            error = str(failure)
        canary = SentCanary(token, task_id, sent_at, error, self.clock())
        if record:
            with self._lock:
                self.sent.append(canary)
        return canary

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="canary-sender", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.send()
            next_at = max(next_at + self.interval, time.monotonic() - self.interval)  # no burst to catch up
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def counts(self) -> tuple[int, int]:
        """(sent, publish errors) so far."""
        with self._lock:
            return len(self.sent), sum(1 for canary in self.sent if canary.error)


def read_ledger(logs, *, log_group: str, run_id: str, since: datetime) -> list[Execution]:
    """The ledger lines of run ``run_id`` in ``log_group`` from ``since`` on (FilterLogEvents)."""
    executions = []
    pages = logs.get_paginator("filter_log_events").paginate(
        logGroupName=log_group, filterPattern=f'"{run_id}"', startTime=int(since.timestamp() * 1000)
    )
    for page in pages:
        for event in page["events"]:
            record = contract.parse_canary_ledger_line(event["message"])
            if record is None or not str(record["token"]).startswith(run_id):
                continue
            ingested = event.get("ingestionTime")
            executions.append(
                Execution(
                    str(record["token"]),
                    str(record.get("task_id", "")),
                    float(record["at"]),
                    ingested / 1000 if ingested is not None else None,
                )
            )
    return executions


@dataclass(frozen=True)
class CanaryAccount:
    """What happened to the canaries: the rehearsal's keys, for the drill."""

    sent: int
    publish_errors: int
    executed: int
    """Canaries (distinct) that ran at least once."""
    lost: int
    """Sent without a publish error and never run."""
    duplicated: int
    """Canaries that ran more than once."""
    executions: int
    """Ledger lines: runs in all, duplicates included."""
    resume_seconds: float | None
    """From ``resumed_from`` (the replication group's "failover completed") to the first run after it of
    a canary sent after the fault started; None if none ran (``task_accounting.resume_seconds``)."""
    longest_stall_seconds: float | None
    """Longest time without a canary's first run from the fault's start on: how long clients saw no work
    done (``task_accounting.stalls``)."""
    recovered_seconds_after_call: float | None
    """From the fault's start (TestFailover or StartExperiment) to the end of the longest stall
    that ended after it: when clients saw work flowing again."""
    max_delay_seconds: float | None
    """The rehearsal's figure: the longest time from sending a canary to its first run, over the canaries sent
    without a publish error (from the SendMessage call's start: the drill records no return time). A canary
    held in flight until the visibility timeout and then run once shows here, and nowhere else."""
    ledger_delay_seconds: float | None
    """Longest time from a run to its ledger line's ingestion in CloudWatch Logs."""
    lost_sample: tuple[str, ...] = ()
    duplicated_sample: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        data = {key: value for key, value in vars(self).items() if not key.endswith("_sample")}
        data.update(
            lost_sample=list(self.lost_sample[:SAMPLE]), duplicated_sample=list(self.duplicated_sample[:SAMPLE])
        )
        return data


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def account(
    sent: Sequence[SentCanary], executions: Sequence[Execution], *, fault_started_at: float, resumed_from: float | None
) -> CanaryAccount:
    """Count ``sent`` canaries against the ledger ``executions`` as the rehearsal counts its tasks
    (``broker_tier.evidence.task_accounting``). Times are Unix times; executions of tokens that were not sent
    (another run's) are ignored."""
    sent_by_token = {canary.token: canary for canary in sent}
    mine = [execution for execution in executions if execution.token in sent_by_token]
    lost, duplicated = task_accounting.lost_and_duplicated(
        (canary.token for canary in sent if canary.error is None), (execution.token for execution in mine)
    )
    first_runs = task_accounting.first_runs((e.token, e.at) for e in mine)
    gaps = task_accounting.stalls(first_runs.values(), start=fault_started_at)
    longest = max(gaps, default=None)
    sent_at = {token: canary.sent_at for token, canary in sent_by_token.items()}
    delays = [e.ingested_at - e.at for e in mine if e.ingested_at is not None]
    return CanaryAccount(
        sent=len(sent),
        publish_errors=sum(1 for canary in sent if canary.error),
        executed=len(first_runs),
        lost=len(lost),
        duplicated=len(duplicated),
        executions=len(mine),
        resume_seconds=task_accounting.resume_seconds(
            sent_at, [(e.token, e.at) for e in mine], fault_at=fault_started_at, recovered_at=resumed_from
        ),
        longest_stall_seconds=longest[0] if longest else None,
        recovered_seconds_after_call=_rounded(longest[1] - fault_started_at) if longest else None,
        max_delay_seconds=task_accounting.max_delay_seconds(
            {canary.token: canary.sent_at for canary in sent if canary.error is None}, first_runs
        ),
        ledger_delay_seconds=_rounded(max(delays, default=None)),
        lost_sample=tuple(lost),
        duplicated_sample=tuple(duplicated),
    )


@dataclass(frozen=True)
class CanaryOptions:
    rate_per_second: float = 2.0
    """Canaries sent per second while the drill runs. Default: 2."""
    class_name: str | None = None
    """Latency class whose queue (and workers) the canaries go through. Default: the class whose
    queue has the shortest visibility timeout (the shortest settle time)."""
    settle_seconds: float | None = None
    """Wait after the last canary before counting. Default: the canary queue's visibility timeout
    plus 60 s for the ledger's delivery."""
    max_resume_seconds: float | None = None
    """Goal for ``resume_seconds``. Default: 2 s (the rehearsal's goal) plus one send interval
    (a canary can show work resumed no sooner than the next one is sent): 2.5 s at 2 per second."""
    lead_seconds: float = 10.0
    """Canaries sent before the fault, as the baseline. Default: 10."""
    tail_seconds: float = 30.0
    """Canaries sent after the group is available again. Default: 30."""
    probe_timeout_seconds: float = 180.0
    """How long the probe canary (sent before anything changes) may take to appear in the ledger.
    Default: 180 (a class scaled to zero must start a task first)."""

    @property
    def resume_limit(self) -> float:
        if self.max_resume_seconds is not None:
            return self.max_resume_seconds
        return RESUME_GOAL_SECONDS + 1.0 / self.rate_per_second


@dataclass
class CanaryDrill:
    """The canary part of a drill: readiness (a probe), sending around the fault, settling, counting
    and the goals. ``active`` is False when no canary is sent (redis broker mode)."""

    sqs: Any
    logs: Any
    resources: TierResources
    options: CanaryOptions
    report: Report
    sleep: Callable[[float], None]
    poll_seconds: float = 5.0
    now: Callable[[], datetime] = field(default_factory=lambda: utc_now)
    run_id: str = field(default_factory=lambda: f"canary{uuid.uuid4().hex[:12]}")
    active: bool = False
    sender: CanarySender | None = None
    class_name: str | None = None
    log_group: str | None = None
    visibility_timeout: float | None = None
    started: datetime | None = None

    # -- readiness ----------------------------------------------------------------------------
    def readiness(self) -> Check:
        """``canary_ready``: the broker is SQS, the class's queue and log group are known and readable,
        and (unless a dry run) a probe canary is run by a worker and shows in the ledger."""
        name = "canary_ready"
        broker = self.resources.broker
        if broker == "redis":
            return Check(
                name,
                None,
                "the workers' broker is Redis, inside the VPC, which this tool cannot reach: "
                "no canary is sent and the canary goals are not checked (the local "
                "rehearsal, broker-tier-ops rehearse --broker redis, measures that mode)",
            )
        if broker != "sqs":
            return Check(
                name,
                False,
                f"broker mode unknown (the Compute stack has no "
                f"{contract.ComputeOutputs.BROKER} output): redeploy the Compute stack, "
                f"or run without canaries (--no-canary)",
            )
        try:
            self._choose_class()
        except _NotReady as problem:
            return Check(name, False, str(problem))
        self.log_group = contract.service_log_group_name(
            self.resources.environment, contract.worker_process(self._class())
        )
        self.started = self.now()
        try:
            self.logs.filter_log_events(logGroupName=self.log_group, limit=1)
        except ClientError as error:
            return Check(name, False, f"ledger log group {self.log_group} cannot be read: {error}")
        where = (
            f"class {self.class_name} at {self.options.rate_per_second:g}/s, ledger {self.log_group}, "
            f"settle {self.settle_seconds:g} s"
        )
        class_name = self._class()
        pair = self.resources.queues[class_name]
        self.sender = CanarySender(
            self.sqs,
            queue_url=pair.queue_url,
            queue=class_name,
            run_id=self.run_id,
            rate_per_second=self.options.rate_per_second,
        )
        if self.report.dry_run:
            return Check(name, True, f"{where}; dry run: no probe canary sent")
        probe = self.sender.send(f"{self.run_id}-probe")
        if probe.error:
            return Check(name, False, f"the probe canary could not be sent to {pair.queue_url}: {probe.error}")
        waited = 0.0
        while True:
            found = [e for e in self._ledger() if e.token == probe.token]
            if found:
                break
            if waited >= self.options.probe_timeout_seconds:
                return Check(
                    name,
                    False,
                    f"the probe canary did not run within "
                    f"{self.options.probe_timeout_seconds:g} s (no ledger line in "
                    f"{self.log_group}): are the {self.class_name} workers running the "
                    f"reference worker's {contract.CANARY_TASK} task? Teams running their own "
                    f"image: --no-canary",
                )
            self.sleep(self.poll_seconds)
            waited += self.poll_seconds
        self.active = True
        delay = found[0].ingested_at - found[0].at if found[0].ingested_at else None
        return Check(
            name,
            True,
            f"{where}; probe ran after {found[0].at - probe.sent_at:.1f} s, its ledger line "
            f"was searchable {delay:.1f} s later"
            if delay is not None
            else where,
            {"class": self.class_name, "log_group": self.log_group, "run_id": self.run_id},
        )

    def _choose_class(self) -> None:
        queues = self.resources.queues
        if not queues:
            raise _NotReady("no queues known (State stack outputs missing)")
        if self.options.class_name is not None and self.options.class_name not in queues:
            raise _NotReady(
                f"--canary-class {self.options.class_name} is not a class of this environment "
                f"({', '.join(sorted(queues))})"
            )
        timeouts = {
            name: float(
                self.sqs.get_queue_attributes(QueueUrl=pair.queue_url, AttributeNames=["VisibilityTimeout"])[
                    "Attributes"
                ]["VisibilityTimeout"]
            )
            for name, pair in queues.items()
        }
        self.class_name = self.options.class_name or min(timeouts, key=lambda name: (timeouts[name], name))
        self.visibility_timeout = timeouts[self.class_name]

    @property
    def settle_seconds(self) -> float:
        if self.options.settle_seconds is not None:
            return self.options.settle_seconds
        return (self.visibility_timeout or 0) + LEDGER_DELIVERY_MARGIN_SECONDS

    def _class(self) -> str:
        if self.class_name is None:
            raise _NotReady("no canary class chosen")
        return self.class_name

    def _sender(self) -> CanarySender:
        """The sender ``readiness`` made (an active drill has one)."""
        if self.sender is None:
            raise _NotReady("the canary was not made ready")
        return self.sender

    # -- around the fault ---------------------------------------------------------------------
    def start(self) -> None:
        """Start sending and keep sending for the lead time (real time) before the fault."""
        if not self.active:
            return
        self._sender().start()
        self.report.say(
            f"canary: sending {self.options.rate_per_second:g}/s to {self.class_name} "
            f"(run {self.run_id}); {self.options.lead_seconds:g} s before the fault"
        )
        threading.Event().wait(self.options.lead_seconds)

    def progress(self) -> str:
        if not (self.active and self.sender):
            return ""
        sent, errors = self.sender.counts()
        return f"; canary {sent} sent, {errors} publish errors"

    def finish_sending(self) -> None:
        """Keep sending for the tail time, then stop."""
        if not self.active:
            return
        threading.Event().wait(self.options.tail_seconds)
        self.stop()
        self.report.say(f"canary: stopped sending{self.progress()}")

    def stop(self) -> None:
        if self.sender is not None:
            self.sender.stop()

    # -- counting -----------------------------------------------------------------------------
    def _ledger(self) -> list[Execution]:
        # from a little before the drill started: the workers' clocks are not the operator's
        started = self.started or self.now()
        return read_ledger(self.logs, log_group=self.log_group or "", run_id=self.run_id, since=started - CLOCK_MARGIN)

    def verify(self, *, fault_started_at: datetime, resumed_from: datetime | None) -> list[Check]:
        """Wait the settle time (reading the ledger as it fills), count, and check the goals."""
        if not self.active:
            return []
        sent = list(self._sender().sent)
        settle, waited = self.settle_seconds, 0.0
        while True:
            executions = self._ledger()
            executed = len({e.token for e in executions} & {canary.token for canary in sent})
            if waited >= settle:
                break
            self.report.say(
                f"canary ledger: {executed} of {len(sent)} ran; counting in {settle - waited:.0f} s "
                f"(redeliveries show after the visibility timeout, {self.visibility_timeout:g} s)"
            )
            step = min(self.poll_seconds * 6, settle - waited)
            self.sleep(step)
            waited += step
        result = account(
            sent,
            executions,
            fault_started_at=fault_started_at.timestamp(),
            resumed_from=resumed_from.timestamp() if resumed_from else None,
        )
        self.draw(sent, executions, fault_started_at=fault_started_at, resumed_from=resumed_from)
        self.report.measurements["canary"] = {
            "class": self.class_name,
            "run_id": self.run_id,
            "rate_per_second": self.options.rate_per_second,
            "settle_seconds": settle,
            **result.as_dict(),
        }
        return self.goals(result, settle)

    def draw(
        self,
        sent: list[SentCanary],
        executions: list[Execution],
        *,
        fault_started_at: datetime,
        resumed_from: datetime | None,
    ) -> None:
        """The canaries' timeline picture, beside the drill's report."""
        mine = {canary.token for canary in sent}
        firsts = task_accounting.first_runs((e.token, e.at) for e in executions if e.token in mine)
        fault_at = fault_started_at.timestamp()
        events = [(fault_at, "fault started")]
        if resumed_from is not None:
            events.append((resumed_from.timestamp(), "failover completed"))
        gaps = task_accounting.stalls(firsts.values(), start=fault_at)
        timeline = Timeline(
            title=f"canaries through class {self.class_name}, {self.options.rate_per_second:g}/s",
            origin=min((canary.sent_at for canary in sent), default=fault_at),
            published=[(c.sent_at, c.returned_at or c.sent_at, c.error is None) for c in sent],
            first_runs=list(firsts.values()),
            events=events,
            stalls=[(end - length, end) for length, end in gaps if length >= STALL_SHOWN_SECONDS],
        )
        try:
            self.report.pictures["canary-timeline"] = svg(timeline)
        except PictureUnavailable as error:
            self.report.say(f"no canary timeline picture: {error}")

    def goals(self, result: CanaryAccount, settle: float) -> list[Check]:
        """The sqs-mode goals of the rehearsal, for the drill."""
        limit = self.options.resume_limit
        short_settle = self.visibility_timeout is not None and settle < self.visibility_timeout
        lost_detail = (
            f"{result.lost} of {result.sent - result.publish_errors} sent canaries never ran "
            f"(waited {settle:g} s after the last)"
        )
        if result.lost_sample:
            lost_detail += f": {', '.join(result.lost_sample[:SAMPLE])}"
        duplicated_detail = (
            f"{result.duplicated} canaries ran more than once ({result.executions} runs of {result.executed})"
        )
        if result.duplicated_sample:
            duplicated_detail += f": {', '.join(result.duplicated_sample[:SAMPLE])}"
        if short_settle:
            duplicated_detail += (
                f"; settle {settle:g} s is shorter than the visibility timeout "
                f"({self.visibility_timeout:g} s): a message left un-acked may not show"
            )
        resume = result.resume_seconds
        return [
            Check("canary_none_lost", result.lost == 0, lost_detail, result.lost),
            Check("canary_none_duplicated", result.duplicated == 0, duplicated_detail, result.duplicated),
            Check(
                "canary_no_publish_errors",
                result.publish_errors == 0,
                f"{result.publish_errors} of {result.sent} SendMessage calls failed",
                result.publish_errors,
            ),
            Check(
                "canary_resumed",
                resume is not None and resume <= limit,
                (
                    f"first canary sent after the fault ran {resume:g} s after 'failover completed' (goal <= "
                    f"{limit:g} s); longest stall {result.longest_stall_seconds} s"
                    if resume is not None
                    else "no canary sent after the fault ran after 'failover completed'"
                ),
                resume,
            ),
        ]


class _NotReady(Exception):
    pass
