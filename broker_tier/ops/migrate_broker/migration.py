"""The migration, in order: steady state, fit, the switch (publishers, then workers), the old broker quiet, the
move, the old broker empty (docs/decisions/broker-migration.md)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from broker_tier.evidence.report import Check, Report
from broker_tier.ops.migrate_broker.fit import TargetLimits, misfit
from broker_tier.ops.migrate_broker.mover import Checkpoint, MoveResult, RedisToSqs, SqsToRedis, _no_checkpoint
from broker_tier.ops.migrate_broker.redis_side import RedisBroker
from broker_tier.ops.migrate_broker.sqs_side import SqsBroker

BROKERS = ("sqs", "redis")


class Workers(Protocol):
    """Where the tier's workers consume, and how to move them (the deployed stack; a local stand-in in tests)."""

    def broker(self) -> str | None:
        """``sqs`` or ``redis`` once a deploy has settled; None while one is under way or when unknown."""

    def switch_steps(self, target: str) -> list[str]:
        """What the operator does to switch publishers, then workers, to ``target``."""


@dataclass(frozen=True)
class MigrationOptions:
    target: str
    """``sqs`` or ``redis``: the broker the tier moves to."""
    claim_check: bool = False
    """The claim check is on for the target's producers and workers (SQS only). Default: False."""
    task_time_limit_seconds: int = 300
    """A class's hard time limit for a message without its own (``timelimit`` header). Default: 300."""
    switch_timeout_seconds: float = 3600
    """How long to wait for the workers to be switched (the deploy). Default: 3600."""
    quiet_timeout_seconds: float = 900
    """How long to wait for the old broker to have no consumer and nothing in flight. Default: 900."""
    settle_seconds: float = 10
    """The old broker must stay empty this long (a producer still switching may send one more). Default: 10."""
    poll_seconds: float = 5
    """Interval of the waits. Default: 5."""

    @property
    def source(self) -> str:
        return "redis" if self.target == "sqs" else "sqs"


