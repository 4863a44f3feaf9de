"""The table of container variables (docs/celery-settings.md) is the one the contract generates, and says of each
variable what the synthesized task definitions do: which containers the stack gives it, and only those."""

from __future__ import annotations

from deployment import container_definitions
from tier_testing import ENVIRONMENTS, ROOT

import broker_tier_contract as contract
from broker_tier.tools.container_variables import OUTSIDE_THE_STACK, rows

DOCUMENT = ROOT / "docs" / "celery-settings.md"


def test_every_contract_variable_has_a_row_with_who_sets_it_and_its_default():
    by_name = {row.name: row for row in rows()}
    assert set(by_name) == {v.name for v in contract.ContainerEnvironment.all()} | {
        contract.ToolboxEnvironment.REDIS_CLI_AUTH.name
    }
    variables = contract.ContainerEnvironment
    # tried against the settings package: it refuses to start without these, and starts without the others
    assert {name for name, row in by_name.items() if row.default == "required"} == {
        variables.QUEUE_URLS.name,
        variables.REDIS_HOST.name,
        variables.REDIS_PORT.name,
    }
    assert by_name[variables.BROKER.name].default == "`sqs`"
    assert by_name[variables.ECS_AGENT_URI.name].set_by == "ECS, in every task"
    assert by_name[variables.HEARTBEAT_DIR.name].set_by == OUTSIDE_THE_STACK
    assert by_name[variables.REDIS_AUTH_TOKEN.name].set_by.startswith("the stack, as an ECS secret")
    assert by_name[variables.REMAP_SIGTERM.name].set_by == "the stack; the image's `ENV` too"  # both Dockerfiles


def _kind(container: dict) -> str:
    command = container["Command"]
    if command[0] != "celery":
        return "toolbox"
    return {"worker": "workers", contract.BEAT_PROCESS: "Beat"}[command[3]]


def test_the_table_says_which_containers_the_stack_gives_each_variable(synthesized, redis_mode_dev):
    given: dict[str, set[str]] = {}
    # every environment: an optional feature (the claim check) sets its variables only where it is on, and Beat
    # is given the classes' visibility time-outs in redis broker mode only
    templates = [synthesized.json(env, contract.COMPUTE) for env in ENVIRONMENTS] + [redis_mode_dev[contract.COMPUTE]]
    containers = [container for template in templates for container in container_definitions(template).values()]
    assert {_kind(container) for container in containers} == {"workers", "Beat", "toolbox"}
    for container in containers:
        for item in [*container.get("Environment", []), *container.get("Secrets", [])]:
            given.setdefault(item["Name"], set()).add(_kind(container))
    table = {row.name: row for row in rows()}
    assert set(given) <= set(table), f"the stack sets variables the table lacks: {sorted(set(given) - set(table))}"
    claimed = {
        name: set(row.containers.split(", ")) for name, row in table.items() if row.set_by.startswith("the stack")
    }
    assert claimed == given
