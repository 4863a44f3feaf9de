"""The latency classes: one SQS queue and dead-letter queue per class, and the limits that size them."""

from __future__ import annotations

from pydantic import Field

from broker_tier.config.base import ConfigModel, InvalidValue, cross_key_check
from broker_tier.config.services import WorkerConfig

# Seconds added on top of the longest time a worker can hold a message before it acks it.
VISIBILITY_MARGIN_SECONDS = 60
SQS_MAX_VISIBILITY_SECONDS = 43_200  # 12 h, SQS's own ceiling
SQS_MAX_RETENTION_SECONDS = 1_209_600  # 14 days


class QueueClassConfig(ConfigModel):
    """One latency class: an SQS queue, its dead-letter queue, and the task limits that size them."""

    task_time_limit_seconds: int = Field(300, ge=1, le=SQS_MAX_VISIBILITY_SECONDS)
    """Hard time limit of this class's tasks. Default: 300."""
    max_eta_seconds: int = Field(0, ge=0, le=SQS_MAX_VISIBILITY_SECONDS)
    """Longest ETA/countdown a task of this class is sent with. Default: 0."""
    visibility_timeout_seconds: int = Field(900, ge=0, le=SQS_MAX_VISIBILITY_SECONDS)
    """Queue visibility timeout; must exceed time limit + longest ETA + 60 s. Default: 900."""
    max_receive_count: int = Field(5, ge=1, le=1000)
    """Receives before SQS moves a message to the dead-letter queue. Default: 5."""
    retention_seconds: int = Field(345_600, ge=60, le=SQS_MAX_RETENTION_SECONDS)
    """Message retention of the work queue. Default: 345600 (4 days)."""
    dead_letter_retention_seconds: int = Field(SQS_MAX_RETENTION_SECONDS, ge=60, le=SQS_MAX_RETENTION_SECONDS)
    """Retention of the dead-letter queue; never shorter than the work queue's, because SQS keeps
    a message's original enqueue time when it moves it. Default: 1209600 (14 days)."""
    latency_objective_seconds: int = Field(900, ge=60, le=SQS_MAX_RETENTION_SECONDS)
    """Oldest-message age the class may reach before its age alarm fires. SQS counts messages a
    worker holds (waiting for an ETA or running with acks_late), so it must exceed
    max_eta_seconds + task_time_limit_seconds, and stay under retention_seconds. Default: 900."""
    idempotent: bool = False
    """The class's tasks are safe to run more than once (a second run changes nothing). Needed for Fargate Spot
    when the time limit is longer than the soft-shutdown window: an interrupted task is handed back and runs
    again on another worker (docs/decisions/fargate-spot-per-class.md). Default: false."""
    worker: WorkerConfig = Field(default_factory=WorkerConfig)
    """The worker service of this class."""

    @cross_key_check
    def _limits(self) -> None:
        held = self.task_time_limit_seconds + self.max_eta_seconds
        needed = held + VISIBILITY_MARGIN_SECONDS
        if self.visibility_timeout_seconds < needed:
            raise InvalidValue(
                "visibility_timeout_seconds",
                self.visibility_timeout_seconds,
                f"at least task_time_limit_seconds ({self.task_time_limit_seconds}) + max_eta_seconds "
                f"({self.max_eta_seconds}) + {VISIBILITY_MARGIN_SECONDS} s margin = {needed}. A worker "
                f"holds a message un-acked while it waits for the ETA and while the task runs; once the "
                f"visibility timeout passes, SQS hands the same message to another worker, and the task "
                f"runs again, and again (celery#4766)",
            )
        if needed > SQS_MAX_VISIBILITY_SECONDS:
            raise InvalidValue(
                "max_eta_seconds",
                self.max_eta_seconds,
                f"an ETA that, with the time limit and margin, fits SQS's 12 h visibility "
                f"ceiling ({SQS_MAX_VISIBILITY_SECONDS} s); schedule longer delays with Beat",
            )
        if self.dead_letter_retention_seconds < self.retention_seconds:
            raise InvalidValue(
                "dead_letter_retention_seconds",
                self.dead_letter_retention_seconds,
                f"at least retention_seconds ({self.retention_seconds}): a moved message keeps its "
                f"original enqueue time, so a shorter dead-letter retention deletes it early",
            )
        if self.latency_objective_seconds <= held:
            raise InvalidValue(
                "latency_objective_seconds",
                self.latency_objective_seconds,
                f"more than max_eta_seconds ({self.max_eta_seconds}) + task_time_limit_seconds "
                f"({self.task_time_limit_seconds}) = {held}: ApproximateAgeOfOldestMessage counts the "
                f"messages workers hold while they wait for an ETA and run the task, so a lower objective "
                f"alarms on healthy work",
            )
        if self.latency_objective_seconds >= self.retention_seconds:
            raise InvalidValue(
                "latency_objective_seconds",
                self.latency_objective_seconds,
                f"less than retention_seconds ({self.retention_seconds}): SQS deletes a message "
                f"at that age, so the alarm could never fire before the task is lost",
            )

    @cross_key_check
    def _spot_receives(self) -> None:
        if self.worker.capacity.uses_spot and self.max_receive_count < 2:
            raise InvalidValue(
                "worker.capacity.spot_percent",
                self.worker.capacity.spot_percent,
                f"0 with max_receive_count {self.max_receive_count}: a Spot interruption hands the messages its "
                f"worker holds back to the queue, and SQS counts their next receive, so with 1 a single "
                f"interruption moves them to the dead-letter queue; set max_receive_count to 2 or more",
            )


def default_queue_classes() -> dict[str, QueueClassConfig]:
    """interactive, default and batch, each with the class defaults."""
    return {"interactive": QueueClassConfig(), "default": QueueClassConfig(), "batch": QueueClassConfig()}
