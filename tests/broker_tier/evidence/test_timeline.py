"""The timeline picture: what it shows, the same bytes for the same run, and where the report puts it."""

from __future__ import annotations

import io
import json

from broker_tier.evidence.report import Report
from broker_tier.evidence.timeline import Timeline, svg

T0 = 1_800_000_000.0
TIMELINE = Timeline(
    title="redis broker, power-loss, 10 tasks/s",
    origin=T0,
    published=[(T0 + n / 10, T0 + n / 10 + (3.0 if 40 <= n < 50 else 0.01), n != 45) for n in range(100)],
    first_runs=[T0 + n / 10 + 0.05 + (6 if 40 <= n < 60 else 0) for n in range(100)],
    events=[(T0 + 4, "power-loss"), (T0 + 6, "name moved")],
    spans=[(T0 + 4, T0 + 4.01, "split window")],
    stalls=[(T0 + 3.95, T0 + 10.05)],
)


def test_the_picture_shows_the_counts_the_fault_the_move_the_stall_and_the_callers_waits():
    picture = svg(TIMELINE)
    assert picture.lstrip().startswith("<?xml") and "<svg" in picture
    for text in (
        "redis broker, power-loss, 10 tasks/s",
        "published (99)",  # the call that raised is not counted as published
        "first runs (100)",
        "power-loss",
        "name moved",
        "split window",
        "stall (no first run)",
        "caller's wait",
        "caller got an error",
        "apply_async wait (s)",
    ):
        assert text in picture, text


def test_the_same_timeline_gives_the_same_picture():
    assert svg(TIMELINE) == svg(TIMELINE)


def test_a_report_writes_its_pictures_beside_itself_and_shows_them(tmp_path):
    report = Report(command="rehearse", environment="dev", target="t", dry_run=False, stream=io.StringIO())
    report.pictures["timeline"] = svg(TIMELINE)
    report.finish("passed")
    json_path, markdown_path = report.write(tmp_path)
    stem = json_path.stem
    assert (tmp_path / f"{stem}-timeline.svg").read_text() == report.pictures["timeline"]
    assert f"![timeline]({stem}-timeline.svg)" in markdown_path.read_text()
    assert json.loads(json_path.read_text())["pictures"] == ["timeline"]  # named, not inlined
