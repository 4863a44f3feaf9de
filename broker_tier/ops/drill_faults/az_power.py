"""The AZ-outage fault of the failover drill: the environment's AWS FIS experiment that cuts the
power of the cache nodes in the primary's AZ (``aws:elasticache:replicationgroup-interrupt-az-power``).

The Monitoring stack holds one experiment template per AZ (``fault_injection.az_power``); the
drill starts the one for the AZ the primary is in now (StartExperiment) and follows it
(GetExperiment) while it follows the replication group's events, as it does for TestFailover.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import broker_tier_contract as contract
from broker_tier.evidence.errors import OpsError
from broker_tier.evidence.report import Check
from broker_tier.ops.drill_faults.interface import FaultAborted, FaultContext
from broker_tier.ops.replication_group import GroupState

ACTIVE = ("pending", "initiating", "running", "stopping")
ENDED = ("completed", "stopped", "failed", "cancelled")
_DURATION = re.compile(r"^PT(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?$")


def duration_seconds(iso: str) -> float:
    """Seconds of an ISO 8601 duration as AWS FIS writes them (``PT5M``, ``PT1H30M``, ``PT90S``)."""
    match = _DURATION.match(iso or "")
    if not match or not any(match.groupdict().values()):
        raise ValueError(f"not an ISO 8601 duration AWS FIS uses: {iso!r}")
    parts = {key: int(value or 0) for key, value in match.groupdict().items()}
    return parts["h"] * 3600 + parts["m"] * 60 + parts["s"]


class AzPowerFault:
    """AWS FIS's AZ power interruption for the primary's AZ, as a fault of the failover drill."""

    name = "az-power"
    detects_role_change = True  # ElastiCache's event text for a power loss is not documented: also watch roles
    expected_alarms = contract.EXPECTED_DURING_AZ_POWER  # set off by the fault itself; they do not fail the drill

    def __init__(self, context: FaultContext) -> None:
        self.context = context
        self.fis = context.fis
        self.template: dict[str, Any] | None = None
        self.experiment_id: str | None = None
        self.state: dict[str, Any] = {}
        self.extra_timeout_seconds = 0.0

    # -- steady state -------------------------------------------------------------------------
    def steady_state(self, group: GroupState) -> list[Check]:
        return [self.check_template(group), self.check_target_tag(group), self.check_no_experiment_running()]

    def check_template(self, group: GroupState) -> Check:
        ids = self.context.az_power_template_ids
        if not ids:
            return Check(
                "az_power_template",
                False,
                f"the Monitoring stack has no {contract.MonitoringOutputs.AZ_POWER_EXPERIMENT_TEMPLATE_IDS} "
                f"output: set fault_injection.az_power.enabled for this environment and deploy it",
            )
        zone = group.primary.zone if group.primary else None
        templates = [self.fis.get_experiment_template(id=template_id)["experimentTemplate"] for template_id in ids]
        by_zone = {_zone(template): template for template in templates}
        if zone not in by_zone:
            return Check(
                "az_power_template",
                False,
                f"no experiment template for the primary's AZ {zone}; "
                f"templates cover {', '.join(sorted(map(str, by_zone)))}",
            )
        template, action = by_zone[zone], _action(by_zone[zone])
        if action is None:
            return Check(
                "az_power_template",
                False,
                f"template {template['id']} for {zone} does not hold exactly "
                f"one {contract.AZ_POWER_ACTION} action: it is not the tier's",
            )
        self.template, duration = template, action["parameters"]["duration"]
        self.extra_timeout_seconds = duration_seconds(duration)
        return Check(
            "az_power_template",
            True,
            f"template {self.template['id']} interrupts {zone} for {duration}; "
            f"stop condition: {_stop_conditions(self.template)}",
            self.template["id"],
        )

    def check_target_tag(self, group: GroupState) -> Check:
        tag = contract.FAULT_INJECTION_TARGET_TAG
        if not group.arn:
            return Check("fault_injection_tag", None, "the group's ARN is unknown: its tag was not checked")
        tags = {
            t["Key"]: t["Value"]
            for t in self.context.elasticache.list_tags_for_resource(ResourceName=group.arn)["TagList"]
        }
        return Check(
            "fault_injection_tag",
            tags.get(tag) == group.group_id,
            f"{tag} = {tags.get(tag, 'missing')} (the experiment selects the group by it; the State "
            f"stack sets it when fault_injection.az_power is enabled)",
        )

    def check_no_experiment_running(self) -> Check:
        running = []
        for template_id in self.context.az_power_template_ids:
            pages = self.fis.get_paginator("list_experiments").paginate(experimentTemplateId=template_id)
            running += [e["id"] for page in pages for e in page["experiments"] if e["state"]["status"] in ACTIVE]
        return Check(
            "no_experiment_running",
            not running,
            f"experiments of these templates still active: {', '.join(running) or 'none'}",
            running,
        )

    # -- the fault ----------------------------------------------------------------------------
    def plan(self, group: GroupState) -> str:
        template = self.chosen()
        action = _action(template) or {}
        return (
            f"StartExperiment of template {template['id']}: the power of the cache nodes in "
            f"{_zone(template)} (primary {group.the_primary.cluster_id}) goes off for "
            f"{action.get('parameters', {}).get('duration')}"
        )

    def chosen(self) -> dict[str, Any]:
        """The template ``check_template`` chose (the steady state runs it before any plan or injection)."""
        if self.template is None:
            raise OpsError("no AZ power experiment template was chosen: the steady state did not pass")
        return self.template

    def inject(self, group: GroupState) -> None:
        template = self.chosen()
        experiment = self.fis.start_experiment(
            experimentTemplateId=template["id"],
            clientToken=str(uuid.uuid4()),
            tags={"broker-tier:drill": self.context.drill_label},
        )["experiment"]
        self.experiment_id, self.state = experiment["id"], experiment["state"]
        self.context.say(
            f"experiment {self.experiment_id} started from template {template['id']}; status {self.state['status']}"
        )

    def status(self) -> str:
        """Reads the experiment (GetExperiment); raises FaultAborted when it failed."""
        self.state = self.fis.get_experiment(id=self.experiment_id)["experiment"]["state"]
        if self.state["status"] in ("failed", "cancelled"):
            raise FaultAborted(
                f"experiment {self.experiment_id} {self.state['status']}: {self.state.get('reason', 'no reason given')}"
            )
        return f"; experiment {self.state['status']}"

    def finished(self) -> bool:
        """Whether the experiment had ended when last read (``status`` reads it)."""
        return self.state.get("status") in ENDED

    def verification(self) -> list[Check]:
        status = self.state.get("status")
        detail = f"experiment {self.experiment_id} {status}: {self.state.get('reason', '')}".rstrip(": ")
        if status == "stopped":
            detail += " (a stop condition fired, or someone stopped it: the fault did more harm than the tier allows)"
        return [Check("experiment_completed", status == "completed", detail, status)]


def _action(template: dict[str, Any]) -> dict[str, Any] | None:
    """The template's one AZ power action, or None."""
    actions = [a for a in template.get("actions", {}).values() if a.get("actionId") == contract.AZ_POWER_ACTION]
    return actions[0] if len(actions) == 1 else None


def _zone(template: dict[str, Any]) -> str | None:
    target = template.get("targets", {}).get(contract.AZ_POWER_TARGET, {})
    return target.get("parameters", {}).get(contract.AZ_POWER_ZONE_PARAMETER)


def _stop_conditions(template: dict[str, Any]) -> str:
    values = [c.get("value", c.get("source")) for c in template.get("stopConditions", [])]
    return ", ".join(value.rsplit(":", 1)[-1] for value in values) or "none"
