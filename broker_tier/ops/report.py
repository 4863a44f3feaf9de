"""The evidence a command leaves: checks, steps, a timeline and measurements, as JSON and Markdown."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, TextIO

# Exit codes of every command.
EXIT_CODES = {"passed": 0, "planned": 0, "failed": 1, "refused": 2, "aborted": 3}


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
    return datetime.now(timezone.utc)


@dataclass
class Report:
    """Filled in as a command runs; ``say`` also prints each line with the elapsed time."""

    command: str
    environment: str
    target: str
    dry_run: bool
    started_at: str = field(default_factory=lambda: utc_now().isoformat(timespec="seconds"))
    outcome: str = "aborted"  # until the command says otherwise: an exception leaves it aborted
    steady_state: list[Check] = field(default_factory=list)
    plan: list[str] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    measurements: dict[str, Any] = field(default_factory=dict)
    verification: list[Check] = field(default_factory=list)
    error: str | None = None
    finished_at: str | None = None
    monotonic: Callable[[], float] = field(default=time.monotonic, repr=False)
    stream: TextIO | None = field(default=None, repr=False)  # None: the current sys.stderr

    def __post_init__(self) -> None:
        self._t0 = self.monotonic()

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

    def finish(self, outcome: str, error: str | None = None) -> None:
        self.outcome, self.error = outcome, error
        self.finished_at = utc_now().isoformat(timespec="seconds")
        self.say(f"outcome: {outcome}" + (f" ({error})" if error else ""))

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.outcome]

    def as_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("monotonic", "stream")}
        for phase in ("steady_state", "verification"):
            data[phase] = [asdict(check) for check in data[phase]]
        data["exit_code"] = self.exit_code
        return data

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, default=str)

    def to_markdown(self) -> str:
        lines = [f"# broker-tier-ops {self.command}: {self.outcome.upper()}", "",
                 f"- Environment: `{self.environment}`", f"- Target: `{self.target}`",
                 f"- Started: {self.started_at}; finished: {self.finished_at}",
                 f"- Dry run: {'yes' if self.dry_run else 'no'}; exit code {self.exit_code}"]
        if self.error:
            lines.append(f"- Stopped by: {self.error}")
        for title, checks in (("Steady state (before)", self.steady_state), ("Verification (after)", self.verification)):
            if checks:
                lines += ["", f"## {title}", "", "| Check | Result | Detail |", "|---|---|---|"]
                lines += [f"| {c.name} | {c.mark} | {c.detail.replace('|', '/')} |" for c in checks]
        if self.plan:
            lines += ["", "## Plan", ""] + [f"{n}. {step}" for n, step in enumerate(self.plan, start=1)]
        if self.measurements:
            lines += ["", "## Measurements", ""]
            for key, value in self.measurements.items():  # a group of figures (e.g. the canary's) nests
                lines += [f"- {key}:"] + [f"  - {k}: {v}" for k, v in value.items()] if isinstance(value, dict) \
                    else [f"- {key}: {value}"]
        if self.timeline:
            lines += ["", "## Timeline", "", "| Elapsed (s) | Source | Event time | Message |", "|---|---|---|---|"]
            lines += [f"| {e['elapsed_s']} | {e['source']} | {e.get('event_time', '')} | "
                      f"{e['message'].replace('|', '/')} |" for e in self.timeline]
        return "\n".join(lines) + "\n"

    def write(self, directory: Path) -> tuple[Path, Path]:
        """Write ``<command>-<env>-<start>.json`` and ``.md`` into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        stem = f"{self.command}-{self.environment}-{self.started_at.replace(':', '').replace('+0000', 'Z')}"
        json_path, markdown_path = directory / f"{stem}.json", directory / f"{stem}.md"
        json_path.write_text(self.to_json())
        markdown_path.write_text(self.to_markdown())
        return json_path, markdown_path
