"""The one accounting of tasks through a fault that the rehearsal and the drill share."""

from __future__ import annotations

from broker_tier.evidence import task_accounting


def test_a_backlog_sent_before_the_fault_does_not_count_as_work_resumed():
    sent_at = {"old": 0.0, "new": 5.0}  # the fault at 4.0, the endpoint moved at 6.0
    runs = [("old", 6.1), ("new", 7.5)]  # the old task drains first; the new one shows the new primary
    assert task_accounting.resume_seconds(sent_at, runs, fault_at=4.0, recovered_at=6.0) == 1.5
    assert task_accounting.resume_seconds(sent_at, runs, fault_at=4.0, recovered_at=None) is None
    assert task_accounting.resume_seconds({"old": 0.0}, [("old", 6.1)], fault_at=4.0, recovered_at=6.0) is None


def test_stalls_count_first_runs_from_the_fault_on():
    first = task_accounting.first_runs([("a", 1.0), ("b", 3.0), ("a", 4.0), ("c", 8.0)])
    assert first == {"a": 1.0, "b": 3.0, "c": 8.0}  # a's second run (4.0) is no progress
    assert task_accounting.stalls(first.values(), start=2.0) == [(1.0, 3.0), (5.0, 8.0)]
    assert task_accounting.longest_stall(first.values(), start=2.0) == 5.0
    assert task_accounting.longest_stall(first.values(), start=9.0) is None  # nothing ran after it


def test_lost_and_duplicated():
    assert task_accounting.lost_and_duplicated(["a", "b", "c"], ["a", "a", "c", "x"]) == (["b"], ["a"])


def test_the_longest_delay_is_from_publish_to_first_run_over_the_tasks_that_ran():
    published_at = {"a": 0.0, "b": 1.0, "lost": 2.0}
    first = task_accounting.first_runs([("a", 0.5), ("b", 21.0), ("a", 40.0)])  # b held in flight 20 s; a rerun
    assert task_accounting.max_delay_seconds(published_at, first) == 20.0  # a's rerun and the lost task: not delays
    assert task_accounting.max_delay_seconds({"lost": 2.0}, first) is None
