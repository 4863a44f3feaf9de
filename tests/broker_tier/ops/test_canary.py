"""Canary accounting from a ledger (lost, duplicated, stalls, resumption), the ledger as read from
CloudWatch Logs (moto), and the goals the drill holds the canaries to."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from broker_tier.evidence.report import Report
from broker_tier.ops.canary import (
    CanaryAccount,
    CanaryDrill,
    CanaryOptions,
    Execution,
    SentCanary,
    account,
    read_ledger,
)
from broker_tier.ops.resources import TierResources
from broker_tier_contract import canary_ledger_line

T0 = 1_800_000_000.0  # Unix time of the first canary


def sent_every(seconds: float, count: int, *, errors: tuple[int, ...] = ()) -> list[SentCanary]:
    return [
        SentCanary(f"run-{n:06d}", f"id-{n}", T0 + n * seconds, "throttled" if n in errors else None)
        for n in range(count)
    ]


def ran(
    canaries: list[SentCanary],
    *,
    latency: float = 0.1,
    at: dict[int, float] | None = None,
    skip: tuple[int, ...] = (),
    twice: tuple[int, ...] = (),
) -> list[Execution]:
    """Ledger lines: each canary runs ``latency`` after it was sent (or at ``at[n]``)."""
    executions = []
    for n, canary in enumerate(canaries):
        if n in skip:
            continue
        when = (at or {}).get(n, canary.sent_at + latency)
        executions += [Execution(canary.token, canary.task_id, when, when + 3)] * (2 if n in twice else 1)
    return executions


def test_every_canary_run_once_is_counted_with_the_steady_interval_as_the_longest_stall():
    sent = sent_every(0.5, 20)
    result = account(sent, ran(sent), fault_started_at=T0 + 2, resumed_from=T0 + 4.2)
    assert (result.sent, result.executed, result.executions, result.lost, result.duplicated, result.publish_errors) == (
        20,
        20,
        20,
        0,
        0,
        0,
    )
    assert result.longest_stall_seconds == 0.5
    assert result.resume_seconds == 0.4  # canary 9 was sent at +4.5 and ran at +4.6
    assert result.max_delay_seconds == 0.1 and result.ledger_delay_seconds == 3


def test_a_canary_never_run_is_lost_and_named():
    sent = sent_every(0.5, 10)
    result = account(sent, ran(sent, skip=(4,)), fault_started_at=T0, resumed_from=T0)
    assert (result.lost, result.executed, result.lost_sample) == (1, 9, ("run-000004",))


def test_a_publish_error_is_not_a_loss_but_a_canary_that_ran_anyway_counts_as_run():
    sent = sent_every(0.5, 10, errors=(2, 3))
    result = account(sent, ran(sent, skip=(2,)), fault_started_at=T0, resumed_from=T0)
    assert (result.publish_errors, result.lost, result.executed) == (2, 0, 9)


def test_a_canary_run_twice_is_one_duplicate_and_its_second_run_hides_no_stall():
    sent = sent_every(1.0, 10)
    executions = ran(sent, at={5: T0 + 12.0}, twice=(3,))  # canary 5 ran late, after the others
    executions.append(Execution("run-000006", "id-6", T0 + 10.5))  # and canary 6 again, inside the stall
    result = account(sent, executions, fault_started_at=T0 + 4.5, resumed_from=T0 + 4.5)
    assert (result.duplicated, result.executions, result.executed) == (2, 12, 10)
    assert set(result.duplicated_sample) == {"run-000003", "run-000006"}
    # first runs only, from the fault (+4.5) on: ... 9.1 (canary 9), 12.0 (canary 5); canary 6's second run
    # at +10.5 is no progress and does not split that stall
    assert result.longest_stall_seconds == 2.9


def test_a_stall_around_the_failover_gives_the_longest_stall_recovery_and_resumption():
    sent = sent_every(0.5, 40)  # 20 s of canaries; the fault at +5, ElastiCache says completed at +9
    stuck = {n: T0 + 14.0 for n in range(12, 28)}  # sent from +6 to +13.5, all run at +14 (worker stuck)
    result = account(sent, ran(sent, at=stuck), fault_started_at=T0 + 5, resumed_from=T0 + 9)
    assert result.longest_stall_seconds == 8.4  # canary 11 ran at +5.6, then nothing until +14
    assert result.recovered_seconds_after_call == 9.0  # +14 - +5
    assert result.resume_seconds == 5.0  # from "completed" (+9) to the first run after it (+14)
    assert result.max_delay_seconds == 8.0  # canary 12, sent at +6


def test_the_longest_delay_counts_canaries_sent_without_error_as_the_rehearsal_does():
    sent = sent_every(1.0, 5, errors=(1,))
    # canary 1's SendMessage failed yet it ran 30 s later (not counted); canary 3 was held in flight for 20 s,
    # then ran once
    result = account(sent, ran(sent, at={1: T0 + 31.0, 3: T0 + 23.0}), fault_started_at=T0, resumed_from=T0)
    assert (result.lost, result.duplicated) == (0, 0)  # neither count shows the held canary
    assert result.max_delay_seconds == 20.0


def test_nothing_run_after_failover_completed_leaves_resumption_unknown():
    sent = sent_every(0.5, 10)
    result = account(sent, ran(sent, skip=tuple(range(6, 10))), fault_started_at=T0 + 2, resumed_from=T0 + 3.5)
    assert result.resume_seconds is None and result.lost == 4


def test_other_runs_ledger_lines_and_an_empty_ledger():
    sent = sent_every(0.5, 3)
    stranger = Execution("other-000001", "x", T0 + 0.2)
    result = account(sent, [*ran(sent), stranger], fault_started_at=T0, resumed_from=T0)
    assert result.executions == 3
    empty = account(sent, [], fault_started_at=T0, resumed_from=T0)
    assert (empty.lost, empty.longest_stall_seconds, empty.resume_seconds, empty.max_delay_seconds) == (
        3,
        None,
        None,
        None,
    )


def test_the_ledger_is_read_from_cloudwatch_logs_lines_of_this_run_only():
    group = "/broker-tier-drill/celery/worker-default"
    start = datetime.now(UTC) - timedelta(minutes=5)
    with mock_aws():
        logs = boto3.client("logs", region_name="eu-west-1")
        logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName="celery/worker/1")
        at = start.timestamp() + 60
        lines = [
            canary_ledger_line(
                {
                    "token": f"canaryabc-{n:06d}",
                    "task_id": f"t{n}",
                    "queue": "default",
                    "hostname": "h",
                    "pid": 1,
                    "at": at + n,
                }
            )
            for n in range(3)
        ]
        lines += [
            canary_ledger_line(
                {"token": "canaryzzz-000001", "task_id": "x", "queue": "default", "hostname": "h", "pid": 1, "at": at}
            ),  # another run
            "[INFO/MainProcess] canaryabc task received",  # not a ledger line
            "broker-tier-canary {not json canaryabc",
        ]
        logs.put_log_events(
            logGroupName=group,
            logStreamName="celery/worker/1",
            logEvents=[
                {"timestamp": int((at + n) * 1000), "message": f"[WARNING/ForkPoolWorker-1] {line}"}
                for n, line in enumerate(lines)
            ],
        )
        executions = read_ledger(logs, log_group=group, run_id="canaryabc", since=start)
    assert [(e.token, e.task_id, e.at) for e in executions] == [
        (f"canaryabc-{n:06d}", f"t{n}", at + n) for n in range(3)
    ]
    assert all(e.ingested_at is not None for e in executions)


def goals(
    result: CanaryAccount, *, options: CanaryOptions | None = None, visibility: float = 300, settle: float = 360
) -> dict[str, bool]:
    options = options or CanaryOptions()
    drill = CanaryDrill(
        sqs=None,
        logs=None,
        resources=TierResources("drill", "g"),
        options=options,
        report=Report("failover", "drill", "g", False, stream=io.StringIO()),
        sleep=lambda s: None,
        visibility_timeout=visibility,
    )
    return {check.name: check.passed for check in drill.goals(result, settle)}


GOOD = account(sent_every(0.5, 10), ran(sent_every(0.5, 10)), fault_started_at=T0 + 1, resumed_from=T0 + 2.2)


def test_goals_hold_for_a_clean_run_and_the_resume_goal_is_two_seconds_plus_one_send_interval():
    assert goals(GOOD) and all(goals(GOOD).values())
    assert CanaryOptions().resume_limit == 2.5 and CanaryOptions(rate_per_second=10).resume_limit == 2.1
    assert CanaryOptions(max_resume_seconds=4).resume_limit == 4


@pytest.mark.parametrize(
    "field,value,check",
    [
        ("lost", 1, "canary_none_lost"),
        ("duplicated", 1, "canary_none_duplicated"),
        ("publish_errors", 1, "canary_no_publish_errors"),
        ("resume_seconds", 2.6, "canary_resumed"),
        ("resume_seconds", None, "canary_resumed"),
    ],
)
def test_each_goal_fails_on_its_own(field, value, check):
    result = CanaryAccount(**{**{k: v for k, v in vars(GOOD).items()}, field: value})
    assert [name for name, passed in goals(result).items() if not passed] == [check]


def test_a_settle_shorter_than_the_visibility_timeout_says_duplicates_may_hide():
    drill = CanaryDrill(
        sqs=None,
        logs=None,
        resources=TierResources("drill", "g"),
        options=CanaryOptions(),
        report=Report("failover", "drill", "g", False, stream=io.StringIO()),
        sleep=lambda s: None,
        visibility_timeout=300,
    )
    (duplicated,) = [c for c in drill.goals(GOOD, 120) if c.name == "canary_none_duplicated"]
    assert "shorter than the visibility timeout (300 s)" in duplicated.detail
