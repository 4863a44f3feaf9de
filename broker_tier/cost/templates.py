"""Where the estimator's templates come from: a cloud assembly (``cdk.out``), the replacement
guard's ``baseline/``, or a fresh synthesis of ``cdk.json`` (no credentials, no network)."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import broker_tier_contract as contract
from broker_tier.cloud_assembly import stack_templates
from broker_tier.cost import baseline
from broker_tier.cost.prices import CostError
from broker_tier.stateful_resources import STATEFUL_TYPES

REPOSITORY = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, kw_only=True)
class EnvironmentTemplates:
    """The templates of one environment's stacks."""

    environment: str
    stacks: dict[str, dict]
    """Template by stack name (each with its ``Resources``)."""
    region: str | None = None
    """The region the stacks target, when they name one (None: environment-agnostic)."""
    holds_only: frozenset[str] | None = None
    """The resource types this source holds, when it holds only some (``baseline/``); None: whole templates."""

    def resources(self) -> list[tuple[str, str, dict]]:
        """``(stack, logical id, resource)`` of every resource, in a stable order."""
        return [
            (stack, logical_id, resource)
            for stack, template in sorted(self.stacks.items())
            for logical_id, resource in sorted(template.get("Resources", {}).items())
        ]


def _environment_of(stack_name: str) -> str | None:
    parsed = contract.parse_stack_name(stack_name)
    return parsed[0] if parsed else None


def from_cloud_assembly(directory: Path) -> dict[str, EnvironmentTemplates]:
    """Every tier environment in the cloud assembly ``directory`` (its ``manifest.json``)."""
    stacks: dict[str, dict[str, dict]] = {}
    regions: dict[str, str | None] = {}
    for name, found in stack_templates(directory).items():  # in the app's order
        environment = _environment_of(name)
        if environment is None:
            continue
        stacks.setdefault(environment, {})[name] = found.template
        regions[environment] = found.region
    return {
        environment: EnvironmentTemplates(environment=environment, stacks=templates, region=regions[environment])
        for environment, templates in stacks.items()
    }


def from_baseline(directory: Path) -> dict[str, EnvironmentTemplates]:
    """The reviewed baseline: per stack, the replacement guard's stateful resources, and where
    ``baseline/services/`` has it, the compute footprint the Fargate and SQS lines read (``cost.baseline``)."""
    stacks: dict[str, dict[str, dict]] = {}
    with_footprint: set[str] = set()
    paths = [*directory.glob("*.json"), *(directory / baseline.SERVICES_DIR).glob("*.json")]
    for stack in sorted({path.stem for path in paths}):
        environment = _environment_of(stack)
        if environment is None:
            continue
        reviewed = directory / f"{stack}.json"
        resources = json.loads(reviewed.read_text()) if reviewed.is_file() else {}
        services = baseline.read(directory, stack)
        if services:
            with_footprint.add(environment)
        stacks.setdefault(environment, {})[stack] = {"Resources": {**resources, **services}}
    stateful, footprint = frozenset(STATEFUL_TYPES), baseline.FOOTPRINT_TYPES
    return {
        environment: EnvironmentTemplates(
            environment=environment,
            stacks=templates,
            holds_only=stateful | footprint if environment in with_footprint else stateful,
        )
        for environment, templates in stacks.items()
    }


def load(directory: Path) -> dict[str, EnvironmentTemplates]:
    """A cloud assembly (has ``manifest.json``) or a baseline directory (``BrokerTier-*.json`` files)."""
    if (directory / "manifest.json").is_file():
        found = from_cloud_assembly(directory)
    elif directory.is_dir():
        found = from_baseline(directory)
    else:
        raise CostError(f"{directory}: no such directory (expected a cdk.out cloud assembly or baseline/)")
    if not found:
        raise CostError(
            f"{directory}: holds no BrokerTier-<env>-<part> stack (expected a cdk.out cloud assembly "
            f"with manifest.json, or the replacement guard's baseline/)"
        )
    return found


QUIET_VALIDATION = {"@aws-cdk/core:failSynthOnValidationErrors": False}
"""Context that makes the CDK write its validation report (construct annotations) to ``validation-report.json``
only, instead of also printing it with a pointer to that file, which an estimate in a temporary directory
deletes: ``synthesize`` reads it (``validation_warnings``) and refuses a synthesis it failed."""


def _validation_report(directory: Path) -> list[dict]:
    path = directory / "validation-report.json"
    return json.loads(path.read_text()).get("pluginReports", []) if path.is_file() else []


def validation_warnings(directory: Path) -> list[str]:
    """The warnings of the synthesis in ``directory``, one line each (``<construct path>: <what>``)."""
    return [
        f"{', '.join(c['constructPath'] for c in violation.get('violatingConstructs', []))}: {violation['description']}"
        for plugin in _validation_report(directory)
        for violation in plugin.get("violations", [])
        if violation.get("severity") != "error"
    ]


def synthesize(*, cdk_json: Path, environment: str | None = None, outdir: Path | None = None) -> Path:
    """Synthesize the environments of ``cdk_json`` (validated by the app's configuration model) into
    ``outdir`` (default: a new temporary directory) and return it. No credentials, no network."""
    if not cdk_json.is_file():
        raise CostError(f"{cdk_json}: no such file (the app's cdk.json; or give --cdk-out DIR)")
    from broker_tier.app_builder import synthesize as synthesize_app  # starting jsii takes seconds
    from broker_tier.config import ConfigError

    try:
        document = json.loads(cdk_json.read_text())
    except ValueError as error:  # JSONDecodeError: the file's own syntax, before any configuration check
        raise CostError(f"{cdk_json} is not valid JSON ({error}); nothing was estimated") from None
    if not isinstance(document, dict):
        raise CostError(
            f"{cdk_json} is not a JSON object (a CDK app's cdk.json is, with the configuration under "
            f'"context"); nothing was estimated'
        )
    outdir = outdir or Path(tempfile.mkdtemp(prefix="broker-tier-cost-"))
    try:
        synthesize_app({**document.get("context", {}), **QUIET_VALIDATION}, environment=environment, outdir=outdir)
    except ConfigError as error:  # every problem on a line of its own (``load_environments``)
        problems = [line for line in str(error).splitlines() if line.strip()]
        raise CostError(
            f"{cdk_json} has {len(problems)} configuration problem{'s' * (len(problems) != 1)}, so "
            f"nothing was estimated",
            problems,
        ) from None
    failed = [
        f"{', '.join(c['constructPath'] for c in violation.get('violatingConstructs', []))}: {violation['description']}"
        for plugin in _validation_report(outdir)
        if plugin.get("conclusion") != "success"
        for violation in plugin.get("violations", [])
        if violation.get("severity") == "error"
    ]
    if failed:
        raise CostError(f"the synthesis of {cdk_json} failed its validation, so nothing was estimated", failed)
    return outdir
