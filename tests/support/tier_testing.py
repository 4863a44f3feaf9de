"""Helpers shared by the tests: the project's cdk.json, and its environments synthesized once."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# jsii starts `node` from PATH: use the pinned Node 22 the set-up installed, when present.
if (ROOT / "node_modules/.bin/node").exists():
    os.environ["PATH"] = f"{ROOT / 'node_modules/.bin'}{os.pathsep}{os.environ['PATH']}"

import aws_cdk as cdk  # noqa: E402
from aws_cdk import cx_api  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402
from deployment import ACCOUNT, REGION, Deployment  # noqa: E402

import broker_tier_contract as contract  # noqa: E402
from broker_tier.app_builder import build_app, synthesize  # noqa: E402
from broker_tier.config import CONTEXT_KEY, deep_merge  # noqa: E402


def project_context() -> dict:
    """The ``context`` block of the repository's cdk.json."""
    return json.loads((ROOT / "cdk.json").read_text())["context"]


def tier_context() -> dict:
    """A fresh copy of ``context["broker-tier"]`` to modify in a test."""
    return copy.deepcopy(project_context()[CONTEXT_KEY])


REUSE_CDK_OUT = "BROKER_TIER_TEST_CDK_OUT"
"""Set by scripts/test.sh to the cdk.out its first step synthesized with the CDK CLI (every environment as
cdk.json declares them, with cdk-nag), so that the session reuses it instead of synthesizing the same again.
Those templates differ from an in-process synthesis only by the CLI's ``CDKMetadata`` resource."""

PINNED_REGIONS = ("us-east-1",)
"""The regions the tests pin every environment to (with the account ``deployment.ACCOUNT``): one, since a whole
synthesis with cdk-nag and its cfn-lint cost about 25 s of CPU; another region is tested on one environment or on a
copy of this assembly (tests/broker_tier/stacks/test_base.py, tests/broker_tier/tools/test_synth_report_costs.py)."""


def availability_zones_key(account: str, region: str) -> str:
    """The context key under which the CDK CLI stores a pinned stack's AZ look-up in cdk.context.json."""
    return f"availability-zones:account={account}:region={region}"


def pinned_context(region: str, *, account: str = ACCOUNT, looked_up: bool = True) -> dict:
    """The project's context with every environment pinned to ``account`` and ``region``; ``looked_up``: with
    the AZ look-up a CDK CLI with credentials stores in cdk.context.json (which the tier does not read)."""
    context = project_context()
    for block in context[CONTEXT_KEY]["environments"].values():
        block.update(account=account, region=region)
    if looked_up:
        context[availability_zones_key(account, region)] = [f"{region}{zone}" for zone in "abc"]
    return context


class SynthesizedEnvironments:
    """Every environment of cdk.json, synthesized once; templates by environment and stack part.

    ``region`` None: as cdk.json declares them (environment-agnostic as shipped), without cdk-nag and CDK's
    built-in CloudFormation validation (scripts/test.sh runs both on those). A region: every environment pinned to
    it (``pinned_context``), with both, so that any finding fails the synthesis. ``account``/``region``: where
    ``deployment()`` puts the stacks, the pinned ones, else stand-ins.
    """

    def __init__(
        self, tmp: Path, *, region: str | None = None, looked_up: bool = True, synthesized: bool = False
    ) -> None:
        """``synthesized``: ``tmp`` already holds the agnostic assembly (the CLI's, scripts/test.sh's first step)."""
        context = pinned_context(region, looked_up=looked_up) if region else project_context()
        declared = {
            (block.get("account"), block.get("region")) for block in context[CONTEXT_KEY]["environments"].values()
        }
        (target,) = declared if len(declared) == 1 else [(None, None)]  # cdk.json may pin them all (a team's)
        self.pinned = target[0] is not None
        self.account, self.region = (target[0], target[1]) if self.pinned else (ACCOUNT, REGION)
        self.outdir = tmp
        if synthesized:
            self.assembly = cx_api.CloudAssembly(str(tmp))
        else:
            checked = region is not None  # cdk-nag and CDK's built-in CloudFormation validation, as app.py runs them
            app = cdk.App(context=context, outdir=str(tmp), builtin_cloud_formation_validation=checked)
            build_app(app, context=context, nag=checked)
            self.assembly = app.synth()
        self._templates: dict[tuple[str, str], Template] = {}
        self._json: dict[tuple[str, str], dict] = {}

    @classmethod
    def from_cdk_out(cls, directory: Path) -> SynthesizedEnvironments:
        """The agnostic assembly in ``directory``, refused unless it holds every stack of cdk.json's environments."""
        manifest = json.loads((directory / "manifest.json").read_text())
        stacks = {name for name, a in manifest["artifacts"].items() if a["type"] == "aws:cloudformation:stack"}
        expected = {contract.stack_name(env, part) for env in ENVIRONMENTS for part in contract.STACK_PARTS}
        if stacks != expected:
            raise RuntimeError(f"{REUSE_CDK_OUT}={directory} holds {sorted(stacks)}, not {sorted(expected)}")
        return cls(directory, synthesized=True)

    def __repr__(self) -> str:
        return f"pinned-{self.region}" if self.pinned else "agnostic"

    def json(self, env: str, part: str) -> dict:
        key = (env, part)
        if key not in self._json:
            self._json[key] = self.assembly.get_stack_by_name(contract.stack_name(env, part)).template
        return self._json[key]

    def deployment(self, env: str, **options) -> Deployment:
        """``env``'s stacks as CloudFormation would resolve them (see ``deployment.Deployment``)."""
        options = {"account": self.account, "region": self.region, **options}
        return Deployment(
            {contract.stack_name(env, part): self.json(env, part) for part in contract.STACK_PARTS}, **options
        )

    def template(self, env: str, part: str) -> Template:
        key = (env, part)
        if key not in self._templates:
            self._templates[key] = Template.from_json(self.json(env, part))
        return self._templates[key]

    def resources(self, env: str, part: str, resource_type: str) -> dict[str, dict]:
        return {
            logical_id: resource
            for logical_id, resource in self.json(env, part)["Resources"].items()
            if resource["Type"] == resource_type
        }

    def cluster_logical_id(self, env: str) -> str:
        (logical_id,) = self.resources(env, "Compute", "AWS::ECS::Cluster")
        return logical_id

    def only(self, env: str, part: str, resource_type: str) -> dict:
        found = self.resources(env, part, resource_type)
        assert len(found) == 1, f"expected one {resource_type} in {env}-{part}, found {list(found)}"
        return next(iter(found.values()))


