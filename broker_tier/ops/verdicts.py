"""The verdict each command's report starts with: one or two plain sentences saying what was tested, where, and
what it means for the user's tasks. Outcomes a verdict here does not cover (a dry run, a refusal, an error, an
interruption, an abort) read as ``broker_tier.evidence.report.generic_verdict`` words them."""

from __future__ import annotations

from broker_tier.evidence.report import Report, register_verdict

REHEARSAL_LIMITS = "docs/rehearsal.md#what-it-does-not-show"
"""Where the rehearsal's report sends its reader for what a loopback rehearsal cannot show."""


def _where(report: Report) -> str:
    region = report.invocation.get("region")
    return f"{report.environment} in {region}" if region else report.environment


def _failed_details(report: Report, limit: int = 3) -> str:
    failed = [check for check in report.steady_state + report.verification if check.passed is False]
    shown = "; ".join(f"{check.name} ({check.detail})" for check in failed[:limit])
    return shown + (f"; and {len(failed) - limit} more" if len(failed) > limit else "")


def status(report: Report) -> str | None:
    if report.outcome == "passed":
        return (
            f"{_where(report)} is healthy: the cache is available, every service runs its desired tasks, no dead "
            f"letter waits and no alarm is in ALARM, so tasks are being taken and run."
        )
    if report.outcome == "failed":
        return (
            f"{_where(report)} is not healthy: {_failed_details(report)}. Tasks may wait, fail or be lost until "
            f"that is fixed: the lines below say where, and each alarm names its runbook."
        )
    return None


def failover(report: Report) -> str | None:
    where = f"The failover drill on {_where(report)} ({report.target})"
    canary = report.measurements.get("canary") or {}
    counted = (
        f"; all {canary['sent']} canary tasks ran exactly once"
        if canary.get("sent") and report.outcome == "passed"
        else ""
    )
    seconds = report.measurements.get("seconds_to_failover_completed")
    moved = next((c.value for c in report.verification if c.name == "new_primary_in_another_az" and c.value), None)
    if report.outcome == "passed":
        to = f" to {moved['after']} in {moved['zone']}" if moved else ""
        took = f" ({seconds:g} s to 'failover completed')" if seconds is not None else ""
        back = (
            f"broker-tier-ops failback --env {report.environment} --preferred-az {moved['zone_before']}"
            if moved and moved.get("zone_before")
            else "broker-tier-ops failback (runbooks/fail-back.md)"
        )
        return (
            f"{where} held: the primary moved{to}{took}{counted}. Tasks should come through a real failover the "
            f"same way. To put the primary back where it was: {back}."
        )
    if report.outcome == "failed":
        return (
            f"{where} did not hold: {_failed_details(report)}. During a real failover tasks may be lost, run "
            f"twice or delayed until that is fixed; the report's timeline shows when."
        )
    return None


def failback(report: Report) -> str | None:
    target = report.measurements.get("target_primary", "the chosen node")
    if report.outcome == "passed" and report.error:  # nothing to do
        return f"Fail-back on {_where(report)} changed nothing: {target} is already the primary."
    if report.outcome == "passed":
        return (
            f"Fail-back on {_where(report)} made {target} the primary and restored Multi-AZ and automatic failover; "
            f"writes paused only for the promotion, as in a failover."
        )
    if report.outcome == "failed":
        return (
            f"Fail-back on {_where(report)} did not end as planned: {_failed_details(report)}. Check the group "
            f"before anything else: automatic failover protects tasks only once it is enabled again."
        )
    return None


def redrive(report: Report) -> str | None:
    selected = report.measurements.get("selection")
    what = f"the dead letters of {selected}" if selected else "the dead letters"
    where = f"{what} in {report.target} ({_where(report)})"
    if report.outcome == "passed" and report.error:  # nothing to move
        return f"Nothing was redriven: {report.error}."
    if report.outcome == "passed":
        moved = report.measurements.get("moved", 0)
        return (
            f"{moved} of {where} went back to the work queue; workers run them again, so each task runs once more "
            f"(it must be safe to run twice). Dead letters not selected stay where they were."
        )
    if report.outcome == "failed":
        return f"The redrive of {where} did not complete: {report.error}. Nothing was deleted that was not sent."
    return None


def dead_letters(report: Report) -> str | None:
    if report.outcome != "passed":
        return None
    read = report.measurements.get("read", 0)
    groups = report.measurements.get("by_task_name") or {}
    by_name = ", ".join(f"{name} x{count}" for name, count in groups.items()) or "none"
    redis_mode = (
        " In redis broker mode failed tasks never reach this queue (Celery's Redis transport has no dead-letter queue)."
        if report.measurements.get("broker") == "redis"
        else ""
    )
    return (
        f"{read} dead letters of {report.target} ({_where(report)}), by task: {by_name}. Reading them added one to "
        f"each one's receive count and hid it for at most {report.measurements.get('hold_seconds', '?')} s; none "
        f"was deleted or sent anywhere.{redis_mode}"
    )


def toolbox(report: Report) -> str | None:
    if report.outcome == "passed":
        return (
            f"The operators' toolbox task runs in the VPC of {_where(report)}: the lines below open redis-cli and "
            f"stop it (it stops itself otherwise). It changed nothing else; tasks are not affected."
        )
    return None


def cost(report: Report) -> str | None:
    if report.outcome != "passed":
        return None
    totals = {key.split(" monthly ", 1)[0]: value for key, value in report.measurements.items() if " monthly " in key}
    typical = ", ".join(f"{name} {values['typical']:,.2f}" for name, values in totals.items())
    return (
        f"Monthly cost estimate from {report.target} (offline: nothing read from AWS, nothing deployed), typical "
        f"load, in USD at list prices of {report.measurements.get('prices as of', '?')}: {typical}."
    )


def rehearse(report: Report) -> str | None:
    queues = ", moto's SQS server" if report.target.startswith("sqs") else ""
    setup = (
        f"The failover rehearsal ran on this machine's loopback (no AWS): two redis-servers{queues}, real Celery "
        f"workers of {report.environment}'s worker task definition and the reference canary task; {report.target}"
    )
    limits = f"It does not show ElastiCache's own timing, cross-AZ latency or Fargate ({REHEARSAL_LIMITS})."
    measurements = report.measurements
    if report.outcome == "passed":
        counted = f": {measurements['published']} tasks published, none lost" if "published" in measurements else ""
        return f"{setup}; every goal held{counted}. {limits}"
    if report.outcome == "failed":
        return (
            f"{setup}; goals missed: {_failed_details(report)}. A real failover would likely do the same to tasks: "
            f"run no AWS drill until it passes. {limits}"
        )
    return None


VERDICTS = {
    "status": status,
    "failover": failover,
    "failback": failback,
    "redrive": redrive,
    "dead-letters": dead_letters,
    "toolbox": toolbox,
    "cost": cost,
    "rehearse": rehearse,
}


def register() -> None:
    """Make every command's report state its verdict (``broker_tier.ops`` calls it on import)."""
    for command, verdict in VERDICTS.items():
        register_verdict(command, verdict)
