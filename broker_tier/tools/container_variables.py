"""Every variable a container of the tier is given, as the Markdown table in ``docs/celery-settings.md``: generated
from the contract (``ContainerEnvironment``, ``ToolboxEnvironment``), the settings package (what it cannot start
without) and the Dockerfiles (what an image sets itself), so that it cannot drift from them.

``python -m broker_tier.tools.container_variables`` prints the table; ``--write docs/celery-settings.md`` replaces
the table between that document's markers; ``--check docs/celery-settings.md`` exits 1 when its table differs
(the test suite runs the same comparison).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import broker_tier_contract as contract
from broker_tier.tools.generated_table import GeneratedTable, cell
from broker_tier.tools.image_check import WORKER_DIR, dockerfile_env
from broker_tier_celery.environment import SettingsError, TierEnvironment

ROOT = WORKER_DIR.parent
DOCKERFILES = (WORKER_DIR / "Dockerfile", ROOT / "examples" / "team-app" / "Dockerfile")
"""The images whose ``ENV`` lines count as "the image sets it": the reference worker's and the team example's."""
SET_BY_ECS = frozenset({contract.ContainerEnvironment.ECS_AGENT_URI.name})
"""Variables the stack does not set because ECS sets them in every task."""
OUTSIDE_THE_STACK = "you, outside the stack (local runs, tests); on ECS the default holds"
WORKERS_ONLY = "workers only"
"""How the contract's meaning of a variable says that Beat is not given it."""


@dataclass(frozen=True)
class Row:
    name: str
    containers: str
    set_by: str
    default: str
    meaning: str


def _image_variables() -> set[str]:
    """Names an ``ENV`` line of one of ``DOCKERFILES`` sets."""
    return {name for dockerfile in DOCKERFILES for name in dockerfile_env(dockerfile)}


def _complete_environ() -> dict[str, str]:
    """A value for every variable the stack sets, as a worker gets them (parsable by the settings package)."""
    values = {
        contract.ContainerEnvironment.QUEUE_URLS.name: '{"default": "https://sqs.example/1/q"}',
        contract.ContainerEnvironment.QUEUE.name: "default",
        contract.ContainerEnvironment.BROKER.name: "sqs",
        contract.ContainerEnvironment.REDIS_TLS.name: "true",
        contract.ContainerEnvironment.REDIS_HOST.name: "redis.example",
        contract.ContainerEnvironment.ENVIRONMENT.name: "dev",
        contract.ContainerEnvironment.REGION.name: "eu-west-1",
        contract.ContainerEnvironment.REMAP_SIGTERM.name: "SIGQUIT",
        contract.ContainerEnvironment.REDIS_AUTH_TOKEN.name: "token",
    }
    return {v.name: values.get(v.name, "100") for v in contract.ContainerEnvironment.all() if v.set_by_stack}


def _required(variable: contract.Variable) -> bool:
    """Whether the settings package refuses to start without it (tried: the rest given, this one absent)."""
    environ = {name: value for name, value in _complete_environ().items() if name != variable.name}
    try:
        TierEnvironment.from_environ(environ)
    except SettingsError as error:
        return variable.name in str(error)
    return False


def _set_by(variable: contract.Variable, image_sets: set[str]) -> str:
    if variable.name in SET_BY_ECS:
        who = "ECS, in every task"
    elif not variable.set_by_stack:
        who = OUTSIDE_THE_STACK
    elif variable.secret:
        who = "the stack, as an ECS secret (Secrets Manager)"
    else:
        who = "the stack"
    return f"{who}; the image's `ENV` too" if variable.name in image_sets else who


def _default(variable: contract.Variable, *, read_by_settings: bool) -> str:
    if variable.default is not None:
        return f"`{variable.default}`"
    return "required" if read_by_settings and _required(variable) else "none"


def rows() -> list[Row]:
    """One row per variable: the workers' and Beat's (``ContainerEnvironment``), then the toolbox's own."""
    image_sets = _image_variables()
    toolbox = {v.name for v in vars(contract.ToolboxEnvironment).values() if isinstance(v, contract.Variable)}
    found = []
    for variable in contract.ContainerEnvironment.all():
        containers = "workers" if WORKERS_ONLY in variable.meaning else "workers, Beat"
        if variable.name in toolbox:
            containers += ", toolbox"
        found.append(
            Row(
                variable.name,
                containers,
                _set_by(variable, image_sets),
                _default(variable, read_by_settings=True),
                variable.meaning,
            )
        )
    celery = {v.name for v in contract.ContainerEnvironment.all()}
    for variable in vars(contract.ToolboxEnvironment).values():
        if isinstance(variable, contract.Variable) and variable.name not in celery:
            found.append(
                Row(
                    variable.name,
                    "toolbox",
                    _set_by(variable, image_sets),
                    _default(variable, read_by_settings=False),
                    variable.meaning,
                )
            )
    return found


def _lines() -> list[str]:
    lines = ["| variable | used by | set by | default | meaning |", "|---|---|---|---|---|"]
    for row in rows():
        cells = (f"`{row.name}`", row.containers, row.set_by, row.default, row.meaning)
        lines.append("| " + " | ".join(cell(text) for text in cells) + " |")
    return lines


TABLE = GeneratedTable(
    what="the table of container variables",
    marker="container-variables",
    source="the contract",
    module="broker_tier.tools.container_variables",
    document="docs/celery-settings.md",
    lines=_lines,
)


if __name__ == "__main__":
    sys.exit(TABLE.main(sys.argv[1:], description=__doc__.splitlines()[0]))
