"""Finding task ids in the worker log group: many ids fit FilterLogEvents' pattern limit in a few calls, and the lines
Celery writes are read as receipts and failures."""

from __future__ import annotations

from datetime import UTC, datetime

from broker_tier.ops.task_logs import HARD_TIME_LIMIT, PATTERN_LIMIT, TaskLog, _note, _patterns

AT = datetime(2026, 12, 1, tzinfo=UTC)


def test_ids_are_grouped_into_patterns_within_the_limit():
    ids = [f"{n:08d}-aaaa-bbbb-cccc-dddddddddddd" for n in range(60)]
    groups = _patterns(ids)
    assert len(groups) == 3 and [task for group in groups for task in group] == ids
    assert all(len(" ".join(f'?"{task}"' for task in group)) <= PATTERN_LIMIT for group in groups)


def test_receipts_and_the_last_failure_of_each_asked_id():
    logs = {"id-1": TaskLog()}
    _note(logs, "[2026-12-01 00:00:00,000: INFO/MainProcess] Task t[id-1] received", AT)
    _note(logs, "[...: ERROR/ForkPoolWorker-1] Task t[id-1] raised unexpected: ValueError('x')", AT)
    _note(logs, "[...: INFO/ForkPoolWorker-1] Task t[id-1] succeeded in 0.1s: None", AT)
    _note(logs, "[...: ERROR/ForkPoolWorker-1] Task t[id-9] raised unexpected: KeyError()", AT)  # not asked
    assert logs["id-1"].received_at == [AT] and logs["id-1"].failure == "raised unexpected: ValueError('x')"
    assert set(logs) == {"id-1"}
    line = "Hard time limit (300s) exceeded for t[id-1]"
    assert HARD_TIME_LIMIT.search(line)
    _note(logs, line, AT)
    assert logs["id-1"].failure == "hard time limit (300s) exceeded"