ENVIRONMENTS = list(project_context()[CONTEXT_KEY]["environments"])


# dev with the Redis broker and a team's image instead of the reference worker.
REDIS_MODE_CHANGES = {
    "compute": {
        "broker": "redis",
        "celery_app": "team_app.celery:app",
        "image": {"repository_name": "team/app", "digest": "sha256:" + "b" * 64},
    }
}


# prod with two classes on Fargate Spot and every task on ARM64: what opting in looks like. batch is marked
# idempotent (its 3600 s time limit exceeds the 105 s soft-shutdown window); interactive's 60 s fits it.
SPOT_CHANGES = {
    "compute": {"cpu_architecture": "ARM64"},
    "queues": {
        "interactive": {"worker": {"capacity": {"spot_percent": 75}}},
        "batch": {"idempotent": True, "worker": {"capacity": {"spot_percent": 50, "on_demand_base": 1}}},
    },
}


def synthesize_with_nag(outdir: Path, env: str, changes: dict) -> dict[str, dict]:
    """``env`` with ``changes``, synthesized alone with cdk-nag (a finding fails it): templates by stack part."""
    context = {**variant_context(env, changes), "env": env}
    app = cdk.App(context=context, outdir=str(outdir))
    build_app(app, context=context, nag=True)
    assembly = app.synth()
    return {part: assembly.get_stack_by_name(contract.stack_name(env, part)).template for part in contract.STACK_PARTS}


def variant_context(env: str, changes: dict) -> dict:
    """The project's context with ``changes`` deep-merged into environment ``env``."""
    context = project_context()
    environments = context[CONTEXT_KEY]["environments"]
    environments[env] = deep_merge(environments[env], changes)
    return context


def synthesize_variant(outdir: Path, env: str, changes: dict) -> dict[str, dict]:
    """``env`` of cdk.json with ``changes`` deep-merged into it, synthesized alone: templates by stack part."""
    assembly = synthesize(project_context(), outdir=outdir, environment=env, changes=changes)
    return {part: assembly.get_stack_by_name(contract.stack_name(env, part)).template for part in contract.STACK_PARTS}


ECS_EXEC_ACTIONS = {
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
    "logs:DescribeLogGroups",
    "logs:CreateLogStream",
    "logs:DescribeLogStreams",
    "logs:PutLogEvents",
}
"""What ECS Exec needs on a task role (CDK adds these, without a Sid, to services with ECS Exec on)."""


def actions_of(statement: dict) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


def is_ecs_exec(statement: dict) -> bool:
    return actions_of(statement) <= ECS_EXEC_ACTIONS


def without_ecs_exec(statements: list[dict]) -> list[dict]:
    """The statements of a task role other than ECS Exec's (tests of those are in test_operator_access)."""
    return [s for s in statements if not is_ecs_exec(s)]


def expected_health_check(process: str) -> dict[str, object]:
    """The container health check of a ``worker`` or ``beat`` container, as CloudFormation receives it
    (docs/decisions/container-health-checks.md: interval 15 s, timeout 5 s, 3 retries, start period 60 s)."""
    return {
        "Command": ["CMD", "python", "-m", "broker_tier_celery.health", process],
        "Interval": 15,
        "Timeout": 5,
        "Retries": 3,
        "StartPeriod": 60,
    }