class Migration:
    def __init__(
        self,
        *,
        redis: RedisBroker,
        sqs: SqsBroker,
        workers: Workers,
        options: MigrationOptions,
        report: Report,
        checkpoint: Checkpoint = _no_checkpoint,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.redis, self.sqs, self.workers, self.options, self.report = redis, sqs, workers, options, report
        self.sleep, self.now = sleep, now
        self.classes = list(sqs.queue_urls)
        self.result = MoveResult()
        limits = {name: self._limits(name) for name in self.classes}
        self.mover: RedisToSqs | SqsToRedis = (
            RedisToSqs(redis, sqs, limits, checkpoint=checkpoint, now=now)
            if options.target == "sqs"
            else SqsToRedis(sqs, redis, limits, checkpoint=checkpoint, now=now)
        )

    def _limits(self, class_name: str) -> TargetLimits:
        sqs_limits = self.sqs.limits(
            class_name,
            claim_check=self.options.claim_check,
            task_time_limit_seconds=self.options.task_time_limit_seconds,
        )
        if self.options.target == "sqs":
            return sqs_limits
        # the stack gives kombu's Redis transport the class's visibility time-out, the queue's own attribute
        return TargetLimits(
            broker="redis",
            visibility_timeout_seconds=sqs_limits.visibility_timeout_seconds,
            task_time_limit_seconds=self.options.task_time_limit_seconds,
        )

    # -- the steps --------------------------------------------------------------------------------------------------
    def run(self) -> Report:
        report, options = self.report, self.options
        if not self._ready():
            report.finish("refused", f"the tier is not ready to move to {options.target}: see the failed checks")
            return report
        if report.plan_steps(self._plan()):
            return report
        self._wait_for_switch()
        self._wait_until_quiet()
        try:
            self._move_until_empty()
        finally:  # what moved, also in the report of an interrupted run
            report.measurements["result"] = self.result.as_dict()
        self._verify()
        return report

    def _backlog(self) -> dict[str, dict[str, int]]:
        return {
            name: (self.redis.counts(name) if self.options.source == "redis" else self.sqs.counts(name))
            for name in self.classes
        }

    def _ready(self) -> bool:
        report = self.report
        workers = self.workers.broker()
        backlog = self._backlog()
        report.measurements["old_broker_before"] = backlog
        checks = [
            Check(
                "workers_on_a_known_broker",
                workers in BROKERS,
                f"the workers consume {workers or 'an unknown broker (a deploy under way?)'}",
            ),
            Check(
                "class_queues_read",
                bool(self.classes),
                "; ".join(
                    f"{name}: VisibilityTimeout {limits.visibility_timeout_seconds} s"
                    + (f", MaximumMessageSize {limits.max_message_bytes:,} B" if limits.max_message_bytes else "")
                    for name, limits in self.mover.limits.items()
                )
                or "no class",
            ),
            Check("redis_answers", bool(self.redis.client.ping()), "PING to the broker database"),
        ]
        checks.append(self._fit_check())
        return report.add_checks(report.steady_state, checks)

    def _fit_check(self) -> Check:
        if self.options.source == "sqs":
            return Check(
                "messages_fit_target",
                True,
                "every SQS message fits Redis: no size limit there, and the same visibility time-out (the class's) "
                "covers its ETA on both brokers",
            )
        now = self.now()
        surveyed = [message for name in self.classes for message in self.redis.survey(name)]
        misfits = [
            reason for message in surveyed if (reason := misfit(message, self.mover.limits[message.class_name], now))
        ]
        self.report.measurements["surveyed"] = len(surveyed)
        self.report.measurements["misfits"] = misfits
        return Check(
            "messages_fit_target",
            not misfits,
            f"{len(surveyed)} message(s) queued in Redis, {len(misfits)} that SQS cannot take"
            + (": " + "; ".join(misfits) if misfits else ""),
            value=len(misfits),
        )

    def _plan(self) -> list[str]:
        options = self.options
        steps = []
        if self.workers.broker() != options.target:
            steps += [f"switch (you): {step}" for step in self.workers.switch_steps(options.target)]
            steps.append(f"wait up to {options.switch_timeout_seconds:g} s until the workers consume {options.target}")
        steps += [
            f"wait up to {options.quiet_timeout_seconds:g} s until nothing consumes or holds messages on "
            f"{options.source}",
            f"move every message of {', '.join(self.classes)} from {options.source} to {options.target} (copied, "
            f"journalled by task id, then deleted), until {options.source} stays empty for "
            f"{options.settle_seconds:g} s",
        ]
        return steps

    def _wait_for_switch(self) -> None:
        report, options = self.report, self.options
        if self.workers.broker() == options.target:
            report.say(f"the workers already consume {options.target}")
            return
        for step in self.workers.switch_steps(options.target):
            report.say(f"now: {step}")
        self._wait(
            lambda: self.workers.broker() == options.target,
            options.switch_timeout_seconds,
            f"the workers to consume {options.target} (the deploy)",
        )
        report.say(f"the workers consume {options.target}")

    def _old_broker_busy(self) -> list[str]:
        """What still consumes or holds messages on the old broker (empty: quiet)."""
        if self.options.source == "redis":
            return self.redis.other_clients()
        return [
            f"{name}: {counts['in_flight']} in flight, {counts['delayed']} delayed"
            for name in self.classes
            if (counts := self.sqs.counts(name))["in_flight"] or counts["delayed"]
        ]

    def _wait_until_quiet(self) -> None:
        busy: list[str] = []

        def quiet() -> bool:
            nonlocal busy
            busy = self._old_broker_busy()
            return not busy

        self._wait(
            quiet,
            self.options.quiet_timeout_seconds,
            f"nothing to consume or hold messages on {self.options.source}",
            detail=lambda: f"still there: {'; '.join(busy)}",
        )
        self.report.say(f"{self.options.source}: no consumer, nothing in flight")

    def _move_until_empty(self) -> None:
        report, options = self.report, self.options
        empty_since: float | None = None
        while True:
            for name in self.classes:
                self.mover.move_class(name, self.result)
            report.measurements["result"] = self.result.as_dict()
            if self.result.misfits:
                return
            left = {name: sum(counts.values()) for name, counts in self._backlog().items()}
            busy = self._old_broker_busy()
            if any(left.values()) or busy:
                empty_since = None
                report.say(f"{options.source} still holds {left}" + (f"; busy: {'; '.join(busy)}" if busy else ""))
            elif empty_since is None:
                empty_since = report.elapsed()
            elif report.elapsed() - empty_since >= options.settle_seconds:
                return
            self.sleep(options.poll_seconds)

    def _verify(self) -> None:
        report, result = self.report, self.result
        after = self._backlog()
        report.measurements["old_broker_after"] = after
        moved = len(result.moved)
        empty = not any(sum(counts.values()) for counts in after.values())
        ok = report.add_checks(
            report.verification,
            [
                Check("all_fitted", not result.misfits, f"{len(result.misfits)} message(s) left: they do not fit"),
                Check("old_broker_empty", empty, f"{self.options.source} after the move: {after}"),
                Check(
                    "no_possible_duplicate",
                    not result.possible_duplicates,
                    f"{moved} moved, {len(result.already_moved)} found moved by an earlier run, "
                    f"{len(result.possible_duplicates)} possibly sent twice"
                    + "".join(f"; {item['key']}: {item['why']}" for item in result.possible_duplicates),
                ),
            ],
        )
        if empty and not result.misfits:
            self.redis.forget_journals()  # a completed move: the next one (perhaps back) starts afresh
            report.say("the move is complete: its journals are forgotten")
        if result.misfits:
            report.finish("failed", f"{len(result.misfits)} message(s) do not fit {self.options.target}: see misfits")
        elif not ok:
            keys = ", ".join(item["key"] for item in result.possible_duplicates)
            report.finish("failed", f"everything moved, but these tasks may run twice (task id/retries): {keys}")
        else:
            report.finish("passed")

    def _wait(
        self,
        done: Callable[[], bool],
        timeout: float,
        what: str,
        *,
        detail: Callable[[], str] = lambda: "",
    ) -> None:
        start = self.report.elapsed()
        while not done():
            if self.report.elapsed() - start >= self.options.poll_seconds and (extra := detail()):
                self.report.say(f"waiting for {what}: {extra}")
            if self.report.elapsed() - start >= timeout:
                raise TimeoutError(f"{timeout:g} s waiting for {what}" + (f" ({detail()})" if detail() else ""))
            self.sleep(self.options.poll_seconds)
