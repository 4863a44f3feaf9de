"""A run's timeline as a picture (SVG, matplotlib): tasks published and first runs over time, the fault, the
name's move, each stall, and how long each caller waited. The rehearsal and the drill's canaries draw it."""

from __future__ import annotations

import io
from dataclasses import dataclass, field


@dataclass(frozen=True, kw_only=True)
class Timeline:
    """Unix times; the picture's time axis counts seconds from ``origin``."""

    title: str
    origin: float
    published: list[tuple[float, float, bool]]
    """(call started, call returned, no error) per task sent."""
    first_runs: list[float]
    events: list[tuple[float, str]] = field(default_factory=list)
    """Moments to mark, e.g. the fault and the name's move."""
    spans: list[tuple[float, float, str]] = field(default_factory=list)
    """Periods to shade, e.g. the split window."""
    stalls: list[tuple[float, float]] = field(default_factory=list)
    """(start, end) of each stretch without a first run worth showing."""


class PictureUnavailable(Exception):
    """matplotlib is not installed (requirements-dev.txt has it): the report says so instead of drawing."""


def svg(timeline: Timeline) -> str:
    """The picture as SVG text: the same timeline gives the same text (fixed ids, no date)."""
    return render(timeline, "svg").decode()


def render(timeline: Timeline, image_format: str) -> bytes:
    """The picture in ``image_format`` (``svg``, ``png``)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError as error:  # pragma: no cover - the dev requirements install it
        raise PictureUnavailable(f"matplotlib is not installed ({error}): requirements-dev.txt has it") from None
    with matplotlib.rc_context({"svg.hashsalt": "broker-tier", "svg.fonttype": "none", "font.size": 8}):
        figure, (counts, waits) = pyplot.subplots(
            2, 1, sharex=True, figsize=(9, 5), gridspec_kw={"height_ratios": [3, 2]}, layout="constrained"
        )
        try:
            _draw_counts(counts, timeline)
            _draw_waits(waits, timeline)
            for axes in (counts, waits):
                _mark(axes, timeline)
            counts.set_title(timeline.title)
            waits.set_xlabel("seconds from the start of publishing")
            out = io.BytesIO()
            figure.savefig(out, format=image_format, metadata={"Date": None} if image_format == "svg" else None)
            return out.getvalue()
        finally:
            pyplot.close(figure)


def _x(timeline: Timeline, times: list[float]) -> list[float]:
    return [t - timeline.origin for t in times]


def _cumulative(axes, xs: list[float], label: str, **style) -> None:
    xs = sorted(xs)
    axes.step(xs, range(1, len(xs) + 1), where="post", label=f"{label} ({len(xs)})", **style)


def _draw_counts(axes, timeline: Timeline) -> None:
    _cumulative(axes, _x(timeline, [sent for sent, _, ok in timeline.published if ok]), "published")
    _cumulative(axes, _x(timeline, timeline.first_runs), "first runs", linestyle="--")
    axes.set_ylabel("tasks (cumulative)")
    for number, (start, end) in enumerate(timeline.stalls):
        axes.axvspan(
            start - timeline.origin,
            end - timeline.origin,
            color="tab:red",
            alpha=0.2,
            label="stall (no first run)" if number == 0 else None,
        )
    for start, end, label in timeline.spans:
        axes.axvspan(start - timeline.origin, end - timeline.origin, color="tab:gray", alpha=0.3, label=label)
    axes.legend(loc="upper left")


def _draw_waits(axes, timeline: Timeline) -> None:
    ok = [(sent - timeline.origin, returned - sent) for sent, returned, fine in timeline.published if fine]
    failed = [(sent - timeline.origin, returned - sent) for sent, returned, fine in timeline.published if not fine]
    if ok:
        axes.scatter(*zip(*ok, strict=True), s=4, label="caller's wait")
    if failed:
        axes.scatter(*zip(*failed, strict=True), s=16, marker="x", color="tab:red", label="caller got an error")
    axes.set_ylabel("apply_async wait (s)")
    if ok or failed:
        axes.legend(loc="upper left")


def _mark(axes, timeline: Timeline) -> None:
    for at, label in timeline.events:
        axes.axvline(at - timeline.origin, color="black", linewidth=0.8)
        axes.annotate(
            label,
            (at - timeline.origin, 1),
            xycoords=("data", "axes fraction"),
            rotation=90,
            va="top",
            ha="right",
            fontsize=7,
        )
