"""What every part of the configuration model shares: the errors, the strict base model, and the
named types for constraints that recur (log retention, windows of the day and week)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict

# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
                      2192, 2557, 2922, 3288, 3653)
DAYS_OF_WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 1440
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY
HHMM = r"([01]\d|2[0-3]):[0-5]\d"
DAY = r"(mon|tue|wed|thu|fri|sat|sun)"


class ConfigError(Exception):
    """A configuration that must not be synthesized. ``str()`` is the operator's message."""


class InvalidValue(ValueError):
    """A cross-field check that failed on one key of the model it was raised in."""

    def __init__(self, key: str, value: Any, allowed: str):
        super().__init__(allowed)
        self.key, self.value, self.allowed = key, value, allowed


class ConfigModel(BaseModel):
    """Base of every configuration block: unknown keys are errors, and a validated value is frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_log_retention(value: int) -> int:
    if value not in LOG_RETENTION_DAYS:
        raise ValueError(f"one of CloudWatch Logs' retention periods {list(LOG_RETENTION_DAYS)}")
    return value


LogRetentionDays = Annotated[int, AfterValidator(_check_log_retention)]
"""Days of log retention: one of the periods CloudWatch Logs accepts."""


def minutes(hhmm: str) -> int:
    """Minutes since midnight of ``HH:MM``."""
    hours, mins = hhmm.split(":")
    return int(hours) * 60 + int(mins)


def window_length(start: int, end: int, period: int) -> int:
    """Length of a window from ``start`` to ``end`` that may wrap around ``period``."""
    return (end - start) % period


def windows_overlap(start_a: int, length_a: int, start_b: int, length_b: int, period: int) -> bool:
    return (start_b - start_a) % period < length_a or (start_a - start_b) % period < length_b
