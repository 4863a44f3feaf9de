"""The rehearsal's figures from a ledger: lost, duplicated, resume, stall, throughput."""

from __future__ import annotations

from broker_tier.rehearsal.accounting import Window, account
from broker_tier.rehearsal.faults import FaultRecord
from broker_tier.rehearsal.goals import check_goals
from broker_tier.rehearsal.ledger import Publish
from broker_tier.rehearsal.workers import WorkerExit

T0 = 1_000_000.0


def publish(n: int, at: float, error: str | None = None) -> Publish:
    return Publish(token=f"t{n}", task_id=f"id{n}", sent_at=at, returned_at=at + 0.01, error=error)


def run(n: int, at: float) -> dict:
    return {"token": f"t{n}", "task_id": f"id{n}", "at": at}


def figures(publishes, executions, *, exits=(), missing=None):
    window = Window(
        publishing_started=T0,
        publishing_stopped=T0 + 10,
        fault=FaultRecord(name="promote", struck_at=T0 + 4, recovered_at=T0 + 6),
    )
    return account(
        publishes=publishes,
        executions=executions,
        window=window,
        results_missing=missing or {},
        worker_exits=list(exits),
    )


def test_lost_duplicated_and_errors_are_told_apart():
    publishes = [
        publish(1, T0 + 1),
        publish(2, T0 + 2),
        publish(3, T0 + 5, error="OperationalError: READONLY"),
        publish(4, T0 + 7),
    ]
    executions = [run(1, T0 + 1.1), run(2, T0 + 2.1), run(2, T0 + 9), run(3, T0 + 7)]
    result = figures(publishes, executions)
    assert (result["published"], result["publish_errors"], result["executed"], result["executions"]) == (4, 1, 3, 4)
    assert (result["lost"], result["lost_sample"]) == (1, ["t4"])  # published fine, never ran
    assert (result["duplicated"], result["duplicated_sample"]) == (1, ["t2"])
    assert result["executed_despite_publish_error"] == 1  # the caller saw an error, the task ran anyway
    assert result["publish_error_kinds"] == {"OperationalError": 1}


def test_resume_stall_and_throughput_are_measured_from_the_fault():
    publishes = [publish(n, T0 + n * 0.5) for n in range(20)]
    # each task runs 0.1 s after it is published, except those published from 4.5 s to 6.5 s: nothing
    # runs from 4.1 s (the fault struck at 4.0 s, the endpoint moved at 6.0 s) to 7.1 s
    executions = [run(n, T0 + n * 0.5 + 0.1) for n in range(20) if not 4.5 <= n * 0.5 <= 6.5]
    result = figures(publishes, executions)
    assert result["resume_seconds"] == 1.1  # from the endpoint moving to the run at 7.1 s
    assert result["longest_stall_seconds"] == 3.0  # 4.1 s to 7.1 s
    assert result["throughput_before"] == 2.0


def test_work_that_never_resumes_fails_the_goal_rather_than_passing_it():
    result = figures(
        [publish(1, T0 + 1), publish(2, T0 + 5)],
        [run(1, T0 + 1.1)],
        exits=[
            WorkerExit(
                task="task-1",
                pid=1,
                returncode=1,
                at=T0 + 5,
                last_lines=["CRITICAL/MainProcess] Unrecoverable error: AttributeError(...)"],
            )
        ],
    )
    assert result["resume_seconds"] is None
    assert result["worker_exit_reasons"] == ["task-1: CRITICAL/MainProcess] Unrecoverable error: AttributeError(...)"]
    checks = {
        check.name: check.passed
        for check in check_goals("sqs", "promote", {**result, "unacked_at_end": 0, "dead_lettered": 0})
    }
    assert checks["resume_seconds <= 2"] is False and checks["worker_restarts <= 0"] is False
    assert checks["lost <= 0"] is False


def test_reboot_has_no_goal_and_says_so():
    checks = check_goals("redis", "reboot", {"throughput_before": 9.5})
    assert [c.passed for c in checks] == [True, None]


def test_a_task_held_in_flight_then_run_once_misses_only_the_max_delay_goal():
    publishes = [publish(n, T0 + n) for n in range(8)]
    # task 3 was taken at once and held until a 20 s visibility timeout handed it out again: it ran once
    executions = [run(n, T0 + n + (20.0 if n == 3 else 0.1)) for n in range(8)]
    result = {
        **figures(publishes, executions),
        "unacked_at_end": 0,
        "dead_lettered": 0,
        "dns_delay_seconds": 5,
        "backlog_seconds": 0,
    }
    assert (result["lost"], result["duplicated"]) == (0, 0)
    assert result["max_delay_seconds"] == 19.99  # from the apply_async call's return (0.01 s after it started)
    checks = {check.name: check for check in check_goals("sqs", "promote", result)}
    assert checks["max_delay_seconds <= 15"].passed is False  # the DNS delay, 5 s, plus MAX_DELAY_MARGIN_SECONDS
    assert checks["max_delay_seconds <= 15"].detail.endswith(
        "measured 19.99 (bound 10 + dns_delay_seconds 5 + backlog_seconds 0)"
    )
    assert [name for name, check in checks.items() if check.passed is False] == ["max_delay_seconds <= 15"]


def test_the_max_delay_bound_grows_with_the_backlog_the_rehearsal_queued_behind_paused_workers():
    checks = check_goals(
        "redis",
        "power-loss",
        {
            "throughput_before": 9.5,
            "worker_restarts": 0,
            "max_delay_seconds": 19.0,
            "dns_delay_seconds": 5,
            "backlog_seconds": 5,
            "stranded_until_visibility_timeout": 0,
        },
    )
    assert {check.name: check.passed for check in checks}["max_delay_seconds <= 20"] is True


def test_a_message_stranded_in_the_unacked_hash_fails_the_redis_goals():
    for fault in ("promote", "power-loss"):
        checks = {
            check.name: check.passed
            for check in check_goals("redis", fault, {"throughput_before": 9.5, "stranded_until_visibility_timeout": 1})
        }
        assert checks["stranded_until_visibility_timeout <= 0"] is False
