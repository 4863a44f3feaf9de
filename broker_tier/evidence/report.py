"""The evidence a command leaves: checks, steps, a timeline and measurements, as JSON and Markdown."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from broker_tier.evidence.errors import CODE, Failure, classify, one_line

# Exit code of each outcome; "error" (could not run, nothing changed) takes its failure's code.
EXIT_CODES = {"passed": 0, "planned": 0, "failed": 1, "refused": 2, "aborted": 3, "interrupted": CODE["interrupted"]}
OWN_OUTCOME = ("refused", "interrupted")
"""The kinds of failure that, before any change, are an outcome of their own (docs/operations.md's table of exit
codes names them); the other kinds are ``error``, with the kind and its exit code in ``failure``."""
_UNSAFE_IN_FILE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")
_LATEST: ContextVar[Report | None] = ContextVar("latest_report", default=None)
_INVOCATION: ContextVar[dict[str, Any] | None] = ContextVar("invocation", default=None)
Verdict = Callable[["Report"], "str | None"]
_VERDICTS: dict[str, Verdict] = {}


def register_verdict(command: str, verdict: Verdict) -> None:
    """How the reports of ``command`` state their verdict (None from ``verdict``: the generic one). Registered by
    name, so that a report made anywhere (a rehearsal series writes one per run) reads the same."""
    _VERDICTS[command] = verdict


def aws_reads(report: Report) -> str:
    """``read AWS (N calls: DescribeStacks x3, ...)`` from the calls the CLI recorded, or that nothing was read."""
    calls: dict[str, int] = report.invocation.get("aws_calls") or {}
    if not calls:
        return "made no AWS call"
    listed = ", ".join(
        f"{name.split(':', 1)[1]}" + (f" x{count}" if count > 1 else "") for name, count in calls.items()
    )
    return f"read AWS ({sum(calls.values())} calls: {listed})"


def generic_verdict(report: Report, subject: str | None = None) -> str:
    """The verdict of any command, from its outcome; ``subject`` names what was done, where."""
    where = report.invocation.get("region")
    subject = subject or (
        f"broker-tier-ops {report.command} on {report.environment}" + (f" in {where}" if where else "")
    )
    failed = ", ".join(report.failed_checks)
    cause = (report.failure or {}).get("cause") or one_line(report.error or "", 300)
    return {
        "planned": f"Dry run of {subject}: it {aws_reads(report)} and changed nothing; the plan below is what a run "
        f"would do.",
        "refused": f"{subject} was refused and changed nothing: {cause}.",
        "error": f"{subject} could not run and changed nothing: {cause}.",
        "interrupted": f"{subject} was interrupted before it changed anything.",
        "aborted": f"{subject} stopped after its change had started: {cause}. Look at {report.target} before "
        f"anything else.",
        "passed": f"{subject} passed.",
        "failed": f"{subject} failed" + (f": {failed}." if failed else "."),
    }.get(report.outcome, f"{subject}: {report.outcome}.")


def begin_invocation(invocation: dict[str, Any]) -> None:
    """How the command about to run was invoked (arguments, region): every report made from now on in this context
    starts with it, so that its verdict can say where it ran before the CLI writes it."""
    _INVOCATION.set(invocation)


def latest_report() -> Report | None:
    """The report created last in this context: the CLI finishes it when a command raises, so the report of a
    failed command keeps its timeline so far."""
    return _LATEST.get()


def cell(value: Any) -> str:
    """``value`` as the text of one Markdown table cell: pipes and backslashes escaped, line breaks as <br>."""
    text = str(value).replace("\\", "\\\\").replace("|", "\\|")
    return re.sub(r"\r\n|\r|\n", "<br>", text)


def row(*values: Any) -> str:
    return "| " + " | ".join(cell(value) for value in values) + " |"


@dataclass
class Check:
    """One check: ``passed`` is None when it was skipped (and ``detail`` says why)."""

    name: str
    passed: bool | None
    detail: str
    value: Any = None

    @property
    def mark(self) -> str:
        return {True: "PASS", False: "FAIL", None: "SKIP"}[self.passed]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Report:
    """Filled in as a command runs; ``say`` also prints each line with the elapsed time."""

    command: str
    environment: str
    target: str
    dry_run: bool
    started_at: str = field(default_factory=lambda: utc_now().isoformat(timespec="seconds"))
    outcome: str = "aborted"
    """passed, planned, failed, refused, aborted, interrupted (Ctrl-C before any change), or error (could not
    run; exit code from ``failure``).
    Aborted until the command says otherwise, so an unhandled exception never reads as a pass."""
    steady_state: list[Check] = field(default_factory=list)
    plan: list[str] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    measurements: dict[str, Any] = field(default_factory=dict)
    verification: list[Check] = field(default_factory=list)
    error: str | None = None
    failure: dict[str, Any] | None = None
    """When an exception stopped the command: its kind, exit code, cause and remedy (``errors.classify``)."""
    invocation: dict[str, Any] = field(default_factory=dict)
    """How the command was run (arguments, region, profile); the CLI fills it in."""
    pictures: dict[str, str] = field(default_factory=dict)
    """Name -> SVG text, written beside the report as ``<report>-<name>.svg`` and shown in its Markdown."""
    finished_at: str | None = None
    monotonic: Callable[[], float] = field(default=time.monotonic, repr=False)
    stream: TextIO | None = field(default=None, repr=False)  # None: the current sys.stderr

    def __post_init__(self) -> None:
        self._t0 = self.monotonic()
        self.exception: BaseException | None = None  # what ``abort`` was given, for --debug
        self.invocation = {**(_INVOCATION.get() or {}), **self.invocation}
        _LATEST.set(self)

    def elapsed(self) -> float:
        return round(self.monotonic() - self._t0, 1)

    def say(self, message: str, *, source: str = "tool", at: datetime | None = None) -> None:
        """Add a line to the timeline (``at``: the event's own time, for AWS events) and print it."""
        entry = {"elapsed_s": self.elapsed(), "source": source, "message": message}
        if at is not None:
            entry["event_time"] = at.isoformat(timespec="seconds")
        self.timeline.append(entry)
        print(f"[{entry['elapsed_s']:7.1f} s] {source}: {message}", file=self.stream or sys.stderr, flush=True)

    def add_checks(self, phase: list[Check], checks: list[Check]) -> bool:
        """Record and print checks; true when none failed (skipped ones do not fail)."""
        for check in checks:
            phase.append(check)
            self.say(f"{check.mark} {check.name}: {check.detail}", source="check")
        return all(check.passed is not False for check in checks)

    def plan_steps(self, steps: list[str]) -> bool:
        """Record what the command is about to change. In a dry run, also print each step and finish
        as ``planned``: the caller then returns without changing anything. True in a dry run."""
        self.plan = list(steps)
        if not self.dry_run:
            return False
        for step in self.plan:
            self.say(f"would: {step}")
        self.finish("planned")
        return True

    @property
    def changing(self) -> bool:
        """True once the command went past its plan into the change (``plan_steps`` comes right before it)."""
        return bool(self.plan) and not self.dry_run

    def abort(self, error: BaseException) -> Failure:
        """Finish with the failure ``error`` stands for: ``aborted`` (exit 3) once a change was under way, else
        ``refused`` for a precondition, ``interrupted`` for Ctrl-C, or ``error`` with the failure's own exit code.
        The exception is kept (not written) for ``--debug``."""
        failure = classify(error)
        self.exception = error
        self.failure = failure.as_dict()
        if self.changing:
            outcome = "aborted"
        else:
            outcome = failure.kind if failure.kind in OWN_OUTCOME else "error"
        self.finish(outcome, failure.line)
        return failure

    def finish(self, outcome: str, error: str | None = None) -> None:
        self.outcome, self.error = outcome, error
        self.finished_at = utc_now().isoformat(timespec="seconds")
        self.say(f"outcome: {outcome}" + (f" ({error})" if error else ""))

    @property
    def exit_code(self) -> int:
        if self.outcome == "error":
            return self.failure["exit_code"] if self.failure else CODE["unexpected"]
        return EXIT_CODES[self.outcome]

    @property
    def verdict(self) -> str:
        """One or two plain sentences first in every report: what was tested, where, and what it means for the
        user's tasks (the command's registered verdict, else the generic one)."""
        registered = _VERDICTS.get(self.command)
        try:
            own = registered(self) if registered and self.finished_at else None
        except Exception:  # noqa: BLE001 - a verdict's defect must never cost the report: the generic one then
            own = None
        return own or generic_verdict(self)

    @property
    def failed_checks(self) -> list[str]:
        return [check.name for check in self.steady_state + self.verification if check.passed is False]

    def summary(self) -> str:
        """The last line a command prints: outcome, exit code, and for anything but a pass the cause and remedy."""
        line = f"broker-tier-ops {self.command}: {self.outcome.upper()} (exit {self.exit_code})"
        if self.error:
            line += f": {one_line(self.error, self._error_limit(600))}"
        missing = [name for name in self.failed_checks if name not in (self.error or "")]
        if missing:
            line += f" [failed: {', '.join(missing)}]"
        return line

    def _error_limit(self, limit: int) -> int | None:
        """Where to cut ``error``: a failure's line is cut already where it quotes foreign text (``classify``)
        and must keep every problem; a command's own text is cut at ``limit``."""
        return None if self.failure else limit

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"verdict": self.verdict}
        data |= {
            f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("monotonic", "stream", "pictures")
        }
        data["pictures"] = sorted(self.pictures)
        for phase in ("steady_state", "verification"):
            data[phase] = [asdict(check) for check in data[phase]]
        data["exit_code"] = self.exit_code
        return data

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, default=str)

    def to_markdown(self, *, stem: str | None = None) -> str:
        """``stem``: the report's file name without suffix, for the pictures beside it."""
        lines = [
            f"# broker-tier-ops {one_line(self.command)}: {self.outcome.upper()}",
            "",
            one_line(self.verdict, None),
            "",
            f"- Environment: `{one_line(self.environment)}`",
            f"- Target: `{one_line(self.target)}`",
            f"- Started: {self.started_at}; finished: {self.finished_at}",
            f"- Dry run: {'yes' if self.dry_run else 'no'}; exit code {self.exit_code}",
        ]
        if self.error:
            lines.append(f"- Stopped by: {one_line(self.error, self._error_limit(2000))}")
        if self.invocation:
            lines.append("- Run as: " + "; ".join(f"{k} {one_line(v)}" for k, v in self.invocation.items()))
        if self.failure and self.failure.get("problems"):
            lines += ["", "## Problems", ""] + [f"- {problem}" for problem in self.failure["problems"]]
        for title, checks in (
            ("Steady state (before)", self.steady_state),
            ("Verification (after)", self.verification),
        ):
            if checks:
                lines += ["", f"## {title}", "", "| Check | Result | Detail |", "|---|---|---|"]
                lines += [row(c.name, c.mark, c.detail) for c in checks]
        if self.plan:
            lines += ["", "## Plan", ""] + [f"{n}. {one_line(step, 2000)}" for n, step in enumerate(self.plan, start=1)]
        lines += self._markdown_pictures(stem)
        lines += self._markdown_measurements()
        if self.timeline:
            lines += ["", "## Timeline", "", "| Elapsed (s) | Source | Event time | Message |", "|---|---|---|---|"]
            lines += [row(e["elapsed_s"], e["source"], e.get("event_time", ""), e["message"]) for e in self.timeline]
        return "\n".join(lines) + "\n"

    def _markdown_pictures(self, stem: str | None) -> list[str]:
        lines = []
        for name in sorted(self.pictures):
            where = f"{stem}-{name}.svg" if stem else f"{name}.svg (written beside the report)"
            lines += ["", f"## Picture: {name}", "", f"![{name}]({where})"]
        return lines

    def _markdown_measurements(self) -> list[str]:
        if not self.measurements:
            return []
        lines = ["", "## Measurements", ""]
        for key, value in self.measurements.items():  # a group of figures (e.g. the canary's) nests
            lines += (
                [f"- {one_line(key)}:"] + [f"  - {one_line(k)}: {one_line(v, 4000)}" for k, v in value.items()]
                if isinstance(value, dict)
                else [f"- {one_line(key)}: {one_line(value, 4000)}"]
            )
        return lines

    def write(self, directory: Path) -> tuple[Path, Path]:
        """Write ``<command>-<env>-<start, UTC>.json`` and ``.md`` into ``directory``; when a report of the same
        command, environment and second exists, add ``-2``, ``-3``, ... (never overwrite evidence)."""
        directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.fromisoformat(self.started_at).astimezone(UTC).strftime("%Y-%m-%dT%H%M%SZ")
        base = "-".join(_UNSAFE_IN_FILE_NAME.sub("_", part) for part in (self.command, self.environment)) + f"-{stamp}"
        for attempt in range(1, 10_000):
            stem = base if attempt == 1 else f"{base}-{attempt}"
            json_path, markdown_path = directory / f"{stem}.json", directory / f"{stem}.md"
            if markdown_path.exists():
                continue
            try:
                with json_path.open("x") as claimed:  # exclusive create: two runs never take the same name
                    claimed.write(self.to_json())
            except FileExistsError:
                continue
            for name, picture in self.pictures.items():
                (directory / f"{stem}-{name}.svg").write_text(picture)
            markdown_path.write_text(self.to_markdown(stem=stem))
            return json_path, markdown_path
        raise FileExistsError(f"{directory}: no free report name for {base}")
