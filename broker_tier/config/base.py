"""What every part of the configuration model shares: the errors, the strict base model, the marker
that documents what a key allows, the rule that keeps cross-key checks off a partial block, and the
named types for constraints that recur (log retention, windows of the day and week)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo, model_validator

# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy).
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
DAYS_OF_WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 1440
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY
HHMM = r"([01]\d|2[0-3]):[0-5]\d"
DAY = r"(mon|tue|wed|thu|fri|sat|sun)"


class ConfigError(Exception):
    """A configuration that must not be synthesized. ``str()`` is the operator's message."""


class InvalidValue(ValueError):
    """A check that failed on one key (``key``, relative to the block that raised it): its value and what
    is allowed. Raised by ``cross_key_check`` methods and by validators of dict and list keys."""

    def __init__(self, key: str, value: Any, allowed: str):
        super().__init__(allowed)
        self.key, self.value, self.allowed = key, value, allowed


class Allowed:
    """What a key allows, in words, where its type and bounds do not say it (a catalogue, a rule).

    Put it in the key's ``Annotated`` type; the error messages and the README's configuration
    reference (``broker_tier.tools.config_reference``) both show it.
    """

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Allowed({self.text!r})"


class ConfigModel(BaseModel):
    """Base of every configuration block: unknown keys are errors, a validated value is frozen, and
    types are strict: a boolean must be a JSON boolean and a number a JSON number (an integer for
    integer keys), never coerced from a string, a boolean or a fraction. A JSON integer is accepted
    for a key of type number. Each key's docstring is its description in the README reference."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, use_attribute_docstrings=True)


PARTIAL = "partial"
"""Validation-context flag: the block is ``defaults`` on its own, which environments complete."""

_Model = TypeVar("_Model", bound=ConfigModel)


def cross_key_check(check: Callable[[_Model], None]) -> Any:
    """A model validator relating several keys of one block (raising ``InvalidValue``).

    It runs on a complete environment only: ``defaults`` is validated on its own key by key, because
    an environment may override any of the keys such a check relates.
    """

    def validate(self: _Model, info: ValidationInfo) -> _Model:
        if not (info.context or {}).get(PARTIAL):
            check(self)
        return self

    validate.__name__, validate.__doc__ = check.__name__, check.__doc__
    return model_validator(mode="after")(validate)


def _check_log_retention(value: int) -> int:
    if value not in LOG_RETENTION_DAYS:
        raise ValueError(f"one of CloudWatch Logs' retention periods {list(LOG_RETENTION_DAYS)}")
    return value


LogRetentionDays = Annotated[
    int, AfterValidator(_check_log_retention), Allowed(f"one of {', '.join(str(d) for d in LOG_RETENTION_DAYS)}")
]
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
